"""Turning a user's DataJoint restrictions into one SQL WHERE clause for a table on its own server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from djshare.backends.catalog import TableInfo
from djshare.backends.mariadb import Session
from djshare.errors import RestrictionError

if TYPE_CHECKING:
    from djshare.backends.mariadb_rows import MariaDB

if TYPE_CHECKING:
    import datajoint as dj


def one_condition(text: str) -> str:
    """`text`, checked to be one SQL condition that cannot reach outside the parentheses it is put in: outside
    quoted strings and quoted names, its parentheses balance and never close one they did not open, and it holds no
    statement end (`;`) and no comment (`--`, `#`, `/*`), which could hide a closing parenthesis. The server parses
    the rest (in its own dialect, MariaDB or PostgreSQL). RestrictionError for anything else."""
    depth, index, quote = 0, 0, ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote != "`":
                index += 1  # an escaped character (MariaDB strings)
            elif char == quote:
                quote = "" if text[index + 1:index + 2] != quote else quote  # a doubled quote stays inside
                if quote:
                    index += 1
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char == ";" or char == "#" or text.startswith(("--", "/*"), index):
            raise RestrictionError(f"Restriction {text!r} holds {text[index:index + 2].rstrip()!r} outside quotes: "
                                   "give one condition, without statements or comments. Nothing was changed.")
        index += 1
    if quote or depth:
        what = "an unclosed quote" if quote else ("a ')' that closes more than it opened" if depth < 0
                                                  else "an unclosed '('")
        raise RestrictionError(f"Restriction {text!r} has {what}: each restriction must be one condition on its own "
                               "(several restrictions are combined with AND). Nothing was changed.")
    return text


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
            if isinstance(item, str):
                one_condition(item)
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


def sql_restriction(restrictions: Sequence[Any], table: TableInfo, sql: MariaDB) -> str:
    """" WHERE ..." (or "") for `table` on the backend `sql` restricted by every one of `restrictions` (AND), as
    DataJoint takes them, without DataJoint: SQL text (one condition; the server parses it), a dict of attribute
    values (equal; None is IS NULL), or a list or tuple of these (OR; an empty one matches nothing). A dict naming an
    attribute the table does not have is refused (DataJoint 0.14 would silently ignore it and match every row)."""
    names = [c.name for c in table.columns]

    def condition(item: Any) -> str:
        if isinstance(item, str):
            return one_condition(item) if item.strip() else "TRUE"
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - set(names))
            if unknown:
                raise RestrictionError(
                    f"Restriction {dict(item)!r} names {', '.join(unknown)}, which {table.schema}.{table.name} "
                    f"does not have (its attributes: {', '.join(names)}). Nothing was changed.")
            return " AND ".join(f"{sql.quote(k)} IS NULL" if v is None else f"{sql.quote(k)} = {sql.value(v)}"
                                for k, v in item.items()) or "TRUE"
        if isinstance(item, list | tuple):
            return " OR ".join(f"({condition(i)})" for i in item) or "FALSE"
        raise RestrictionError(f"Restriction {item!r} is neither SQL text, a dict of attribute values, nor a list "
                               "of these: this link takes restrictions as DataJoint does, without DataJoint "
                               "classes, e.g. \"subject = 'm1'\" or {\"subject\": \"m1\"}.")

    conditions = [condition(r) for r in restrictions if not (isinstance(r, str) and not r.strip())]
    return " WHERE " + " AND ".join(f"({c})" for c in conditions) if conditions else ""
