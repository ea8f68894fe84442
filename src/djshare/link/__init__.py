"""Links between a local table and a source table: `api` (DataJoint 0.14 classes), `crossformat` (0.14 into
2.x on PostgreSQL) and `dj2` (DataJoint 2.x schemas on MariaDB, no DataJoint needed)."""
