"""One check for every DataJoint-free link kind: a dry run, a bad restriction and a repair of a link not made yet
change nothing on either server; the first real pull then makes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from djshare.errors import ConfigurationError, RestrictionError


def tables_in(server: Any, schema: str) -> int:
    """Tables in `schema` on a MariaDB or PostgreSQL test server."""
    return int(server.query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (schema,))[0][0])


def check_a_new_link_changes_nothing(link: Any, untouched: Callable[[], bool]) -> None:
    """`link` pulls a Session table of 3 subjects x 4 sessions (subject 'm1' among them)."""
    report = link.pull("subject = 'm1'", dry_run=True, progress=False)
    assert (report.dry_run, report.would_pull, report.pulled) == (True, 4, 0)
    assert untouched()
    with pytest.raises(RestrictionError, match="subjct"):
        link.pull("subjct = 'm1'", progress=False)
    assert untouched()
    with pytest.raises(ConfigurationError, match="Nothing to repair"):
        link.repair(progress=False)
    assert untouched()
    assert link.pull("subject = 'm1'", progress=False).pulled == 4
    assert not untouched() and link.pull(dry_run=True, progress=False).would_pull == 8
