"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""

from djshare.lines import require_dj014

require_dj014()

from djshare.export.api import (  # noqa: E402 - after the check, which names the fix
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
from djshare.export.capture import capture, follow, start, stop, unfollow  # noqa: E402

__all__ = [
    "capture", "captures", "close_capture", "copy", "follow", "forget", "open_capture", "open_captures", "preview",
    "restore", "start", "stop", "unfollow", "verify", "write", "write_script",
]
