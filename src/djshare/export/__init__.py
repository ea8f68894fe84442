"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""

from djshare.export.api import captures, copy, forget, preview, restore, verify, write, write_script
from djshare.export.capture import capture, start, stop

__all__ = [
    "capture", "captures", "copy", "forget", "preview", "restore", "start", "stop", "verify", "write", "write_script",
]
