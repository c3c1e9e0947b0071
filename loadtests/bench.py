"""The charge-path benchmark: the wallet beside a no-op aiohttp app (and optionally the floor), with wrk.

    python -m loadtests.bench [--duration 8] [--rounds 3] [--connections 32] [--threads 1] [--check]
                              [--db sqlite|postgresql://user@host:5432/db] [--nodes N [--apart]] [--floor]

In a fresh temporary directory, all on 127.0.0.1: seeds 1,000 funded clients, a hot one and an
approved provider through the service itself; starts ``wallet serve`` and ``loadtests/noop.py``;
then drives both with the same wrk script, alternating, ``--rounds`` times: charges by national id
(a new ``Idempotency-Key`` each), ``GET /v1/me/wallet`` as a random client, and every connection
charging the hot client. At the end the captured charges in the database are counted against the
201s wrk saw, and with ``--check`` ``wallet check`` runs on the database.

``--floor`` adds ``loadtests/floor.py`` to the charge rounds: on SQLite on a copy of the seeded
database, on PostgreSQL on a schema of its own seeded the same way. ``--db postgresql://...`` runs on a fresh schema (dropped after unless ``--keep``) with
``--nodes`` ``wallet serve`` processes, one wrk each; figures are their sums, latency the worst node's.
With ``--apart`` each node has a schema of its own, seeded the same way: N wallets that share no
row, no lock and no event, only the machine and the server: what N nodes reach with no write order.
The per-provider charge throttle is lifted (one token stands in for every provider); everything
else runs with its defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.pgcpu import BackendCpu, WriterStates, server_port

HOST = "127.0.0.1"  # the benchmark never sends a request anywhere else
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CATEGORY = "home_care"
CLIENTS_DEFAULT = 1_000
CHARGE_AMOUNT_CENTS = 100
# Funded generously: 100,000 charges of 1 € per client, 1,000,000 for the hot one, before a
# wallet runs dry (a dry wallet answers 402, which would count as an error here).
MONTHLY_AMOUNT_CENTS = 10_000_000
HOT_MONTHLY_AMOUNT_CENTS = 100_000_000
SEED_CONCURRENCY = 200
TOKEN_TTL_SECONDS = 3_600
WARMUP_SECONDS = 2
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
WRK_TIMEOUT_SECONDS = 5
THROTTLE_LIFTED = "1000000"
RESULT_MARKER = "BENCH_RESULT "
INSTALL_WRK = "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again."
HETU_CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"

# Targets from issue 5: benchmarks, not timed tests.
TARGET_CHARGES_PER_SECOND = 5_000
TARGET_RATIO = 0.35
TARGET_P99_MS = 20.0
TARGET_READS_PER_SECOND = 10_000


# The people.


@dataclass(frozen=True)
class Person:
    phone: str  # E.164
    national_id: str  # a valid henkilötunnus (born in the 1900s, century sign "-")


BIRTH_DAYS = 25_000  # 1930-01-01 .. 1998-06: every birth date of the 1900s we use
NATIONAL_IDS = BIRTH_DAYS * 897  # individual numbers 002..898


def national_id(index: int) -> str:
    """A distinct, valid henkilötunnus per index (up to NATIONAL_IDS): a birth date from 1 January 1930
    on, day by day over BIRTH_DAYS days (all in the 1900s, century sign "-"), then the next
    individual number."""
    if not 0 <= index < NATIONAL_IDS:
        raise ValueError(f"national_id: index must be 0..{NATIONAL_IDS - 1}")
    born = datetime.fromordinal(datetime(1930, 1, 1).toordinal() + index % BIRTH_DAYS)
    individual = 2 + index // BIRTH_DAYS  # 002..898
    digits = f"{born.day:02d}{born.month:02d}{born.year % 100:02d}{individual:03d}"
    return f"{digits[:6]}-{digits[6:]}{HETU_CHECK_CHARACTERS[int(digits) % 31]}"


def people(count: int) -> list[Person]:
    """``count`` clients and, last, the hot one: Finnish mobile numbers 040 100 0000 upwards."""
    return [Person(f"+35840{1_000_000 + index:07d}", national_id(index)) for index in range(count + 1)]


# The Lua scripts wrk runs.

_LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

local counter = 0
statuses = {}
local prefix = "bench"
function init(args)
  if args[1] ~= nil then prefix = args[1] end
  math.randomseed(os.time() * 1000 + thread_number)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"max_us":%d,"socket_errors":%d,"timeouts":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max,
    errors.connect + errors.read + errors.write, errors.timeout, table.concat(parts, ",")))
end
"""

_LUA_CHARGE = r"""
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
function request()
  counter = counter + 1
  local i = math.random(#phones)
  headers["Idempotency-Key"] = prefix .. "-" .. thread_number .. "-" .. counter
  return wrk.format("POST", "/v1/charges", headers,
    '{"phone":"' .. phones[i] .. '","amount":' .. amount .. ',"category":"' .. category
      .. '","identity":{"method":"national_id","national_id":"' .. national_ids[i] .. '"}}')
end
"""

_LUA_READ = r"""
local headers = {}
function request()
  counter = counter + 1
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format("GET", "/v1/me/wallet", headers)
end
"""


def _lua_strings(values: Sequence[str]) -> str:
    return "{" + ",".join(json.dumps(value) for value in values) + "}"  # JSON strings are Lua strings here


def charge_script(provider_token: str, targets: Sequence[Person], amount_cents: int = CHARGE_AMOUNT_CENTS) -> str:
    """A wrk script charging a random one of ``targets`` by national id, a new key per request."""
    return (
        "-- Generated by loadtests/bench.py: charges by national id, a distinct Idempotency-Key each.\n"
        f"token = {json.dumps(provider_token)}\n"
        f"category = {json.dumps(CATEGORY)}\n"
        f"amount = {int(amount_cents)}\n"
        f"phones = {_lua_strings([person.phone for person in targets])}\n"
        f"national_ids = {_lua_strings([person.national_id for person in targets])}\n" + _LUA_COMMON + _LUA_CHARGE
    )


