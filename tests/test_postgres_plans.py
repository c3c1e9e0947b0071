"""PostgreSQL plans that stay index lookups as tables grow, on a server without autovacuum.

The tables have no statistics unless the service gathers them: a credit run that wrote analyses
the tables it filled and the ones the charges read (``Storage.gather_statistics``). One database
per module, with enough clients (``loadtests.scale``'s generator: the rows the API writes) and a
credit run for a plan without statistics to go wrong: each query is explained before the
analysis (the premise: it reads a whole table) and after it (an index lookup). No timings.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtests import bench, scale
from tests.conftest import postgres_dsn, with_search_path
from tests.pg import RawDatabase, create_schema, drop_schema_later
from wallet.bootstrap import open_service
from wallet.settings import Settings
from wallet.storage.postgres import PostgresStorage
from wallet.storage.postgres.adapter import ANALYSED_AFTER_BULK_WRITES
from wallet.storage.postgres.connection import POSTGRES
from wallet.storage.sql import exports
from wallet.storage.sql.charge_batch import _BUDGETED_SQL

# Enough budgets that, without statistics, the budgets check reads all their lines.
CLIENTS = 20_000
PAGE_ROWS = 1_000
# Parallel workers as cheap as at a million rows, here at 20,000.
CHEAP_WORKERS = (
    "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_index_scan_size = 0;"
    " SET min_parallel_table_scan_size = 0"
)


@dataclass
class Plans:
    before: dict[str, str]  # EXPLAIN of each query after the credit run, before its analysis
    after: dict[str, str]  # and after the analysis
    # The export pages after it, with parallel workers made cheap (``CHEAP_WORKERS``): on a plain
    # connection, and in a scan's read (``PostgresStorage._read(scan=True)``).
    parallel: dict[str, str]
    scan: dict[str, str]


def explain(database: RawDatabase, queries: dict[str, tuple[object, ...]]) -> dict[str, str]:
    plans = {}
    for name, (sql, *parameters) in queries.items():
        plans[name] = "\n".join(str(row[0]) for row in database.execute(f"EXPLAIN {sql}", *parameters))
    return plans


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plans]:
    """The plans after a credit run without its analysis, and after the analysis."""
    dsn = postgres_dsn()
    schema = f"wallet_test_{secrets.token_hex(6)}"
    create_schema(dsn, schema)
    try:
        database = with_search_path(dsn, schema)
        environment = bench.bench_environment(tmp_path_factory.mktemp("plans"), bench.free_port(), database)
        generated = scale.generate(environment, CLIENTS, False)

        async def credit_run_then_analyse() -> Plans:
            async with open_service(Settings.from_env(environment)) as service:
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(PostgresStorage, "gather_statistics", _not_now)
                    result = (await service.credit_run(generated.month)).value
                assert result["credited_now"] == generated.lines
                with RawDatabase(database) as raw:
                    queries = _queries(raw, generated.month)
                    before = explain(raw, queries)
                await service.storage.gather_statistics()
                pages = {name: query for name, query in queries.items() if name.startswith("export")}
                with RawDatabase(database) as raw:
                    after = explain(raw, queries)
                    raw.execute(CHEAP_WORKERS)
                    parallel = explain(raw, pages)
                storage = service.storage
                assert isinstance(storage, PostgresStorage)
                scan = {}
                for name, (sql, *parameters) in pages.items():
                    async with storage._read(scan=True) as reader:
                        for setting in CHEAP_WORKERS.split(";"):
                            await reader.execute_fetchall(setting.strip().replace("SET ", "SET LOCAL "))
                        rows = await reader.execute_fetchall(f"EXPLAIN {sql}", parameters)
                    scan[name] = "\n".join(str(row[0]) for row in rows)
                return Plans(before, after, parallel, scan)

        yield asyncio.run(credit_run_then_analyse())
    finally:
        drop_schema_later(dsn, schema)


async def _not_now(storage: PostgresStorage) -> None:
    """``gather_statistics`` left out: the tables as a credit run without it leaves them."""


def _queries(raw: RawDatabase, month: str) -> dict[str, tuple[object, ...]]:
    client_ids = [row[0] for row in raw.execute("SELECT id FROM clients ORDER BY seq LIMIT 16")]
    # A later page starts from a transaction in the middle of the credits.
    middle = raw.execute("SELECT created_at FROM transactions ORDER BY seq LIMIT 1 OFFSET ?", CLIENTS // 2)[0][0]
    top = raw.execute("SELECT MAX(seq) FROM transactions")[0][0]
    _, later, first = exports._TRANSACTION_RANGES
    return {
        "budgets check": (_BUDGETED_SQL(POSTGRES), json.dumps(client_ids), month, month),
        "export first page": (exports._TRANSACTIONS + first, top, exports.EARLIEST, exports.LATEST, PAGE_ROWS),
        "export later page": (exports._TRANSACTIONS + later, top, middle, exports.LATEST, PAGE_ROWS),
    }


def test_a_credit_run_that_wrote_analyses_the_tables_it_filled_and_the_budgets(
    tmp_path: Path, postgres_schema: str
) -> None:
    """What ``gather_statistics`` analyses, after a credit run: those tables have statistics
    (``reltuples`` is -1 until a table is analysed or vacuumed), and no other."""
    environment = bench.bench_environment(tmp_path, bench.free_port(), postgres_schema)
    generated = scale.generate(environment, 50, True)

    async def credit_run() -> None:
        async with open_service(Settings.from_env(environment)) as service:
            assert (await service.credit_run(generated.month)).value["credited_now"] == generated.lines

    asyncio.run(credit_run())
    with RawDatabase(postgres_schema) as raw:
        analysed = raw.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind = 'r' AND reltuples >= 0 ORDER BY relname"
        )
    assert [row[0] for row in analysed] == sorted(ANALYSED_AFTER_BULK_WRITES)


def test_a_batch_s_moved_accounts_are_looked_up_by_index_in_a_small_table_without_statistics(
    tmp_path: Path, postgres_schema: str
) -> None:
    """A batch moves its accounts with one ``UPDATE`` (``Dialect.move_accounts``) and checks them
    with one ``SELECT`` (``Dialect.check_accounts``). Joined to the batch's list, a table of 1,000
    wallets without statistics was read whole by each, 1 ms a batch; looked up by ``= ANY`` it is
    an index scan. (At a million rows the join alone is an index scan too.) Side by side, the
    postings' statement looks each payable account up by key and the audit entries' statement
    finds the chain's head by the log's key, not by reading either table."""
    environment = bench.bench_environment(tmp_path, bench.free_port(), postgres_schema)
    scale.generate(environment, 1_000, True)
    check_accounts = POSTGRES.check_accounts
    order = POSTGRES.side_by_side
    assert check_accounts is not None and order is not None
    with RawDatabase(postgres_schema) as raw:
        assert raw.execute("SELECT COUNT(*) FROM accounts")[0][0] >= 1_000
        assert raw.execute("SELECT COUNT(*) FROM audit_log")[0][0] >= 1_000
        rows = raw.execute("SELECT id, balance, held FROM accounts ORDER BY id LIMIT 16")
        moves = json.dumps([[row[0], 0, 0] for row in rows])
        postings = json.dumps([["tx", row[0], 1, 1, 1] for row in rows])
        found = explain(
            raw,
            {
                "move": (POSTGRES.move_accounts, moves),
                "check": (check_accounts, json.dumps([list(row) for row in rows])),
                "postings": (order.rebased_postings, postings),
            },
        )
        audit = explain(raw, {"audit": (order.chained_audit, json.dumps([["at", "a", "b", "c", "{}"]]))})["audit"]
    for name, plan in found.items():
        assert "Seq Scan on accounts" not in plan and "accounts_pkey" in plan, (name, plan)
    assert "Seq Scan on audit_log" not in audit and "audit_log_pkey" in audit, audit


def test_after_a_credit_run_a_charge_batch_s_budgets_check_looks_the_clients_up(plans: Plans) -> None:
    """The budgets check of a charge batch (``charge_batch._BUDGETED_SQL``): without statistics a
    hash join over every budget line; analysed, each client's budgets and lines by index."""
    assert "Seq Scan on budget_lines" in plans.before["budgets check"]
    after = plans.after["budgets check"]
    assert "Seq Scan" not in after, after
    assert "Index Scan using budgets_by_client on budgets" in after, after
    assert "using budget_lines_pkey on budget_lines" in after, after


