"""Backends: one module per server kind, holding its SQL, sessions, catalog and bulk movers, for link, export
and diff alike (`mariadb`, `mariadb_rows`, `postgresql`; `address` and `catalog` are shared by all). The modules of
`djshare.sql` re-export these names for one release."""
