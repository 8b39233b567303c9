"""The promotion gate: prod may only run what stage already runs.

    make promote-check                                   # the shipped stacks
    .venv/bin/seoul-promote-check --stage-file A --prod-file B

Plans both stack files (`python -m offline.plan`, into build/<stack>/) and compares:

- versions: every config key named `version` or ending in `Version` (kubernetes.version,
  etcd.version, ceph.version, kubernetes.containerdVersion, a chart's version ...), every
  Helm chart the plan installs (`chart`/`version` inputs), and every container image
  reference (`registry.example/name:tag`) written anywhere in the plan's inputs. Prod
  refusing: a value prod runs that stage does not run.
- resource kinds: every type token in prod's plan (host steps, F5 objects, Kubernetes kinds,
  AWS resources) must be in stage's plan.
- what differs and is expected: hosts per role, resources per kind, other config values
  (addresses, sizes, counts) are printed, never refused.

Exit status: 0 promotion allowed, 1 refused (each reason printed), 2 a stack file is invalid
or a plan failed.
"""

import argparse
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from review.plans import REPO, load, run_plan, type_counts

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
PROJECT = "seoul-cluster"
# An image reference with a registry host (a dot in its first part), a path and a tag or digest.
IMAGE = re.compile(r"\b((?:[a-z0-9-]+\.)+[a-z0-9-]+(?::\d+)?(?:/[a-z0-9._-]+)+)"
                   r"(?::([A-Za-z0-9._-]+)|@(sha256:[a-f0-9]{64}))")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def config_leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar in a stack file's config; list items by index."""
    if isinstance(value, dict):
        for key, item in value.items():
            short = key.removeprefix(f"{PROJECT}:")
            yield from config_leaves(item, f"{prefix}.{short}" if prefix else short)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from config_leaves(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def versions(config: dict[str, Any], plan: dict[str, Any]) -> dict[str, set[str]]:
    """What the environment runs: {fact: {versions}}.

    Facts: `config:<path>` for config keys named version/...Version, `chart:<name>` for Helm
    charts in the plan, `image:<repository>` for image references in any input string.
    """
    found: dict[str, set[str]] = {}
    for path, value in config_leaves(config):
        last = path.rsplit(".", 1)[-1]
        if last == "version" or last.endswith("Version"):
            found.setdefault(f"config:{path}", set()).add(str(value))
    for r in plan["resources"]:
        if r["type"] in HELM_TYPES:
            found.setdefault(f"chart:{r['inputs'].get('chart', r['name'])}", set()).add(
                str(r["inputs"].get("version", "unpinned")))
        for text in _strings(r["inputs"]):
            for repo, tag, digest in IMAGE.findall(text):
                found.setdefault(f"image:{repo}", set()).add(tag or digest)
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def refusals(stage: dict[str, set[str]], prod: dict[str, set[str]],
             stage_kinds: set[str], prod_kinds: set[str]) -> list[str]:
    """Why prod may not be promoted: versions and kinds prod would run that stage does not."""
    reasons = []
    for fact in sorted(prod):
        new = prod[fact] - stage.get(fact, set())
        if new:
            runs = ", ".join(sorted(stage.get(fact, set()))) or "nothing"
            reasons.append(f"{fact}: prod would run {', '.join(sorted(new))}; stage runs {runs}")
    reasons += [f"kind {kind}: in prod's plan, not in stage's" for kind in sorted(prod_kinds - stage_kinds)]
    return reasons


def expected_differences(stage_cfg: dict[str, Any], prod_cfg: dict[str, Any],
                         stage_plan: dict[str, Any], prod_plan: dict[str, Any]) -> list[str]:
    """Differences allowed between environments: hosts per role, resources per kind, values."""
    lines = []
    roles = [Counter(role for h in cfg.get(f"{PROJECT}:hosts") or [] for role in h.get("roles", []))
             for cfg in (stage_cfg, prod_cfg)]
    for role in sorted(set(roles[0]) | set(roles[1])):
        if roles[0][role] != roles[1][role]:
            lines.append(f"hosts with role {role}: stage {roles[0][role]}, prod {roles[1][role]}")
    counts = [type_counts(stage_plan), type_counts(prod_plan)]
    for kind in sorted(set(counts[0]) | set(counts[1])):
        if counts[0][kind] != counts[1][kind]:
            lines.append(f"resources {kind}: stage {counts[0][kind]}, prod {counts[1][kind]}")
    values = [dict(config_leaves(cfg)) for cfg in (stage_cfg, prod_cfg)]
    differing = [p for p in sorted(set(values[0]) | set(values[1]))
                 if values[0].get(p) != values[1].get(p) and not p.startswith("hosts[")
                 and not (p.rsplit(".", 1)[-1] == "version" or p.endswith("Version"))]
    if differing:
        shown = ", ".join(differing[:12]) + (f" and {len(differing) - 12} more" if len(differing) > 12 else "")
        lines.append(f"config values that differ: {shown}")
    return lines


def _config(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seoul-promote-check", description=__doc__.split("\n")[0],
                                     epilog="exit status: 0 allowed, 1 refused, 2 invalid stack or failed plan")
    parser.add_argument("--stage-file", type=Path, default=REPO / "Pulumi.seoul-stage.yaml")
    parser.add_argument("--prod-file", type=Path, default=REPO / "Pulumi.seoul-prod.yaml")
    parser.add_argument("--build", type=Path, help="where the plans go (default build/<stack>/ of each)")
    args = parser.parse_args(argv)

    plans = []
    with tempfile.TemporaryDirectory(prefix="seoul-promote-") as tmp:
        for path in (args.stage_file, args.prod_file):
            name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
            out = (args.build or REPO / "build") / name if args.build or path.parent == REPO else Path(tmp) / name
            print(f"planning {path.name} ...", flush=True)
            run = run_plan(path, out)
            plan = load(out, "plan.json")
            if run.status == 2 or plan is None:
                print(f"error: the plan of {path} failed (exit {run.status}):\n{run.stderr.strip()}", file=sys.stderr)
                return EXIT_ERROR
            plans.append(plan)
    try:
        stage_cfg, prod_cfg = _config(args.stage_file), _config(args.prod_file)
    except (OSError, yaml.YAMLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    stage_plan, prod_plan = plans
    reasons = refusals(versions(stage_cfg, stage_plan), versions(prod_cfg, prod_plan),
                       set(type_counts(stage_plan)), set(type_counts(prod_plan)))
    print("\nExpected differences between stage and prod (sizes, counts, addresses):")
    for line in expected_differences(stage_cfg, prod_cfg, stage_plan, prod_plan) or ["none"]:
        print(f"  {line}")
    if reasons:
        print(f"\nPromotion refused: prod would run {len(reasons)} thing(s) stage does not run:", file=sys.stderr)
        for reason in reasons:
            print(f"  {reason}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"\nPromotion allowed: every version and resource kind prod runs ({len(set(type_counts(prod_plan)))} kinds) "
          "already runs on stage.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
