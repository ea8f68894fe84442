"""djshare's errors: one root, a few kinds a user must tell apart.

Every message names the thing (table, server, key), says what state is left and what to do. Details are
kept as attributes so that callers and tests need not parse text. `retryable` tells whether running the
same command again may succeed without changing anything else.
"""

from __future__ import annotations


class DjshareError(Exception):
    """Root of all djshare errors."""

    retryable = False


class ConfigurationError(DjshareError):
    """A setting is missing or wrong (LINK_USER, LINK_PASS, LINK_OUTBOUND, host)."""


class UnknownTableError(DjshareError):
    """A schema or table does not exist, or a class name does not match a source table."""


class ServerUnreachableError(DjshareError):
    retryable = True


class AuthenticationError(DjshareError):
    """Wrong user name or password."""


class MissingPrivilegeError(DjshareError):
    """The connected user lacks a grant; `grant` says which statement would fix it."""

    def __init__(self, message: str, grant: str = "") -> None:
        super().__init__(message)
        self.grant = grant


class RestrictionError(DjshareError):
    """A restriction could not be turned into SQL or was rejected by the server."""


class DefinitionMismatchError(DjshareError):
    """The local table's definition no longer matches the source table's."""


class IntegrityViolation(DjshareError):
    """Stored rows break a link invariant that djshare cannot fix on its own."""


class InterruptedOperation(DjshareError):
    """A command stopped part way (lost connection, killed); re-running it or `repair` converges."""

    retryable = True


class LinkBusyError(DjshareError):
    """Another run holds the link's lock for longer than this run was willing to wait."""

    retryable = True
