"""PostgreSQL plans that stay index lookups as tables grow, on a server without autovacuum.

The tables have no statistics unless the service gathers them, so each test generates enough
clients (``loadtests.scale``'s generator: the rows the API writes) for a plan without them to go
wrong, shows that it does, and that what the service does makes it an index lookup. No timings:
the plans themselves (``EXPLAIN``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from loadtests import bench, scale
from tests.pg import RawDatabase
from wallet.bootstrap import open_service
from wallet.settings import Settings
from wallet.storage.postgres.connection import POSTGRES
from wallet.storage.sql.charge_batch import _BUDGETED_SQL

# Enough budgets that, without statistics, the budgets check reads all their lines.
CLIENTS = 20_000


def plan(database: RawDatabase, sql: str, *parameters: object) -> str:
    return "\n".join(str(row[0]) for row in database.execute("EXPLAIN " + sql, *parameters))


def test_after_a_credit_run_a_charge_batch_s_budgets_check_looks_the_clients_up(
    tmp_path: Path, postgres_schema: str
) -> None:
    """The budgets check of a charge batch (``charge_batch._BUDGETED_SQL``), on budgets grown
    without statistics, reads every budget line (a hash join over a sequential scan); after the
    credit run (which analyses the budgets) it looks each client's budgets and lines up by index."""
    environment = bench.bench_environment(tmp_path, bench.free_port(), postgres_schema)
    generated = scale.generate(environment, CLIENTS, False)
    with RawDatabase(postgres_schema) as database:
        client_ids = [row[0] for row in database.execute("SELECT id FROM clients ORDER BY seq LIMIT 16")]
        check = (_BUDGETED_SQL(POSTGRES), json.dumps(client_ids), generated.month, generated.month)
        assert "Seq Scan on budget_lines" in plan(database, *check)  # what statistics are needed for

    async def credit_run() -> None:
        async with open_service(Settings.from_env(environment)) as service:
            result = (await service.credit_run(generated.month)).value
            assert result["credited_now"] == generated.lines

    asyncio.run(credit_run())
    with RawDatabase(postgres_schema) as database:
        after = plan(database, *check)
    assert "Seq Scan" not in after, after
    assert "Index Scan using budgets_by_client on budgets" in after, after
    assert "using budget_lines_pkey on budget_lines" in after, after
