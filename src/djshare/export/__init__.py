"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it.

`djshare.export.engine` exports from MariaDB and PostgreSQL, DataJoint 0.14 and 2.x schemas alike, without
DataJoint. The names here are DataJoint 0.14's export API (captures on the data server of DataJoint's settings);
they are imported when first used, so importing a module of this package imports no DataJoint. (No submodule is named
like one of these functions, which it would shadow: the 0.14 fetch hook is `capture014`, the MariaDB bundle loader
`restoring`.)"""

from importlib import import_module
from typing import Any

from djshare.lines import require_dj014

_API = {"captures", "close_capture", "copy", "forget", "open_capture", "open_captures", "preview", "restore", "verify",
        "write", "write_script"}
_CAPTURE = {"capture", "follow", "start", "stop", "unfollow"}
__all__ = sorted(_API | _CAPTURE)


def __getattr__(name: str) -> Any:
    """DataJoint 0.14's export functions, imported on first use (naming the fix where 0.14 is not installed)."""
    if name not in _API | _CAPTURE:
        raise AttributeError(f"module 'djshare.export' has no attribute {name!r}")
    require_dj014()
    value = getattr(import_module("djshare.export.api" if name in _API else "djshare.export.capture014"), name)
    globals()[name] = value
    return value
