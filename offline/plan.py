"""The offline plan: what `pulumi preview` would do, with no CLI, cloud or hardware.

    .venv/bin/python -m offline.plan --stack seoul-stage      # reads Pulumi.seoul-stage.yaml
    .venv/bin/python -m offline.plan --stack-file path/Pulumi.x.yaml --out build/x

Writes plan.json, policy.json and artifacts/ into the output folder, byte-identical
from run to run. A run that ends with status 2, 3 or 130 leaves no output folder behind.
"""

import gc

# The imports below make a few hundred thousand long-lived objects (the SDKs, pydantic's
# schemas) and the cyclic collector rescans them as they are made: 0.05 s of a plan. It is
# paused for the imports (offline/engine.py then freezes what they made for the program run).
_collecting = gc.isenabled()
gc.disable()

import signal
import threading

# A Ctrl-C during these imports (about half a second) is held until main() runs: it then
# ends the run as any interrupt does (status 130, the earlier plan removed), with no traceback
# from the middle of an import. Only over Python's own handler, so an ignored SIGINT stays so.
_interrupted_at_import = False


def _hold_sigint(signum: int, frame: object) -> None:
    global _interrupted_at_import
    _interrupted_at_import = True


_holding = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
if _holding:
    signal.signal(signal.SIGINT, _hold_sigint)

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from model import PROJECT, ConfigError, StackConfig, capacity, load_config
from offline import artifacts
from offline.engine import run_program
from offline.graph import longest_chain, step_graph
from offline.policy import analyze
from offline.registry import Registration
from offline.stackfile import StackFile, StackFileError, read_stack_file, stack_name
from offline.wire import plain
from render import backup
from render.logging import sizing as logging_sizing

if _collecting:  # an import that fails leaves it paused only in a process that cannot plan anyway
    gc.enable()
if _holding:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_POLICY, EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_STATUSES = """exit status:
  0  planned; no mandatory policy violation
  1  planned, with a mandatory policy violation (see policy.json)
  2  the stack file cannot be read or its config is invalid (each line names the file,
     or the key path and value; secret values are never shown), or the output folder
     is not a plan folder; nothing is written
  3  the plan could not run (a bug: the traceback is printed); nothing is written
130  interrupted (Ctrl-C); nothing is written
With 2, 3 or 130 the output folder of an earlier run is removed, so no stale plan is left."""
# What a plan folder may hold: the plan's own files, and what `make plan`/`make diff` add to it
# (review/: report.html, diff.json, summary.md).
PLAN_FILES = {"plan.json", "policy.json", "artifacts", "report.html", "diff.json", "summary.md"}