def read_script(client_tokens: Sequence[str]) -> str:
    """A wrk script reading ``GET /v1/me/wallet`` as a random one of the clients."""
    return (
        "-- Generated by loadtests/bench.py: GET /v1/me/wallet as a random client.\n"
        f"tokens = {_lua_strings(client_tokens)}\n" + _LUA_COMMON + _LUA_READ
    )


# wrk.


@dataclass(frozen=True)
class Measurement:
    scenario: str
    target: str  # "wallet" or "noop"
    round: int
    requests: int
    duration_seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    socket_errors: int
    timeouts: int
    statuses: dict[str, int]
    # The servers' CPU seconds (user + system) during the run: unlike requests/s, a cost per request
    # that barely moves when other work shares the machine. Of it, the writer process's: the serial part.
    server_cpu_seconds: float = 0.0
    writer_cpu_seconds: float = 0.0
    # Writes and commits meanwhile (/metrics): group commit shares a commit's cost among its writes.
    writer_writes: float = 0.0
    writer_commits: float = 0.0
    # On PostgreSQL: the CPU seconds of the server backends serving the nodes' connections (loadtests/pgcpu.py).
    database_cpu_seconds: float = 0.0
    # On PostgreSQL: the share of samples of the writers' backends in each state (pg_stat_activity).
    writer_states: dict[str, float] = field(default_factory=dict)
    # The machine's context switches during the run (/proc/stat): every process's, wrk's included.
    context_switches: int = 0
    # The share of the machine's CPU time (every core) not idle during the run (/proc/stat).
    machine_busy: float = 0.0

    @property
    def switches_per_request(self) -> float:
        return self.context_switches / self.answered if self.answered else 0.0

    @property
    def writes_per_commit(self) -> float:
        return self.writer_writes / self.writer_commits if self.writer_commits else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_seconds * 1e6 / self.answered if self.answered else 0.0

    @property
    def writer_cpu_us_per_request(self) -> float:
        return self.writer_cpu_seconds * 1e6 / self.answered if self.answered else 0.0

    @property
    def database_cpu_us_per_request(self) -> float:
        return self.database_cpu_seconds * 1e6 / self.answered if self.answered else 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.duration_seconds if self.duration_seconds else 0.0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def successes(self) -> int:
        return sum(count for status, count in self.statuses.items() if status.startswith("2"))

    @property
    def successes_per_second(self) -> float:
        return self.successes / self.duration_seconds if self.duration_seconds else 0.0

    @property
    def error_share(self) -> float:
        """Non-2xx answers, socket errors and timeouts, as a share of all requests."""
        failed = self.answered - self.successes + self.socket_errors + self.timeouts
        total = self.answered + self.socket_errors + self.timeouts
        return failed / total if total else 0.0


def parse_wrk_output(output: str, scenario: str, target: str, round_number: int) -> Measurement:
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            raw = json.loads(line[len(RESULT_MARKER) :])
            return Measurement(
                scenario=scenario,
                target=target,
                round=round_number,
                requests=int(raw["requests"]),
                duration_seconds=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                mean_ms=raw["mean_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
                socket_errors=int(raw["socket_errors"]),
                timeouts=int(raw["timeouts"]),
                statuses={str(status): int(count) for status, count in raw["statuses"].items()},
            )
    raise RuntimeError(f"wrk printed no result line:\n{output}")


def wrk_command(
    url: str, script: Path, duration_seconds: int, connections: int, threads: int, key_prefix: str
) -> list[str]:
    if not url.startswith(f"http://{HOST}:"):
        raise ValueError(f"the benchmark only sends requests to {HOST}, not {url}")
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "-s",
        str(script),
        url,
        "--",
        key_prefix,
    ]


