"""What `pulumi preview` would show between a stack planned at a git ref and at the working tree.

    make diff STACK=seoul-stage BASE=origin/main
    .venv/bin/seoul-diff --stack seoul-stage --base HEAD~1      # same, keeps the exit status

The base commit is exported with `git archive` into a temporary folder and planned there by
`python -m offline.plan` with this venv's interpreter; the working tree is planned into
`build/<stack>/` as `make plan` does. Resources are matched by URN, as the engine does:

- create: URN only in the working tree; delete: URN only at the base;
- update: an input differs (the keys are listed; values shown only when short and not secret);
- replace: an input the provider marks replace-on-change differs (REPLACE_ON_CHANGES);
- a delete of a resource registered with `retainOnDelete` (a dead host's steps) is marked
  "state only": the engine forgets it and runs no `delete` command.

Limits of an offline diff: secret inputs read `[secret]` on both sides, so a change inside
one (the SSH `connection`, the BIG-IP password) cannot be seen; values a provider computes
read `[unknown]`; for bridged providers (aws, f5bigip) the Terraform provider's ForceNew
fields decide replacement at preview time and are shown here as updates. The real
`pulumi preview` that CI runs has the last word.

Exit status (as diff(1)): 0 no change, 1 changes, 2 the diff could not be made (unknown ref, stack file
absent from the working tree, invalid config on either side).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from policies.shapes import bundled_files
from render.files import HostFile, bundled_file
from review.plans import CLUSTER_WIDE, REPO, by_urn, component_of, host_names, host_of, load, run_plan

EXIT_SAME, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2
SECRET, UNKNOWN = "[secret]", "[unknown]"
OPS = ("create", "update", "replace", "delete")
SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}

# Inputs whose change makes the engine replace the resource rather than update it: the
# `replaceOnChanges` flags of the pinned providers' schemas (pulumi-command v1.2.1
# provider/cmd/pulumi-resource-command/schema.json; tests/test_review_diff.py checks this
# table against ../shared/schemas/pulumi-providers/). Changing `create`, `stdin` or
# `environment` of a Command is an update: it runs `update`, or `create` again when there is
# no `update` (pulumi-command provider/pkg/provider/remote/commandController.go).
REPLACE_ON_CHANGES: dict[str, frozenset[str]] = {
    "command:local:Command": frozenset({"triggers"}),
    "command:remote:Command": frozenset({"triggers"}),
    "command:remote:CopyToRemote": frozenset({"triggers"}),
}
SHOWN_VALUE_CHARS = 60
SCRIPT = "<script>"  # in a step's `files`: the rest of a file set's stdin changed
_MANIFEST_LINE = re.compile(r"^seoul_file_set .*\n", re.M)


class DiffError(Exception):
    """The diff cannot be made; the message says why (printed, exit 2)."""


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two input values differ, descending into objects only.

    `{"a": {"b": 1}}` vs `{"a": {"b": 2}}` gives `["a.b"]`; lists compare whole. A value that
    is `[secret]` or `[unknown]` on both sides counts as unchanged: offline, it cannot be seen.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new)):
            paths += changed_paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return paths
    return [] if old == new else [prefix]


def shown(value: Any) -> Any:
    """A value fit for a review: secrets masked, long or nested values left out (None)."""
    if value == SECRET:
        return SECRET
    text = json.dumps(value)
    return value if len(text) <= SHOWN_VALUE_CHARS and not isinstance(value, dict | list) else None


def lookup(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def file_changes(old_stdin: Any, new_stdin: Any) -> dict[str, str]:
    """{path: "added" | "changed" | "removed"} between the files two versions of a file set's
    step write (`policies.shapes.bundled_files`), plus {"<script>": "changed"} when the rest
    of the step (the shell that writes them, the apply script) changed too; {} when neither
    stdin holds files."""
    def files(stdin: Any) -> dict[str, tuple[str, str]]:
        return {put.path: (put.mode, text) for put, text in bundled_files(stdin)} if isinstance(stdin, str) else {}
    old, new = files(old_stdin), files(new_stdin)
    changes = {path: "removed" for path in old.keys() - new.keys()}
    changes |= {path: "added" for path in new.keys() - old.keys()}
    changes |= {path: "changed" for path in old.keys() & new.keys() if old[path] != new[path]}
    if (old or new) and _script_of(old_stdin, old) != _script_of(new_stdin, new):
        changes[SCRIPT] = "changed"
    return dict(sorted(changes.items()))


def _script_of(stdin: Any, found: dict[str, tuple[str, str]]) -> str:
    # The stdin without its files and the manifest line (which lists them): the writer,
    # render.files.bundled_file, gives back each file's exact block.
    text = str(stdin)
    for path, (mode, content) in found.items():
        text = text.replace(bundled_file(HostFile("", path, content, mode)), "", 1)
    return _MANIFEST_LINE.sub("", text)


def compare(base: dict[str, Any] | None, head: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps from `base` to `head` (plan.json documents; base None: the stack is new).

    Each step: {"op", "urn", "type", "name", "host", "component", "keys", "replaceKeys",
    "values": {path: {"old", "new"}}, "files": {path: change}, "stateOnly"} with op in OPS;
    unchanged resources are left out. `files`: the files a file set's step writes that its
    change adds, changes (content or mode) or removes, and "<script>" when its script
    changed too (`file_changes`). `stateOnly` is true for a delete of a `retainOnDelete`
    resource.
    Values of secret inputs never appear: a path with `[secret]` on either side shows both
    sides as `[secret]`.
    """
    old = by_urn(base) if base else {}
    new = by_urn(head)
    hosts = host_names(base, head)
    steps: list[dict[str, Any]] = []
    for urn in sorted(set(old) | set(new)):
        before, after = old.get(urn), new.get(urn)
        where = after or before
        assert where is not None
        step: dict[str, Any] = {
            "urn": urn,
            "type": where["type"],
            "name": where["name"],
            "host": host_of(where, new if after else old, hosts),
            "component": component_of(where, new if after else old),
            "keys": [],
            "replaceKeys": [],
            "values": {},
            "files": {},
            "stateOnly": False,
        }
        if before is None:
            step["op"] = "create"
        elif after is None:
            step["op"] = "delete"
            step["stateOnly"] = bool(before.get("retainOnDelete"))
        else:
            keys = changed_paths(before["inputs"], after["inputs"])
            if not keys:
                continue
            replace_on = REPLACE_ON_CHANGES.get(where["type"], frozenset())
            step["keys"] = keys
            step["replaceKeys"] = [k for k in keys if k.split(".")[0] in replace_on]
            step["op"] = "replace" if step["replaceKeys"] else "update"
            step["values"] = {k: _values(before["inputs"], after["inputs"], k) for k in keys}
            if "stdin" in keys:
                step["files"] = file_changes(before["inputs"].get("stdin"), after["inputs"].get("stdin"))
        steps.append(step)
    return steps