class Progress:
    """Counted steps on one self-overwriting stderr line, only when stderr is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.1):
        self.stream = stream
        self.enabled = stream.isatty()
        self.interval = interval
        self._shown = 0.0
        self._lock = threading.Lock()

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if force or now - self._shown >= self.interval:
                self._shown = now
                self.stream.write(f"\r\033[K{text}")
                self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def main(argv: list[str] | None = None) -> int:
    global _interrupted_at_import
    args = _parse(argv)
    path: Path = args.stack_file or REPO / f"Pulumi.{args.stack}.yaml"
    out: Path | None = args.out
    try:
        out = out or REPO / "build" / stack_name(path)
        if out.exists() and not _is_plan_folder(out):  # the default folder too: nothing of yours is deleted
            print(f"error: {'--out ' if args.out else ''}{_show(out)} is not a plan folder ({_foreign(out)}), "
                  "and a plan replaces its folder whole: "
                  + ("choose another folder" if args.out else "move what you keep there, or plan with --out"),
                  file=sys.stderr)
            return EXIT_CONFIG
        if _interrupted_at_import:
            _interrupted_at_import = False
            raise KeyboardInterrupt
        if args.stack and not path.exists():
            raise StackFileError(path, [f"no such stack file; stacks here: {', '.join(existing_stacks()) or 'none'}"])
        stack = read_stack_file(path)
        cfg = load_config(stack.lookup, stack.config)
    except (StackFileError, ConfigError) as err:
        heading = "cannot read stack file" if isinstance(err, StackFileError) else "invalid stack config in"
        print(f"error: {heading} {_show(path)}:", file=sys.stderr)
        for line in err.lines:
            print(f"  {line}", file=sys.stderr)
        _discard(out)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        _discard(out)
        return EXIT_INTERRUPTED

    removing: subprocess.Popen[bytes] | None = None
    earlier = out.exists()
    try:
        removing = _remove_earlier(out)
        return _plan(stack, cfg, out, verbose=args.verbose)
    except Exception:
        traceback.print_exc()
        print("error: the plan could not run (a bug, not a config problem)", file=sys.stderr)
        _discard(out, earlier=earlier)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        _discard(out, earlier=earlier)
        return EXIT_INTERRUPTED
    finally:
        if removing is not None and removing.wait() != 0:
            print(f"warning: could not delete the earlier plan moved aside beside {_show(out)}/ "
                  f"(rm exited {removing.returncode}): remove the .{out.name}.earlier.* folder", file=sys.stderr)


def _plan(stack: StackFile, cfg: StackConfig, out: Path, verbose: bool) -> int:
    started = time.monotonic()
    print(f"Previewing {PROJECT}/{stack.stack} offline (environment {cfg.environment}) ...", flush=True)
    progress = Progress()
    count = 0

    def registered(_: Registration) -> None:
        nonlocal count
        count += 1
        progress.update(f"running the program: {_n(count, 'resource')} registered")

    registrations, outputs = run_program(REPO / "__main__.py", stack, on_register=registered)
    progress.update(f"checking {_n(len(registrations), 'resource')} against the policy pack ...", force=True)
    violations = _policy(registrations, stack, cfg)
    progress.update("writing plan.json, policy.json and artifacts ...", force=True)
    plan = plan_document(stack, registrations, plain(outputs))
    names = {str(h.address): h.name for h in cfg.hosts}
    written = _write(out, plan, violations, registrations, names)
    progress.done()

    print(tree(registrations, verbose=verbose))
    if cfg.storage_hosts:
        print("\n" + "\n".join(capacity.verdict(cfg).lines()))  # model/capacity.py; also output cephCapacity
    print("\n" + "\n".join(backup.uplink_lines(cfg)))  # render/backup.py; policy backup-offsite-fits-uplink
    print(violation_report(violations, registrations, names), end="")
    mandatory = sum(v["level"] == "mandatory" for v in violations)
    print("\n" + chain_line(plan["resources"]))
    if cfg.observability is not None and cfg.observability.logging is not None:
        print("\n".join(logging_sizing(cfg)))  # the logging stack's hot tier against workload.dailyIngestTb
    print(f"+ {len(registrations)} to create · {_n(len(violations), 'policy violation')} ({mandatory} mandatory)")
    print(f"wrote {_show(out)}/: plan.json, policy.json, {_n(written, 'artifact')} "
          f"({time.monotonic() - started:.1f}s)")
    return EXIT_POLICY if mandatory else EXIT_OK


def _parse(argv: list[str] | None) -> argparse.Namespace:
    # `seoul-plan` (the console script) or `python -m offline.plan`: the same program
    prog = "seoul-plan" if Path(sys.argv[0]).name == "seoul-plan" else "python -m offline.plan"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0],
                                     epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml beside Pulumi.yaml")
    which.add_argument("--stack-file", type=Path, help="any Pulumi.<stack>.yaml file")
    parser.add_argument("--out", type=Path, help="output folder (default build/<stack>), replaced whole on every run; "
                        "refused unless empty or a plan folder (plan.json and the plan's files)")
    parser.add_argument("--verbose", action="store_true", help="list every resource, not only components")
    return parser.parse_args(argv)


def existing_stacks(folder: Path = REPO) -> list[str]:
    """Names of the stacks whose Pulumi.<stack>.yaml sits in `folder`, sorted."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in folder.glob("Pulumi.*.yaml"))


