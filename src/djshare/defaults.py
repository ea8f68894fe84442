"""Defaults the library and the command line share, importable without DataJoint."""

CAPTURE_SCHEMA = "djshare_export"  # where export captures live, on the data's server

TIMEOUT_VARIABLE = "DJSHARE_TIMEOUT"  # seconds a connection waits for a silent server before it gives up
TIMEOUT = 600  # ... by default: a lost peer fails the command (re-run it) and the server frees what it held


def timeout() -> int:
    """Seconds djshare's own connections wait on a silent peer (DJSHARE_TIMEOUT, default 600): reads and writes
    time out after it, and the server ends a djshare session idle that long (releasing its locks)."""
    import os

    from djshare.errors import ConfigurationError

    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return TIMEOUT
    if not text.isdigit() or int(text) < 1:
        raise ConfigurationError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds (1 or more).")
    return int(text)
