"""Which DataJoint line is installed. Links and exports of DataJoint classes are written against DataJoint
0.14's Python API; `djshare diff` and sync, links of 2.x schemas (`djshare.link.dj2`, `djshare.link.pg`) and
exports (`djshare.export.engine`; only the 0.14 capture hook needs 0.14) need no DataJoint at all. DataJoint
0.14 and 2.x cannot be installed in one environment, so a lab on 2.x installs `djshare[dj2]`."""

from __future__ import annotations

from importlib import metadata

from djshare.errors import ConfigurationError


def datajoint_version() -> str | None:
    try:
        return metadata.version("datajoint")
    except metadata.PackageNotFoundError:
        return None


def require_dj014() -> None:
    """Refuse, naming the fix, where the installed DataJoint is not 0.14 (links of DataJoint classes need it)."""
    refusal = dj014_refusal()
    if refusal is not None:
        raise refusal


def dj014_refusal() -> ConfigurationError | None:
    """What `require_dj014` raises where the installed DataJoint is not 0.14, else None (imports no DataJoint)."""
    version = datajoint_version()
    if version is None or not version.startswith("0.14."):
        installed = f"DataJoint {version} is installed" if version else "DataJoint is not installed"
        return ConfigurationError(
            f"Links from DataJoint 0.14 schemas into 0.14's format or into PostgreSQL, and 0.14's capture and export "
            "API (`djshare.export.capture`, `djshare.export.write`), need DataJoint 0.14 "
            f"({installed}): use an environment with `pip install 'djshare[dj014]'`. With DataJoint 2.x (or none): "
            "`djshare diff` and sync, every link of 2.x schemas on MariaDB and PostgreSQL, a 0.14 schema linked into "
            "2.x's format on MariaDB (`djshare pull --format dj2`), and every export (`djshare export`, "
            "`djshare.export.engine`).")
    return None
