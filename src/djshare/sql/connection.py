"""Moved to `djshare.backends` (issue 14, step 1); this module re-exports its names for one release."""

from __future__ import annotations

from djshare.backends.address import (
    DEFAULT_PORT,
    ServerAddress,
)
from djshare.backends.mariadb import (
    Session,
    quote_name,
    translate,
    translated,
)

__all__ = [
    "DEFAULT_PORT",
    "ServerAddress",
    "translate",
    "translated",
    "Session",
    "quote_name",
]
