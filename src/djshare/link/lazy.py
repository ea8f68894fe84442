# ruff: noqa: E402 - the DataJoint line is checked before DataJoint is imported
"""`LazySchema`: a DataJoint 0.14 schema, local or on a source server, that connects only when first needed; the
seed API's way to name a link's sides (`@Link(local_schema, source_schema)`). Its address is read once, from
its arguments, DataJoint's settings (local) or LINK_USER / LINK_PASS (source)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from djshare.lines import require_dj014

require_dj014()  # before DataJoint's imports: under 2.x they would fail less clearly

import datajoint as dj
import pymysql

from djshare.backends.address import ServerAddress, read_credentials
from djshare.backends.mariadb import Session, timeouts, translate
from djshare.defaults import timeout
from djshare.errors import ConfigurationError, MissingPrivilegeError


class TimedConnection(dj.Connection):
    """DataJoint's connection with the read/write timeouts of djshare's own sessions (DJSHARE_TIMEOUT): a server
    that goes silent fails the query instead of hanging it, and the server ends a session left silent that long."""

    def connect(self) -> None:
        wait = timeout()
        self.conn_info.update(read_timeout=wait, write_timeout=wait)
        self.init_fun = "SET SESSION " + timeouts(wait)
        super().connect()


class LazySchema:
    """A DataJoint schema that connects only when first needed.

    Without `host` it is on the local server, with DataJoint's settings (dj.config, DJ_HOST, DJ_USER,
    DJ_PASS). With `host` ("name" or "name:port") it is on a source server, and its user and password
    come from LINK_USER and LINK_PASS unless given here. `stores` holds the store settings of this
    schema's server in dj.config["stores"] form (default: dj.config["stores"]); a source lab's stores
    usually differ from the local ones (other locations, endpoints, credentials).
    """

    def __init__(self, schema_name: str, *, host: str | None = None, user: str | None = None,
                 password: str | None = None, port: int | None = None, use_tls: bool | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.name = schema_name
        self._stores = stores
        self.host = host
        self._user = user
        self._password = password
        self._port = port
        self._use_tls = use_tls
        self._connection: dj.Connection | None = None
        self._schema: dj.Schema | None = None
        self._address: ServerAddress | None = None

    def __repr__(self) -> str:
        return f"LazySchema({self.name!r}, host={self.host!r})"

    @property
    def is_source(self) -> bool:
        return self.host is not None

    @property
    def address(self) -> ServerAddress:
        """Where this schema lives; read from settings once, then fixed for this object's lifetime."""
        if self._address is None:
            self._address = self._read_address()
        return self._address

    def _read_address(self) -> ServerAddress:
        use_tls = bool(self._use_tls if self._use_tls is not None else dj.config.get("database.use_tls") or False)
        if self.host is not None:
            user, password, given = read_credentials("link", self.host, self._user, self._password, "LazySchema")
            return ServerAddress.parse(self.host, user, password, self._port, use_tls, credentials=given)
        user = self._user or dj.config.get("database.user")
        password = self._password if self._password is not None else dj.config.get("database.password")
        if not user:
            raise ConfigurationError(
                "No user for the local server: set DJ_USER and DJ_PASS (or dj.config['database.user'] and "
                "dj.config['database.password'])."
            )
        host = str(dj.config.get("database.host") or "localhost")
        given = ("the user and password given to LazySchema" if self._user else
                 "DJ_USER and DJ_PASS (or dj.config['database.user'] and dj.config['database.password'])")
        return ServerAddress.parse(host, str(user), str(password or ""), self._port or dj.config.get("database.port"),
                                   use_tls, credentials=given)

    def store_settings(self) -> Mapping[str, Mapping[str, Any]]:
        """Store settings of this schema's side: `stores=` if given, else dj.config["stores"]."""
        return self._stores if self._stores is not None else dict(dj.config.get("stores") or {})

    @property
    def connection(self) -> dj.Connection:
        if self._connection is None:
            address = self.address
            try:
                self._connection = TimedConnection(f"{address.host}:{address.port}", address.user, address.password,
                                                   use_tls=address.use_tls)
            except pymysql.err.MySQLError as error:
                raise translate(error, address, f"connecting for schema `{self.name}`") from error
        return self._connection

    @property
    def schema(self) -> dj.Schema:
        """The activated DataJoint schema (created on a local server if missing)."""
        if self._schema is None:
            try:
                self._schema = dj.Schema(self.name, connection=self.connection, create_schema=not self.is_source,
                                         create_tables=not self.is_source)
            except dj.DataJointError as error:
                address = self.address
                raise MissingPrivilegeError(
                    f"Schema `{self.name}` on {address.host}:{address.port} cannot be used as user {address.user}: "
                    f"{error} Ask the server's admin to create it or to grant it, e.g. GRANT ALL PRIVILEGES ON "
                    f"`{self.name}`.* TO '{address.user}'@'%'. Nothing was changed there.",
                    grant=f"GRANT ALL PRIVILEGES ON `{self.name}`.* TO '{address.user}'@'%'") from None
        return self._schema

    def session(self) -> Session:
        """A new data-plane connection to this schema's server."""
        return Session(self.address)

    def __call__(self, cls: type) -> type:
        """Decorate a DataJoint table class, as dj.Schema does."""
        return self.schema(cls)
