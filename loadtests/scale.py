"""Million-scale runs on SQLite or PostgreSQL: the credit run, the export and one big settlement.

    python -m loadtests.scale [--clients 1000000] [--charges 100000] [--mix] [--keep] [--json FILE]
                              [--db sqlite|postgresql://user@host:5432/db]

What one run does, in a fresh temporary directory (all on 127.0.0.1), on a SQLite file there or,
with ``--db postgresql://...``, on a fresh schema of that database (dropped after unless ``--keep``):

1. **Generates** ``--clients`` clients, each with a budget from the current month, straight into
   the database's own schema with bulk SQL (``generate``; ``COPY`` on PostgreSQL, without
   ``ANALYZE``, as a database grown through the API has no statistics either): the rows the API would have
   written — real keyed hashes of phone and national id, AES-GCM phone ciphertexts under the
   database's own keys, ``client.created`` and ``budget.created`` audit entries in the hash chain,
   the wallet-line accounts — but without going through the API. One category and one approved
   provider are made through the service itself.
2. **The credit run** for the current month through the real code path: ``wallet credit-run``,
   its own process (``WalletService.credit_run`` → ``credit_run_step`` units in the writer).
   Timed from start to exit; its peak memory is the process's peak resident set (``VmHWM``,
   reported by the process itself at exit: everything it touched, the interpreter and SQLite's
   page cache included).
3. **Charges**: ``--charges`` charges by national id, through ``WalletService.charge`` and the
   real charge unit in the writer (in this process, many at once so the writer group-commits).
4. **The settlement**: ``POST /v1/settlements`` once, to a real ``wallet serve`` started with
   ``WALLET_SETTLEMENT_ITEMS_MAX`` raised to the number of charges; the batch's amount and count
   are checked against what was charged.
5. **The export**: ``GET /v1/exports/transactions?format=csv`` from a freshly started
   ``wallet serve``, read to the end and counted (bytes and rows), timed; the server's peak memory
   is its ``VmHWM`` (peak resident set) read from ``/proc`` just before it is stopped.
6. ``wallet check`` on the result, timed; it must pass.

Each figure is printed with its bound (issue 5) and ``meets`` or ``below``, with the machine and
its load average before and after: the machine may be shared, and a busy one is slower.
On PostgreSQL each step also prints the CPU the server's backends spent for it (those of the
step's process, read from ``/proc``: ``loadtests.pgcpu``), the database's share of the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import bench, pgcpu
from loadtests.bench import (
    HOST,
    PROJECT_ROOT,
    bench_environment,
    format_load,
    free_port,
    load_average,
    national_id,
    process,
    process_cpu_seconds,
    stop,
    verdict,
)

CLIENTS_DEFAULT = 1_000_000
CHARGES_DEFAULT = 100_000
CHUNK_CLIENTS = 10_000  # the generator writes this many clients at a time
CHARGE_CONCURRENCY = 256  # charges in flight at once: the writer commits them in groups
CHARGE_AMOUNT_CENTS = 1_234
BUDGET_MONTHS = 12
GENERATOR_ACTOR = "admin:loadtests.scale"
TOKEN_TTL_SECONDS = 3_600
EXPORT_CHUNK_BYTES = 1 << 16
STOP_TIMEOUT_SECONDS = 60.0

# The bounds of issue 5 part 4: benchmarks, never timed tests.
CREDIT_RUN_SECONDS_MAX = 60.0
CREDIT_RUN_MEMORY_MB_MAX = 500.0
EXPORT_SECONDS_MAX = 30.0
EXPORT_MEMORY_MB_MAX = 200.0

# Service categories and what a month of each costs (cents). Every client has ``home_care``; with
# ``--mix`` some have more lines, as a saldoseteli lists several services.
HOME_CARE = "home_care"
CATEGORIES = {
    HOME_CARE: "Kotihoito",
    "respite_care": "Omaishoitajan vapaa",
    "personal_assistance": "Henkilökohtainen apu",
    "transport": "Kuljetuspalvelu",
}
ONE_LINE: tuple[tuple[str, int], ...] = ((HOME_CARE, 60_000),)
MIX: tuple[tuple[tuple[str, int], ...], ...] = (
    ((HOME_CARE, 60_000),),
    ((HOME_CARE, 45_000), ("transport", 12_000)),
    ((HOME_CARE, 80_000),),
    ((HOME_CARE, 30_000), ("respite_care", 25_000)),
    ((HOME_CARE, 120_000), ("personal_assistance", 150_000), ("transport", 20_000)),
    ((HOME_CARE, 52_500),),
)


# The people: deterministic, so that the charges can find the clients again.


def phone(index: int) -> str:
    """A distinct Finnish mobile number (E.164) per index: +358 40 1000000 upwards, then 50."""
    prefix, number = ("40", 1_000_000 + index) if index < 9_000_000 else ("50", index - 9_000_000)
    return f"+358{prefix}{number:07d}"


def budget_lines(index: int, mix: bool) -> tuple[tuple[str, int], ...]:
    return MIX[index % len(MIX)] if mix else ONE_LINE


def add_months(month: str, count: int) -> str:
    year, number = int(month[:4]), int(month[5:7]) - 1 + count
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


# 1. The generator.


@dataclass
class Generated:
    month: str
    provider_id: str
    clients: int
    lines: int
    monthly_amount: int  # cents, all lines
    seconds: float


def generate(environment: dict[str, str], clients: int, mix: bool) -> Generated:
    """A fresh database with ``clients`` clients, each with a budget from this month on."""
    from wallet.bootstrap import open_service
    from wallet.clock import SystemClock, month_of
    from wallet.settings import Settings
    from wallet.shapes import requests
    from wallet.storage.migrations import is_postgres

    started = time.perf_counter()
    settings = Settings.from_env(environment)
    month = month_of(SystemClock().now(), settings.zone)

    async def through_the_service() -> tuple[str, Any, Any]:
        async with open_service(settings) as service:  # creates the schema and the keys
            for code, name in CATEGORIES.items():
                await service.create_category(requests.NewCategory(code, name))
            provider = await service.create_provider(
                requests.NewProvider("Suurajo Hoiva Oy", "2077474-0", "FI2112345600000785", tuple(CATEGORIES))
            )
            await service.set_provider_status(provider["id"], "approved")
            return str(provider["id"]), service.hasher, service.phones

    provider_id, hasher, phones = asyncio.run(through_the_service())
    write = _bulk_postgres if is_postgres(settings.db) else _bulk_sqlite
    lines, monthly_amount = write(settings.db, lambda head: client_rows(hasher, phones, clients, mix, month, head))
    return Generated(month, provider_id, clients, lines, monthly_amount, time.perf_counter() - started)


# The tables the generator fills, their columns in the order of ``ClientRows``' tuples; the order
# of the tables is the order of their foreign keys.
GENERATED_COLUMNS: dict[str, tuple[str, ...]] = {
    "clients": ("id", "name", "phone_hash", "phone_ciphertext", "national_id_hash", "created_at"),
    "budgets": ("id", "client_id", "start_month", "end_month", "unused", "created_at"),
    "budget_lines": ("budget_id", "category", "monthly_amount"),
    "accounts": ("id", "kind", "client_id", "category"),
    "audit_log": ("at", "actor", "action", "subject", "data", "previous_hash", "hash"),
}


@dataclass
class ClientRows:
    """One chunk of generated clients: the rows of each table of ``GENERATED_COLUMNS``."""

    tables: dict[str, list[tuple[Any, ...]]]
    lines: int
    amount: int  # cents a month, all lines


def client_rows(
    hasher: Any, phones: Any, clients: int, mix: bool, month: str, previous_hash: str
) -> Iterator[ClientRows]:
    """Clients, budgets, budget lines, wallet-line accounts and their audit entries, by the chunk:
    the rows the API would write, the audit entries chained on from ``previous_hash``."""
    from wallet.clock import rfc3339
    from wallet.ids import new_id
    from wallet.ledger.accounts import wallet_account
    from wallet.ledger.audit import canonical, link_hash
    from wallet.service import NATIONAL_ID, PHONE

    end_month = add_months(month, BUDGET_MONTHS - 1)
    for start in range(0, clients, CHUNK_CLIENTS):
        now = rfc3339(datetime.now(UTC))
        chunk = ClientRows({table: [] for table in GENERATED_COLUMNS}, 0, 0)
        client_rows, budget_rows, line_rows, account_rows, audit_rows = chunk.tables.values()
        for index in range(start, min(start + CHUNK_CLIENTS, clients)):
            client_id, budget_id = new_id("cl"), new_id("bu")
            number = phone(index)
            client_rows.append(
                (
                    client_id,
                    f"Asiakas {index}",
                    hasher.keyed(PHONE, number),
                    phones.encrypt(number),
                    hasher.keyed(NATIONAL_ID, national_id(index)),
                    now,
                )
            )
            unused = "expire" if index % 2 else "carry_over"
            budget_rows.append((budget_id, client_id, month, end_month, unused, now))
            lines = budget_lines(index, mix)
            for category, amount in lines:
                line_rows.append((budget_id, category, amount))
                account_rows.append((wallet_account(client_id, category), "wallet", client_id, category))
                chunk.lines += 1
                chunk.amount += amount
            for action, subject, data in (
                ("client.created", client_id, {"with_national_id": True}),
                (
                    "budget.created",
                    budget_id,
                    {
                        "client_id": client_id,
                        "start_month": month,
                        "end_month": end_month,
                        "unused": unused,
                        "lines": [list(line) for line in lines],
                    },
                ),
            ):
                payload = canonical(data)
                entry_hash = link_hash(previous_hash, now, GENERATOR_ACTOR, action, subject, payload)
                audit_rows.append((now, GENERATOR_ACTOR, action, subject, payload, previous_hash, entry_hash))
                previous_hash = entry_hash
        yield chunk


_HEAD_SQL = "SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1"


Chunks = Callable[[str], Iterator[ClientRows]]  # the rows, chained on from the audit head given


def _bulk_sqlite(path: str, chunks: Chunks) -> tuple[int, int]:
    """``chunks(head)``'s rows into the SQLite file, a transaction a chunk."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")  # a generator, not a service: one sync at the end
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA cache_size = -262144")  # 256 MiB
    total_lines = total_amount = 0
    for chunk in chunks(connection.execute(_HEAD_SQL).fetchone()[0]):
        connection.execute("BEGIN IMMEDIATE")
        for table, rows in chunk.tables.items():
            columns = GENERATED_COLUMNS[table]
            connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
            )
        connection.execute("COMMIT")
        total_lines += chunk.lines
        total_amount += chunk.amount
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return total_lines, total_amount


