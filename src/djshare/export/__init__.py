"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""

from djshare.export.api import preview, restore, verify, write
from djshare.export.capture import capture, start, stop

__all__ = ["capture", "preview", "restore", "start", "stop", "verify", "write"]
