"""The `djshare` command line: thin wrappers over the library, with progress bars and one-line errors.

Settings come from the environment, as in the library:
  local server   DJ_HOST (host or host:port), DJ_USER, DJ_PASS (or a DataJoint config file)
  source server  LINK_HOST (host[:port], or postgresql://host[:port]/db; or --source-host), LINK_USER, LINK_PASS
  sides          parsed in `djshare.cli.sides`; users and passwords read by `backends.address.read_credentials`
  outbound       LINK_OUTBOUND (the schema on the source server that holds outbound tables)
  stores         local: the DataJoint config (dj_local_conf.json); source: --source-stores FILE.json
"""

from __future__ import annotations

import sys

from djshare.cli import diff, export, link  # noqa: F401 - each module registers its commands
from djshare.cli.app import app, err

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]: run the command again, or `djshare repair`, to finish.")
        sys.exit(130)