def _bulk_postgres(dsn: str, chunks: Chunks) -> tuple[int, int]:
    """``chunks(head)``'s rows into the PostgreSQL schema with ``COPY``, a transaction a chunk. No
    ``ANALYZE``: a database grown through the API has no statistics either (no autovacuum)."""
    import asyncpg

    from wallet.storage.postgres.pool import connect_arguments

    async def run() -> tuple[int, int]:
        connection = await asyncpg.connect(**connect_arguments(dsn))
        try:
            total_lines = total_amount = 0
            for chunk in chunks(await connection.fetchval(_HEAD_SQL)):
                async with connection.transaction():
                    for table, rows in chunk.tables.items():
                        await connection.copy_records_to_table(table, records=rows, columns=GENERATED_COLUMNS[table])
                total_lines += chunk.lines
                total_amount += chunk.amount
            return total_lines, total_amount
        finally:
            await connection.close()

    return asyncio.run(run())


# What the PostgreSQL server spends for a step.

SAMPLE_SECONDS = 0.5


@contextlib.contextmanager
def postgres_cpu(environment: dict[str, str], pids: Callable[[], Sequence[int]]) -> Iterator[list[float]]:
    """The CPU seconds the PostgreSQL backends of the processes ``pids()`` spend inside the block
    (``[0.0]`` on SQLite), read from ``/proc`` (``loadtests.pgcpu``) every ``SAMPLE_SECONDS``: a
    backend gone with its process keeps what its last sample saw. Backends there at the start count
    from then, new ones from zero."""
    from wallet.storage.migrations import is_postgres

    spent = [0.0]
    if not is_postgres(environment["WALLET_DB"]):
        yield spent
        return
    port = pgcpu.server_port(environment["WALLET_DB"])
    before = pgcpu.cpu_seconds(pgcpu.backend_pids(pids(), port))
    latest = dict(before)
    stopping = threading.Event()

    def sample() -> None:
        latest.update(pgcpu.cpu_seconds(set(pgcpu.backend_pids(pids(), port)) | set(latest)))

    def sampling() -> None:
        while not stopping.wait(SAMPLE_SECONDS):
            sample()

    sampler = threading.Thread(target=sampling, name="postgres-cpu", daemon=True)
    sampler.start()
    try:
        yield spent
    finally:
        stopping.set()
        sampler.join()
        sample()
        spent[0] = sum(seconds - before.get(pid, 0.0) for pid, seconds in latest.items())


