"""One lock per (link, subscriber) on the source server, so that local-side commands of one subscriber
(pull, delete, repair) run one at a time. It is a MariaDB named lock (`backends.mariadb.named_lock`, GET_LOCK): the
server releases it when the holding connection ends, so a killed process never leaves it held."""

from __future__ import annotations

import contextlib

from djshare.backends.mariadb import Session, named_lock
from djshare.link.outbound import OutboundTable


def link_lock(session: Session, outbound: OutboundTable, subscriber: str,
              timeout: float) -> contextlib.AbstractContextManager[None]:
    """Local-side commands of one subscriber on one link, one at a time (lock on the source server)."""
    return named_lock(
        session, f"{outbound.full_name}/{subscriber}", timeout,
        f"Another djshare run (pull, delete or repair) of {outbound.source.full_name} for subscriber "
        f"{subscriber} held the link's lock for more than {timeout:g} s. Wait for it to finish and try again.",
    )
