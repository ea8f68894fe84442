"""Where a command's sides are, parsed from the command line in one place (no connection is made here).

    HOST[:PORT]                            a MariaDB server (`mysql://` or `mariadb://` may prefix it)
    postgresql://HOST[:PORT]/DATABASE      a PostgreSQL server and the database holding its schemas

followed, where a command names a schema or a table, by `/SCHEMA` or `/SCHEMA.TABLE`. A link's local schema may also be
a bare SCHEMA: on the local MariaDB server (DJ_HOST). User and password come from each role's variables
(`djshare.backends.address.read_credentials`), never from the text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from djshare.backends import postgresql
from djshare.backends.address import ServerAddress, read_credentials
from djshare.errors import ConfigurationError

POSTGRESQL = "postgresql://"
MARIADB_SCHEMES = ("mysql://", "mariadb://")
SERVER_FORMS = "HOST[:PORT] (MariaDB) or postgresql://HOST[:PORT]/DATABASE"


@dataclass(frozen=True)
class Location:
    """A server, and what follows it: "" (the server), SCHEMA, or SCHEMA.TABLE."""

    backend: str  # "mariadb" or "postgresql"
    host: str  # name or name:port
    database: str = ""  # PostgreSQL only
    path: str = ""

    @property
    def postgres(self) -> bool:
        return self.backend == "postgresql"

    @property
    def server(self) -> str:
        """The server as the user wrote it, without the path (safe to print: no credentials)."""
        return f"{POSTGRESQL}{self.host}/{self.database}" if self.postgres else self.host

    def address(self, role: str) -> ServerAddress:
        """Where to connect as `role` ("link", "local", "source", "target", "left", "right")."""
        user, password, given = read_credentials(role, self.server)
        address = ServerAddress.parse(self.host, user, password, postgresql.DEFAULT_PORT if self.postgres else None,
                                      credentials=given)
        return replace(address, backend="postgresql", database=self.database) if self.postgres else address


def parse(text: str) -> Location | None:
    """`text` as a Location, or None when it is not one of the forms above."""
    if text.startswith(POSTGRESQL):
        host, _, rest = text.removeprefix(POSTGRESQL).partition("/")
        database, _, path = rest.partition("/")
        return Location("postgresql", host, database, path) if host and database else None
    for scheme in MARIADB_SCHEMES:
        text = text.removeprefix(scheme)
    host, _, path = text.partition("/")
    return Location("mariadb", host, "", path) if host else None


def server(text: str, what: str = "") -> Location:
    """A server alone; `what` ("Source", ...) starts the message of a malformed one."""
    found = parse(text)
    if found is None or found.path or "/" in found.database:
        form = f"{POSTGRESQL}HOST[:PORT]/DATABASE" if text.startswith(POSTGRESQL) else SERVER_FORMS
        raise ConfigurationError(f"{what + ' ' if what else ''}{text!r} is not {form}.")
    return found


def link_source(host: str | None) -> Location:
    """A link's source server: --source-host or LINK_HOST."""
    if not host:
        raise ConfigurationError("No source server: pass --source-host or set LINK_HOST (host or host:port).")
    return server(host, "Source")


def local_schema(text: str) -> Location:
    """A link's local schema: SCHEMA on the local MariaDB server (DJ_HOST), or postgresql://HOST[:PORT]/DB/SCHEMA."""
    if not text.startswith(POSTGRESQL):
        if not text or "/" in text or "." in text:
            raise ConfigurationError(f"-l {text!r} is not a schema name: give SCHEMA (on the local server, DJ_HOST) "
                                     f"or {POSTGRESQL}HOST[:PORT]/DATABASE/SCHEMA.")
        return Location("mariadb", "", "", text)
    found = parse(text)
    if found is None or not found.path or "/" in found.path:
        raise ConfigurationError(f"{text!r} is not {POSTGRESQL}HOST[:PORT]/DATABASE/SCHEMA.")
    return found


def table(text: str) -> tuple[Location, str, str] | None:
    """A table on a server, HOST[:PORT]/SCHEMA.TABLE or postgresql://HOST[:PORT]/DATABASE/SCHEMA.TABLE, as
    (location, schema, table); None when `text` is not of these forms."""
    found = parse(text)
    if found is None:
        return None
    schema, dot, name = found.path.partition(".")
    return (found, schema, name) if dot and schema and name and "/" not in found.path else None


def split_table(text: str) -> tuple[str, str]:
    """A link's source table, SCHEMA.ClassName."""
    schema, dot, name = text.rpartition(".")
    if not dot or not schema or not name:
        raise ConfigurationError(f"{text!r} is not SCHEMA.ClassName (for example lab.Session).")
    return schema, name
