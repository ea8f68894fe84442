"""What both capture hooks (DataJoint 0.14's `capture`, 2.x's `capture2`) share: the captures active in this
thread or task (a context variable: captures in parallel threads stay apart, several may be active at once), and the
warning for restrictions a capture could not follow. Neither DataJoint line is imported here."""

from __future__ import annotations

import contextlib
import contextvars
import logging
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


def warn_unseen(conditions: list[str]) -> None:
    """Log the restrictions whose subqueries a capture could not follow (their rows are not captured)."""
    for condition in conditions:
        logging.getLogger("djshare").warning(
            "capture: the restriction %s reads other tables through a subquery djshare could not follow (written as "
            "SQL, or built before the capture hook was installed); the rows it reads are not captured. Restrict by "
            "query expressions, after djshare.export.capture/start/follow.", condition[:200])


def no_captures(server: str, schema: str) -> str:
    """The message for a server where nothing was ever captured into `schema`."""
    return (f"No captures exist on {server}: the capture schema `{schema}` has no recorded restrictions. Capture an "
            "analysis first: `with djshare.export.capture(paper, analysis): ...` in Python, or `djshare export start "
            "PAPER ANALYSIS` for processes that call `djshare.export.follow()`.")


def unknown_capture(paper: str, analysis: str | None, known: list[tuple[str, str]], server: str) -> str:
    """The message for a paper (or an analysis of it) with no recorded restriction, naming what exists."""
    analyses = [a for p, a in known if p == paper]
    if analysis is not None and analyses:
        return f"Paper {paper!r} has no analysis {analysis!r} on {server}; its analyses: {', '.join(analyses)}."
    papers = sorted({p for p, _ in known})
    return (f"Nothing was captured for paper {paper!r} on {server}; "
            + (f"captured papers: {', '.join(papers)}." if papers else "no paper was captured there yet."))
