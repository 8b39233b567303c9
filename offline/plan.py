"""The offline plan: what `pulumi preview` would do, with no CLI, cloud or hardware.

    python -m offline.plan --stack seoul-stage           # reads Pulumi.seoul-stage.yaml
    python -m offline.plan --stack-file path/Pulumi.x.yaml --out build/x

Exit status: 0 fine, 1 a mandatory policy violation, 2 invalid config.
"""

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from model import PROJECT, ConfigError, StackConfig, capacity, load_config
from offline import artifacts
from offline.engine import run_program
from offline.graph import longest_chain, step_graph
from offline.policy import analyze
from offline.registry import Registration
from offline.stackfile import StackFile, StackFileError, read_stack_file
from offline.wire import plain

REPO = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_POLICY, EXIT_CONFIG = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    path = args.stack_file or REPO / f"Pulumi.{args.stack}.yaml"
    try:
        stack = read_stack_file(path)
        cfg = load_config(stack.lookup)
    except (StackFileError, ConfigError) as err:
        lines = err.lines if isinstance(err, ConfigError) else [str(err)]
        print(f"error: invalid stack config in {path.name}:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG

    out = args.out or REPO / "build" / stack.stack
    started = time.monotonic()
    print(f"Previewing {PROJECT}/{stack.stack} offline (environment {cfg.environment}) ...", flush=True)
    registrations, outputs = run_program(REPO / "__main__.py", stack)
    violations = _policy(registrations, stack, cfg)

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    plan = plan_document(stack, registrations, plain(outputs))
    (out / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    (out / "policy.json").write_text(json.dumps({"violations": violations}, indent=2) + "\n")
    names = {str(h.address): h.name for h in cfg.hosts}
    written = artifacts.write(out / "artifacts", registrations, names)

    print(tree(registrations, verbose=args.verbose))
    if cfg.storage_hosts:
        print("\n" + "\n".join(capacity.verdict(cfg).lines()))  # model/capacity.py; also output cephCapacity
    _print_violations(violations)
    mandatory = sum(v["level"] == "mandatory" for v in violations)
    chain = longest_chain(step_graph(plan["resources"]))
    print(f"\nlongest dependency chain: {len(chain)} steps")
    print(f"+ {len(registrations)} to create · {len(violations)} policy violations ({mandatory} mandatory)")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}/: plan.json, policy.json, "
          f"{written} artifacts ({time.monotonic() - started:.1f}s)")
    return EXIT_POLICY if mandatory else EXIT_OK


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m offline.plan", description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml beside Pulumi.yaml")
    which.add_argument("--stack-file", type=Path, help="any Pulumi.<stack>.yaml file")
    parser.add_argument("--out", type=Path, help="output folder (default build/<stack>)")
    parser.add_argument("--verbose", action="store_true", help="list every resource, not only components")
    return parser.parse_args(argv)


def _policy(registrations: list[Registration], stack: StackFile, cfg: StackConfig) -> list[dict[str, Any]]:
    # Graded by environment, never by stack name: stage is advisory, prod mandatory.
    config_file = REPO / "policies" / "config" / f"{cfg.environment}.json"
    return analyze(registrations, project=PROJECT, stack=stack.stack, config_file=config_file)


def plan_document(stack: StackFile, registrations: list[Registration], outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "project": PROJECT,
        "stack": stack.stack,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "protect": r.protect,
                "dependencies": r.dependencies,
                "propertyDependencies": r.property_dependencies,
                "inputs": plain(r.inputs),
            }
            # Registration order varies with scheduling; URN order keeps diffs of plans readable.
            for r in sorted(registrations, key=lambda r: r.urn)
        ],
        "outputs": outputs,
    }


def tree(registrations: list[Registration], verbose: bool = False) -> str:
    """A preview-like tree: components with their children, leaves counted by type."""
    children: dict[str, list[Registration]] = {}
    for r in registrations:
        children.setdefault(r.parent, []).append(r)
    lines = [f"     {'Type'.ljust(42)} Name"]

    def walk(reg: Registration, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else prefix + ("└─ " if last else "├─ ")
        kids = children.get(reg.urn, [])
        leaves = [k for k in kids if not children.get(k.urn)]
        shown = kids if verbose else [k for k in kids if children.get(k.urn)]
        summary = ""
        if leaves and not verbose:
            summary = "  (" + ", ".join(f"{n} {t}" for t, n in Counter(k.type for k in leaves).items()) + ")"
        lines.append(f" +   {(branch + reg.type).ljust(42)} {reg.name}{summary}")
        inner = prefix + ("   " if last or depth == 0 else "│  ") if depth else ""
        for i, kid in enumerate(shown):
            walk(kid, inner, i == len(shown) - 1, depth + 1)

    for root in children.get("", []):
        walk(root, "", True, 0)
    return "\n".join(lines)


def _print_violations(violations: list[dict[str, Any]]) -> None:
    if not violations:
        return
    print("\nPolicy violations:")
    for v in violations:
        print(f"  [{v['level']}] {v['policy']}: {v['message']}\n      {v['urn']}")


if __name__ == "__main__":
    sys.exit(main())
