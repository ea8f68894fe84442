"""Restrictions as DataJoint takes them (SQL text, dicts, lists for OR), written as SQL for either backend without
DataJoint (no servers: the servers' parsing of the result is tested by the link tests)."""

from __future__ import annotations

import datetime
import uuid

import pytest

from djshare.backends.catalog import Column, TableInfo
from djshare.backends.mariadb_rows import MARIADB
from djshare.backends.postgresql_sql import POSTGRESQL
from djshare.errors import RestrictionError
from djshare.restriction import sql_restriction

TABLE = TableInfo("lab", "session", tuple(Column(n, "varchar", "varchar(8)", True, None, "", "")
                                          for n in ("subject", "session", "day", "token")),
                  ("subject", "session"), "")


def test_dicts_lists_and_text_on_mariadb() -> None:
    where = sql_restriction(["session > 1", {"subject": "o'k", "day": datetime.date(2024, 1, 2)},
                             [{"session": 1}, {"session": None}]], TABLE, MARIADB)
    assert where == (" WHERE (session > 1) AND (`subject` = 'o\\'k' AND `day` = '2024-01-02') AND "
                     "((`session` = 1) OR (`session` IS NULL))")
    assert sql_restriction([{"token": uuid.UUID(int=1)}], TABLE, MARIADB) == (
        " WHERE (`token` = X'" + "00" * 15 + "01')")


def test_the_same_on_postgresql() -> None:
    where = sql_restriction([{"subject": "o'k", "session": 2}, []], TABLE, POSTGRESQL)
    assert where == " WHERE (\"subject\" = 'o''k' AND \"session\" = 2) AND (FALSE)"  # an empty OR matches nothing


def test_no_restriction_and_empty_ones_match_everything() -> None:
    assert sql_restriction([], TABLE, MARIADB) == "" and sql_restriction(["  "], TABLE, MARIADB) == ""
    assert sql_restriction([{}], TABLE, MARIADB) == " WHERE (TRUE)"


@pytest.mark.parametrize("wrong,message", [
    ({"subjct": "m1"}, "names subjct, which lab.session does not have"),
    (3, "neither SQL text, a dict of attribute values, nor a list"),
    ("1) OR (1", "closes more than it opened"),
])
def test_malformed_restrictions_are_refused(wrong: object, message: str) -> None:
    with pytest.raises(RestrictionError, match=message):
        sql_restriction([wrong], TABLE, MARIADB)


def test_export_restrictions_name_tables_and_keep_store_tables_for_captures() -> None:
    """What `--rows` names is SCHEMA.TABLE[:CONDITION]; a 0.14 store table named by a user is refused (its rows go
    with the rows that reference them), one recorded by a capture is not (the selection takes it as it comes)."""
    from djshare.errors import ConfigurationError
    from djshare.export.selection import named, parse

    assert parse([("lab.session", "subject = 'm1'"), ("lab.scan", "")]) == [
        (("lab", "session"), "subject = 'm1'"), (("lab", "scan"), "TRUE")]
    with pytest.raises(ConfigurationError, match="'session' is not SCHEMA.TABLE"):
        parse([("session", "")])
    with pytest.raises(ConfigurationError, match="Nothing to export"):
        parse([])
    with pytest.raises(ConfigurationError, match=r"lab.~external_raw is a DataJoint 0.14 store table"):
        named([("lab.session", ""), ("lab.~external_raw", "")])
    assert named([("lab.session", "")]) == [("lab.session", "")]
    assert parse([("lab.~external_raw", "hash = 'x'")]) == [(("lab", "~external_raw"), "hash = 'x'")]
