"""The HTTP process's instructions per request, which the load on a shared machine cannot move.

    python -m loadtests.http_cost [--requests 1000] [--concurrency 16] [--directory DIR] [--without-noop]

``loadtests.bench`` reports the server's CPU per request from ``/proc``; on a shared 2-core
machine that figure moves by 10-20 % from run to run, more than most changes to the HTTP side are
worth. This harness counts instead. It seeds a database as the bench does (``bench.seed``: 1,000
funded clients, one approved provider; reused from ``--directory`` when it holds one), starts
``wallet serve`` (one HTTP process; its writer process runs outside valgrind) under ``valgrind
--tool=callgrind --trace-children=no``, and for each scenario: sends a warm-up, zeroes the
counters (``callgrind_control --zero``), sends ``--requests`` requests from ``--concurrency``
connections, dumps (``callgrind_control --dump``) and divides the instructions of the dump by
the requests. The scenarios are the bench's: a charge by national id with a distinct
``Idempotency-Key`` each (to a random client), and ``GET /v1/me/wallet`` as a random client.
The charge's warm-up charges every client once, so that what a process remembers of a client
(its parsed phone number) is warm for all of them, as in the bench's long runs, and the measured
charges count no first sight of a number.
Then it does the same for the no-op app (``loadtests.noop``) on the same event loop, so the
ratio of the two is the ratio of the work, without wrk, the disk or the other process in it
(``--without-noop`` leaves that out: the no-op's figure does not move with the wallet's code).

``BENCH_WALLET_<SETTING>=value`` sets a setting as in the bench (``BENCH_WALLET_EVENT_LOOP=asyncio``). Compare
two checkouts by running each one's harness (from a worktree, the same venv) on the same
``--directory``.
Each dump stays in ``DIR/callgrind-serve`` and ``DIR/callgrind-noop`` for ``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from loadtests import bench

START_TIMEOUT_SECONDS = 300.0  # Python's imports under valgrind take a while
DUMP_TIMEOUT_SECONDS = 120.0
TOTALS = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)  # the dump's whole count of Ir


@contextlib.contextmanager
def _under_callgrind(
    command: Sequence[str], environment: dict[str, str], directory: Path, name: str, health_url: str
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    outputs = directory / f"callgrind-{name}"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir()
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=no",
        f"--callgrind-out-file={outputs}/out.%p",
        *command,
    ]
    with bench.process(valgrind, environment, directory / f"{name}.log", health_url, START_TIMEOUT_SECONDS) as started:
        yield started, outputs


def _dump_instructions(pid: int, outputs: Path) -> int:
    """Dump the counters since the last zero and return their total instructions."""
    before = set(outputs.iterdir())
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + DUMP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        new = [path for path in set(outputs.iterdir()) - before if path.stat().st_size > 0]
        for path in new:
            text = path.read_text(errors="replace")
            found = TOTALS.search(text)
            if found:
                return int(found.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump for {pid} within {DUMP_TIMEOUT_SECONDS:.0f} s")


async def _send(requests: Sequence[Request], concurrency: int) -> dict[int, int]:
    import aiohttp

    statuses: dict[int, int] = {}
    queue = list(reversed(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def connection() -> None:
            while queue:
                method, url, headers, body = queue.pop()
                async with session.request(method, url, headers=headers, data=body) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(connection() for _ in range(concurrency)))
    return statuses


Request = tuple[str, str, dict[str, str], bytes | None]


def _measure(
    pid: int, outputs: Path, warmup: Sequence[Request], measured: Sequence[Request], concurrency: int, expected: int
) -> float:
    asyncio.run(_send(warmup, concurrency))
    subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True)
    statuses = asyncio.run(_send(measured, concurrency))
    if statuses != {expected: len(measured)}:
        raise RuntimeError(f"expected {len(measured)} answers {expected}, got {statuses}")
    return _dump_instructions(pid, outputs) / len(measured)


def _charges(url: str, token: str, targets: Sequence[bench.Person], tag: str) -> list[Request]:
    made: list[Request] = []
    for number, person in enumerate(targets):
        body = (
            f'{{"phone":"{person.phone}","amount":{bench.CHARGE_AMOUNT_CENTS},"category":"{bench.CATEGORY}",'
            f'"identity":{{"method":"national_id","national_id":"{person.national_id}"}}}}'
        ).encode()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"cost-{tag}-{number}",
        }
        made.append(("POST", f"{url}/v1/charges", headers, body))
    return made


def _read(url: str, token: str) -> Request:
    return ("GET", f"{url}/v1/me/wallet", {"Authorization": f"Bearer {token}"}, None)


def _scenarios(
    url: str, token: str, tokens: Sequence[str], everyone: Sequence[bench.Person], count: int, tag: str
) -> list[tuple[str, list[Request], list[Request]]]:
    """Each scenario's name, warm-up and measured requests. A read's warm-up verifies every client's
    token once (then cached, as in the bench's long runs); a charge's charges every client once (the
    provider's token and each client's phone number then seen), in a shuffled order."""
    chooser = random.Random(7)
    warmup_targets = list(everyone)
    random.Random(3).shuffle(warmup_targets)
    picker = random.Random(5)
    measured_targets = [everyone[picker.randrange(len(everyone))] for _ in range(count)]
    charges = _charges(url, token, warmup_targets + measured_targets, tag)
    return [
        ("charge", charges[: len(warmup_targets)], charges[len(warmup_targets) :]),
        ("read", [_read(url, each) for each in tokens], [_read(url, chooser.choice(tokens)) for _ in range(count)]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.http_cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per scenario (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument("--directory", type=Path, help="keep the seeded database here and reuse it")
    parser.add_argument("--without-noop", action="store_true", help="measure the wallet only, not the no-op app")
    arguments = parser.parse_args(argv)
    if arguments.requests <= 0 or arguments.concurrency <= 0:
        parser.error("--requests and --concurrency must be positive")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("needs valgrind (apt-get install -y valgrind)")
    directory = arguments.directory or Path(os.environ.get("TMPDIR", "/tmp")) / "wallet-http-cost"
    directory.mkdir(parents=True, exist_ok=True)
    port, noop_port = bench.free_port(), bench.free_port()
    environment = bench.bench_environment(directory, port)
    # A fresh copy of the seed for each run: the charges grow the database.
    seed_copy = directory / "seed.db"
    everyone = bench.people(bench.CLIENTS_DEFAULT)
    if not seed_copy.exists():
        for stale in directory.glob("wallet.db*"):
            stale.unlink()
        seeded = asyncio.run(bench.seed(environment, everyone))
        with contextlib.closing(__import__("sqlite3").connect(environment["WALLET_DB"])) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute(f"VACUUM INTO '{seed_copy}'")
        (directory / "provider_id").write_text(seeded.provider_id)
        (directory / "client_ids").write_text("\n".join(seeded.client_ids))
    for stale in directory.glob("wallet.db*"):
        stale.unlink()
    shutil.copyfile(seed_copy, environment["WALLET_DB"])
    provider_id = (directory / "provider_id").read_text()
    client_ids = (directory / "client_ids").read_text().split()
    token = (
        bench.wallet_cli(environment, "token", "--role", "provider", "--provider-id", provider_id, "--ttl", "3600")
        .strip()
        .splitlines()[-1]
    )
    tokens = bench.client_tokens(environment, client_ids[:-1])
    loop = environment.get("WALLET_EVENT_LOOP", "uvloop")
    count = arguments.requests
    url, noop_url = f"http://{bench.HOST}:{port}", f"http://{bench.HOST}:{noop_port}"
    print(
        f"event loop: {loop}; {arguments.requests} requests a scenario from {arguments.concurrency} connections,"
        " after a warm-up; instructions of the HTTP process only"
    )
    figures: dict[str, float] = {}
    serve = [sys.executable, "-m", "wallet", "serve", "--host", bench.HOST, "--port", str(port)]
    with _under_callgrind(serve, environment, directory, "serve", f"{url}/healthz") as (server, outputs):
        for name, warmup, measured in _scenarios(url, token, tokens, everyone[:-1], count, str(time.time_ns())):
            expected = 201 if name == "charge" else 200
            figures[name] = _measure(server.pid, outputs, warmup, measured, arguments.concurrency, expected)
            print(f"  wallet {name:6}  {figures[name]:>12,.0f} instructions a request")
    if arguments.without_noop:
        return 0
    noop = [sys.executable, "-m", "loadtests.noop", "--port", str(noop_port), "--event-loop", loop]
    with _under_callgrind(noop, environment, directory, "noop", f"{noop_url}/healthz") as (server, outputs):
        for name, warmup, measured in _scenarios(noop_url, token, tokens, everyone[:-1], count, "noop"):
            key = f"noop-{name}"
            figures[key] = _measure(server.pid, outputs, warmup, measured, arguments.concurrency, 200)
            print(
                f"  no-op  {name:6}  {figures[key]:>12,.0f} instructions a request"
                f"  (wallet / no-op: {figures[name] / figures[key]:.1f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
