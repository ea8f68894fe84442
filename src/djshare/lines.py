"""Which DataJoint line is installed. Links and exports of DataJoint classes are written against DataJoint
0.14's Python API; `djshare diff` and sync, links of 2.x schemas (`djshare.link.dj2`, `djshare.link.pg`) and
exports by SQL restrictions (`djshare.export.tables`) need no DataJoint at all. DataJoint 0.14 and 2.x cannot
be installed in one environment, so a lab on 2.x installs `djshare[dj2]`."""

from __future__ import annotations

from importlib import metadata

from djshare.errors import ConfigurationError


def datajoint_version() -> str | None:
    try:
        return metadata.version("datajoint")
    except metadata.PackageNotFoundError:
        return None


def require_dj014() -> None:
    """Refuse, naming the fix, where the installed DataJoint is not 0.14 (links and exports need it)."""
    version = datajoint_version()
    if version is None or not version.startswith("0.14."):
        installed = f"DataJoint {version} is installed" if version else "DataJoint is not installed"
        raise ConfigurationError(
            f"djshare links and exports work on DataJoint 0.14 schemas and need DataJoint 0.14 ({installed}): use "
            "an environment with `pip install 'djshare[dj014]'`. With DataJoint 2.x: `djshare diff` and sync, "
            "`djshare pull` / `repair` of 2.x schemas on MariaDB and PostgreSQL, and exports by SQL restrictions "
            "(`djshare.export.tables`); the other link and export commands need DataJoint 0.14.")
