"""The deploy shape of a plan: its longest chain, and what adding one worker touches."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offline.graph import longest_chain, step_graph

Plan = Mapping[str, Any]


def chain_length(plan: Plan) -> int:
    """Steps in the longest chain of custom resources that each wait on the one before."""
    return len(longest_chain(step_graph(plan["resources"])))


@dataclass(frozen=True)
class Touched:
    """What one more worker changes between two plans (URNs)."""

    added: list[str]
    removed: list[str]
    not_its_own: list[str]  # added resources that do not belong to the new worker
    inputs_changed: list[str]  # existing resources whose inputs differ
    waits_changed: list[str]  # existing resources whose dependencies differ


def touched_by_worker(before: Plan, after: Plan, worker: str) -> Touched:
    """Compare two plan.json documents that differ by the worker named `worker`.

    A resource is the worker's own when its name is the worker's or starts with `<worker>-`
    (every host step is named after its host). Dependency lists are compared as sets.
    """
    old = {r["urn"]: r for r in before["resources"]}
    new = {r["urn"]: r for r in after["resources"]}
    added = sorted(set(new) - set(old))
    common = sorted(set(new) & set(old))

    def waits(r: Mapping[str, Any]) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
        return frozenset(r["dependencies"]), {k: frozenset(v) for k, v in r["propertyDependencies"].items()}

    return Touched(
        added=added,
        removed=sorted(set(old) - set(new)),
        not_its_own=[u for u in added if not _owned(new[u]["name"], worker)],
        inputs_changed=[u for u in common if old[u]["inputs"] != new[u]["inputs"]],
        waits_changed=[u for u in common if waits(old[u]) != waits(new[u])],
    )


def _owned(name: str, worker: str) -> bool:
    return name == worker or name.startswith(f"{worker}-")
