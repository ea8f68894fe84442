"""The command line's sides, parsed in one place, and the one reader of credentials (no servers)."""

from __future__ import annotations

import pytest

from djshare.backends.address import read_credentials
from djshare.cli import sides
from djshare.errors import ConfigurationError

CREDENTIALS = ("LINK_USER", "LINK_PASS", "DJ_USER", "DJ_PASS", "DJSHARE_LEFT_USER", "DJSHARE_LEFT_PASS")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("text,expected", [
    ("db.lab", sides.Location("mariadb", "db.lab")),
    ("db.lab:3307", sides.Location("mariadb", "db.lab:3307")),
    ("mysql://db.lab:3307", sides.Location("mariadb", "db.lab:3307")),
    ("mariadb://db.lab/lab", sides.Location("mariadb", "db.lab", "", "lab")),
    ("db.lab:3307/lab.session", sides.Location("mariadb", "db.lab:3307", "", "lab.session")),
    ("postgresql://pg:5433/science", sides.Location("postgresql", "pg:5433", "science")),
    ("postgresql://pg/science/lab", sides.Location("postgresql", "pg", "science", "lab")),
    ("postgresql://pg/science/lab.session", sides.Location("postgresql", "pg", "science", "lab.session")),
])
def test_one_grammar_for_every_side(text: str, expected: sides.Location) -> None:
    assert sides.parse(text) == expected


@pytest.mark.parametrize("text", ["", "/lab", "postgresql://", "postgresql://pg", "postgresql://pg/", "postgresql:///db"])
def test_text_that_names_no_server_is_not_a_location(text: str) -> None:
    assert sides.parse(text) is None


def test_a_server_alone() -> None:
    assert sides.server("postgresql://pg/science").server == "postgresql://pg/science"
    assert sides.server("db:3307").server == "db:3307"
    with pytest.raises(ConfigurationError, match=r"'db/lab' is not HOST\[:PORT\] \(MariaDB\) or postgresql://"):
        sides.server("db/lab")
    with pytest.raises(ConfigurationError, match=r"^Source 'postgresql://pg' is not postgresql://HOST\[:PORT\]/DATABASE"):
        sides.link_source("postgresql://pg")
    with pytest.raises(ConfigurationError, match="No source server: pass --source-host or set LINK_HOST"):
        sides.link_source(None)


def test_a_local_schema_is_a_name_or_a_postgresql_schema() -> None:
    assert sides.local_schema("collab") == sides.Location("mariadb", "", "", "collab")
    assert sides.local_schema("postgresql://pg:5433/science/collab") == sides.Location(
        "postgresql", "pg:5433", "science", "collab")
    for wrong in ("postgresql://pg/science", "postgresql://pg/science/a/b"):
        with pytest.raises(ConfigurationError, match="is not postgresql://HOST\\[:PORT\\]/DATABASE/SCHEMA"):
            sides.local_schema(wrong)
    with pytest.raises(ConfigurationError, match="is not a schema name"):
        sides.local_schema("db:3306/collab")


def test_a_table_side() -> None:
    location, schema, name = sides.table("postgresql://pg/science/lab.session") or (None, "", "")
    assert (location and location.postgres, schema, name) == (True, "lab", "session")
    assert sides.table("db/lab") is None and sides.table("db/lab.") is None and sides.table("db") is None


def test_credentials_come_from_the_role_s_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="^No credentials for the source server db: set LINK_USER and "
                       "LINK_PASS to the link user's name and password there"):
        read_credentials("link", "db")
    monkeypatch.setenv("LINK_USER", "linker")
    monkeypatch.setenv("LINK_PASS", "")  # an empty password is a password
    assert read_credentials("link", "db") == ("linker", "", "LINK_USER and LINK_PASS")
    assert read_credentials("link", "db", "me", "pw", "LazySchema") == (
        "me", "pw", "the user and password given to LazySchema")
    with pytest.raises(ConfigurationError, match=r"set DJSHARE_LEFT_USER and DJSHARE_LEFT_PASS \(or DJ_USER and "
                       r"DJ_PASS\)\.$"):
        read_credentials("left", "db")
    monkeypatch.setenv("DJ_USER", "dj")
    monkeypatch.setenv("DJ_PASS", "djpw")
    assert read_credentials("left", "db")[:2] == ("dj", "djpw")
    monkeypatch.setenv("DJSHARE_LEFT_USER", "lefty")
    monkeypatch.setenv("DJSHARE_LEFT_PASS", "leftpw")
    assert read_credentials("left", "db")[:2] == ("lefty", "leftpw")


def test_an_address_has_the_backend_database_and_default_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJ_USER", "dj")
    monkeypatch.setenv("DJ_PASS", "secret")
    pg = sides.server("postgresql://pg/science").address("target")
    assert (pg.backend, pg.host, pg.port, pg.database, pg.user) == ("postgresql", "pg", 5432, "science", "dj")
    maria = sides.server("db:3307").address("target")
    assert (maria.backend, maria.port, maria.database) == ("mariadb", 3307, "")
    assert "secret" not in repr(pg) + repr(maria)
