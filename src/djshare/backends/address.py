"""Where a server is and as whom to connect: one shape for every backend."""

from __future__ import annotations

import os
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


# Where each role's user and password come from; `read_credentials` is the only reader of these variables.
ROLE_VARIABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "link": (("LINK_USER",), ("LINK_PASS",)),  # a link's source server: the link user there
    "local": (("DJ_USER",), ("DJ_PASS",)),  # a link's local server (DataJoint's own variables)
}


def role_variables(role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user and password variables of `role`, first found wins; roles of diff and export ("left", "right",
    "source", "target") read DJSHARE_<ROLE>_USER / _PASS, then DJ_USER / DJ_PASS."""
    if role in ROLE_VARIABLES:
        return ROLE_VARIABLES[role]
    upper = role.upper()
    return (f"DJSHARE_{upper}_USER", "DJ_USER"), (f"DJSHARE_{upper}_PASS", "DJ_PASS")


def credentials_label(role: str) -> str:
    """Where `role`'s user and password come from, for messages: "LINK_USER and LINK_PASS", ..."""
    users, passwords = role_variables(role)
    first = f"{users[0]} and {passwords[0]}"
    return first if len(users) == 1 else f"{first} (or {users[1]} and {passwords[1]})"


def read_credentials(role: str, server: str, user: str | None = None, password: str | None = None,
                     given_to: str = "") -> tuple[str, str, str]:
    """User, password and where they came from, for `role` on `server` (named in the message when they are missing).
    `user` / `password` given win over the environment; `given_to` names the API that takes them, for the message."""
    users, passwords = role_variables(role)
    found_user = user or next((os.environ[n] for n in users if os.environ.get(n)), None)
    found_password = password if password is not None else next(
        (os.environ[n] for n in passwords if n in os.environ), None)
    if not found_user or found_password is None:
        whose = " to the link user's name and password there" if role == "link" else ""
        alternative = f" (or pass user= and password= to {given_to})" if given_to else ""
        raise ConfigurationError(f"No credentials for the {ROLE_NAMES.get(role, role)} server {server}: set "
                                 f"{credentials_label(role)}{whose}{alternative}.")
    source = f"the user and password given to {given_to or 'djshare'}" if user else credentials_label(role)
    return found_user, found_password, source


ROLE_NAMES = {"link": "source", "local": "local"}