# Processes and what they cost.


@dataclass
class Ran:
    seconds: float
    cpu_seconds: float  # user + system: what the process cost, however busy the machine was
    peak_mb: float  # the process's peak resident set
    returncode: int
    stdout: str
    stderr: str
    database_cpu_seconds: float  # its PostgreSQL backends' (0 on SQLite)


# ``wallet ARGS`` that writes its own peak resident set (KiB) to argv[1] as it ends. VmHWM belongs to
# this process image alone; the child's ru_maxrss would include the parent copied by fork.
_MEASURED_WALLET = """
import sys
from pathlib import Path
from wallet.cli import main
try:
    code = main(sys.argv[2:])
finally:
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    Path(sys.argv[1]).write_text(peak)
sys.exit(code)
"""


def run_measured(environment: dict[str, str], *arguments: str) -> Ran:
    """Run ``wallet ...`` as a child: its wall time, CPU time and its own peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        report, out, err = Path(scratch, "peak-kib"), Path(scratch, "out"), Path(scratch, "err")
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-c", _MEASURED_WALLET, str(report), *arguments],
                env=environment,
                cwd=PROJECT_ROOT,
                stdout=stdout,
                stderr=stderr,
            )
            with postgres_cpu(environment, lambda: [child.pid]) as database_cpu:
                _, status, usage = os.wait4(child.pid, 0)  # its CPU times are its own (unlike its ru_maxrss)
            seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        peak_kib = int(report.read_text()) if report.exists() else 0
        return Ran(
            seconds,
            usage.ru_utime + usage.ru_stime,
            peak_kib / 1024,
            child.returncode,
            out.read_text(),
            err.read_text(),
            database_cpu[0],
        )


def peak_resident_mb(pid: int) -> float:
    """A live process's peak resident set so far (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


