"""The dependency graph of a plan: how long the longest chain of steps is."""

from collections.abc import Iterable, Mapping
from functools import cache


def longest_chain(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """The longest path of URNs in which each waits on the one before (a DAG, as the engine requires)."""

    @cache
    def chain(urn: str) -> tuple[str, ...]:
        before = max((chain(d) for d in depends_on.get(urn, ()) if d in depends_on), key=len, default=())
        return (*before, urn)

    return list(max((chain(urn) for urn in depends_on), key=len, default=()))


def step_graph(resources: Iterable[Mapping]) -> dict[str, set[str]]:
    """Custom resources (the steps that do work) and what each waits on, from plan.json or registrations."""
    graph = {}
    for r in resources:
        if not r["custom"]:
            continue
        waits = set(r["dependencies"])
        for urns in r["propertyDependencies"].values():
            waits |= set(urns)
        graph[r["urn"]] = waits
    return graph
