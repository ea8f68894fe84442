"""Progress bars (rich) for long work; a no-op when disabled or when there is nothing to count."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


def shown(enabled: bool = True) -> bool:
    """Whether a bar would be drawn: asked for, and stderr is a terminal (so work need not count for a bar no one
    sees)."""
    return enabled and Console(stderr=True).is_terminal


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Advance]:
    """Yield a function that advances the bar by n items. Drawn on stderr, so stdout stays clean; only on a
    terminal, and only from the first advance, so work that fails at once shows no bar."""
    console = Console(stderr=True)
    if not enabled or not total or not console.is_terminal:
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    bar = Progress(*columns, console=console)
    task = bar.add_task(description, total=total)

    def advance(n: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.advance(task, n)

    try:
        yield advance
    finally:
        if bar.live.is_started:
            bar.stop()


@contextlib.contextmanager
def rows_progress(description: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield a function `report(done, total)` for work whose total is learnt on the way (a diff)."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
