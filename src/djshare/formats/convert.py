"""Conversions between DataJoint's formats and backends, in one place: how a source column becomes a local one on
each pair of sides that is not a plain copy, and every refusal (what the local side cannot hold, with the reason
and what to do instead). Pure: columns and comments in, `Attribute`s and comments out.

| source         | local          | columns                            | comments (SHOW CREATE copy) |
|----------------|----------------|------------------------------------|-----------------------------|
| 0.14 MariaDB   | 2.x PostgreSQL | `dj014_mariadb_to_dj2_postgresql`  |                             |
| 2.x MariaDB    | 2.x PostgreSQL | `dj2_mariadb_to_dj2_postgresql`    |                             |
| 2.x PostgreSQL | 0.14 MariaDB   | `dj2_postgresql_to_dj014_mariadb`  |                             |
| 2.x PostgreSQL | 2.x MariaDB    | `dj2_postgresql_to_dj2_mariadb`    |                             |
| 0.14 MariaDB   | 2.x MariaDB    | the source's CREATE TABLE          | `dj2_comment`               |
| 2.x MariaDB    | 0.14 MariaDB   | the source's CREATE TABLE          | `dj014_comment`             |
| 2.x MariaDB    | 2.x MariaDB    | the source's CREATE TABLE          | `refuse_in_store`           |
| 2.x PostgreSQL | 2.x PostgreSQL | the source's catalog               | `renamed_store`             |
| 0.14 MariaDB   | 0.14 MariaDB   | the source's DataJoint definition  |                             |
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from djshare.backends.catalog import Column, TableInfo
from djshare.errors import ConfigurationError
from djshare.formats.heading import Attribute
from djshare.stores.formats.dj2 import codec_of

IN_STORE = re.compile(r"^:<(?P<codec>\w+)@(?P<store>[^>]*)>:")
FORMATS = ("dj2", "dj014")  # the DataJoint lines a local schema can be declared in
LAYOUTS = FORMATS  # the name of earlier releases


def chosen_format(format: str | None, layout: str | None, default: str) -> str:
    """A link's local format: `format=`, or `layout=` (its name in earlier releases, kept for one more), else
    `default`; ConfigurationError for any other value."""
    chosen = format or layout or default
    if chosen not in FORMATS:
        raise ConfigurationError(f"format={chosen!r}: use one of {', '.join(FORMATS)}.")
    return chosen
BLOBS = frozenset({"tinyblob", "blob", "mediumblob", "longblob"})  # a serialized blob in 0.14 without a type label
# the core type labels DataJoint 2.x's own migration (`datajoint.migrate.analyze_columns`) writes on 0.14 columns;
# unsigned integers widen to the next signed type that holds their range, as there
CORE_LABELS = {"tinyint unsigned": "int16", "smallint unsigned": "int32", "mediumint unsigned": "int32",
               "int unsigned": "int64", "bigint unsigned": "int64", "tinyint": "int8", "smallint": "int16",
               "mediumint": "int32", "int": "int32", "bigint": "int64", "float": "float32", "double": "float64"}
# 2.x type labels (on PostgreSQL) as 0.14 types on MariaDB, and PostgreSQL's native types there
LABEL = re.compile(r"^:(?P<label>[^:<][^:]*):(?P<comment>.*)$", re.DOTALL)
CORE = {"int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint", "float32": "float",
        "float64": "double", "bool": "tinyint", "json": "json", "date": "date"}
NATIVE = {"smallint": "smallint", "int": "int", "bigint": "bigint", "float": "float", "double": "double",
          "date": "date", "longtext": "longtext", "tinyint": "tinyint", "json": "json"}
# 0.14 (and 2.x core) MariaDB integer types as PostgreSQL types with their 2.x labels
SPECIAL = re.compile(r"^:(?P<type>[^:]+):(?P<comment>.*)$", re.DOTALL)
SIGNED = {"tinyint": ("smallint", "int8"), "smallint": ("smallint", "int16"), "mediumint": ("integer", "int32"),
          "int": ("integer", "int32"), "bigint": ("bigint", "int64")}
UNSIGNED = {"tinyint": ("smallint", "int16"), "smallint": ("integer", "int32"), "mediumint": ("integer", "int32"),
            "int": ("bigint", "int64"), "bigint": ("numeric(20,0)", "decimal(20,0)")}
TEXTS = frozenset({"tinytext", "text", "mediumtext", "longtext"})


def refuse_in_store(tables: tuple[TableInfo, ...]) -> None:
    """DataJoint 2.x in-store codecs on MariaDB are not linked (2.3.5 itself cannot insert them there)."""
    for table in tables:
        for column in table.columns:
            found = IN_STORE.match(column.comment)
            if found:
                raise ConfigurationError(
                    f"Column `{column.name}` of {table.full_name} is <{found['codec']}@{found['store']}>: links of "
                    "DataJoint 2.x schemas on MariaDB copy in-table types only (DataJoint 2.3.5 cannot insert "
                    "in-store types on MariaDB). Nothing was changed.")


def dj014_comment(text: str, column: str, table: str) -> str:
    """A 2.x column comment (SQL-quoted text) as DataJoint 0.14 writes it: `:<blob>:` is a plain longblob,
    `:<attach>:` is 0.14's `:attach:` (both store `name + NUL + contents`), uuid stays, core type labels go.
    Raises ConfigurationError for a 2.x type 0.14 would misread (raw `bytes`, other codecs)."""
    label = re.match(r"^:(?P<type>[^:]+):", text)
    if not label:
        return text
    kind, rest = label["type"], text[label.end():]
    if kind == "<attach>":
        return ":attach:" + rest
    if kind == "uuid":
        return ":uuid:" + rest
    if kind == "<blob>":
        return rest
    if kind.startswith("<") or kind == "bytes":
        why = "0.14 would take raw bytes in a longblob for a serialized blob" if kind == "bytes" else "a 2.x codec"
        raise ConfigurationError(f"Column `{column}` of {table} is `{kind}`, which DataJoint 0.14 cannot read "
                                 f"({why}): link this table into a 2.x schema instead. Nothing was changed.")
    return rest


def dj2_comment(text: str, column: Column, table: str) -> str:
    """A 0.14 column comment (SQL-quoted text) as DataJoint 2.x's migration writes it: a serialized blob (a longblob
    without a type label in 0.14) is `:<blob>:`, 0.14's `:attach:` is `:<attach>:` (both store the same bytes),
    integers and floats get their core type label (`:int32:`, `:float64:`), uuid stays. Raises ConfigurationError
    for what DataJoint 2.3.5 cannot hold on MariaDB (0.14's external objects would be in-store codecs) or cannot
    read (adapted types, whose adapter lives in the source lab's code)."""
    label = re.match(r"^:(?P<type>[^:]+):", text)
    if label is None:
        native = re.sub(r"\(\d+\)", "", column.column_type.lower()).replace(" zerofill", "").strip()
        core = "<blob>" if column.data_type in BLOBS else CORE_LABELS.get(native)
        return f":{core}:{text}" if core else text
    kind, rest = label["type"], text[label.end():]
    if kind == "attach":
        return ":<attach>:" + rest
    if kind == "uuid":
        return text
    where = f"Column `{column.name}` of {table}"
    if "@" in kind:
        raise ConfigurationError(
            f"{where} is `{kind}`, an external object: in DataJoint 2.x that is an in-store codec, which DataJoint "
            "2.3.5 cannot insert on MariaDB. Link the table into DataJoint 2.x on PostgreSQL (-l postgresql://...) "
            "or into 0.14's layout. Nothing was changed.")
    raise ConfigurationError(f"{where} has the type `{kind}` (an adapted type, whose adapter lives in the source "
                             "lab's code), which djshare cannot carry into DataJoint 2.x. Nothing was changed.")


def renamed_store(comment: str, store_map: Mapping[str, str]) -> str:
    """A source column comment for the local side: a codec's store renamed by `store_map`."""
    codec = codec_of(comment)
    if codec is None or codec[1] is None or codec[1] not in store_map:
        return comment
    return re.sub(r"@[\w\-]*>", f"@{store_map[codec[1]]}>", comment, count=1)


def _mariadb_default(column: Column) -> str | None:
    """A PostgreSQL default (`'rest'::"lab".enum_x`, `''::character varying`, `0`) as MariaDB takes it."""
    if column.nullable:
        return "NULL"
    default = (column.default or "").strip()
    if not default or default.upper() == "NULL":
        return None
    if default.upper().startswith(("CURRENT_TIMESTAMP", "NOW()")):
        return "CURRENT_TIMESTAMP"
    literal = re.match(r"^('(?:[^']|'')*')(::.*)?$", default, flags=re.DOTALL)
    if literal:
        return literal[1].replace("\\", "\\\\")
    if re.fullmatch(r"-?\d+(\.\d+)?", default):
        return default
    if default in ("true", "false"):
        return "1" if default == "true" else "0"
    raise ConfigurationError(f"Column `{column.name}` has the default {default!r}, which djshare does not carry "
                             "into MariaDB.")


def dj2_postgresql_to_dj2_mariadb(column: Column, table: str) -> Attribute:
    """The MariaDB column as DataJoint 2.x declares it there: the MySQL type of the 2.x type, the comment as the
    source has it (type label or codec first). In-store codecs are refused: DataJoint 2.3.5 cannot insert them on
    MariaDB."""
    where = f"Column `{column.name}` of {table}"
    codec = codec_of(column.comment)
    if codec is not None and codec[1] is not None:
        raise ConfigurationError(
            f"{where} is <{codec[0]}@{codec[1]}>: DataJoint 2.3.5 cannot insert in-store codecs on MariaDB. Link the "
            "table into PostgreSQL, or into 0.14's layout (layout=\"dj014\": <blob@> and <attach@> become 0.14 "
            "external objects). Nothing was changed.")
    labelled = LABEL.match(column.comment)
    if (codec is not None and codec[0] in ("blob", "attach")) or (labelled and labelled["label"].strip() == "bytes"):
        return Attribute(column.name, "longblob", "", column.comment, column.nullable, _mariadb_default(column))
    return replace(dj2_postgresql_to_dj014_mariadb(column, table, {}), label="", comment=column.comment)


def dj2_postgresql_to_dj014_mariadb(column: Column, table: str, stores: Mapping[str, str]) -> Attribute:
    """The MariaDB column, in DataJoint 0.14's layout, for a 2.x column on PostgreSQL (`stores`: source store ->
    local store). Raises ConfigurationError for what 0.14 cannot hold from this link (path-addressed codecs,
    `<hash@>`, raw bytes, other codecs, unknown types)."""
    where = f"Column `{column.name}` of {table}"
    codec = codec_of(column.comment)
    labelled = LABEL.match(column.comment) if codec is None else None
    comment = column.comment.split(":", 2)[2] if codec or labelled else column.comment

    def make(sql_type: str, kind: str = "plain", label: str = "") -> Attribute:
        return Attribute(column.name, sql_type, label, comment, column.nullable, _mariadb_default(column), kind)

    if codec is not None:
        kind, store = codec
        if store is not None and kind in ("blob", "attach"):
            local_store = stores.get(store or "", store or "")
            return Attribute(column.name, "binary(16)", f"{kind}@{local_store}", comment, column.nullable,
                          "NULL" if column.nullable else None, "ref", local_store, store, kind)
        if store is not None:
            raise ConfigurationError(
                f"{where} is <{kind}@{store}>, which has no DataJoint 0.14 equivalent (0.14 knows blob@, attach@ "
                "and filepath@ with ~external tables). Link the table into PostgreSQL or leave the column "
                "out of the shared slice. Nothing was changed.")
        if kind == "blob":
            return make("longblob")
        if kind == "attach":
            return make("longblob", label="attach")
        raise ConfigurationError(f"{where} has the codec <{kind}>, which DataJoint 0.14 does not know. "
                                 "Nothing was changed.")
    label = labelled["label"].strip() if labelled else ""
    base = re.sub(r"\s*\(.*$", "", label, flags=re.DOTALL)
    if label == "uuid" or column.data_type == "uuid":
        return make("binary(16)", "uuid", "uuid")
    if label == "bytes" or (not label and column.data_type == "longblob"):
        raise ConfigurationError(f"{where} holds raw bytes, which DataJoint 0.14 would read as a serialized blob. "
                                 "Nothing was changed.")
    if base in ("varchar", "char", "decimal", "datetime", "enum"):
        return make(label.replace('"', "'"), "plain")
    if label in CORE:
        return make(CORE[label], "bool" if label == "bool" else "json" if label == "json" else "plain")
    if not label and column.labels:  # an enum 2.x inherited through a foreign key: no comment, labels in the catalog
        return make("enum(" + ",".join("'" + v.replace("'", "''") + "'" for v in column.labels) + ")")
    if not label and column.data_type in NATIVE:
        return make(NATIVE[column.data_type], "bool" if column.column_type == "boolean" else
                    "json" if column.data_type == "json" else "plain")
    if not label and column.data_type in ("varchar", "char", "datetime", "decimal"):
        size = re.search(r"\(.*\)", column.column_type)
        spelled = {"datetime": "datetime", "decimal": "decimal"}.get(column.data_type, column.data_type)
        return make(spelled + (size[0] if size else ""))
    raise ConfigurationError(f"{where} has the type {label or column.column_type!r}, which djshare does not carry "
                             "into DataJoint 0.14 on MariaDB. Nothing was changed.")


def _enum_values(column_type: str) -> tuple[str, ...]:
    return tuple(v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", column_type))


def enum_type_name(values: Sequence[str]) -> str:
    """The PostgreSQL type DataJoint 2.x declares for an enum (named by a hash of its sorted values)."""
    return "enum_" + hashlib.md5("_".join(sorted(values)).encode()).hexdigest()[:8]


def _postgresql_default(column: Column, sql_type: str) -> str | None:
    if column.nullable:
        return "NULL"
    default = column.default
    if default is None or default.upper() == "NULL":
        return None
    if re.fullmatch(r"current_timestamp(\(\d*\))?", default, flags=re.IGNORECASE):
        return "CURRENT_TIMESTAMP"
    if default.startswith("'"):  # MariaDB quotes string defaults with doubled quotes, as PostgreSQL reads them
        return default.replace("\\\\", "\\")
    return f"'{default}'::{sql_type}" if sql_type.startswith("enum_") else default


def dj014_mariadb_to_dj2_postgresql(column: Column, table: str, stores: Mapping[str, str]) -> Attribute:
    """The PostgreSQL column and 2.x type for a 0.14 column on MariaDB; `stores` maps source to local stores.

    Raises ConfigurationError for what 2.x cannot hold as it is (filepath, adapted types, bit, set, geometry).
    """
    special = SPECIAL.match(column.comment)
    comment = special["comment"] if special else column.comment
    kind = special["type"] if special else ""
    where = f"Column `{column.name}` of {table}"

    def make(sql_type: str, label: str, convert: str = "plain", store: str = "") -> Attribute:
        return Attribute(column.name, sql_type, label, comment, column.nullable, _postgresql_default(column, sql_type),
                         convert, store)

    if kind:
        base, _, store = kind.partition("@")
        if kind == "uuid":  # as 2.x declares it (2.3.5 itself fails to insert or fetch such columns on PostgreSQL)
            return make("uuid", "uuid", "uuid")
        if kind in ("attach", "blob"):
            return make("bytea", f"<{kind}>")
        if store and base in ("blob", "attach"):
            local_store = stores.get(store, store)
            return make("jsonb", f"<{base}@{local_store}>", "ref", local_store)
        if base == "filepath":
            raise ConfigurationError(
                f"{where} is `{kind}`: DataJoint 2.x's <filepath@store> addresses files inside the store by path, "
                "with no contents hash, so 0.14 filepaths cannot be converted. Link this table into MariaDB, or "
                "leave the column out of the source table's shared slice.")
        if kind.startswith("<"):
            raise ConfigurationError(f"{where} has the adapted type `{kind}`, whose adapter lives in the source "
                                     "lab's code; djshare cannot convert it to DataJoint 2.x.")
        raise ConfigurationError(f"{where} has the DataJoint type `{kind}`, which djshare cannot convert to 2.x.")
    data_type, column_type = column.data_type, column.column_type.lower()
    if data_type in SIGNED:
        sql_type, label = (UNSIGNED if "unsigned" in column_type else SIGNED)[data_type]
        identity = " GENERATED BY DEFAULT AS IDENTITY" if "auto_increment" in column.extra.lower() else ""
        return make(sql_type + identity, label)
    if data_type == "float":
        return make("real", "float32")
    if data_type == "double":
        return make("double precision", "float64")
    if data_type == "decimal":
        precision = re.search(r"\((\d+),(\d+)\)", column_type)
        digits = f"({precision[1]},{precision[2]})" if precision else ""
        return make(f"numeric{digits}", f"decimal{digits}" if digits else "")
    if data_type in ("char", "varchar"):
        size = re.search(r"\(\d+\)", column_type)
        spelled = f"{data_type}{size[0] if size else ''}"
        return make(spelled, spelled, "char" if data_type == "char" else "plain")
    if data_type in TEXTS:
        return make("text", "")
    if data_type == "enum":
        values = _enum_values(column.column_type)
        target = make(enum_type_name(values), "enum(" + ",".join("'" + v.replace("'", "''") + "'" for v in values)
                      + ")")
        return replace(target, enum_values=values)
    if data_type == "date":
        return make("date", "date")
    if data_type == "datetime":
        fraction = re.search(r"\((\d+)\)", column_type)
        return make(f"timestamp{fraction[0] if fraction else ''}", f"datetime{fraction[0] if fraction else ''}")
    if data_type == "timestamp":
        fraction = re.search(r"\((\d+)\)", column_type)
        return make(f"timestamp{fraction[0] if fraction else ''}", "")
    if data_type == "time":
        return make("interval", "")
    if data_type == "year":
        return make("smallint", "")
    if data_type == "json":
        return make("jsonb", "json")
    if data_type in BLOBS:
        return make("bytea", "<blob>")
    if data_type in ("binary", "varbinary"):
        return make("bytea", "")
    raise ConfigurationError(f"{where} has the MariaDB type `{column.column_type}`, which djshare does not convert "
                             "to PostgreSQL.")


def dj2_mariadb_to_dj2_postgresql(column: Column, table: str) -> Attribute:
    """The PostgreSQL column for a DataJoint 2.x column on MariaDB: 2.x's core types name the same values on both
    servers, so the type label decides (read through `dj014_mariadb_to_dj2_postgresql` as the 0.14 column with the
    same bytes), with `bool`, `json` and `bytes`, which 0.14 lacks, as 2.x declares them on PostgreSQL."""
    label = SPECIAL.match(column.comment)
    kind, rest = (label["type"], label["comment"]) if label else ("", column.comment)
    native = {"bool": ("boolean", "bool"), "json": ("jsonb", "json"), "bytes": ("bytea", "bytes")}
    if kind in native:
        sql_type, core = native[kind]
        default = _postgresql_default(column, sql_type)
        if kind == "bool" and default in ("0", "1"):
            default = "false" if default == "0" else "true"
        return Attribute(column.name, sql_type, core, rest, column.nullable, default)
    return dj014_mariadb_to_dj2_postgresql(replace(column, comment=dj014_comment(column.comment, column.name, table)),
                                            table, {})



Converter = Callable[[Column, TableInfo], Attribute]


def attribute_converter(source_backend: str, source_format: str, local_backend: str, local_format: str,
                        stores: Mapping[str, str]) -> Converter:
    """How each column of a source table becomes a local attribute for a pair of sides whose local tables djshare
    declares from a heading (`stores`: source store -> local store)."""
    pairs: dict[tuple[str, str, str, str], Converter] = {
        ("mariadb", "dj014", "postgresql", "dj2"):
            lambda c, t: dj014_mariadb_to_dj2_postgresql(c, t.full_name, stores),
        ("mariadb", "dj2", "postgresql", "dj2"): lambda c, t: dj2_mariadb_to_dj2_postgresql(c, t.full_name),
        ("postgresql", "dj2", "mariadb", "dj014"):
            lambda c, t: dj2_postgresql_to_dj014_mariadb(c, f"{t.schema}.{t.name}", stores),
        ("postgresql", "dj2", "mariadb", "dj2"): lambda c, t: dj2_postgresql_to_dj2_mariadb(c, f"{t.schema}.{t.name}"),
    }
    try:
        return pairs[(source_backend, source_format, local_backend, local_format)]
    except KeyError:
        raise ConfigurationError(f"djshare declares no {local_format} tables on {local_backend} from a "
                                 f"{source_format} source on {source_backend} by heading.") from None