def _values(old_inputs: dict[str, Any], new_inputs: dict[str, Any], path: str) -> dict[str, Any]:
    old, new = lookup(old_inputs, path), lookup(new_inputs, path)
    if SECRET in (old, new):
        return {"old": SECRET, "new": SECRET}
    return {"old": shown(old), "new": shown(new)}


def summary(steps: list[dict[str, Any]], head: dict[str, Any]) -> dict[str, int]:
    """Counts per op, `stateOnly` (deletes that run nothing), and `same`: the working tree's
    resources no step touches."""
    counts = Counter(s["op"] for s in steps)
    touched = sum(counts[op] for op in ("create", "update", "replace"))
    return {**{op: counts[op] for op in OPS}, "stateOnly": sum(1 for s in steps if s.get("stateOnly")),
            "same": len(head["resources"]) - touched}


def summary_line(counts: dict[str, int]) -> str:
    parts = [f"{SYMBOL[op]} {counts[op]} to {op}" for op in OPS if counts[op]]
    if counts.get("stateOnly"):
        parts.append(f"({counts['stateOnly']} of the deletes state only)")
    return " · ".join(parts or ["no changes"]) + f" · {counts['same']} unchanged"


def render(document: dict[str, Any]) -> str:
    """The diff as text: one block per host, then per component, one line per step."""
    lines = [f"Diff of {document['stack']}: {document['base']['ref']} "
             f"({document['base']['commit'][:12]}) -> working tree"]
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for step in document["steps"]:
        groups.setdefault(step["host"], {}).setdefault(step["component"], []).append(step)
    for host in sorted(groups, key=lambda h: (h == CLUSTER_WIDE, h)):
        lines.append(f"\n{host}")
        for component, steps in sorted(groups[host].items()):
            lines.append(f"  {component}")
            for step in steps:
                lines.append(f"    {SYMBOL[step['op']]:<2} {step['type']:<44} {step['name']}{_detail(step)}")
    lines.append("\n" + summary_line(document["summary"]))
    return "\n".join(lines)


