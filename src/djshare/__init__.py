"""djshare: share DataJoint data between database servers that do not trust each other blindly."""

from djshare.errors import DjshareError
from djshare.link.api import LazySchema, Link, SourceLink, gc

__all__ = ["DjshareError", "LazySchema", "Link", "SourceLink", "gc"]
__version__ = "0.1.0"
