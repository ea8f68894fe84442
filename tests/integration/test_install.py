"""What installing djshare brings must not break a lab's own DataJoint code."""

from __future__ import annotations

import datajoint as dj

from tests.servers import MariaDBServer


def test_datajoint_s_own_connection_works_against_a_server_without_tls(servers: list[MariaDBServer]) -> None:
    """DataJoint 0.14.10 with PyMySQL 1.2 asks a server without TLS for TLS unless `database.use_tls` is False;
    the `dj014` extra keeps PyMySQL below 1.2, so a lab's code that never set it keeps working."""
    server = servers[0]
    connection = dj.Connection(server.address, server.admin_user, server.admin_password)  # use_tls left unset
    assert connection.query("SELECT 1").fetchone() == (1,)
    connection.close()