# 2. The credit run.


@dataclass
class CreditRun:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    credited: int
    amount: int
    database_cpu_seconds: float


def credit_run(environment: dict[str, str], month: str) -> CreditRun:
    ran = run_measured(environment, "credit-run", "--month", month)
    if ran.returncode != 0:
        raise RuntimeError(f"wallet credit-run failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr[-4000:]}")
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    return CreditRun(
        ran.seconds,
        ran.cpu_seconds,
        ran.peak_mb,
        int(result["credited"]),
        int(result["amount"]),
        ran.database_cpu_seconds,
    )


# 3. Charges through the service.


@dataclass
class Charged:
    count: int
    amount: int
    seconds: float
    database_cpu_seconds: float


def charge(environment: dict[str, str], provider_id: str, clients: int, charges: int) -> Charged:
    """``charges`` captures by national id, client by client (round the clients again if fewer)."""
    from wallet.auth.tokens import Principal, Role
    from wallet.bootstrap import open_service
    from wallet.settings import Settings
    from wallet.shapes import requests
    from wallet.storage.port import ACTOR

    settings = Settings.from_env(environment)
    principal = Principal(Role.PROVIDER, provider_id, provider_id=provider_id)

    async def run() -> tuple[int, int, float, float]:
        started = time.perf_counter()
        ACTOR.set(principal.scope)
        amounts: list[int] = []
        # The service's connections, counted before they close.
        async with open_service(settings) as service, _sampling(environment) as database_cpu:

            async def one(number: int) -> None:
                index = number % clients
                written = await service.charge(
                    principal,
                    requests.decode(
                        requests.NewCharge,
                        {
                            "phone": phone(index),
                            "amount": CHARGE_AMOUNT_CENTS,
                            "category": HOME_CARE,
                            "description": f"Kotikäynti {number}",
                            "identity": {"method": "national_id", "national_id": national_id(index)},
                        },
                    ),
                    None,
                )
                if written.value["status"] != "captured":
                    raise RuntimeError(f"charge {number}: {written.value['status']}")
                amounts.append(int(written.value["amount"]))

            for start in range(0, charges, CHARGE_CONCURRENCY):
                end = min(start + CHARGE_CONCURRENCY, charges)
                await asyncio.gather(*(one(number) for number in range(start, end)))
        return len(amounts), sum(amounts), time.perf_counter() - started, database_cpu[0]

    return Charged(*asyncio.run(run()))


