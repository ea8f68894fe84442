"""Turning a user's DataJoint restrictions into one SQL WHERE clause for a table on its own server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from djshare.errors import RestrictionError
from djshare.sql.connection import Session

if TYPE_CHECKING:
    import datajoint as dj


def where_clause(connection: dj.Connection, full_name: str, restrictions: Sequence[Any]) -> str:
    """" WHERE ..." (or "") for `full_name` restricted by every one of `restrictions` (AND).

    A list or tuple inside `restrictions` means OR, as in DataJoint. A dict naming an attribute the table
    does not have is an error here (DataJoint would silently ignore it and match every row).
    """
    import datajoint as dj  # DataJoint 0.14: links of DataJoint classes only

    table = dj.FreeTable(connection, full_name)
    names = set(table.heading.names)
    query = table
    for restriction in restrictions:
        for item in restriction if isinstance(restriction, list | tuple) else [restriction]:
            if isinstance(item, Mapping):
                unknown = sorted(set(item) - names)
                if unknown:
                    raise RestrictionError(
                        f"Restriction {dict(item)!r} names {', '.join(unknown)}, which {full_name} does not have "
                        f"(its attributes: {', '.join(table.heading.names)}). Nothing was changed."
                    )
        try:
            query = query & restriction
        except dj.DataJointError as error:
            raise RestrictionError(f"Restriction {restriction!r} cannot apply to {full_name}: {error}") from None
    return str(query.where_clause())


def check_where(session: Session, full_name: str, where: str) -> None:
    """Let the server parse the restriction before anything changes (one round trip, reads no rows)."""
    session.rows(f"SELECT 1 FROM {full_name}{where} LIMIT 0", doing=f"checking the restriction on {full_name}")
