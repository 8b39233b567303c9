"""Longest dependency chain: the measure of how long a deployment must wait in sequence."""

from offline.graph import longest_chain, step_graph
from tests.planning import registrations
from tests.stacks import altered_stack, key
from tests.tools import REPO


def test_longest_chain_follows_dependencies():
    graph = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a"}, "e": {"d", "c"}}
    assert longest_chain(graph) == ["a", "b", "c", "e"]
    assert longest_chain({}) == []


def as_plan(regs):
    return [{"urn": r.urn, "custom": r.custom, "dependencies": r.dependencies,
             "propertyDependencies": r.property_dependencies} for r in regs]


def test_sixty_more_workers_do_not_lengthen_the_longest_chain(tmp_path):
    def sixty_workers(c):
        c[key("hosts")] += [
            {"name": f"worker-{n}", "address": f"10.0.3.{n}", "roles": ["worker"]} for n in range(100, 160)
        ]

    base = registrations(REPO / "Pulumi.seoul-prod.yaml")
    grown = registrations(altered_stack(tmp_path, "seoul-prod", sixty_workers))
    per_worker = sum(1 for r in base if r.urn.endswith("::worker-1") or "::worker-1-" in r.urn)
    assert len(grown) - len(base) == 60 * per_worker
    assert len(longest_chain(step_graph(as_plan(grown)))) == len(longest_chain(step_graph(as_plan(base))))
