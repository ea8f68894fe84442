"""Pure helpers at the SQL edge: definitions, literal SQL, addresses, error translation (no servers)."""

from __future__ import annotations

import re

import pymysql
import pytest

from djshare.errors import (
    AuthenticationError,
    DefinitionMismatchError,
    DjshareError,
    InterruptedOperation,
    MissingPrivilegeError,
    RestrictionError,
    ServerUnreachableError,
    UnknownTableError,
)
from djshare.link.local import check_matches, default_text, master_definition, part_definition
from djshare.sql.catalog import Column, TableInfo, to_camel_case, to_snake_case
from djshare.sql.connection import ServerAddress, translate
from djshare.sql.transfer import key_condition, literal, literal_expression, row_literal


def column(name: str, data_type: str = "int", column_type: str = "int(11)", nullable: bool = False,
           default: str | None = None, comment: str = "", extra: str = "") -> Column:
    return Column(name, data_type, column_type, nullable, default, comment, extra)


MASTER = TableInfo("lab", "__scan", (
    column("subject", "varchar", "varchar(16)"),
    column("recording"),
    column("stamp", "timestamp", "timestamp", default="current_timestamp()", comment="when"),
    column("note", "varchar", "varchar(20)", default="'it''s'"),
    column("weight", "float", "float", nullable=True, default="NULL"),
    column("file", "longblob", "longblob", nullable=True, default="NULL", comment=":attach:the file"),
), ("subject", "recording"), "a scan")


def test_master_definition_keeps_types_defaults_comments() -> None:
    assert master_definition(MASTER) == (
        "# a scan\n"
        "subject : varchar(16)\n"
        "recording : int(11)\n"
        "---\n"
        "stamp = CURRENT_TIMESTAMP : timestamp  # when\n"
        "note = 'it''s' : varchar(20)\n"
        "weight = null : float\n"
        "file = null : attach  # the file\n"
    )


def test_part_definition_references_the_master() -> None:
    part = TableInfo("lab", "__scan__channel", (column("subject", "varchar", "varchar(16)"), column("recording"),
                                                column("channel", "tinyint", "tinyint(3) unsigned"),
                                                column("trace", "longblob", "longblob")),
                     ("subject", "recording", "channel"), "")
    assert part_definition(part, MASTER) == "-> master\nchannel : tinyint(3) unsigned\n---\ntrace : longblob\n"


def test_external_attributes_follow_the_store_mapping_and_adapted_types_are_refused() -> None:
    table = TableInfo("lab", "t", (column("id"), column("b", "binary", "binary(16)", comment=":blob@raw:x"),
                                   column("a", "binary", "binary(16)", nullable=True, comment=":attach@docs:")),
                      ("id",), "")
    expected = "id : int(11)\n---\nb : blob@mine  # x\na = null : attach@docs\n"
    assert master_definition(table, {"raw": "mine"}) == expected
    adapted = TableInfo("lab", "t", (column("id"), column("g", "longblob", "longblob", comment=":<graph>:")),
                        ("id",), "")
    with pytest.raises(DjshareError, match="adapted type `<graph>`"):
        master_definition(adapted)


@pytest.mark.parametrize(("raw", "expected"), [
    ("current_timestamp()", "CURRENT_TIMESTAMP"), ("CURRENT_TIMESTAMP(6)", "CURRENT_TIMESTAMP"),
    ("0", "0"), ("'abc'", "'abc'"), (None, None), ("NULL", None),
])
def test_defaults(raw: str | None, expected: str | None) -> None:
    assert default_text(column("x", default=raw)) == expected


def test_mismatch_names_the_column_and_says_nothing_was_pulled() -> None:
    local = TableInfo("mine", "__scan", tuple(c if c.name != "weight" else column("weight", "double", "double",
                                                                                  True, "NULL")
                                              for c in MASTER.columns), MASTER.primary_key, "")
    with pytest.raises(DefinitionMismatchError, match="`weight` is double null locally but float null in the source"):
        check_matches(local, MASTER)
    check_matches(MASTER, MASTER)


def test_literal_sql_per_type() -> None:
    blob = literal_expression(column("b", "longblob", "longblob"))
    assert blob == "IF(`b` IS NULL,'NULL',CONCAT('X''',HEX(`b`),''''))"
    assert literal_expression(column("f", "float", "float")) == "QUOTE(CAST(`f` AS DOUBLE))"
    assert literal_expression(column("s", "varchar", "varchar(3)"), "t.") == "CONVERT(QUOTE(t.`s`) USING utf8mb4)"
    assert literal_expression(column("d", "date", "date")) == "QUOTE(`d`)"
    assert row_literal([column("a"), column("b")]).startswith("CAST(CONCAT('(',QUOTE(`a`),',',QUOTE(`b`),')')")
    assert key_condition(MASTER, [b"('a',1)", b"('b',2)"]) == b"(`subject`,`recording`) IN (('a',1),('b',2))"
    assert key_condition(MASTER, []) == b"FALSE"
    assert literal("it's \\ 😀") == "'it\\'s \\\\ 😀'".encode()


def test_names() -> None:
    assert to_snake_case("SessionScan") == "session_scan"
    assert to_camel_case("__session_scan") == "SessionScan"
    with pytest.raises(UnknownTableError, match="not CamelCase"):
        to_snake_case("session")


