"""The layering rules of the package, read from its imports (no servers)."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[2] / "src" / "djshare"


def imports(package: str) -> nx.DiGraph:
    """Module -> module imports inside `djshare.<package>`, read from the code (type-checking imports included)."""
    graph = nx.DiGraph()
    prefix = f"djshare.{package}"
    for path in (SRC / package).glob("*.py"):
        graph.add_node(path.stem)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(prefix):
                continue
            names = [node.module.split(".")[2]] if node.module != prefix else [a.name for a in node.names]
            graph.add_edges_from((path.stem, name) for name in names if (SRC / package / f"{name}.py").exists())
    return graph


def test_link_has_no_import_circles() -> None:
    graph = imports("link")
    assert len(graph) > 10 and graph.has_edge("pull", "tables")  # the graph is read at all
    assert list(nx.simple_cycles(graph)) == []


def test_the_protocol_imports_nothing_of_the_link_package() -> None:
    assert list(imports("link").successors("protocol")) == []


def test_formats_are_below_the_link_package() -> None:
    """The formats (headings, conversions, declarations, lineage) are read by links and exports alike: they
    import nothing of either."""
    found = []
    for path in (SRC / "formats").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("djshare.link", "djshare.export")):
                found.append(f"{path.stem} imports {node.module}")
    assert len(list((SRC / "formats").glob("*.py"))) >= 5  # the package is read at all
    assert found == []


def test_no_export_submodule_shadows_a_function_of_the_0_14_api() -> None:
    """`djshare.export.<name>` is a function of DataJoint 0.14's export API (imported on first use); a submodule of
    that name, once imported by anything, would replace it with the module (`export.restore(...)` failing)."""
    import importlib

    from djshare import export

    modules = {path.stem for path in (SRC / "export").glob("*.py")}
    assert len(modules) > 10 and not modules & set(export.__all__)
    for module in sorted(modules - {"__init__"}):
        importlib.import_module(f"djshare.export.{module}")  # every submodule loaded, as a long session would
    for name in export.__all__:
        assert callable(getattr(export, name)) and not isinstance(getattr(export, name), type(export)), name