def run_wrk(
    url: str | Sequence[str],
    script: Path | Sequence[Path],
    scenario: str,
    target: str,
    round_number: int,
    arguments: argparse.Namespace,
    duration_seconds: int | None = None,
    server_pid: int | Sequence[int] | None = None,
) -> Measurement:
    """One measurement; with several URLs (nodes), one wrk each at once, the connections shared out,
    and the server CPU of every node counted. Several scripts: one a URL, in order (``--apart``)."""
    urls = [url] if isinstance(url, str) else list(url)
    scripts = [script] if isinstance(script, Path) else list(script)
    scripts = scripts * len(urls) if len(scripts) == 1 else scripts
    if len(scripts) != len(urls):
        raise ValueError(f"{len(scripts)} scripts for {len(urls)} URLs")
    pids = [] if server_pid is None else [server_pid] if isinstance(server_pid, int) else list(server_pid)
    connections = max(arguments.connections // len(urls), arguments.threads)
    measured_on_server = arguments.db != "sqlite" and target in ("wallet", "floor")
    backends = BackendCpu(pids, server_port(arguments.db)) if measured_on_server else None
    states = WriterStates(base_dsn(arguments.db), pids) if backends is not None else None
    if backends is not None and states is not None:
        backends.start()
        states.start()
    before = _cpu_snapshot(pids)
    switches_before, times_before = context_switches(), cpu_times()
    batches_before = [writer_batches(each) for each in urls] if target == "wallet" else []
    started = []
    for number, each in enumerate(urls):
        key_prefix = f"{scenario}-{target}-{round_number}-{number}-{secrets.token_hex(4)}"
        command = wrk_command(
            each, scripts[number], duration_seconds or arguments.duration, connections, arguments.threads, key_prefix
        )
        started.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [running.communicate() for running in started]
    cpu, writer_cpu = (max(after - was, 0.0) for after, was in zip(_cpu_snapshot(pids), before))
    switches = context_switches() - switches_before
    busy = machine_busy(times_before, cpu_times())
    database_cpu = backends.stop()[0] if backends is not None else 0.0
    writer_states = states.stop() if states is not None else {}
    measured = []
    for running, (output, errors) in zip(started, outputs):
        if running.returncode != 0:
            raise RuntimeError(f"wrk failed ({running.returncode}): {errors or output}")
        measured.append(parse_wrk_output(output, scenario, target, round_number))
    writes = commits = 0.0
    for each, (writes_before, commits_before) in zip(urls, batches_before):
        writes_after, commits_after = writer_batches(each)
        writes, commits = writes + writes_after - writes_before, commits + commits_after - commits_before
    return replace(
        merge(measured),
        server_cpu_seconds=cpu,
        writer_cpu_seconds=writer_cpu,
        writer_writes=writes,
        writer_commits=commits,
        database_cpu_seconds=database_cpu,
        writer_states=writer_states,
        context_switches=switches,
        machine_busy=busy,
    )


def context_switches() -> int:
    """The machine's context switches since boot (``ctxt`` in /proc/stat; 0 where there is none)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("ctxt "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_times() -> tuple[int, int]:
    """The machine's CPU time since boot in clock ticks, all cores: (all of it, idle and waiting for I/O)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), sum(fields[3:5])  # user .. steal; guest time is counted in user already


def machine_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    total, idle = after[0] - before[0], after[1] - before[1]
    return 1 - idle / total if total > 0 else 0.0


def base_dsn(dsn: str) -> str:
    """The DSN without its query (the bench's search_path and settings): for a plain monitoring connection."""
    return dsn.split("?", 1)[0]


def _cpu_snapshot(pids: Sequence[int]) -> tuple[float, float]:
    """The servers' CPU seconds so far: all, and the writers'."""
    return sum(process_cpu_seconds(pid) for pid in pids), sum(writer_cpu_seconds(pid) for pid in pids)


def writer_batches(url: str) -> tuple[float, float]:
    """The writes and the commits so far of the writer behind ``url`` (its /metrics: the batch-size
    histogram's sum and count; with several workers, whichever answers, sharing the one writer's
    figures). (0, 0) when they cannot be read."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0, 0.0
    figures = {}
    for line in text.splitlines():
        for name in ("wallet_writer_batch_size_sum", "wallet_writer_batch_size_count"):
            if line.startswith(name + " "):
                figures[name] = float(line.split()[1])
    return figures.get("wallet_writer_batch_size_sum", 0.0), figures.get("wallet_writer_batch_size_count", 0.0)


def merge(measured: Sequence[Measurement]) -> Measurement:
    """Measurements taken at once against several nodes as one: counts summed, latency the worst."""
    if len(measured) == 1:
        return measured[0]
    statuses: dict[str, int] = {}
    for each in measured:
        for status, count in each.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    first = measured[0]
    return replace(
        first,
        requests=sum(m.requests for m in measured),
        duration_seconds=max(m.duration_seconds for m in measured),
        p50_ms=max(m.p50_ms for m in measured),
        p90_ms=max(m.p90_ms for m in measured),
        p99_ms=max(m.p99_ms for m in measured),
        mean_ms=max(m.mean_ms for m in measured),
        max_ms=max(m.max_ms for m in measured),
        socket_errors=sum(m.socket_errors for m in measured),
        timeouts=sum(m.timeouts for m in measured),
        statuses=statuses,
    )


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU time so far of a process, its threads and its live child processes (the
    writer process of ``wallet serve``, its HTTP workers); 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: stat(5)'s 14th, 15th
    return own + sum(process_cpu_seconds(child) for child in child_pids(pid))


def writer_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of the writer processes among ``pid``'s descendants."""
    if pid is None:
        return 0.0
    total = 0.0
    for child in child_pids(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        # The wallet's writer process, or the floor's (loadtests/floor.py).
        writer = b"writer_process" in command or b"floor_writer" in command
        total += process_cpu_seconds(child) if writer else writer_cpu_seconds(child)
    return total


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(number) for number in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def disk_commits_per_second(directory: Path, seconds: float = 1.0) -> float:
    """One-row transactions a second in SQLite WAL with synchronous=FULL on the benchmark's disk:
    the fsync rate that bounds how many commits (not charges) the writer can make."""
    path = directory / "fsync-probe.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, payload TEXT)")
        began, commits = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO probe (payload) VALUES (?)", ("x" * 200,))
            connection.execute("COMMIT")
            commits += 1
        return commits / (time.perf_counter() - began)
    finally:
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{path}{suffix}").unlink()


# Processes.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def bench_environment(directory: Path, port: int, database: str | None = None) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WALLET_")}
    environment.update(
        WALLET_DB=database or str(directory / "wallet.db"),
        WALLET_SIGNING_KEY=str(directory / "keys" / "signing-key.pem"),
        WALLET_SMS_OUTBOX=str(directory / "sms-outbox.jsonl"),
        WALLET_HOST=HOST,
        WALLET_PORT=str(port),
        WALLET_LOG_LEVEL="warning",  # keep logging off the hot path
        WALLET_LOG_FORMAT="json",
        WALLET_AUTO_CREDIT_RUN="false",  # seeded already; keep background work out of the figures
        WALLET_PROVIDER_CHARGES_PER_SECOND=THROTTLE_LIFTED,
        WALLET_PROVIDER_CHARGES_BURST=THROTTLE_LIFTED,
    )
    # Settings to try without editing the bench: BENCH_WALLET_WRITER_BATCH_MAX=8 sets WALLET_WRITER_BATCH_MAX=8.
    environment.update(
        {key.removeprefix("BENCH_"): value for key, value in os.environ.items() if key.startswith("BENCH_WALLET_")}
    )
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), environment.get("PYTHONPATH")]))
    return environment


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_seconds: float = START_TIMEOUT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout_seconds:.0f} s:\n{log_path.read_text()[-4000:]}")


