"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it.

Captured exports are written against DataJoint 0.14; `djshare.export.tables` exports rows chosen by SQL
restrictions without DataJoint (DataJoint 2.x schemas on MariaDB), and is importable beside either line."""

from typing import Any

from djshare.lines import datajoint_version, require_dj014

if (datajoint_version() or "").startswith("0.14."):
    from djshare.export.api import (
        captures,
        close_capture,
        copy,
        forget,
        open_capture,
        open_captures,
        preview,
        restore,
        verify,
        write,
        write_script,
    )
    from djshare.export.capture import capture, follow, start, stop, unfollow
else:
    def __getattr__(name: str) -> Any:
        """The captured-export functions need DataJoint 0.14: name the fix when one is asked for."""
        if name in __all__:
            require_dj014()
        raise AttributeError(f"module 'djshare.export' has no attribute {name!r}")

__all__ = [
    "capture", "captures", "close_capture", "copy", "follow", "forget", "open_capture", "open_captures", "preview",
    "restore", "start", "stop", "unfollow", "verify", "write", "write_script",
]
