"""Fault injection: a checkpoint that raises after a named step has committed (no DataJoint needed, so both
test environments use it)."""

from __future__ import annotations

from djshare.link.tables import Checkpoint


class Crash(Exception):
    """Raised by a checkpoint: the process 'dies' after the step that just committed."""


def crash_at(step: str, occurrence: int = 1) -> Checkpoint:
    """A checkpoint that raises Crash the `occurrence`-th time step `step` has committed."""
    seen = {"n": 0}

    def checkpoint(name: str) -> None:
        if name == step:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Crash(step)

    return checkpoint
