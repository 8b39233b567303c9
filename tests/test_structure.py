"""The layering the README describes holds: no import cycle, render never imports Pulumi,
policies never import components, and paths on hosts are not spelled out in components/."""

import ast
import re
from pathlib import Path

from tests.tools import REPO

PACKAGES = ("model", "render", "components", "offline", "policies", "bench")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports, TYPE_CHECKING blocks included (a cycle there is still one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imports(path, known) - {name} for name, path in mods.items()}
    # Importing a.b.c runs a/__init__ and a/b/__init__ first.
    for name in edges:
        edges[name] |= {t.rsplit(".", i)[0] for t in list(edges[name]) for i in range(1, t.count(".") + 1)} & known
        edges[name].discard(name)
    return edges


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1 and not node.startswith(nxt + "."):
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert cycle(graph()) is None


def test_layers_point_one_way():
    for name, targets in graph().items():
        layer = name.split(".")[0]
        if layer in ("model", "render"):
            assert not {t for t in targets if t.split(".")[0] in ("components", "offline", "policies")}, name
        if layer == "policies":
            assert not {t for t in targets if t.split(".")[0] in ("components", "render", "model")}, name


def test_render_and_model_never_import_pulumi():
    for name, path in modules().items():
        if name.split(".")[0] in ("model", "render"):
            assert not re.search(r"^\s*(import|from) pulumi", path.read_text(), re.M), name


def test_components_spell_out_no_host_paths():
    """Paths on hosts live in render: a literal like "/etc/..." in a component is a second home."""
    for path in (REPO / "components").rglob("*.py"):
        literals = [n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)]
        on_host = [v for v in literals if isinstance(v, str) and re.match(r"^/(etc|var|usr|opt|run)/", v)]
        assert not on_host, f"{path.relative_to(REPO)}: {on_host}"
