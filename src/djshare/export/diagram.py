"""A diagram of an export's slice, as SVG or PNG: one box per table with its row count, parents above their
children, a line for each foreign key (grey) and each master-part pair (green). The layout is pure; the two
renderers only draw it (PNG through Pillow)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

from djshare.errors import DjshareError
from djshare.export.graph import Graph, Table

BOX_WIDTH, BOX_HEIGHT, GAP_X, GAP_Y, MARGIN = 230, 46, 30, 60, 20
FOREIGN_KEY, PART, FILL, BORDER = "#555555", "#22aa77", "#eef4ff", "#333355"
FORMATS = ("svg", "png")


@dataclass(frozen=True)
class Box:
    table: Table
    x: int
    y: int
    rows: int


@dataclass(frozen=True)
class Line:
    x1: int
    y1: int
    x2: int
    y2: int
    colour: str


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    boxes: list[Box]
    lines: list[Line]


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


def layout(graph: Graph, counts: dict[Table, int]) -> Layout:
    level = _levels(graph)
    rows: dict[int, list[Table]] = {}
    for table in graph.tables:
        rows.setdefault(level[table], []).append(table)
    place: dict[Table, tuple[int, int]] = {}
    for depth, tables in rows.items():
        for index, table in enumerate(tables):
            place[table] = (MARGIN + index * (BOX_WIDTH + GAP_X), MARGIN + depth * (BOX_HEIGHT + GAP_Y))
    links = [(fk.child, fk.parent, FOREIGN_KEY) for fk in graph.edges if fk.child != fk.parent]
    links += [(part, master, PART) for part, master in graph.parts]
    lines = [Line(place[child][0] + BOX_WIDTH // 2, place[child][1], place[parent][0] + BOX_WIDTH // 2,
                  place[parent][1] + BOX_HEIGHT, colour) for child, parent, colour in links]
    boxes = [Box(table, *place[table], counts.get(table, 0)) for table in graph.tables]
    return Layout(MARGIN * 2 + max((len(t) for t in rows.values()), default=0) * (BOX_WIDTH + GAP_X),
                  MARGIN * 2 + len(rows) * (BOX_HEIGHT + GAP_Y), boxes, lines)


def svg(graph: Graph, counts: dict[Table, int]) -> str:
    drawing = layout(graph, counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawing.width}" height="{drawing.height}" '
             'font-family="sans-serif" font-size="12">']
    for line in drawing.lines:
        parts.append(f'<line x1="{line.x1}" y1="{line.y1}" x2="{line.x2}" y2="{line.y2}" stroke="{line.colour}"/>')
    for box in drawing.boxes:
        x, y = box.x, box.y
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" fill="{FILL}" '
                     f'stroke="{BORDER}"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 18}">{escape(box.table[0])}.<tspan font-weight="bold">'
                     f'{escape(box.table[1])}</tspan></text>')
        parts.append(f'<text x="{x + 8}" y="{y + 36}">{box.rows:,} rows</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def png(graph: Graph, counts: dict[Table, int]) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    drawing = layout(graph, counts)
    image = Image.new("RGB", (drawing.width, drawing.height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    for line in drawing.lines:
        draw.line((line.x1, line.y1, line.x2, line.y2), fill=line.colour, width=1)
    for box in drawing.boxes:
        draw.rounded_rectangle((box.x, box.y, box.x + BOX_WIDTH, box.y + BOX_HEIGHT), radius=6, fill=FILL,
                               outline=BORDER)
        draw.text((box.x + 8, box.y + 6), f"{box.table[0]}.{box.table[1]}", fill="black", font=font)
        draw.text((box.x + 8, box.y + 24), f"{box.rows:,} rows", fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def kind_of(suffix: str) -> str:
    """The drawing format a file suffix names ("svg" or "png"); anything else is an error."""
    kind = suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise DjshareError(f"Cannot draw a diagram into a file named *{suffix}: name it *.svg or *.png.")
    return kind


def render(graph: Graph, counts: dict[Table, int], suffix: str) -> bytes:
    """The diagram in the format named by a file suffix (".svg" or ".png")."""
    return svg(graph, counts).encode() if kind_of(suffix) == "svg" else png(graph, counts)
