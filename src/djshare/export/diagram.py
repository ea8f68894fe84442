"""A diagram of an export's slice as SVG (pure): one box per table with its row count, parents above their
children, a line for each foreign key and each master-part pair."""

from __future__ import annotations

from xml.sax.saxutils import escape

from djshare.export.graph import Graph, Table

BOX_WIDTH, BOX_HEIGHT, GAP_X, GAP_Y, MARGIN = 230, 46, 30, 60, 20


def _levels(graph: Graph) -> dict[Table, int]:
    """Depth of each table: 0 for tables without parents in the slice, else one below its deepest parent."""
    parents: dict[Table, set[Table]] = {}
    for fk in graph.edges:
        if fk.child != fk.parent:
            parents.setdefault(fk.child, set()).add(fk.parent)
    level: dict[Table, int] = {}
    for table in graph.tables:  # parents come first
        level[table] = 1 + max((level[p] for p in parents.get(table, ()) if p in level), default=-1)
    return level


def svg(graph: Graph, counts: dict[Table, int]) -> str:
    level = _levels(graph)
    rows: dict[int, list[Table]] = {}
    for table in graph.tables:
        rows.setdefault(level[table], []).append(table)
    place: dict[Table, tuple[int, int]] = {}
    for depth, tables in rows.items():
        for index, table in enumerate(tables):
            place[table] = (MARGIN + index * (BOX_WIDTH + GAP_X), MARGIN + depth * (BOX_HEIGHT + GAP_Y))
    width = MARGIN * 2 + max(len(t) for t in rows.values()) * (BOX_WIDTH + GAP_X)
    height = MARGIN * 2 + len(rows) * (BOX_HEIGHT + GAP_Y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">']
    links = [(fk.child, fk.parent, "#555") for fk in graph.edges if fk.child != fk.parent]
    links += [(part, master, "#2a7") for part, master in graph.parts]
    for child, parent, colour in links:
        (cx, cy), (px, py) = place[child], place[parent]
        parts.append(f'<line x1="{cx + BOX_WIDTH // 2}" y1="{cy}" x2="{px + BOX_WIDTH // 2}" y2="{py + BOX_HEIGHT}" '
                     f'stroke="{colour}"/>')
    for table in graph.tables:
        x, y = place[table]
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" fill="#eef4ff" '
                     'stroke="#335"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 18}">{escape(table[0])}.<tspan font-weight="bold">'
                     f'{escape(table[1])}</tspan></text>')
        parts.append(f'<text x="{x + 8}" y="{y + 36}">{counts.get(table, 0):,} rows</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