@contextmanager
def process(
    command: list[str],
    environment: dict[str, str],
    log_path: Path,
    health_url: str,
    start_timeout_seconds: float = START_TIMEOUT_SECONDS,
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        started = subprocess.Popen(command, env=environment, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(health_url, started, log_path, start_timeout_seconds)
            yield started
        finally:
            stop(started)


def stop(started: subprocess.Popen[bytes]) -> None:
    """SIGTERM, so the service finishes its queued writes, then wait; kill only if it hangs."""
    if started.poll() is not None:
        return
    started.terminate()
    try:
        started.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        started.kill()
        started.wait()


# Seeding.


@dataclass
class Seeded:
    month: str
    provider_id: str
    client_ids: list[str]  # the last one is the hot client
    credited_lines: int
    seconds: float


async def seed(environment: dict[str, str], everyone: Sequence[Person]) -> Seeded:
    """Clients, budgets, an approved provider and the credit run, through the service itself."""
    from wallet.bootstrap import open_service
    from wallet.clock import SystemClock, month_of
    from wallet.settings import Settings
    from wallet.shapes import requests

    started = time.perf_counter()
    settings = Settings.from_env(environment)
    month = month_of(SystemClock().now(), settings.zone)  # the budget month in Helsinki
    end_month = f"{int(month[:4]) + 1}{month[4:]}"
    async with open_service(settings) as service:
        await service.create_category(requests.NewCategory(CATEGORY, "Kotihoito"))

        async def client(index: int, person: Person) -> str:
            created = await service.create_client(
                requests.NewClient(f"Asiakas {index}", person.phone, person.national_id)
            )
            hot = index == len(everyone) - 1
            await service.create_budget(
                created["id"],
                requests.decode(
                    requests.NewBudget,
                    {
                        "start_month": month,
                        "end_month": end_month,
                        "unused": "expire",
                        "lines": [
                            {
                                "category": CATEGORY,
                                "monthly_amount": HOT_MONTHLY_AMOUNT_CENTS if hot else MONTHLY_AMOUNT_CENTS,
                            }
                        ],
                    },
                ),
            )
            return str(created["id"])

        client_ids: list[str] = []
        for start in range(0, len(everyone), SEED_CONCURRENCY):
            chunk = list(enumerate(everyone))[start : start + SEED_CONCURRENCY]
            client_ids += await asyncio.gather(*(client(index, person) for index, person in chunk))
        provider = await service.create_provider(
            requests.NewProvider("Penkkitesti Hoiva Oy", "2077474-0", "FI2112345600000785", (CATEGORY,))
        )
        await service.set_provider_status(provider["id"], "approved")
        run = (await service.credit_run(month)).value
    return Seeded(month, str(provider["id"]), client_ids, int(run["credited"]), time.perf_counter() - started)


def mint_tokens(environment: dict[str, str], provider_id: str, client_ids: Sequence[str]) -> tuple[str, list[str]]:
    """The provider's token and the clients', signed with the service's key (as ``wallet token`` signs)."""
    from wallet.auth.tokens import Role
    from wallet.bootstrap import token_service
    from wallet.settings import Settings

    tokens = token_service(Settings.from_env(environment))
    now = datetime.now(UTC)
    provider = tokens.mint(Role.PROVIDER, now, TOKEN_TTL_SECONDS, provider_id=provider_id)
    return provider, [tokens.mint(Role.CLIENT, now, TOKEN_TTL_SECONDS, client_id=client_id) for client_id in client_ids]


_COUNTS_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM charges WHERE status = 'captured'",
    "SELECT COUNT(*) FROM charges WHERE status != 'captured'",
)


def database_counts(path: str) -> dict[str, int]:
    if path.startswith(("postgres://", "postgresql://")):
        return asyncio.run(_postgres_counts(path))
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        captured, amount = connection.execute(_COUNTS_SQL[0]).fetchone()
        pending = connection.execute(_COUNTS_SQL[1]).fetchone()[0]
    return {"captured": int(captured), "captured_amount": int(amount), "other": int(pending)}


async def _postgres_counts(dsn: str) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        captured, amount = await connection.fetchrow(_COUNTS_SQL[0])
        pending = await connection.fetchval(_COUNTS_SQL[1])
    finally:
        await connection.close()
    return {"captured": int(captured), "captured_amount": int(amount), "other": int(pending)}


# SMS the service still has to send (receipts of earlier rounds, the seeded budgets' decision notices).
_UNSENT_SQL = (
    "SELECT (SELECT count(*) FROM receipts WHERE sent_at IS NULL AND abandoned_at IS NULL)"
    " + (SELECT count(*) FROM notices WHERE sent_at IS NULL)"
)
OUTBOX_WAIT_SECONDS = 120.0  # how long a measurement waits for the earlier rounds' SMS to be sent


def unsent_messages(path: str) -> int:
    if path.startswith(("postgres://", "postgresql://")):
        return asyncio.run(_postgres_unsent(path))
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return int(connection.execute(_UNSENT_SQL).fetchone()[0])


async def _postgres_unsent(dsn: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval(_UNSENT_SQL))
    finally:
        await connection.close()


def wait_for_outboxes(path: str) -> float:
    """Seconds spent waiting until the service has sent every SMS queued so far, so that one
    measurement does not pay for the sending of the one before it (at most ``OUTBOX_WAIT_SECONDS``)."""
    began = time.monotonic()
    while unsent_messages(path) and time.monotonic() - began < OUTBOX_WAIT_SECONDS:
        time.sleep(0.2)
    return time.monotonic() - began


@contextmanager
def bench_schema(dsn: str, keep: bool) -> Iterator[str]:
    """A fresh schema for one run on PostgreSQL; its DSN (search_path set). Dropped after, unless kept."""
    import asyncpg

    schema = f"wallet_bench_{secrets.token_hex(4)}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"
    finally:
        if keep:
            print(f"kept schema {schema}")
        else:
            asyncio.run(execute(f'DROP SCHEMA "{schema}" CASCADE'))


# The machine.


def machine() -> dict[str, Any]:
    model = "unknown"
    memory_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "wrk": _wrk_version(),
    }


def _wrk_version() -> str:
    try:
        finished = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    except OSError:  # not installed: the benchmark says so when it needs it; describing the machine does not
        return "not installed"
    match = re.search(r"wrk (\S+)", finished.stdout + finished.stderr)
    return match.group(1) if match else "unknown"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


# The run.