@pytest.mark.parametrize("page", ["export first page", "export later page"])
def test_after_a_credit_run_an_export_page_reads_the_transactions_in_order(plans: Plans, page: str) -> None:
    """A page of the transactions export: without statistics every posting is read (a sequential
    scan under a hash join) and every transaction sorted, for each page; analysed, the page walks ``transactions_by_time`` and looks each transaction's postings up."""
    assert "Seq Scan on postings" in plans.before[page], plans.before[page]
    after = plans.after[page]
    assert "Seq Scan" not in after, after
    assert "Index Scan using transactions_by_time on transactions t" in after, after
    assert "Index Scan using postings_by_transaction on postings debit" in after, after


def test_a_long_read_plans_each_statement_for_its_values(tmp_path: Path, postgres_schema: str) -> None:
    """A scan's snapshot (an export's page) plans each statement for the values it is given, never
    a generic plan kept from earlier runs of the prepared statement, and without parallel workers;
    a short read keeps the defaults."""
    environment = bench.bench_environment(tmp_path, bench.free_port(), postgres_schema)

    async def modes() -> tuple[tuple[str, ...], tuple[str, ...]]:
        async with open_service(Settings.from_env(environment)) as service:
            storage = service.storage
            assert isinstance(storage, PostgresStorage)
            shown = "SELECT current_setting('plan_cache_mode'), current_setting('max_parallel_workers_per_gather')"
            async with storage._read(scan=True) as reader:
                scan = tuple((await reader.execute_fetchall(shown))[0])
            async with storage._read() as reader:
                short = tuple((await reader.execute_fetchall(shown))[0])
            return scan, short

    scan, short = asyncio.run(modes())
    assert scan == ("force_custom_plan", "0")
    assert short[0] == "auto" and short[1] != "0"


def test_an_export_page_in_a_scan_s_read_starts_no_parallel_workers(plans: Plans) -> None:
    """A page of 1,000 rows walks an index: at a million transactions the planner starts parallel
    workers for it (it costs the whole range), which cost more than they save, on every page (27 ms
    a page instead of 6). Here the workers are made as cheap as there."""
    for page in ("export first page", "export later page"):
        assert "Parallel Index Scan" in plans.parallel[page], plans.parallel[page]
        scan = plans.scan[page]
        assert "Parallel" not in scan and "Gather" not in scan, scan
        assert "Index Scan using transactions_by_time on transactions t" in scan, scan
