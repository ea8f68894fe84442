"""One lock per (link, subscriber) on the source server, so that local-side commands of one subscriber
(pull, delete, repair) run one at a time. It is a MariaDB named lock (GET_LOCK): the server releases it
when the holding connection ends, so a killed process never leaves it held."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from djshare.errors import LinkBusyError
from djshare.link.outbound import OutboundTable
from djshare.sql.connection import Session


@contextlib.contextmanager
def link_lock(session: Session, outbound: OutboundTable, subscriber: str, timeout: float) -> Iterator[None]:
    digest = hashlib.sha1(f"{outbound.full_name}/{subscriber}".encode()).hexdigest()[:40]
    name = f"djshare:{digest}"
    got = session.scalar("SELECT GET_LOCK(%s, %s)", (name, timeout), doing="waiting for the link's lock")
    if got != 1:
        raise LinkBusyError(
            f"Another djshare run (pull, delete or repair) of {outbound.source.full_name} for subscriber "
            f"{subscriber} held the link's lock for more than {timeout:g} s. Wait for it to finish and try again."
        )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.scalar("SELECT RELEASE_LOCK(%s)", (name,))
