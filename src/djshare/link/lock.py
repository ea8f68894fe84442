"""One lock per (link, subscriber) on the source server, so that local-side commands of one subscriber
(pull, delete, repair) run one at a time. It is a MariaDB named lock (GET_LOCK): the server releases it
when the holding connection ends, so a killed process never leaves it held."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from djshare.backends.mariadb import Session
from djshare.errors import LinkBusyError
from djshare.link.outbound import OutboundTable


@contextlib.contextmanager
def named_lock(session: Session, key: str, timeout: float, busy: str) -> Iterator[None]:
    """Hold MariaDB named lock `key` (hashed to fit) on `session`; LinkBusyError(busy) after `timeout` s."""
    name = "djshare:" + hashlib.sha1(key.encode()).hexdigest()[:40]
    got = session.scalar("SELECT GET_LOCK(%s, %s)", (name, timeout), doing="waiting for a djshare lock")
    if got != 1:
        raise LinkBusyError(busy)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.scalar("SELECT RELEASE_LOCK(%s)", (name,))


def link_lock(session: Session, outbound: OutboundTable, subscriber: str,
              timeout: float) -> contextlib.AbstractContextManager[None]:
    """Local-side commands of one subscriber on one link, one at a time (lock on the source server)."""
    return named_lock(
        session, f"{outbound.full_name}/{subscriber}", timeout,
        f"Another djshare run (pull, delete or repair) of {outbound.source.full_name} for subscriber "
        f"{subscriber} held the link's lock for more than {timeout:g} s. Wait for it to finish and try again.",
    )
