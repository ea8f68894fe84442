"""The layering rules of the package, read from its imports (no servers)."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[2] / "src" / "djshare"


def imports(package: str) -> nx.DiGraph:
    """Module -> module imports inside `djshare.<package>` (type-checking imports included)."""
    graph = nx.DiGraph()
    for path in (SRC / package).glob("*.py"):
        graph.add_node(path.stem)
        for found in re.finditer(rf"^\s*from djshare\.{package}(?:\.(\w+))? import ([^\n(]+|\([^)]*\))",
                                 path.read_text(), flags=re.MULTILINE):
            names = [found[1]] if found[1] else re.findall(r"\b(\w+)\b(?!\s+as)", found[2])
            graph.add_edges_from((path.stem, name) for name in names if (SRC / package / f"{name}.py").exists())
    return graph


def test_link_has_no_import_circles() -> None:
    graph = imports("link")
    assert len(graph) > 10 and graph.has_edge("pull", "tables")  # the graph is read at all
    assert list(nx.simple_cycles(graph)) == []


def test_the_protocol_imports_nothing_of_the_link_package() -> None:
    assert list(imports("link").successors("protocol")) == []