@contextlib.asynccontextmanager
async def _sampling(environment: dict[str, str]) -> AsyncIterator[list[float]]:
    """``postgres_cpu`` of this process's own connections, as an async context."""
    with postgres_cpu(environment, lambda: [os.getpid()]) as database_cpu:
        yield database_cpu


# 4 and 5: through a real `wallet serve`.


@contextlib.contextmanager
def serving(environment: dict[str, str], directory: Path, name: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    served = {**environment, "WALLET_PORT": str(port)}
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "wallet", "serve", "--host", HOST, "--port", str(port)]
    with process(command, served, directory / f"{name}.log", f"{url}/healthz") as server:
        yield url, server.pid
        stop(server)
        if server.returncode != 0:
            raise RuntimeError(f"wallet serve exited with {server.returncode}; see {directory / f'{name}.log'}")


def mint(environment: dict[str, str], role: str, **ids: Any) -> str:
    from wallet.auth.tokens import Role
    from wallet.bootstrap import token_service
    from wallet.settings import Settings

    return token_service(Settings.from_env(environment)).mint(Role(role), datetime.now(UTC), TOKEN_TTL_SECONDS, **ids)


@dataclass
class Settled:
    seconds: float
    server_cpu_seconds: float
    amount: int
    count: int
    server_peak_mb: float
    reference: str
    database_cpu_seconds: float


def settle(environment: dict[str, str], directory: Path, provider_id: str, items_max: int) -> Settled:
    served = {**environment, "WALLET_SETTLEMENT_ITEMS_MAX": str(max(items_max, 1))}
    token = mint(environment, "provider", provider_id=provider_id)
    with serving(served, directory, "serve-settlement") as (url, pid):
        request = urllib.request.Request(
            f"{url}/v1/settlements",
            data=b"{}",
            method="POST",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": "scale-settlement-1",
            },
        )
        with postgres_cpu(environment, lambda: [pid]) as database_cpu:
            started, cpu = time.perf_counter(), process_cpu_seconds(pid)
            with urllib.request.urlopen(request, timeout=600) as response:
                body = json.load(response)
            seconds, cpu = time.perf_counter() - started, process_cpu_seconds(pid) - cpu
        peak = peak_resident_mb(pid)
    if body.get("more_to_settle"):
        raise RuntimeError("the settlement left lines for another batch")
    return Settled(seconds, cpu, int(body["amount"]), int(body["count"]), peak, str(body["reference"]), database_cpu[0])