@dataclass
class Results:
    measurements: list[Measurement] = field(default_factory=list)
    outbox_wait_seconds: float = 0.0  # waited before measurements for earlier rounds' SMS to be sent

    def of(self, scenario: str, target: str) -> list[Measurement]:
        return [m for m in self.measurements if m.scenario == scenario and m.target == target]


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="Charges/s, latency and error share of the wallet beside a no-op aiohttp app, with wrk.",
    )
    arguments.add_argument("--duration", type=int, default=8, help="whole seconds per measurement (default 8)")
    arguments.add_argument("--rounds", type=int, default=3, help="rounds of each scenario, alternating (default 3)")
    arguments.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    arguments.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    arguments.add_argument("--clients", type=int, default=CLIENTS_DEFAULT, help="funded clients (default 1000)")
    arguments.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    arguments.add_argument(
        "--check", action="store_true", help="run `wallet check` on the database afterwards (minutes on a large one)"
    )
    arguments.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    arguments.add_argument(
        "--db", default="sqlite", help="sqlite (default: a file in the temporary directory) or a postgresql:// DSN"
    )
    arguments.add_argument(
        "--nodes", type=int, default=1, help="wallet serve processes on the one database (PostgreSQL only; default 1)"
    )
    arguments.add_argument(
        "--apart",
        action="store_true",
        help="each node on a schema of its own, seeded the same way: nodes that share no row, lock or event"
        " (what N nodes reach here with no write order between them)",
    )
    arguments.add_argument(
        "--workers",
        type=int,
        default=1,
        help="WALLET_WORKERS of each wallet serve: HTTP worker processes on its port (default 1)",
    )
    arguments.add_argument(
        "--floor",
        action="store_true",
        help="also measure the floor (loadtests/floor.py: the least a durable charge costs on this"
        " stack) in the charge rounds, on a copy of the seeded database (PostgreSQL: a schema of its own,"
        " seeded the same way)",
    )
    return arguments


def validate(arguments: argparse.Namespace, arguments_parser: argparse.ArgumentParser) -> None:
    if arguments.duration <= 0 or arguments.rounds < 1 or arguments.clients < 1:
        arguments_parser.error("--duration, --rounds and --clients must be positive")
    if arguments.threads < 1 or arguments.connections < arguments.threads:
        arguments_parser.error("--threads must be at least 1 and --connections at least --threads")
    postgres = arguments.db.startswith(("postgres://", "postgresql://"))
    if arguments.db != "sqlite" and not postgres:
        arguments_parser.error("--db must be sqlite or a postgresql:// DSN")
    if arguments.nodes < 1 or (arguments.nodes > 1 and not postgres):
        arguments_parser.error("--nodes must be 1, or more with --db postgresql://...")
    if arguments.workers < 1:
        arguments_parser.error("--workers must be at least 1")
    if arguments.connections < arguments.threads * arguments.nodes:
        arguments_parser.error("--connections must be at least --threads times --nodes")
    if arguments.apart and arguments.nodes < 2:
        arguments_parser.error("--apart needs --nodes 2 or more")
    if arguments.floor and arguments.nodes > 1:
        arguments_parser.error("--floor runs beside one node")


