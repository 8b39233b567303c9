"""Before `pulumi up` on a deployed stack: file puts that a file set's step now writes.

    pulumi stack export --stack seoul-stage --file state.json
    .venv/bin/python -m review.superseded --plan build/seoul-stage/plan.json --state state.json
    .venv/bin/python -m review.superseded ... --write migrated.json   # then: pulumi stack import

Until issue 16, each file of a file set was its own `command:remote:Command` whose delete
is `sudo rm -f <path>`; now the set's step writes it. `pulumi up` deletes the old puts
after it has updated the steps, so their `rm -f` would remove the files the steps had just
written. This finds them in the stack's state (`pulumi stack export`): a file put (its
`create` is `sudo install ... /dev/stdin <path>`, with a delete) whose URN the plan no
longer has and whose path a file set's step in the plan writes. `--write` writes the
state without them (and without their URNs in other resources' dependencies), for
`pulumi stack import`: the engine then forgets them and runs nothing.

Exit status: 0 nothing found (or `--write` done), 1 found (listed; the deploy must stop),
2 unreadable input.
"""

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from policies.shapes import bundled_files, parse_file_put

REMOTE_COMMAND = "command:remote:Command"


def written_by_file_sets(plan: dict[str, Any]) -> set[str]:
    """Every path a file set's step in `plan` (plan.json) writes, on any host."""
    paths: set[str] = set()
    for res in plan["resources"]:
        stdin = res.get("inputs", {}).get("stdin")
        if res["type"] == REMOTE_COMMAND and isinstance(stdin, str):
            paths |= {put.path for put, _ in bundled_files(stdin)}
    return paths


def superseded_puts(state: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    """URNs of the file puts in `state` (a `pulumi stack export` document) whose delete
    would remove a file that a file set's step in `plan` now writes, in state order."""
    planned = {r["urn"] for r in plan["resources"]}
    written = written_by_file_sets(plan)
    found = []
    for res in state["deployment"].get("resources") or []:
        inputs = res.get("inputs") or {}
        create, delete = inputs.get("create"), inputs.get("delete")
        put = parse_file_put(create) if res.get("type") == REMOTE_COMMAND and isinstance(create, str) else None
        if put and delete and res["urn"] not in planned and put.path in written:
            found.append(res["urn"])
    return found


def without(state: dict[str, Any], urns: list[str]) -> dict[str, Any]:
    """`state` without the resources `urns` and without their URNs in any other resource's
    `dependencies` and `propertyDependencies` (a copy; the input is left as it was)."""
    gone = set(urns)
    migrated = copy.deepcopy(state)
    kept = []
    for res in migrated["deployment"].get("resources") or []:
        if res["urn"] in gone:
            continue
        if "dependencies" in res:
            res["dependencies"] = [d for d in res["dependencies"] if d not in gone]
        for key, deps in (res.get("propertyDependencies") or {}).items():
            res["propertyDependencies"][key] = [d for d in deps if d not in gone]
        kept.append(res)
    migrated["deployment"]["resources"] = kept
    return migrated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review.superseded", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, required=True, help="plan.json of the offline plan")
    parser.add_argument("--state", type=Path, required=True, help="`pulumi stack export` of the deployed stack")
    parser.add_argument("--write", type=Path, help="write the state without the superseded puts here")
    args = parser.parse_args(argv)
    try:
        plan, state = json.loads(args.plan.read_text()), json.loads(args.state.read_text())
        urns = superseded_puts(state, plan)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"review.superseded: cannot read --plan or --state: {err}", file=sys.stderr)
        return 2
    if not urns:
        print("no file put in the state is superseded by a file set's step")
        return 0
    if args.write:
        args.write.write_text(json.dumps(without(state, urns), indent=2) + "\n")
        print(f"wrote {args.write}: the state without {len(urns)} superseded file puts; "
              f"`pulumi stack import --file {args.write}`, then `pulumi up`")
        return 0
    print(f"{len(urns)} file puts in the state would remove, when `pulumi up` deletes them, "
          "files that file set steps now write:", file=sys.stderr)
    for urn in urns:
        print(f"  {urn}", file=sys.stderr)
    print("Run this with --write migrated.json, then `pulumi stack import --file migrated.json` "
          "(docs/adding-a-component.md#fewer-resources-per-host).", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