@dataclass
class Exported:
    seconds: float
    server_cpu_seconds: float
    bytes: int
    rows: int  # data rows, the header not counted
    server_peak_mb: float
    server_start_mb: float
    database_cpu_seconds: float


def export(environment: dict[str, str], directory: Path) -> Exported:
    token = mint(environment, "finance")
    with serving(environment, directory, "serve-export") as (url, pid):
        at_start = peak_resident_mb(pid)
        request = urllib.request.Request(
            f"{url}/v1/exports/transactions?format=csv", headers={"Authorization": f"Bearer {token}"}
        )
        size = newlines = 0
        with postgres_cpu(environment, lambda: [pid]) as database_cpu:
            started, cpu = time.perf_counter(), process_cpu_seconds(pid)
            with urllib.request.urlopen(request, timeout=600) as response:
                while chunk := response.read(EXPORT_CHUNK_BYTES):
                    size += len(chunk)
                    newlines += chunk.count(b"\n")
            seconds, cpu = time.perf_counter() - started, process_cpu_seconds(pid) - cpu
        peak = peak_resident_mb(pid)
    return Exported(seconds, cpu, size, newlines - 1, peak, at_start, database_cpu[0])


# 6. The check.


@dataclass
class Checked:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    passed: bool
    output: str
    database_cpu_seconds: float


def check(environment: dict[str, str]) -> Checked:
    ran = run_measured(environment, "check")
    output = (ran.stdout + ran.stderr)[-4000:]
    return Checked(ran.seconds, ran.cpu_seconds, ran.peak_mb, ran.returncode == 0, output, ran.database_cpu_seconds)


_COUNTS_SQL = {
    "clients": "SELECT COUNT(*) FROM clients",
    "budget_lines": "SELECT COUNT(*) FROM budget_lines",
    "transactions": "SELECT COUNT(*) FROM transactions",
    "postings": "SELECT COUNT(*) FROM postings",
    "credits": "SELECT COUNT(*) FROM credits",
    "captured": "SELECT COUNT(*) FROM charges WHERE status = 'captured'",
    "audit_entries": "SELECT COUNT(*) FROM audit_log",
}
# What the schema's tables and their indexes take on disk.
_POSTGRES_BYTES_SQL = (
    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
)