def main(argv: list[str] | None = None) -> int:
    arguments_parser = parser()
    arguments = arguments_parser.parse_args(argv)
    validate(arguments, arguments_parser)
    if shutil.which("wrk") is None:
        print(INSTALL_WRK, file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    try:
        if arguments.db == "sqlite":
            return _run(arguments, directory, None)
        with contextlib.ExitStack() as schemas:
            database = schemas.enter_context(bench_schema(arguments.db, arguments.keep))
            floor_schema = (
                schemas.enter_context(bench_schema(arguments.db, arguments.keep)) if arguments.floor else None
            )
            apart = [
                schemas.enter_context(bench_schema(arguments.db, arguments.keep))
                for _ in range(arguments.nodes - 1 if arguments.apart else 0)
            ]
            return _run(arguments, directory, database, floor_schema, apart)
    finally:
        if arguments.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _run(
    arguments: argparse.Namespace,
    directory: Path,
    database: str | None,
    floor_schema: str | None = None,
    apart: Sequence[str] = (),
) -> int:
    from wallet.settings import Settings

    wallet_ports, noop_port, floor_port = [free_port() for _ in range(arguments.nodes)], free_port(), free_port()
    wallet_port = wallet_ports[0]
    environment = bench_environment(directory, wallet_port, database)
    environment["WALLET_WORKERS"] = str(arguments.workers)
    everyone = people(arguments.clients)
    info = machine()
    load_before = load_average()
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB; Python {info['python']};"
        f" wrk {info['wrk']}; load average {format_load(load_before)}"
    )
    print(
        f"database: {'SQLite' if database is None else 'PostgreSQL'}; {arguments.nodes} wallet serve node(s),"
        f" {arguments.workers} HTTP worker(s) each; writer process: {environment.get('WALLET_WRITER_PROCESS', 'true')};"
        f" event loop: {environment.get('WALLET_EVENT_LOOP', Settings.event_loop)} (the no-op's too)"
        + ("; each node on a schema of its own (--apart)" if apart else "")
    )
    info["disk_commits_per_second"] = disk_commits = disk_commits_per_second(directory)
    print(
        f"disk: {disk_commits:,.0f} SQLite commits/s (one row each, WAL, synchronous=FULL): the writer's commit"
        f" rate bound; charges/s can exceed it only by group commit"
    )
    seeded = asyncio.run(seed(environment, everyone))
    print(
        f"seeded {len(seeded.client_ids) - 1} clients + 1 hot wallet, credited {seeded.credited_lines} lines"
        f" for {seeded.month} in {seeded.seconds:.1f} s"
    )
    floor_database = floor_schema or str(directory / "floor.db")
    if (
        arguments.floor and floor_schema is None
    ):  # copied now, while no server runs: the floor starts where the wallet starts
        copy_database(environment["WALLET_DB"], Path(floor_database))
    elif arguments.floor:  # PostgreSQL: the same seeding in a schema of the floor's own (the same secrets, phones)
        floor_seeded = asyncio.run(seed({**environment, "WALLET_DB": floor_database}, everyone))
        print(f"seeded the floor's schema the same way in {floor_seeded.seconds:.1f} s")
    # --apart: nodes after the first on schemas of their own, seeded the same way (ids of their own)
    databases, each_seeded = [environment["WALLET_DB"]], [seeded]
    for schema in apart:
        each_seeded.append(asyncio.run(seed({**environment, "WALLET_DB": schema}, everyone)))
        databases.append(schema)
        print(f"seeded node {len(databases)}'s schema the same way in {each_seeded[-1].seconds:.1f} s")
    paths: dict[str, list[Path]] = {}  # each scenario's script, one a schema
    for number, node_seeded in enumerate(each_seeded):
        provider_token, client_tokens = mint_tokens(environment, node_seeded.provider_id, node_seeded.client_ids[:-1])
        scripts = {
            "charge": charge_script(provider_token, everyone[:-1]),
            "read": read_script(client_tokens),
            "hot": charge_script(provider_token, everyone[-1:]),
        }
        for name, text in scripts.items():
            path = directory / (f"{name}.lua" if number == 0 else f"{name}-{number}.lua")
            path.write_text(text)
            paths.setdefault(name, []).append(path)

    # Each target's processes (command, environment, port). With --workers N the no-op runs N
    # processes on its port too, and always on the wallet's event loop.
    event_loop = environment.get("WALLET_EVENT_LOOP", Settings.event_loop)
    python, loop = [sys.executable, "-m"], ["--event-loop", event_loop]
    targets: dict[str, list[tuple[list[str], dict[str, str], int]]] = {
        "wallet": [
            (
                [*python, "wallet", "serve", "--host", HOST, "--port", str(port)],
                {**environment, "WALLET_PORT": str(port), "WALLET_DB": databases[number % len(databases)]},
                port,
            )
            for number, port in enumerate(wallet_ports)
        ],
        "noop": [
            (
                [*python, "loadtests.noop", "--port", str(noop_port), "--processes", str(arguments.workers), *loop],
                environment,
                noop_port,
            )
        ],
    }
    if arguments.floor:
        secrets_and_loop = ["--secret-dir", str(Path(environment["WALLET_SIGNING_KEY"]).resolve().parent), *loop]
        targets["floor"] = [
            (
                [
                    *python,
                    "loadtests.floor",
                    "--port",
                    str(floor_port),
                    "--database",
                    floor_database,
                    *secrets_and_loop,
                ],
                environment,
                floor_port,
            )
        ]
    results = Results()
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        servers: dict[str, list[subprocess.Popen[bytes]]] = {}
        urls: dict[str, list[str]] = {}
        for name, processes in targets.items():
            for number, (command, served, port) in enumerate(processes):
                url = f"http://{HOST}:{port}"
                log = directory / f"{name}-{number}.log"
                servers.setdefault(name, []).append(
                    stack.enter_context(process(command, served, log, f"{url}/healthz"))
                )
                urls.setdefault(name, []).append(url)
        pids = {name: [server.pid for server in each] for name, each in servers.items()}
        for name in servers:
            print(f"{name} (pids {', '.join(map(str, pids[name]))}) on {', '.join(urls[name])}")
        print(f"wrk -t{arguments.threads} -c{arguments.connections}, {arguments.duration:g} s a measurement")
        charge_targets = ("noop", "wallet", "floor") if arguments.floor else ("noop", "wallet")
        for scenario, measured_targets in (
            ("charge", charge_targets),
            ("read", ("noop", "wallet")),
            ("hot", ("wallet",)),
        ):
            for target in measured_targets:  # warm up: token cache, page cache, connections; not in the figures
                results.outbox_wait_seconds += sum(map(wait_for_outboxes, databases))
                results.measurements.append(
                    run_wrk(
                        urls[target],
                        paths[scenario] if target == "wallet" else paths[scenario][0],
                        f"warmup-{scenario}",
                        target,
                        0,
                        arguments,
                        WARMUP_SECONDS,
                        pids[target],
                    )
                )
            for round_number in range(1, arguments.rounds + 1):
                order = measured_targets if round_number % 2 else tuple(reversed(measured_targets))
                for target in order:
                    results.outbox_wait_seconds += sum(map(wait_for_outboxes, databases))
                    measured = run_wrk(
                        urls[target],
                        paths[scenario] if target == "wallet" else paths[scenario][0],
                        scenario,
                        target,
                        round_number,
                        arguments,
                        server_pid=pids[target],
                    )
                    results.measurements.append(measured)
                    _print_measurement(measured)
                    if target == "wallet" and scenario != "read":  # how far the SMS receipts are behind
                        print(f"    SMS not yet sent as the round ended: {sum(map(unsent_messages, databases)):,}")
        print(f"waited {results.outbox_wait_seconds:.1f} s in all for earlier rounds' SMS to be sent before measuring")
        for name, each in servers.items():
            for number, server in enumerate(each):
                stop(server)
                if server.returncode not in (0, None):
                    print(
                        f"{name} exited with {server.returncode}; see {directory / f'{name}-{number}.log'}",
                        file=sys.stderr,
                    )
    load_after = load_average()
    counts: dict[str, int] = {}
    for each_database in databases:  # summed over the schemas with --apart
        for name, value in database_counts(each_database).items():
            counts[name] = counts.get(name, 0) + value
    if arguments.floor:
        counts.update({f"floor_{name}": value for name, value in database_counts(floor_database).items()})
    check = None
    if arguments.check:
        for each_database in databases:  # every schema with --apart; the first that fails is reported
            check = subprocess.run(
                [sys.executable, "-m", "wallet", "check"],
                env={**environment, "WALLET_DB": each_database},
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if check.returncode != 0:
                break
    summary = summarise(results, arguments)
    if arguments.floor:
        summary["floor_writer"] = _floor_writer_line(directory / "floor-0.log")
    _print_summary(summary, counts, check, load_before, load_after, time.monotonic() - began)
    if arguments.json:
        arguments.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "load_average_before": load_before,
                    "load_average_after": load_after,
                    "arguments": {
                        k: ("postgresql" if k == "db" and v != "sqlite" else str(v)) for k, v in vars(arguments).items()
                    },
                    "summary": summary,
                    "database": counts,
                    "check_ok": None if check is None else check.returncode == 0,
                    "measurements": [
                        {**m.__dict__, "per_second": m.per_second, "error_share": m.error_share}
                        for m in results.measurements
                    ],
                },
                indent=2,
            )
        )
    consistent = (
        summary["charges_answered_201"]
        <= counts["captured"]
        <= (summary["charges_answered_201"] + arguments.connections * summary["charge_runs"])
    )
    if arguments.floor:
        consistent = consistent and _floor_consistent(summary, counts)
    return 0 if consistent and (check is None or check.returncode == 0) else 1


