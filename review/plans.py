"""Reading and running offline plans as files: `plan.json` and `policy.json` from `offline.plan`.

Everything here goes through the files the plan writes (README, "What `make plan` writes")
rather than the plan's internals, so a plan made by another commit's code reads the same.
"""

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
STACK_TYPE = "pulumi:pulumi:Stack"
HOST_TYPE = "seoul:hosts:Host"
CLUSTER_WIDE = "(cluster-wide)"

Resource = dict[str, Any]


@dataclass(frozen=True)
class PlanRun:
    """One run of the offline plan: its exit status (0, 1 policy, 2 config) and output folder."""

    status: int
    out: Path
    stdout: str
    stderr: str


def run_plan(stack_file: Path, out: Path, repo: Path = REPO, quiet: bool = True) -> PlanRun:
    """Plan `stack_file` with the code in `repo` (cwd, so `repo`'s packages are imported first).

    Uses this interpreter (the project's venv), so a checkout of another commit needs no venv
    of its own. Raises nothing for a failing plan: the status says how it ended.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "offline.plan", "--stack-file", str(stack_file), "--out", str(out)],
        cwd=repo,
        capture_output=quiet,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(repo)},
        check=False,
    )
    return PlanRun(proc.returncode, out, proc.stdout or "", proc.stderr or "")


def load(folder: Path, name: str) -> Any:
    """`folder/name` as JSON, or None when the file is absent."""
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def by_urn(plan: dict[str, Any]) -> dict[str, Resource]:
    return {r["urn"]: r for r in plan["resources"]}


def host_names(*plans: dict[str, Any] | None) -> list[str]:
    """Host names of the inventories the plans export (`outputs.inventory`), longest first."""
    names: set[str] = set()
    for plan in plans:
        if plan:
            names |= set((plan.get("outputs") or {}).get("inventory") or {})
    return sorted(names, key=lambda n: (-len(n), n))


def host_of(resource: Resource, resources: dict[str, Resource], hosts: list[str]) -> str:
    """The host a resource acts on: its Host component, else a host name that starts or ends its
    name (`cp-1-packages`, `app-servers-ingress-1`), else CLUSTER_WIDE."""
    node: Resource | None = resource
    while node is not None:
        if node["type"] == HOST_TYPE:
            return node["name"]
        node = resources.get(node["parent"])
    name = resource["name"]
    for host in hosts:
        if name == host or name.startswith(host + "-"):
            return host
    for host in hosts:
        if name.endswith("-" + host):
            return host
    return CLUSTER_WIDE


def component_of(resource: Resource, resources: dict[str, Resource]) -> str:
    """`<type> <name>` of the nearest component (non-custom, not the Stack) holding the resource."""
    node: Resource | None = resource if not resource["custom"] else resources.get(resource["parent"])
    while node is not None and node["type"] != STACK_TYPE:
        if not node["custom"]:
            return f"{node['type']} {node['name']}"
        node = resources.get(node["parent"])
    return STACK_TYPE


def type_counts(plan: dict[str, Any]) -> Counter[str]:
    """How many resources of each type token the plan registers."""
    return Counter(r["type"] for r in plan["resources"])
