"""A process that pulls a link and kills itself with SIGKILL at a chosen point (run by test_kill.py).

argv: JSON with local/source addresses, credentials, schema names, class name, the step to die after,
its occurrence, and the batch size.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import datajoint as dj

from djshare import LazySchema, Link


def main() -> None:
    spec = json.loads(sys.argv[1])
    dj.config["database.host"] = spec["local_host"]
    dj.config["database.user"] = spec["local_user"]
    dj.config["database.password"] = spec["local_password"]
    dj.config["database.use_tls"] = False
    seen = {"n": 0}

    def checkpoint(name: str) -> None:
        if name == spec["step"]:
            seen["n"] += 1
            if seen["n"] == spec["occurrence"]:
                os.kill(os.getpid(), signal.SIGKILL)

    source = LazySchema(spec["source_schema"], host=spec["source_host"], user=spec["link_user"],
                        password=spec["link_password"])
    linked = Link(LazySchema(spec["local_schema"]), source, outbound=spec["outbound_schema"])(
        type(spec["class_name"], (), {}))
    linked().pull(batch_size=spec["batch_size"], checkpoint=checkpoint, progress=False)


if __name__ == "__main__":
    main()
