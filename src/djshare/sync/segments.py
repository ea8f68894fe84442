"""The bisection plan (pure): which key-range segments to split further, which to compare row by row."""

from __future__ import annotations

from dataclasses import dataclass

Bound = bytes | None  # a key literal; None is open (below every key, or above every key)


@dataclass(frozen=True)
class Segment:
    low: Bound  # inclusive
    high: Bound  # exclusive


@dataclass(frozen=True)
class Summary:
    rows: int
    checksum: int  # XOR of a 64-bit hash of every row's exact bytes


def split(segment: Segment, boundaries: list[bytes]) -> list[Segment]:
    """Consecutive segments covering `segment`, cut at `boundaries` (sorted, inside the segment)."""
    edges: list[Bound] = [segment.low, *boundaries, segment.high]
    return [Segment(a, b) for a, b in zip(edges, edges[1:], strict=False) if a is None or a != b]


def differing(left: list[Summary], right: list[Summary]) -> list[int]:
    """Indexes of segments whose summaries differ."""
    return [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]


def leaf(left: Summary, right: Summary, leaf_rows: int) -> bool:
    """Small enough to compare row by row."""
    return max(left.rows, right.rows) <= leaf_rows
