"""Checks that read servers directly (not through djshare) to judge what djshare did."""

from __future__ import annotations

from tests.servers import MariaDBServer


def digest(server: MariaDBServer, schema: str, table: str) -> tuple[int, str]:
    """(row count, MD5 over every value's bytes in key order), computed by the server.

    Binary and text values are hashed as their stored bytes; FLOAT and DOUBLE as the text of the value
    widened to DOUBLE (whose text form round-trips exactly), so a changed bit changes the digest.
    """
    columns = server.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
        "ORDER BY ordinal_position", (schema, table),
    )
    key = server.query(
        "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema=%s AND table_name=%s "
        "AND constraint_name='PRIMARY' ORDER BY ordinal_position", (schema, table),
    )
    parts = []
    for name, kind in columns:
        ref = f"`{name}`"
        if kind in ("float", "double"):
            ref = f"CAST({ref} AS DOUBLE)"  # DOUBLE text round-trips exactly
        parts.append(f"IFNULL(MD5({ref}), 'null')")
    order = ", ".join(f"`{k[0]}`" for k in key)
    rows = server.query(
        f"SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', {', '.join(parts)}) ORDER BY {order} SEPARATOR ',')) "
        f"FROM `{schema}`.`{table}`"
    )
    count, value = rows[0]
    return int(count), str(value)  # type: ignore[call-overload]


def outbound_rows(server: MariaDBServer, schema: str, table: str) -> list[tuple[object, ...]]:
    return server.query(f"SELECT * FROM `{schema}`.`{table}` ORDER BY 1, 2, 3")


def count(server: MariaDBServer, schema: str, table: str, where: str = "TRUE") -> int:
    return int(server.query(f"SELECT COUNT(*) FROM `{schema}`.`{table}` WHERE {where}")[0][0])  # type: ignore[call-overload]


def invariant_holds(source: MariaDBServer, local: MariaDBServer, local_schema: str, table: str,
                    outbound_schema: str, outbound_table: str, key: str) -> list[object]:
    """Local keys with no outbound row (the invariant says: none)."""
    local_keys = {row for row in local.query(f"SELECT {key} FROM `{local_schema}`.`{table}`")}
    held = {row for row in source.query(f"SELECT {key} FROM `{outbound_schema}`.`{outbound_table}`")}
    return sorted(local_keys - held)  # type: ignore[type-var]
