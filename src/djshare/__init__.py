"""djshare: share DataJoint data between database servers that do not trust each other blindly.

The link API (`LazySchema`, `Link`, `SourceLink`, `gc`) is loaded on first use: it needs DataJoint 0.14,
while `djshare.sync` (diff and sync) works with either DataJoint line, or none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from djshare.errors import DjshareError

if TYPE_CHECKING:
    from djshare.link.api import LazySchema, Link, SourceLink, gc

__all__ = ["DjshareError", "LazySchema", "Link", "SourceLink", "gc"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in {"LazySchema", "Link", "SourceLink", "gc"}:
        from djshare.link import api

        return getattr(api, name)
    raise AttributeError(f"module 'djshare' has no attribute {name!r}")