def _detail(step: dict[str, Any]) -> str:
    if step.get("stateOnly"):
        return "  [state only: retainOnDelete, no delete command runs]"
    if not step["keys"]:
        return ""
    parts = []
    for key in step["keys"]:
        value = step["values"].get(key, {})
        mark = " (replaces)" if key in step["replaceKeys"] else ""
        if key == "stdin" and step.get("files"):
            parts.append("stdin: " + ", ".join(f"{path} {change}" for path, change in step["files"].items()))
        elif value.get("old") is not None or value.get("new") is not None:
            parts.append(f"{key}: {json.dumps(value['old'])} => {json.dumps(value['new'])}{mark}")
        else:
            parts.append(f"{key}{mark}")
    return "  [" + "; ".join(parts) + "]"


def resolve(ref: str, repo: Path = REPO) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DiffError(f"BASE={ref}: not a commit in {repo}")
    return proc.stdout.strip()


def plan_at(commit: str, stack: str, workdir: Path, repo: Path = REPO) -> dict[str, Any] | None:
    """plan.json of `stack` at `commit`, or None when the stack file did not exist there."""
    tree = workdir / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    stack_file = tree / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        return None
    run = run_plan(stack_file, workdir / "build", repo=tree)
    if run.status == 2 or not (workdir / "build" / "plan.json").exists():
        raise DiffError(f"the plan of {stack} at {commit[:12]} failed (exit {run.status}):\n{run.stderr.strip()}")
    return load(workdir / "build", "plan.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seoul-diff", description=__doc__.split("\n")[0],
                                     epilog="exit status (as diff(1)): 0 no change, 1 changes, 2 trouble")
    parser.add_argument("--stack", required=True, help="stack name: Pulumi.<stack>.yaml in the working tree")
    parser.add_argument("--base", required=True, help="git ref to compare with, e.g. origin/main or HEAD~1")
    parser.add_argument("--out", type=Path, help="plan folder of the working tree (default build/<stack>)")
    args = parser.parse_args(argv)
    try:
        return _diff(args.stack, args.base, args.out or REPO / "build" / args.stack)
    except DiffError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR


def _diff(stack: str, ref: str, out: Path) -> int:
    commit = resolve(ref)
    stack_file = REPO / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise DiffError(f"STACK={stack}: {stack_file.name} is not in the working tree")
    print(f"Planning {stack} at {ref} ({commit[:12]}) and in the working tree ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="seoul-diff-") as tmp:
        base = plan_at(commit, stack, Path(tmp))
    run = run_plan(stack_file, out)
    if run.status not in (0, 1):  # 1 is a plan with a mandatory policy violation: still a plan
        raise DiffError(f"the working tree's plan of {stack} failed:\n{run.stderr.strip()}")
    head = load(out, "plan.json")
    steps = compare(base, head)
    document = {
        "stack": stack,
        "base": {"ref": ref, "commit": commit, "stackExisted": base is not None},
        "head": "working tree",
        "steps": steps,
        "summary": summary(steps, head),
    }
    (out / "diff.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(render(document))
    print(f"wrote {out / 'diff.json'}")
    return EXIT_CHANGES if steps else EXIT_SAME


if __name__ == "__main__":
    sys.exit(main())
