"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""

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

__all__ = [
    "capture", "captures", "close_capture", "copy", "follow", "forget", "open_capture", "open_captures", "preview",
    "restore", "start", "stop", "unfollow", "verify", "write", "write_script",
]
