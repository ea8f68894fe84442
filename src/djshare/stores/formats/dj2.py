"""DataJoint 2.x storage: no `~external` table; a `<blob@store>` or `<attach@store>` column holds a JSON reference

    {"hash": base32(MD5(object)), "path": "_hash/{schema}/{hash}", "size": n, "store": name, "schema": schema}

(26 lowercase base32 characters, no padding; the path is below the store's location and is what DataJoint reads).
Path-addressed codecs hold JSON with a `path` (and `store`, `size`, ...): `<object@store>` and `<npy@store>` write
`{schema_prefix}/[{partition}=.../]{schema}/{table}/{key}=.../{field}_{token}[.ext]` (a file, or for `<object@>` a
folder with a `.manifest.json` beside it); `<filepath@store>` names a file the lab put in the store.
Objects: a blob is the serialized blob (the same bytes as 0.14's); an attachment is `name + NUL + contents` (0.14
stored the contents alone and salted its hash with `name + NUL`). Column types are codecs written at the start
of the column comment (`:<blob@main>:`) and core types likewise (`:int32:`).

Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from djshare.errors import IntegrityViolation

HASH_PREFIX = "_hash"
CODEC = re.compile(r"^:(?P<codec><(?P<name>[a-z]\w*)(@(?P<store>[\w\-]*))?>):", re.IGNORECASE)
HASHED_CODECS = frozenset({"blob", "attach", "hash"})  # stored at `_hash/` paths when they name a store
SCHEMA_CODECS = frozenset({"object", "npy"})  # stored at `{schema_prefix}/{schema}/{table}/{key}/{field}_{token}`
PATH_CODECS = SCHEMA_CODECS | {"filepath"}  # no content hash: `<filepath@store>` names a path the lab chose
SCHEMA_PREFIX = "_schema"  # a store's default `schema_prefix`


def content_hash(digest: bytes) -> str:
    """An MD5 digest (16 bytes) as DataJoint 2.x writes it: base32, lowercase, no padding."""
    if len(digest) != 16:
        raise ValueError(f"an MD5 digest has 16 bytes, not {len(digest)}")
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def digest_of(content: str) -> bytes:
    """The MD5 digest a 2.x content hash encodes (inverse of `content_hash`)."""
    return base64.b32decode(content.upper() + "======")


def hash_path(schema: str, content: str) -> str:
    """Where a hash-addressed object lives below its store's location (2.x default: no subfolding)."""
    return f"{HASH_PREFIX}/{schema}/{content}"


@dataclass(frozen=True)
class Reference:
    """A 2.x reference to a hash-addressed object."""

    hash: str
    path: str
    size: int
    store: str
    schema: str

    @classmethod
    def of(cls, data_md5: bytes, size: int, store: str, schema: str) -> Reference:
        content = content_hash(data_md5)
        return cls(content, hash_path(schema, content), size, store, schema)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, text: str | bytes | dict[str, Any]) -> Reference:
        value: dict[str, Any] = json.loads(text) if isinstance(text, (str, bytes)) else text
        try:
            return cls(str(value["hash"]), str(value["path"]), int(value["size"]), str(value["store"]),
                       str(value.get("schema", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a DataJoint 2.x reference: {text!r}") from error


def attachment_prefix(name: str) -> bytes:
    """What a 2.x attachment object holds before the file's contents."""
    return name.encode("utf-8") + b"\0"


def attachment_name(head: bytes) -> str:
    """The file name a 2.x attachment object starts with (`head`: its first bytes, up to and with the NUL)."""
    name, nul, _ = head.partition(b"\0")
    if not nul:
        raise IntegrityViolation(f"An <attach> object starts with {head[:40]!r}...: no `name + NUL` before its "
                                 "contents, so it is not a DataJoint 2.x attachment.")
    return name.decode("utf-8")


def codec_of(comment: str) -> tuple[str, str | None] | None:
    """(codec name, store or None) of a 2.x codec column's comment (`:<blob@main>:` -> ("blob", "main"))."""
    found = CODEC.match(comment)
    if not found:
        return None
    return found["name"].lower(), found["store"]


def schema_path_rule(source_prefix: str, source_schema: str, local_prefix: str, local_schema: str) -> tuple[str, str]:
    """A regular expression and its replacement, the same in Python's `re.sub` and PostgreSQL's `regexp_replace`,
    that move a schema-addressed path to another store's `schema_prefix` and another schema (partition and key
    folders, table, field and token stay)."""
    head = source_prefix.strip("/")
    pattern = "^" + (re.escape(head + "/") if head else "") + "((?:[^/]*=[^/]*/)*)" + re.escape(source_schema) + "/"
    local = local_prefix.strip("/")
    replacement = ((local + "/") if local else "").replace("\\", "\\\\") + "\\1" \
        + local_schema.replace("\\", "\\\\") + "/"
    return pattern, replacement


def relocated(path: str, rule: tuple[str, str]) -> str | None:
    """`path` moved by a `schema_path_rule`, or None when the path does not follow the layout."""
    pattern, replacement = rule
    return re.sub(pattern, replacement, path, count=1) if re.match(pattern, path) else None


def is_covered(path: str, referenced: set[str]) -> bool:
    """Whether a stored file belongs to a referenced object: it is one, lies in a referenced folder, or is the
    `.manifest.json` beside a referenced folder (as DataJoint 2.x's own gc decides)."""
    path = path.removesuffix(".manifest.json")
    parts = path.split("/")
    return any("/".join(parts[:end]) in referenced for end in range(len(parts), 0, -1))
