"""The SQL each backend's dialect object writes for the statements link and export share (no servers: the
statements run against real servers in the integration suites)."""

from __future__ import annotations

from djshare.backends import dialect
from djshare.backends.catalog import Column, TableInfo
from djshare.backends.mariadb_rows import MARIADB
from djshare.backends.postgresql_sql import POSTGRESQL

TABLE = TableInfo("lab", "session", tuple(Column(n, "varchar", "varchar(8)", False, None, "", "")
                                          for n in ("subject", "session", "note")), ("subject", "session"), "")


def test_a_backend_name_gives_its_dialect() -> None:
    assert dialect("postgresql") is POSTGRESQL
    assert dialect("mariadb") is MARIADB and dialect("mysql") is MARIADB


def test_upserts_update_the_columns_outside_the_key() -> None:
    assert MARIADB.upsert(["a", "b", "c"], ["a"]) == " ON DUPLICATE KEY UPDATE `b` = VALUES(`b`), `c` = VALUES(`c`)"
    assert MARIADB.upsert(["a"], ["a"]) == " ON DUPLICATE KEY UPDATE `a` = VALUES(`a`)"  # a key-only table
    assert POSTGRESQL.upsert(["a", "b"], ["a"]) == ' ON CONFLICT ("a") DO UPDATE SET "b" = EXCLUDED."b"'
    assert POSTGRESQL.upsert(["a"], ["a"]) == ' ON CONFLICT ("a") DO NOTHING'


def test_inserts_of_new_rows_skip_the_keys_a_table_has() -> None:
    assert MARIADB.insert_new("`s`.`t`", "(a) VALUES (%s)") == "INSERT IGNORE INTO `s`.`t` (a) VALUES (%s)"
    assert POSTGRESQL.insert_new('"s"."t"', "SELECT 1") == 'INSERT INTO "s"."t" SELECT 1 ON CONFLICT DO NOTHING'


def test_an_exports_key_tables_are_temporary_tables_of_the_key() -> None:
    maria = MARIADB.key_table("work", 3)
    assert maria == "`work`.`djshare_export_3`"
    assert MARIADB.declare_key_table(maria, TABLE) == [
        "DROP TEMPORARY TABLE IF EXISTS `work`.`djshare_export_3`",
        "CREATE TEMPORARY TABLE `work`.`djshare_export_3` (PRIMARY KEY (`subject`, `session`)) SELECT `subject`, "
        "`session` FROM `lab`.`session` LIMIT 0"]
    pg = POSTGRESQL.key_table("work", 3)
    assert pg == '"djshare_export_3"'  # in the session's pg_temp, whatever the work schema
    assert POSTGRESQL.declare_key_table(pg, TABLE)[-1] == \
        'ALTER TABLE "djshare_export_3" ADD PRIMARY KEY ("subject", "session")'