def database_counts(path: str) -> dict[str, int]:
    from wallet.storage.migrations import is_postgres

    if is_postgres(path):
        return asyncio.run(_postgres_counts(path))
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = {name: int(connection.execute(sql).fetchone()[0]) for name, sql in _COUNTS_SQL.items()}
        size = connection.execute("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
        return {**counts, "database_bytes": int(size.fetchone()[0])}
    finally:
        connection.close()


async def _postgres_counts(dsn: str) -> dict[str, int]:
    import asyncpg

    from wallet.storage.postgres.pool import connect_arguments

    connection = await asyncpg.connect(**connect_arguments(dsn))
    try:
        counts = {name: int(await connection.fetchval(sql)) for name, sql in _COUNTS_SQL.items()}
        return {**counts, "database_bytes": int(await connection.fetchval(_POSTGRES_BYTES_SQL))}
    finally:
        await connection.close()


# The machine.


def machine(database: str | None = None) -> dict[str, Any]:
    """The benchmark's description of the machine, less wrk (not used here), plus the database's version."""
    info = bench.machine()
    info.pop("wrk", None)
    if database is None:
        return {**info, "sqlite": sqlite3.sqlite_version}
    return {**info, "postgresql": asyncio.run(_postgres_version(database))}


async def _postgres_version(dsn: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


# The command.


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(
        prog="python -m loadtests.scale",
        description="Million-scale credit run, export and settlement on SQLite or PostgreSQL, timed and measured.",
    )
    arguments.add_argument(
        "--clients",
        type=int,
        default=CLIENTS_DEFAULT,
        help=f"clients (wallets) to generate (default {CLIENTS_DEFAULT:,})",
    )
    arguments.add_argument(
        "--charges",
        type=int,
        default=CHARGES_DEFAULT,
        help=f"charges to capture, then settle at once (default {CHARGES_DEFAULT:,})",
    )
    arguments.add_argument(
        "--mix", action="store_true", help="a mix of 1 to 3 budget lines per client instead of one line each"
    )
    arguments.add_argument("--directory", type=Path, help="work here (must be empty) instead of a temporary directory")
    arguments.add_argument("--keep", action="store_true", help="keep the directory (database, keys, server logs)")
    arguments.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    arguments.add_argument(
        "--db",
        default="sqlite",
        help="sqlite (default: a file in the directory) or a postgresql:// DSN (a fresh schema, dropped after"
        " unless --keep)",
    )
    return arguments


def validate(arguments: argparse.Namespace, arguments_parser: argparse.ArgumentParser) -> None:
    if arguments.clients < 1 or arguments.charges < 1:
        arguments_parser.error("--clients and --charges must be positive")
    if arguments.directory is not None and arguments.directory.exists() and any(arguments.directory.iterdir()):
        arguments_parser.error("--directory must be empty or not exist yet")
    if arguments.db != "sqlite" and not arguments.db.startswith(("postgres://", "postgresql://")):
        arguments_parser.error("--db must be sqlite or a postgresql:// DSN")


def main(argv: Sequence[str] | None = None) -> int:
    arguments_parser = parser()
    arguments = arguments_parser.parse_args(argv)
    validate(arguments, arguments_parser)
    if arguments.directory is not None:
        arguments.directory.mkdir(parents=True, exist_ok=True)
        directory = arguments.directory
    else:
        directory = Path(tempfile.mkdtemp(prefix="wallet-scale-"))
    try:
        if arguments.db == "sqlite":
            return _run(arguments, directory, None)
        with bench.bench_schema(arguments.db, arguments.keep) as database:
            return _run(arguments, directory, database)
    finally:
        if arguments.keep or arguments.directory is not None:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Report:
    machine: dict[str, Any]
    arguments: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    figures: dict[str, Any] = field(default_factory=dict)
    passed: bool = False


def _run(arguments: argparse.Namespace, directory: Path, database: str | None) -> int:
    from wallet.logs import configure
    from wallet.settings import Settings

    environment = bench_environment(directory, free_port(), database)
    settings = Settings.from_env(environment)
    configure(settings.log_format, settings.log_level)  # warnings only, as the servers it starts
    info = machine(database)
    report = Report(
        info,
        {
            "clients": arguments.clients,
            "charges": arguments.charges,
            "mix": arguments.mix,
            "db": "sqlite" if database is None else "postgresql",
        },
        load_average(),
    )
    engine = f"SQLite {info['sqlite']}" if database is None else f"PostgreSQL {info['postgresql']}"

    def on_database(seconds: float) -> str:
        return "" if database is None else f", {seconds:.1f} s PostgreSQL CPU"

    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB; Python {info['python']},"
        f" {engine}; load average {format_load(report.load_before)}",
        flush=True,
    )

    generated = generate(environment, arguments.clients, arguments.mix)
    report.figures["generate"] = asdict(generated)
    print(
        f"generated  {generated.clients:,} clients, {generated.lines:,} budget lines for {generated.month}"
        f" (bulk SQL, not the API) in {generated.seconds:.1f} s",
        flush=True,
    )

    run = credit_run(environment, generated.month)
    report.figures["credit_run"] = asdict(run)
    credit_ok = run.credited == generated.lines and run.amount == generated.monthly_amount
    print(
        f"credit run {run.credited:,} lines, {run.amount:,} cents in {run.seconds:.1f} s"
        f" ({run.cpu_seconds:.1f} s CPU{on_database(run.database_cpu_seconds)})"
        f" (bound {CREDIT_RUN_SECONDS_MAX:g} s: {verdict(run.seconds < CREDIT_RUN_SECONDS_MAX)});"
        f" peak RSS {run.peak_mb:.0f} MiB (bound {CREDIT_RUN_MEMORY_MB_MAX:g}:"
        f" {verdict(run.peak_mb < CREDIT_RUN_MEMORY_MB_MAX)}); {'all lines' if credit_ok else 'WRONG TOTALS'}",
        flush=True,
    )

    charged = charge(environment, generated.provider_id, arguments.clients, arguments.charges)
    report.figures["charges"] = asdict(charged)
    print(
        f"charges    {charged.count:,} captured by national id through the service, {charged.amount:,} cents,"
        f" in {charged.seconds:.1f} s ({charged.count / charged.seconds:,.0f}/s{on_database(charged.database_cpu_seconds)})",
        flush=True,
    )

    settled = settle(environment, directory, generated.provider_id, arguments.charges)
    report.figures["settlement"] = asdict(settled)
    settle_ok = settled.count == charged.count and settled.amount == charged.amount
    print(
        f"settlement one batch of {settled.count:,} lines, {settled.amount:,} cents, reference {settled.reference},"
        f" in {settled.seconds:.1f} s ({settled.server_cpu_seconds:.1f} s server CPU"
        f"{on_database(settled.database_cpu_seconds)});"
        f" server peak RSS {settled.server_peak_mb:.0f} MiB;"
        f" {'matches the charges' if settle_ok else 'DOES NOT MATCH the charges'}",
        flush=True,
    )

    counts = database_counts(environment["WALLET_DB"])
    exported = export(environment, directory)
    report.figures["export"] = asdict(exported)
    export_ok = exported.rows == counts["transactions"]
    print(
        f"export     {exported.rows:,} transactions, {exported.bytes / 1e6:,.0f} MB of CSV"
        f" in {exported.seconds:.1f} s ({exported.server_cpu_seconds:.1f} s server CPU"
        f"{on_database(exported.database_cpu_seconds)})"
        f" (bound {EXPORT_SECONDS_MAX:g} s: {verdict(exported.seconds < EXPORT_SECONDS_MAX)}); server peak RSS"
        f" {exported.server_peak_mb:.0f} MiB, {exported.server_start_mb:.0f} MiB after start"
        f" (bound {EXPORT_MEMORY_MB_MAX:g}: {verdict(exported.server_peak_mb < EXPORT_MEMORY_MB_MAX)});"
        f" {'every transaction' if export_ok else 'ROWS MISSING'}",
        flush=True,
    )

    checked = check(environment)
    report.figures["check"] = {**asdict(checked), "output": None}
    print(
        f"check      wallet check in {checked.seconds:.1f} s ({checked.cpu_seconds:.1f} s CPU"
        f"{on_database(checked.database_cpu_seconds)}),"
        f" peak RSS {checked.peak_mb:.0f} MiB:"
        f" {'every invariant holds' if checked.passed else 'FAILED'}",
        flush=True,
    )
    if not checked.passed:
        print(checked.output, file=sys.stderr)

    report.figures["database"] = counts
    report.load_after = load_average()
    report.passed = credit_ok and settle_ok and export_ok and checked.passed
    print(
        f"database   {counts['transactions']:,} transactions, {counts['postings']:,} postings,"
        f" {counts['audit_entries']:,} audit entries, {counts['database_bytes'] / 1e9:.2f} GB"
    )
    print(f"load average before {format_load(report.load_before)}, after {format_load(report.load_after)}")
    print("SCALE_RESULT " + json.dumps(asdict(report), separators=(",", ":")))
    if arguments.json:
        arguments.json.write_text(json.dumps(asdict(report), indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