def test_address_parsing_and_label_without_password() -> None:
    address = ServerAddress.parse("db.lab:3307", "me", "secret-pw")
    assert (address.host, address.port, address.label) == ("db.lab", 3307, "me@db.lab:3307")
    assert "secret-pw" not in repr(address)
    assert ServerAddress.parse("db", "me", "", port=3308).port == 3308
    with pytest.raises(DjshareError, match="port that is not a number"):
        ServerAddress.parse("db:x", "me", "")


@pytest.mark.parametrize(("error", "kind"), [
    (pymysql.err.OperationalError(1045, "Access denied"), AuthenticationError),
    (pymysql.err.OperationalError(2003, "Can't connect"), ServerUnreachableError),
    (pymysql.err.OperationalError(1142, "SELECT command denied"), MissingPrivilegeError),
    (pymysql.err.ProgrammingError(1146, "Table 'a.b' doesn't exist"), UnknownTableError),
    (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), RestrictionError),
    (pymysql.err.OperationalError(2013, "Lost connection"), InterruptedOperation),
])
def test_driver_errors_become_djshare_errors(error: pymysql.err.MySQLError, kind: type[DjshareError]) -> None:
    address = ServerAddress("db", 3306, "me", "pw-not-shown")
    translated = translate(error, address, "pulling")
    assert isinstance(translated, kind)
    assert "pw-not-shown" not in str(translated)
    assert translated.retryable == (kind in (ServerUnreachableError, InterruptedOperation))


def test_split_literal_handles_escapes_commas_and_prefixes() -> None:
    from djshare.sql.transfer import split_literal

    assert split_literal(b"('a\\'b,c',X'00FF','5',NULL)") == [b"'a\\'b,c'", b"X'00FF'", b"'5'", b"NULL"]
    assert split_literal(b"('x')") == [b"'x'"]
    assert split_literal(b"('back\\\\',',')") == [b"'back\\\\'", b"','"]


def test_key_bound_is_an_expanded_comparison() -> None:
    from djshare.sql.transfer import key_bound

    assert key_bound(MASTER, b"('m1','5')", ">") == (
        b"((`subject` > 'm1') OR (`subject` = 'm1' AND `recording` > '5'))")
    assert key_bound(MASTER, b"('m1','5')", ">=", "s.") == (
        b"((s.`subject` > 'm1') OR (s.`subject` = 'm1' AND s.`recording` >= '5'))")
    single = TableInfo("lab", "t", (column("id"),), ("id",), "")
    assert key_bound(single, b"('7')", "<") == b"((`id` < '7'))"


@pytest.mark.parametrize("text", ["session_id < 0", "note = 'a)b'", "x IN (1, (2))", "n = 'it''s'", "n = 'a\\\\'",
                                  '`we)ird` = 1', "f(x) = \"(\"", "a LIKE '%;%'"])
def test_one_condition_accepts_conditions(text: str) -> None:
    from djshare.restriction import one_condition

    assert one_condition(text) == text


@pytest.mark.parametrize(("text", "reason"), [
    ("1)) OR ((1=1", "closes more than it opened"), ("(a = 1", "unclosed '('"), ("a = 'x", "unclosed quote"),
    ("a = 1; DROP TABLE t", "';'"), ("a = 1 -- x", "'--'"), ("a = 1 /* x */", "'/*'"), ("a = 1 # x", "'#'"),
])
def test_one_condition_refuses_text_that_reaches_outside(text: str, reason: str) -> None:
    from djshare.errors import RestrictionError
    from djshare.restriction import one_condition

    with pytest.raises(RestrictionError, match=re.escape(reason)):
        one_condition(text)


@pytest.mark.parametrize("host", ["db:0", "db:65536", "db:70000"])
def test_a_port_out_of_range_is_refused(host: str) -> None:
    from djshare.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="out of range: a port is 1 to 65535"):
        ServerAddress.parse(host, "u", "p")


@pytest.mark.parametrize(("batch_size", "lock_timeout", "wrong"), [
    (0, 60, "batch_size=0"), (-1, 60, "batch_size=-1"), (2.5, 60, "batch_size=2.5"), (True, 60, "batch_size=True"),
    (10, "soon", "lock_timeout='soon'"), (10, -1, "lock_timeout=-1"),
])
def test_link_options_are_checked_before_anything_connects(batch_size: object, lock_timeout: object,
                                                            wrong: str) -> None:
    from djshare.errors import ConfigurationError
    from djshare.link.pull import checked_options

    with pytest.raises(ConfigurationError, match=re.escape(wrong)):
        checked_options(batch_size, lock_timeout)
    assert checked_options(1, 0) == (1, 0.0)


def test_store_settings_that_are_not_a_mapping_are_refused() -> None:
    from djshare.errors import ConfigurationError
    from djshare.stores.spec import StoreSpec

    with pytest.raises(ConfigurationError, match="store settings are a list, not a mapping"):
        StoreSpec.from_config("raw", ["raw"], "source")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="settings of store `raw` .* are a str"):
        StoreSpec.from_config("raw", {"raw": "/data"}, "source")


@pytest.mark.parametrize("name", ["", "x" * 65, "abonné", "tab\there"])
def test_a_subscriber_name_the_outbound_table_cannot_hold_is_refused(name: str) -> None:
    from djshare.errors import ConfigurationError
    from djshare.link.pull import checked_subscriber

    with pytest.raises(ConfigurationError, match="1 to 64 printable ASCII characters"):
        checked_subscriber(name)
    assert checked_subscriber("collab-2026") == "collab-2026" and checked_subscriber(None) is None
