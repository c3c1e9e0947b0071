"""The named differences between the databases (``wallet.storage.sql.connection.Dialect``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import postgres_schema
from wallet.storage.postgres.connection import POSTGRES, PostgresConnection
from wallet.storage.postgres.dialect import TRY_WRITE_LOCK_SQL, PlaceholderInLiteral, render_format, render_numbered
from wallet.storage.sql.bulk import Insert
from wallet.storage.sql.connection import Connection
from wallet.storage.sqlite.connection import SQLITE, SqliteConnection
from wallet.storage.sqlite.writer import connect


def test_placeholders_render_to_the_drivers_forms_outside_literals() -> None:
    sql = "SELECT a FROM t WHERE b = ? AND c = 'x''y' AND d IN (SELECT value FROM json_array_elements_text(?::json))"
    assert render_numbered(sql) == sql.replace("b = ?", "b = $1").replace("(?::json)", "($2::json)")
    assert render_format(sql) == sql.replace("?", "%s")
    assert render_format("SELECT 5 % 2 WHERE x = ?") == "SELECT 5 %% 2 WHERE x = %s"


@pytest.mark.parametrize("sql", ["SELECT 'what?' WHERE x = ?", "SELECT * FROM t WHERE name LIKE 'a%'", "SELECT 'open"])
def test_a_placeholder_inside_a_literal_is_refused(sql: str) -> None:
    for render in (render_numbered, render_format):
        with pytest.raises(PlaceholderInLiteral):
            render(sql)


def test_the_sqlite_connection_is_sqlites_own_with_a_dialect(tmp_path: Path) -> None:
    connection: Connection = connect(str(tmp_path / "x.db"))
    try:
        assert isinstance(connection, SqliteConnection) and connection.dialect is SQLITE
        assert SqliteConnection.execute is sqlite3.Connection.execute  # no Python wrapper per statement
        connection.begin_write()
        assert connection.in_transaction
        connection.execute("ROLLBACK")
        assert connection.fetch_tuples(f"SELECT value FROM {SQLITE.list_parameter}", ('["a", "b"]',)) == [
            ("a",),
            ("b",),
        ]
    finally:
        connection.close()


@pytest.mark.postgres_only
def test_the_postgres_connection_reads_rows_and_names_its_errors(postgres_schema: str) -> None:
    connection: Connection = PostgresConnection(postgres_schema)
    try:
        row = connection.execute(
            "SELECT CAST(? AS bigint) + 1 AS n, SUM(x) AS total, ? AS t FROM (VALUES (2), (3)) v(x)", (41, "a")
        ).fetchone()
        assert (row["n"], row[0], row["total"], row["t"], dict(row)) == (
            42,
            42,
            5,
            "a",
            {"n": 42, "total": 5, "t": "a"},
        )
        with pytest.raises(ValueError, match="fractional"):
            connection.execute("SELECT CAST(1.5 AS numeric)").fetchone()
        assert connection.fetch_tuples(f"SELECT value FROM {POSTGRES.list_parameter}", ('["a", "b"]',)) == [
            ("a",),
            ("b",),
        ]
        connection.execute("CREATE TABLE t (id text PRIMARY KEY)")
        assert connection.execute("INSERT INTO t VALUES (?)", ("x",)).rowcount == 1
        with pytest.raises(POSTGRES.integrity_error):
            connection.execute("INSERT INTO t VALUES (?)", ("x",))
        connection.begin_write()
        assert connection.in_transaction
        connection.execute("ROLLBACK")
        own_pid = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pytest.raises(POSTGRES.storage_fault):
            connection.execute("SELECT pg_terminate_backend(?)", (own_pid,))
        assert connection.execute("SELECT 1").fetchone()[0] == 1  # connected again
    finally:
        connection.close()


def test_the_shared_units_import_no_database_driver() -> None:
    """What both databases run is written against ``Connection`` alone: no driver in ``wallet/storage/sql``."""
    import ast

    import wallet.storage.sql

    drivers = {"sqlite3", "aiosqlite", "asyncpg", "psycopg"}
    for path in sorted(Path(wallet.storage.sql.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not {name.split(".")[0] for name in names} & drivers, f"{path.name} imports a driver"


@pytest.mark.postgres_only
def test_a_list_parameter_is_looked_up_by_index_on_a_table_never_analysed(postgres_schema: str) -> None:
    """``Dialect.in_list`` on PostgreSQL: an index scan even without statistics (the IN-subquery
    form was a hash join over every row of the scope, each batch's idempotency keys 2 ms and growing)."""
    connection: Connection = PostgresConnection(postgres_schema)
    try:
        connection.execute('CREATE TABLE k (scope text COLLATE "C", key text COLLATE "C", PRIMARY KEY (scope, key))')
        connection.execute("INSERT INTO k SELECT 'p', md5(i::text) FROM generate_series(1, 20000) i")
        wanted = ["c4ca4238a0b923820dcc509a6f75849b", "absent"]  # md5('1') and a key not stored
        sql = f"SELECT key FROM k WHERE scope = ? AND key {POSTGRES.in_list}"
        assert connection.fetch_tuples(sql, ("p", json.dumps(wanted))) == [(wanted[0],)]
        plan = "\n".join(row[0] for row in connection.fetch_tuples(f"EXPLAIN {sql}", ("p", json.dumps(wanted))))
        assert "Index" in plan and "Seq Scan" not in plan and "Hash" not in plan, plan
    finally:
        connection.close()


@pytest.mark.postgres_only
def test_the_writer_prepares_only_what_no_table_can_change_and_plans_the_rest_for_the_table_as_it_is(
    postgres_schema: str,
) -> None:
    """A statement prepared while its table was small keeps a cached generic plan as the table grows
    (no autovacuum or ANALYZE replans it): the batch's key lookup filtered a provider's every key.
    The writer's connection prepares only ``Preparable`` statements (an ``INSERT ... VALUES``, the
    write lock), whose plan no table's size can change, so planning them is paid once; every other
    run is planned for its values and the table as it is. ``plan_cache_mode`` stays ``auto``, so what
    PostgreSQL runs inside a statement (foreign-key checks, triggers) keeps its plans."""
    connection: Connection = PostgresConnection(postgres_schema)
    try:
        connection.execute('CREATE TABLE k (scope text COLLATE "C", key text COLLATE "C", PRIMARY KEY (scope, key))')
        connection.execute("INSERT INTO k VALUES ('p', 'x')")  # small: a generic plan would filter the scope
        rows = Insert("k", ("scope", "key"))
        sql = f"SELECT key FROM k WHERE scope = ? AND key {POSTGRES.in_list}"
        keys = json.dumps(["a", "b"])
        for n in range(8):  # past psycopg's default threshold (5 runs) for preparing a statement
            connection.begin_write()  # the write lock tried, in a pipeline with the INSERT
            for insert, values in rows.statements([("q", f"{n}")]):
                connection.execute(insert, values)
            connection.executemany("UPDATE k SET key = key WHERE scope = ? AND key = ?", [("q", "0"), ("q", "1")])
            assert connection.fetch_tuples(sql, ("p", keys)) == []
            connection.execute("COMMIT")
        prepared = {row[0] for row in connection.fetch_tuples("SELECT statement FROM pg_prepared_statements", ())}
        assert prepared == {render_numbered(rows.sql(1)), render_numbered(TRY_WRITE_LOCK_SQL)}
        assert connection.fetch_tuples("SHOW plan_cache_mode", ()) == [("auto",)]
        connection.execute("INSERT INTO k SELECT 'p', md5(i::text) FROM generate_series(1, 20000) i")
        plan = "\n".join(row[0] for row in connection.fetch_tuples(f"EXPLAIN {sql}", ("p", keys)))
        assert "Filter" not in plan and "key = ANY" in plan, plan
    finally:
        connection.close()


@pytest.mark.postgres_only
def test_a_pipeline_answers_each_statement_and_a_refused_one_stops_the_rest(postgres_schema: str) -> None:
    """``execute_pipeline``: each statement's rows in order; a statement the database refuses
    raises as ``execute`` would, nothing after it runs, and a savepoint taken before recovers."""
    connection: Connection = PostgresConnection(postgres_schema)
    try:
        connection.execute("CREATE TABLE t (id integer PRIMARY KEY)")
        connection.begin_write()
        assert connection.execute_pipeline(
            [("SAVEPOINT a", ()), ("INSERT INTO t VALUES (?)", (1,)), ("SELECT id FROM t", ()), ("RELEASE a", ())]
        ) == [[], [], [(1,)], []]
        with pytest.raises(POSTGRES.integrity_error):
            connection.execute_pipeline(
                [
                    ("SAVEPOINT b", ()),
                    ("INSERT INTO t VALUES (?)", (2,)),
                    ("INSERT INTO t VALUES (?)", (1,)),
                    ("INSERT INTO t VALUES (?)", (3,)),
                ]
            )
        connection.execute("ROLLBACK TO b")
        assert connection.fetch_tuples("SELECT id FROM t ORDER BY id", ()) == [(1,)]
        connection.execute("COMMIT")
        assert not connection.in_transaction
    finally:
        connection.close()


@pytest.mark.postgres_only
def test_a_deferred_statement_goes_with_the_next_one_in_order(postgres_schema: str) -> None:
    """``defer``: nothing is sent until the next statement, then both go in order (one pipeline);
    what a deferred statement raises, the next statement raises. ``begin_write`` defers ``BEGIN``
    and the write lock to the transaction's first statement."""
    connection: Connection = PostgresConnection(postgres_schema)
    other: Connection = PostgresConnection(postgres_schema)
    try:
        connection.execute("CREATE TABLE t (id integer PRIMARY KEY)")
        connection.defer("INSERT INTO t VALUES (?)", (1,))
        assert other.fetch_tuples("SELECT COUNT(*) FROM t", ()) == [(0,)]  # not sent yet
        assert connection.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1
        connection.defer("INSERT INTO t VALUES (?)", (1,))
        with pytest.raises(POSTGRES.integrity_error):
            connection.execute("SELECT 1")

        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
        locks = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ?"
        connection.begin_write()
        assert connection.in_transaction
        assert other.fetch_tuples(locks, (backend,)) == [(0,)]  # BEGIN and the lock wait for the first statement
        connection.execute("INSERT INTO t VALUES (?)", (2,))
        assert other.fetch_tuples(locks, (backend,)) == [(1,)]
        connection.execute("ROLLBACK")
        assert not connection.in_transaction
        assert other.fetch_tuples("SELECT id FROM t ORDER BY id", ()) == [(1,)]
    finally:
        connection.close()
        other.close()