def copy_database(source: str, destination: Path) -> None:
    """A page-for-page copy of the database (SQLite's backup API: what a committed WAL holds too)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as original,
        contextlib.closing(sqlite3.connect(destination)) as copy,
    ):
        original.backup(copy)


def _floor_consistent(summary: dict[str, Any], counts: dict[str, int]) -> bool:
    """The floor's database holds every charge wrk saw answered 201, plus at most those in flight."""
    seen = summary["floor_answered_201"]
    return bool(seen <= counts["floor_captured"] <= seen + summary["connections"] * summary["floor_runs"])


def _floor_writer_line(log_path: Path) -> str:
    """What the floor's writer said of its commits as it ended (``floor writer: N charges in M commits``)."""
    with contextlib.suppress(OSError):
        for line in reversed(log_path.read_text(errors="replace").splitlines()):
            if line.startswith("floor writer: ") and " commits " in line:
                return line.removeprefix("floor writer: ")
    return "not reported"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(results: Results, arguments: argparse.Namespace) -> dict[str, Any]:
    def figures(scenario: str, target: str) -> dict[str, Any]:
        runs = results.of(scenario, target)
        statuses: dict[str, int] = {}
        for run in runs:
            for status, count in run.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        return {
            "per_second": _median([run.per_second for run in runs]),
            "successes_per_second": _median([run.successes_per_second for run in runs]),
            "p50_ms": _median([run.p50_ms for run in runs]),
            "p99_ms": _median([run.p99_ms for run in runs]),
            "cpu_us_per_request": _median([run.cpu_us_per_request for run in runs]),
            "writer_cpu_us_per_request": _median([run.writer_cpu_us_per_request for run in runs]),
            "database_cpu_us_per_request": _median([run.database_cpu_us_per_request for run in runs]),
            "error_share": sum(run.error_share * max(run.requests, 1) for run in runs)
            / max(sum(max(run.requests, 1) for run in runs), 1),
            "statuses": statuses,
            "rounds": len(runs),
        }

    summary: dict[str, Any] = {
        f"{scenario}_{target}": figures(scenario, target)
        for scenario, target in (
            ("charge", "noop"),
            ("charge", "wallet"),
            ("read", "noop"),
            ("read", "wallet"),
            ("hot", "wallet"),
        )
    }
    noop_charge = summary["charge_noop"]["per_second"]
    noop_read = summary["read_noop"]["per_second"]
    summary["charge_ratio"] = summary["charge_wallet"]["successes_per_second"] / noop_charge if noop_charge else 0.0
    summary["read_ratio"] = summary["read_wallet"]["successes_per_second"] / noop_read if noop_read else 0.0
    summary["hot_ratio"] = summary["hot_wallet"]["successes_per_second"] / noop_charge if noop_charge else 0.0
    charge_runs = [
        m
        for m in results.measurements
        if m.target == "wallet" and m.scenario in ("charge", "hot", "warmup-charge", "warmup-hot")
    ]
    summary["charges_answered_201"] = sum(m.statuses.get("201", 0) for m in charge_runs)
    summary["charge_runs"] = len(charge_runs)
    if getattr(arguments, "floor", False):
        floor = summary["charge_floor"] = figures("charge", "floor")
        summary["floor_ratio"] = floor["successes_per_second"] / noop_charge if noop_charge else 0.0
        wallet = summary["charge_wallet"]["successes_per_second"]
        summary["wallet_to_floor"] = wallet / floor["successes_per_second"] if floor["successes_per_second"] else 0.0
        floor_runs = [m for m in results.measurements if m.target == "floor"]
        summary["floor_answered_201"] = sum(m.statuses.get("201", 0) for m in floor_runs)
        summary["floor_runs"] = len(floor_runs)
    summary["connections"] = arguments.connections
    summary["threads"] = arguments.threads
    return summary


