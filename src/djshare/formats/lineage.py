"""`~lineage`: where each key or foreign-key attribute of a DataJoint 2.x table comes from, as
"schema.table.attribute". DataJoint 2.x joins, restricts and aggregates two tables on a namesake attribute only when
both name the same origin.

A linked copy keeps the source's lineage with the source schema renamed to the local one, whether or not the
origin's table is linked (yet): tables linked one at a time into one schema then join as they do on the source.
A 0.14 source has no `~lineage`; its lineage is derived from the foreign keys as 2.x's
`schema.rebuild_lineage()` derives it. Pure: rows and foreign keys in, rows out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from djshare.backends import dialect
from djshare.backends.catalog import ForeignKey
from djshare.backends.mariadb import quote_name
from djshare.backends.postgresql import name

LINEAGE_TABLE = "~lineage"
Row = tuple[str, str, str]  # (table name, attribute name, origin)


def localized(rows: Iterable[Sequence[Any]], source_schema: str, local_schema: str, tables: Iterable[str]) -> list[Row]:
    """The `~lineage` rows of `tables` (from the source's rows) for the local schema: an origin in the source schema
    names the same table and attribute in the local schema; an origin in another schema is kept."""
    wanted = set(tables)
    found = []
    for table, attribute, origin in rows:
        if str(table) not in wanted:
            continue
        schema, _, rest = str(origin).partition(".")
        found.append((str(table), str(attribute), f"{local_schema}.{rest}" if schema == source_schema else str(origin)))
    return sorted(found)


def derived(schema: str, keys: Mapping[str, Sequence[str]], foreign_keys: Iterable[ForeignKey]) -> list[Row]:
    """Lineage rows of the tables in `keys` (table name -> primary key columns) of `schema`: every key attribute and
    every attribute a foreign key brings, hidden ones (`_name`) left out. A foreign-key attribute has its parent's
    origin, followed through every table (and schema) `foreign_keys` knows; any other attribute is its own origin."""
    parent = {(fk.child[0], fk.child[1], child): (fk.parent[0], fk.parent[1], column)
              for fk in foreign_keys for child, column in fk.columns}

    def origin(at: tuple[str, str, str]) -> str:
        seen = set()
        while at in parent and at not in seen:
            seen.add(at)
            at = parent[at]
        return ".".join(at)

    found = set()
    for table, key in keys.items():
        columns = set(key) | {c for s, t, c in parent if (s, t) == (schema, table)}
        found |= {(table, c, origin((schema, table, c))) for c in columns if not c.startswith("_")}
    return sorted(found)


def lineage_declaration(schema: str, backend: str = "mariadb") -> str:
    """`~lineage` as DataJoint 2.x declares it on MariaDB or PostgreSQL."""
    if backend == "postgresql":
        return (f"CREATE TABLE IF NOT EXISTS {name(schema, LINEAGE_TABLE)} (table_name varchar(64) NOT NULL, "
                "attribute_name varchar(64) NOT NULL, lineage varchar(255) NOT NULL, "
                "PRIMARY KEY (table_name, attribute_name))")
    return (f"CREATE TABLE IF NOT EXISTS {quote_name(schema, LINEAGE_TABLE)} (\n"
            "  `table_name` varchar(64) NOT NULL COMMENT 'table name within the schema',\n"
            "  `attribute_name` varchar(64) NOT NULL COMMENT 'attribute name',\n"
            "  `lineage` varchar(255) NOT NULL COMMENT 'origin: schema.table.attribute',\n"
            "  PRIMARY KEY (`table_name`, `attribute_name`)\n) ENGINE=InnoDB")


def lineage_upsert(schema: str, backend: str = "mariadb") -> str:
    """The statement recording one `Row` (three %s parameters), replacing the attribute's origin where recorded."""
    sql = dialect(backend)
    return (f"INSERT INTO {sql.quote(schema, LINEAGE_TABLE)} VALUES (%s, %s, %s)"
            + sql.upsert(("table_name", "attribute_name", "lineage"), ("table_name", "attribute_name")))
