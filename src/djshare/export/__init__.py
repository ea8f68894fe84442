"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""

from djshare.export.api import copy, preview, restore, verify, write, write_script
from djshare.export.capture import capture, start, stop

__all__ = ["capture", "copy", "preview", "restore", "start", "stop", "verify", "write", "write_script"]
