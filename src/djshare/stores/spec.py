"""Store settings as DataJoint writes them in dj.config["stores"], for one server's side of a link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from djshare.errors import ConfigurationError

DEFAULT_SUBFOLDING = (2, 2)
REQUIRED = {"file": ("location",), "s3": ("endpoint", "bucket", "access_key", "secret_key", "location")}


class StoreNotConfiguredError(ConfigurationError):
    """A table names a store that the settings of its side do not describe."""


@dataclass(frozen=True)
class StoreSpec:
    name: str
    protocol: str  # "file" or "s3"
    location: str
    subfolding: tuple[int, ...] = DEFAULT_SUBFOLDING
    endpoint: str = ""
    bucket: str = ""
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    secure: bool = False
    stage: str = ""
    schema_prefix: str = "_schema"  # where DataJoint 2.x writes schema-addressed objects (<object@>, <npy@>)

    @classmethod
    def from_config(cls, name: str, stores: Mapping[str, Any], side: str) -> StoreSpec:
        """The spec of store `name` from a dj.config["stores"]-style mapping; `side` names it in errors."""
        if not isinstance(stores, Mapping):
            raise ConfigurationError(f"The {side} side's store settings are a {type(stores).__name__}, not a mapping "
                                     "of store names to settings ({\"name\": {\"protocol\": \"file\", ...}}).")
        if not isinstance(stores.get(name, {}), Mapping):
            raise ConfigurationError(f"The settings of store `{name}` ({side}) are a {type(stores[name]).__name__}, "
                                     "not a mapping ({\"protocol\": ..., \"location\": ...}).")
        if name not in stores:
            raise StoreNotConfiguredError(
                f"Store `{name}` is used by the {side} table but not configured on the {side} side "
                f"(configured there: {', '.join(sorted(stores)) or 'none'}). Add it to "
                + ("dj.config['stores']" if side == "local" else "LazySchema(..., stores={...}) of the source")
                + "."
            )
        raw = {str(k).lower(): v for k, v in dict(stores[name]).items()}
        protocol = str(raw.get("protocol", "")).lower()
        if protocol not in REQUIRED:
            raise ConfigurationError(f"Store `{name}` ({side}) has protocol {protocol!r}; djshare knows file and s3.")
        missing = [key for key in REQUIRED[protocol] if key not in raw]
        if missing:
            raise ConfigurationError(f"Store `{name}` ({side}) is missing {', '.join(missing)}.")
        return cls(
            name=name, protocol=protocol, location=str(raw["location"]),
            subfolding=tuple(raw.get("subfolding") or DEFAULT_SUBFOLDING),
            endpoint=str(raw.get("endpoint", "")), bucket=str(raw.get("bucket", "")),
            access_key=str(raw.get("access_key", "")), secret_key=str(raw.get("secret_key", "")),
            secure=bool(raw.get("secure", False)), stage=str(raw.get("stage", "") or ""),
            schema_prefix=str(raw["schema_prefix"] if raw.get("schema_prefix") is not None else "_schema"),
        )

    def same_place(self, other: StoreSpec) -> bool:
        """Whether the two specs name the same physical place (so the same path is the same object)."""
        if self.protocol != other.protocol:
            return False
        if self.protocol == "file":
            return _norm(self.location) == _norm(other.location)
        return (self.endpoint, self.bucket, _norm(self.location)) == (other.endpoint, other.bucket,
                                                                       _norm(other.location))

    @property
    def label(self) -> str:
        where = self.location if self.protocol == "file" else f"s3://{self.bucket}/{self.location} at {self.endpoint}"
        return f"store `{self.name}` ({where})"


def _norm(location: str) -> str:
    return location.rstrip("/")