def _show(path: Path) -> str:
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _n(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else f"{count} {noun}s"


def _is_plan_folder(out: Path) -> bool:
    # Only such a folder is ever replaced or removed: `--out .` must not delete a checkout.
    return not _foreign(out)


def _foreign(out: Path) -> str:
    """Why `out` is not a folder a plan may replace ("" when it is one): a plan folder is
    empty, or holds plan.json and nothing but PLAN_FILES (every plan is written whole)."""
    if not out.is_dir():
        return "not a folder"
    names = sorted(p.name for p in out.iterdir())
    others = [n for n in names if n not in PLAN_FILES]
    if others:
        return "it holds " + _listing(others, limit=3)
    if names and "plan.json" not in names:
        return "it has no plan.json"
    return ""


def _discard(out: Path | None, earlier: bool = False) -> None:
    """Remove the plan an earlier run left in `out` (`earlier`: already moved aside by
    `_remove_earlier`): it no longer matches the stack file."""
    if out is not None and out.exists() and _is_plan_folder(out):
        shutil.rmtree(out)
        earlier = True
    if earlier:
        print(f"removed the earlier plan in {_show(out)}/ (it would be stale)", file=sys.stderr)


def _remove_earlier(out: Path) -> subprocess.Popen[bytes] | None:
    """Move the plan an earlier run left in `out` aside and start deleting it in a child
    process (`rm -rf`; the caller waits for it before exiting); None when there is none.

    Deleting its hundreds of files and folders took 0.06-0.34 s at the end of a seoul-prod
    re-plan on the bench machine; `rm` does it while the program runs (on another core where
    there is one), in its own session so a Ctrl-C does not stop it halfway. Where `rm` cannot
    be started, the folder is deleted here and now. Raises OSError when `out` cannot be moved.
    """
    if not out.exists():
        return None
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.earlier.", dir=out.parent))
    out.rename(aside / out.name)
    try:
        return subprocess.Popen(["rm", "-rf", "--", str(aside)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        shutil.rmtree(aside)
        return None


def _write(out: Path, plan: dict[str, Any], violations: list[dict[str, Any]],
           registrations: list[Registration], names: dict[str, str]) -> int:
    """Write the plan folder beside `out`, then swap it in: `out` is never half written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (fresh / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
        (fresh / "policy.json").write_text(json.dumps({"violations": violations}, indent=2) + "\n")
        written = artifacts.write(fresh / "artifacts", registrations, names)
        fresh.chmod(0o755)  # mkdtemp makes it 0700
        if out.exists():  # only when something made it during the run: main moved the earlier plan aside
            shutil.rmtree(out)
        fresh.rename(out)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)
    return written


def _policy(registrations: list[Registration], stack: StackFile, cfg: StackConfig) -> list[dict[str, Any]]:
    # Graded by environment, never by stack name: stage is advisory, prod mandatory.
    config_file = REPO / "policies" / "config" / f"{cfg.environment}.json"
    return analyze(registrations, project=PROJECT, stack=stack.stack, config_file=config_file)


def plan_document(stack: StackFile, registrations: list[Registration], outputs: dict[str, Any]) -> dict[str, Any]:
    """plan.json's content; every list whose order carries no meaning is sorted, so runs compare byte for byte."""
    return {
        "project": PROJECT,
        "stack": stack.stack,
        "resources": [
            _resource(r)
            # Registration order varies with scheduling; URN order keeps diffs of plans readable.
            for r in sorted(registrations, key=lambda r: r.urn)
        ],
        "outputs": outputs,
    }


def _resource(r: Registration) -> dict[str, Any]:
    """One resource of plan.json."""
    entry = {
        "urn": r.urn,
        "type": r.type,
        "name": r.name,
        "parent": r.parent,
        "custom": r.custom,
        "protect": r.protect,
        # The SDK gathers dependencies in sets: their order differs between runs.
        "dependencies": sorted(r.dependencies),
        "propertyDependencies": {k: sorted(v) for k, v in r.property_dependencies.items()},
        "inputs": r.plain_inputs,
    }
    # Only a failed host's inert resources carry these (README: When a server dies).
    if r.retain_on_delete:
        entry["retainOnDelete"] = True
    if r.ignore_changes:
        entry["ignoreChanges"] = sorted(r.ignore_changes)
    return entry


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


def concerns(registration: Registration | None, names_by_address: dict[str, str]) -> str:
    """What a violation is about: the host a command runs on, else the resource's name."""
    if registration is None:
        return "the stack"
    if registration.type == "command:remote:Command":
        address = artifacts.connection_host(registration)
        return names_by_address.get(address, address or registration.name)
    return registration.name


def _listing(items: Iterable[str], limit: int = 12) -> str:
    items = list(dict.fromkeys(items))
    shown = ", ".join(items[:limit])
    return shown + (f", and {len(items) - limit} more" if len(items) > limit else "")


def violation_report(violations: list[dict[str, Any]], registrations: list[Registration],
                     names_by_address: dict[str, str]) -> str:
    """One entry per policy: its level, the hosts (or resources) it concerns, its message(s).

    Empty when there is no violation. Every violation is in policy.json, with its URN.
    """
    if not violations:
        return ""
    by_urn = {r.urn: r for r in registrations}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in violations:
        grouped.setdefault((v["policy"], v["level"]), []).append(v)
    lines = [f"\nPolicy violations ({_n(len(grouped), 'policy')}, {len(violations)} in all; each one in policy.json):"]
    for (policy, level), found in sorted(grouped.items(), key=lambda item: (item[0][1] != "mandatory", item[0])):
        about = sorted({concerns(by_urn.get(v["urn"]), names_by_address) for v in found})
        hosts = [a for a in about if a in names_by_address.values()]
        noun = _n(len(about), "host") if len(hosts) == len(about) else _n(len(about), "resource")
        lines.append(f"  [{level}] {policy}: {noun}: {_listing(about)}")
        for message in dict.fromkeys(v["message"] for v in found):
            lines.append("      " + message.strip().replace("\n", "\n      "))
    return "\n".join(lines) + "\n"


def chain_line(resources: list[dict[str, Any]]) -> str:
    """The longest chain of steps that must run one after another, with its two ends."""
    graph = {urn: sorted(waits) for urn, waits in sorted(step_graph(resources).items())}
    chain = longest_chain(graph)
    if not chain:
        return "longest dependency chain: no steps"
    name = {r["urn"]: r["name"] for r in resources}
    ends = f"from {name[chain[0]]} to {name[chain[-1]]}" if len(chain) > 1 else f"{name[chain[0]]}"
    return (f"longest dependency chain: {_n(len(chain), 'step')}, {ends} "
            "(a step is one resource that does work: a command on a host, an F5 or AWS object; "
            "each waits for the one before)")


if __name__ == "__main__":
    sys.exit(main())