def format_load(load: Sequence[float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def _print_measurement(m: Measurement) -> None:
    statuses = " ".join(f"{status}:{count}" for status, count in sorted(m.statuses.items()))
    extra = f" socket errors {m.socket_errors}, timeouts {m.timeouts}" if m.socket_errors or m.timeouts else ""
    print(
        f"  {m.scenario:<6} {m.target:<6} round {m.round}: {m.per_second:>8,.0f} req/s"
        f"  p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:6.2f} ms  server CPU {m.cpu_us_per_request:6.0f} us/req"
        f" (writer {m.writer_cpu_us_per_request:4.0f})"
        + (f" {m.writes_per_commit:4.1f} writes/commit" if m.writer_commits else "")
        + (f" PostgreSQL CPU {m.database_cpu_us_per_request:4.0f} us/req" if m.database_cpu_seconds else "")
        + f"  {m.switches_per_request:.1f} switches/req  machine {m.machine_busy:.0%} busy  errors {m.error_share:6.2%}  [{statuses}]{extra}"
    )
    if m.writer_states:
        print(
            "      PostgreSQL writer: " + ", ".join(f"{state} {share:.0%}" for state, share in m.writer_states.items())
        )


def verdict(ok: bool) -> str:
    return "meets" if ok else "below"


def _print_summary(
    summary: dict[str, Any],
    counts: dict[str, int],
    check: subprocess.CompletedProcess[str] | None,
    load_before: Sequence[float],
    load_after: Sequence[float],
    seconds: float,
) -> None:
    charge, noop, read, hot = (summary[k] for k in ("charge_wallet", "charge_noop", "read_wallet", "hot_wallet"))
    connections = summary["connections"]
    print()
    print(f"Medians of {charge['rounds']} rounds, wrk -t{summary['threads']} -c{connections}:")
    print(
        f"  charges/s          {charge['successes_per_second']:>9,.0f}   (target {TARGET_CHARGES_PER_SECOND:,}:"
        f" {verdict(charge['successes_per_second'] >= TARGET_CHARGES_PER_SECOND)})"
    )
    print(
        f"  charge latency     p50 {charge['p50_ms']:.2f} ms, p99 {charge['p99_ms']:.2f} ms"
        f"   (p99 target {TARGET_P99_MS:g} ms: {verdict(charge['p99_ms'] < TARGET_P99_MS)})"
    )
    print(f"  charge errors      {charge['error_share']:.2%} non-2xx  {_statuses(charge['statuses'])}")
    print(
        f"  no-op POST/s       {noop['per_second']:>9,.0f}   p50 {noop['p50_ms']:.2f} ms, p99 {noop['p99_ms']:.2f} ms"
    )
    print(
        f"  ratio to no-op     {summary['charge_ratio']:>9.2f}   (target {TARGET_RATIO}, goal 0.5:"
        f" {verdict(summary['charge_ratio'] >= TARGET_RATIO)})"
    )
    if "charge_floor" in summary:
        _print_floor(summary, counts)
    print(
        f"  GET /v1/me/wallet  {read['successes_per_second']:>9,.0f}/s (target {TARGET_READS_PER_SECOND:,}:"
        f" {verdict(read['successes_per_second'] >= TARGET_READS_PER_SECOND)});"
        f" p50 {read['p50_ms']:.2f} ms, p99 {read['p99_ms']:.2f} ms; errors {read['error_share']:.2%};"
        f" ratio to no-op GET {summary['read_ratio']:.2f}"
    )
    print(
        f"  server CPU/request charge {charge['cpu_us_per_request']:,.0f} us, no-op POST {noop['cpu_us_per_request']:,.0f} us;"
        f" GET /v1/me/wallet {read['cpu_us_per_request']:,.0f} us, no-op GET"
        f" {summary['read_noop']['cpu_us_per_request']:,.0f} us; hot charge {hot['cpu_us_per_request']:,.0f} us"
    )
    print(
        f"    of which the writer process: charge {charge['writer_cpu_us_per_request']:,.0f} us,"
        f" hot charge {hot['writer_cpu_us_per_request']:,.0f} us"
    )
    if charge["database_cpu_us_per_request"]:
        print(
            f"  PostgreSQL CPU     charge {charge['database_cpu_us_per_request']:,.0f} us, GET /v1/me/wallet"
            f" {read['database_cpu_us_per_request']:,.0f} us, hot charge {hot['database_cpu_us_per_request']:,.0f} us"
            " a request (the server backends serving the nodes' connections, from /proc)"
        )
    print(
        f"  hot wallet         {hot['successes_per_second']:>9,.0f} charges/s; p50 {hot['p50_ms']:.2f} ms,"
        f" p99 {hot['p99_ms']:.2f} ms; errors {hot['error_share']:.2%} {_statuses(hot['statuses'])};"
        f" ratio to no-op {summary['hot_ratio']:.2f}"
    )
    # wrk stops counting at the end of each run with up to `connections` requests still in flight; the
    # service commits those too. So the database holds what wrk saw answered 201, plus at most that.
    seen, in_flight = summary["charges_answered_201"], connections * summary["charge_runs"]
    consistent = seen <= counts["captured"] <= seen + in_flight
    print(
        f"  database           {counts['captured']:,} captured charges ({counts['captured_amount']:,} cents),"
        f" {counts['other']} other; wrk saw {seen:,} answered 201 (+ at most {in_flight} in flight at run ends:"
        f" {'consistent' if consistent else 'INCONSISTENT'})"
    )
    if check is None:
        print("  wallet check       not run (--check runs it; it takes minutes on a database this size)")
    else:
        print(f"  wallet check       {'every invariant holds' if check.returncode == 0 else 'FAILED'}")
    if check is not None and check.returncode != 0:
        print(check.stdout[-4000:], check.stderr[-4000:], file=sys.stderr)
    print(
        f"  load average       before {format_load(load_before)}, after {format_load(load_after)}; measured for {seconds:.0f} s"
    )


def _print_floor(summary: dict[str, Any], counts: dict[str, int]) -> None:
    floor = summary["charge_floor"]
    seen, in_flight = summary["floor_answered_201"], summary["connections"] * summary["floor_runs"]
    print(
        f"  floor charges/s    {floor['successes_per_second']:>9,.0f}   p50 {floor['p50_ms']:.2f} ms,"
        f" p99 {floor['p99_ms']:.2f} ms; errors {floor['error_share']:.2%} {_statuses(floor['statuses'])};"
        f" server CPU {floor['cpu_us_per_request']:,.0f} us/charge (writer {floor['writer_cpu_us_per_request']:,.0f})"
        + (
            f"; PostgreSQL CPU {floor['database_cpu_us_per_request']:,.0f} us/charge"
            if floor["database_cpu_us_per_request"]
            else ""
        )
    )
    print(
        f"  floor to no-op     {summary['floor_ratio']:>9.2f}   (target {TARGET_RATIO}:"
        f" {verdict(summary['floor_ratio'] >= TARGET_RATIO)})"
    )
    print(f"  wallet to floor    {summary['wallet_to_floor']:>9.2f}")
    print(
        f"  floor database     {counts['floor_captured']:,} captured charges; wrk saw {seen:,} answered 201"
        f" (+ at most {in_flight} in flight: {'consistent' if _floor_consistent(summary, counts) else 'INCONSISTENT'});"
        f" writer: {summary.get('floor_writer', 'not reported')}"
    )


def _statuses(statuses: dict[str, int]) -> str:
    return "[" + " ".join(f"{status}:{count}" for status, count in sorted(statuses.items())) + "]"


if __name__ == "__main__":
    sys.exit(main())
