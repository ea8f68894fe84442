"""What both capture hooks (DataJoint 0.14's `capture`, 2.x's `capture2`) share: the captures active in this
thread or task (a context variable: captures in parallel threads stay apart, several may be active at once),
and the base tables behind a query expression. Neither DataJoint line is imported here."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar


class Recorder(Protocol):
    def record(self, expression: Any) -> None: ...


R = TypeVar("R", bound=Recorder)
_active: contextvars.ContextVar[tuple[Recorder, ...]] = contextvars.ContextVar("djshare_captures", default=())


def active() -> tuple[Recorder, ...]:
    """The captures active here, oldest first."""
    return _active.get()


def start(capture: Recorder) -> contextvars.Token[tuple[Recorder, ...]]:
    """Make `capture` active here too; pass the returned token to `stop`."""
    return _active.set((*_active.get(), capture))


def stop(token: contextvars.Token[tuple[Recorder, ...]]) -> None:
    _active.reset(token)


@contextlib.contextmanager
def during(capture: R) -> Iterator[R]:
    """`capture` active for the block."""
    token = start(capture)
    try:
        yield capture
    finally:
        stop(token)


def base_tables(expression: Any) -> Iterator[str]:
    """Full names of the tables behind a query expression (through joins and subqueries)."""
    for item in expression.support:
        if isinstance(item, str):
            yield item
        else:
            yield from base_tables(item)
