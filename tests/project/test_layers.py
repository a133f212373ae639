"""The layers of docs/design.md hold: every import of a mint module (at module top or inside a function) is
checked, so that a rule broken anywhere fails here."""

import ast
from pathlib import Path

from paths import REPO

PACKAGE = REPO / "mint"


def _imports(path: Path) -> set[str]:
    """The mint modules ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mint")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mint":
            found.add(node.module)
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


GRAPH = {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _importers(prefix: str, *, outside: str) -> list[str]:
    return sorted(
        f"{m} -> {i}"
        for m, imports in GRAPH.items()
        if not m.startswith(outside)
        for i in imports
        if i == prefix or i.startswith(prefix + ".")
    )


def test_only_the_command_line_imports_the_command_line():
    assert _importers("mint.cli", outside="mint.cli") == ["mint.__main__ -> mint.cli"]


def test_the_vocabulary_and_the_artifacts_sit_below_every_stage():
    assert GRAPH["mint.vocabulary"] == set()
    allowed = ("mint.artifacts", "mint.errors", "mint.io", "mint.vocabulary", "mint.tasks.schema")
    for module, imports in GRAPH.items():
        if module.startswith("mint.artifacts"):
            assert all(i == "mint" or i.startswith(allowed) for i in imports), (module, imports)


def test_building_a_report_needs_no_figure_code():
    for module in ("mint.tuning.report", "mint.tuning.evaluate", "mint.tuning.stats"):
        assert not [i for i in GRAPH[module] if i.startswith("mint.plotting")], module


def test_plotting_reads_artifacts_not_stage_internals():
    for module, imports in GRAPH.items():
        if module.startswith("mint.plotting"):
            stages = [
                i
                for i in imports
                if i.startswith(("mint.tuning", "mint.profiling", "mint.models", "mint.clustering"))
            ]
            assert not stages, (module, stages)


def test_prediction_lives_in_the_model_layer():
    assert "mint.models.predict" in GRAPH
    assert not [
        i for i in GRAPH["mint.models.predict"] if i.startswith(("mint.cli", "mint.tuning", "mint.pipeline"))
    ]


def _module_graph() -> dict[str, set[str]]:
    """Module -> the mint modules it imports (``from package import submodule`` counts as the submodule)."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                    for a in node.names
                ]
            else:
                continue
            graph[module].update(t for t in map(owner, targets) if t not in (None, "mint", module))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    """No module of mint reaches itself again through the imports of mint modules, wherever they stand (at
    module top or inside a function: an import moved into a function hides a cycle, it does not end it)."""
    assert [sorted(c) for c in _cycles(_module_graph())] == []


def test_a_planted_cycle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [{"a", "b", "c"}]
