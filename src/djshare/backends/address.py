"""Where a server is and as whom to connect: one shape for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from djshare.errors import ConfigurationError, DjshareError

DEFAULT_PORT = 3306


@dataclass(frozen=True)
class ServerAddress:
    """Where and as whom to connect. `label` is safe to print; the password never is."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    use_tls: bool = False
    backend: str = "mariadb"  # or "postgresql" (see sql/postgres.py)
    database: str = ""  # PostgreSQL: the database holding the schemas
    credentials: str = field(default="", compare=False)  # where user and password came from, for error messages

    @classmethod
    def parse(cls, host: str, user: str, password: str, port: int | None = None,
              use_tls: bool = False, credentials: str = "") -> ServerAddress:
        """`host` may be "name" or "name:port"; a port in `host` wins over `port`. `credentials` names where the
        user and password came from (e.g. "LINK_USER and LINK_PASS"), for the message a wrong password gets."""
        name, _, port_text = host.partition(":")
        number = port or DEFAULT_PORT
        if port_text:
            try:
                number = int(port_text)
            except ValueError:
                raise DjshareError(f"Host {host!r} has a port that is not a number; write it as name:3306.") from None
        if not 1 <= number <= 65535:
            raise ConfigurationError(f"Port {number} of {host!r} is out of range: a port is 1 to 65535.")
        return cls(name or "localhost", number, user, password, use_tls, credentials=credentials)

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"
