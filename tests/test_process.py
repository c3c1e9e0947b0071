"""Black-box tests: the real ``wallet serve`` process and the real CLI, driven from outside.

Each test gets fresh files (database, signing key, SMS outbox) in a temporary directory; the
server is a child process started with ``python -m wallet serve`` and polled on ``/healthz``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import (
    NATIONAL_ID,
    PHONE_AS_TYPED,
    PHONE_E164,
    Seeded,
    Server,
    WalletFiles,
    charge_body,
    current_month,
    free_port,
    seed,
)
from wallet.settings import Settings

pytestmark = pytest.mark.slow

SHUTDOWN_MARGIN_SECONDS = 10.0
ASYNC_DEADLINE_SECONDS = 30.0


@pytest.fixture
def files(tmp_path: Path) -> WalletFiles:
    return WalletFiles(tmp_path)


@pytest.fixture
def start_server(files: WalletFiles) -> Iterator[Callable[..., Server]]:
    """Start ``wallet serve`` on ``files`` (again, after a stop or a crash); every server still
    running at the end is terminated."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(files, env=env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        if server.running():
            server.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


# What the client of the HTTP API sees, many requests at once.


@dataclass
class Outcome:
    key: str
    amount: int
    status: int | None = None
    body: Any = None
    replayed: bool = False
    error: BaseException | None = None
    answered_at: float = 0.0


async def send_charge(
    session: aiohttp.ClientSession,
    server: Server,
    seeded: Seeded,
    amount: int,
    key: str,
    *,
    description: str | None = None,
) -> Outcome:
    outcome = Outcome(key, amount)
    try:
        async with session.post(
            f"{server.base_url}/v1/charges",
            json=charge_body(seeded, amount, description=description),
            headers={"Authorization": f"Bearer {seeded.provider_token}", "Idempotency-Key": key},
        ) as response:
            outcome.status = response.status
            outcome.body = await response.json(content_type=None)
            outcome.replayed = response.headers.get("Idempotent-Replayed") == "true"
    except (TimeoutError, aiohttp.ClientError) as error:
        outcome.error = error
    outcome.answered_at = time.monotonic()
    return outcome


async def answered(
    tasks: list[asyncio.Task[Outcome]], count: int, deadline_seconds: float = ASYNC_DEADLINE_SECONDS
) -> None:
    """Wait until ``count`` of ``tasks`` have their answer (or their error), polling to a deadline."""
    deadline = time.monotonic() + deadline_seconds
    while sum(task.done() for task in tasks) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {deadline_seconds} s waiting for {count} answers")
        await asyncio.sleep(0.002)


def session(connections: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=ASYNC_DEADLINE_SECONDS),
    )


def assert_check_passes(files: WalletFiles) -> None:
    completed = files.check()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "every invariant holds" in completed.stdout


def charges_by_description(server: Server, seeded: Seeded) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for charge in server.api(seeded.provider_token).pages("/v1/charges"):
        found.setdefault(charge["description"], []).append(charge)
    return found


# The whole flow.


def test_the_core_flow_from_outside_with_cli_tokens_and_no_personal_data_in_logs(
    files: WalletFiles, server: Server
) -> None:
    month = current_month()
    seeded = seed(files, server, 40_000, credit="none")  # every admin call uses a `wallet token` token
    client = server.api(seeded.client_token)
    provider = server.api(seeded.provider_token)  # exchanged at POST /v1/token

    before = client.call("GET", "/v1/me/wallet", expect=200)
    assert before["balance"] == 0 and before["lines"][0]["monthly_amount"] == 40_000, before

    completed = files.cli("credit-run", "--month", month)
    assert completed.returncode == 0, completed.stderr
    run = json.loads(completed.stdout.strip().splitlines()[-1])
    assert run["month"] == month and run["credited"] == 1 and run["amount"] == 40_000, run
    # Not a terminal: progress as plain lines on stderr, the last one the total.
    assert f"credit run {month} [" in completed.stderr and "100% 1/1 budgets" in completed.stderr
    assert "\r" not in completed.stderr and completed.stderr.rstrip().endswith("done"), completed.stderr
    wallet = client.call("GET", "/v1/me/wallet", expect=200)
    assert (wallet["balance"], wallet["available"], wallet["held"]) == (40_000, 40_000, 0), wallet
    assert wallet["lines"] == [
        {
            "category": "home_care",
            "balance": 40_000,
            "held": 0,
            "available": 40_000,
            "monthly_amount": 40_000,
            "upcoming": [],  # nothing credited ahead
        }
    ]

    captured = provider.call("POST", "/v1/charges", charge_body(seeded, 2_500), key="flow-1", expect=201)
    assert captured["status"] == "captured" and captured["amount"] == 2_500 and captured["category"] == "home_care"

    pending = provider.call("POST", "/v1/charges", charge_body(seeded, 1_000, method="otp"), key="flow-2", expect=201)
    assert pending["status"] == "pending" and pending["expires_at"], pending
    wallet = client.call("GET", "/v1/me/wallet", expect=200)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (37_500, 1_000, 36_500), wallet
    code = files.code_sent_to(PHONE_E164, nth=2)  # the first SMS told of the budget's decision
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    status, problem = provider.call("POST", f"/v1/charges/{pending['id']}/confirm", {"code": wrong}, key="flow-3")
    assert status == 422 and problem["code"] == "identity_check_failed", problem
    confirmed = provider.call("POST", f"/v1/charges/{pending['id']}/confirm", {"code": code}, key="flow-4", expect=200)
    assert confirmed["status"] == "captured", confirmed

    refund = provider.call("POST", f"/v1/charges/{captured['id']}/refunds", {"amount": 500}, key="flow-5", expect=201)
    assert refund["amount"] == 500, refund
    wallet = client.call("GET", "/v1/me/wallet", expect=200)
    assert (wallet["balance"], wallet["held"], wallet["available"]) == (37_000, 0, 37_000), wallet

    status, problem = provider.call("POST", "/v1/charges", charge_body(seeded, 37_001), key="flow-6")
    assert status == 402 and problem["code"] == "insufficient_funds", problem
    assert client.call("GET", "/v1/me/wallet", expect=200)["available"] == 37_000  # nothing written
    history = client.call("GET", "/v1/me/transactions", expect=200)["data"]
    newest_first = [(item["type"], item["amount"]) for item in history]
    assert newest_first[:3] == [("refund", 500), ("capture", -1_000), ("capture", -2_500)], history
    assert provider.call("GET", f"/v1/charges/{captured['id']}", expect=200)["refunded_amount"] == 500

    assert server.stop() == 0, server.log_tail()
    assert_check_passes(files)

    log = files.server_log.read_text(encoding="utf-8") + files.cli_log.read_text(encoding="utf-8")
    assert "route=/v1/charges" in log and "status=402" in log, "the server logs its requests"
    for secret in [PHONE_E164, PHONE_E164[1:], PHONE_AS_TYPED, "401234567", NATIONAL_ID, *seeded.secrets]:
        assert secret not in log, f"the log holds a secret: {secret[:12]}..."
    for otp in (code, wrong):  # not as a fraction of a second in a timestamp either
        assert not re.search(rf"(?<![\d.]){otp}(?!\d)", log), "the log holds an OTP code"


# Concurrency against the real server.


async def test_concurrent_charges_never_overspend_and_one_idempotency_key_makes_one_charge(
    files: WalletFiles, server: Server
) -> None:
    seeded = seed(files, server, 10_000)
    async with session() as http:
        outcomes = await asyncio.gather(*(send_charge(http, server, seeded, 300, f"race-{n}") for n in range(60)))
        assert [o.error for o in outcomes if o.error] == []
        statuses = sorted(o.status for o in outcomes if o.status is not None)
        assert statuses.count(201) == 33 and statuses.count(402) == 27, statuses
        assert all(o.body["code"] == "insufficient_funds" for o in outcomes if o.status == 402)
        wallet = server.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        assert (wallet["balance"], wallet["available"], wallet["held"]) == (100, 100, 0), wallet

        same = await asyncio.gather(*(send_charge(http, server, seeded, 60, "the-same-key") for _ in range(20)))
    assert [o.error for o in same if o.error] == []
    assert {(o.status, json.dumps(o.body, sort_keys=True)) for o in same} == {
        (201, json.dumps(same[0].body, sort_keys=True))
    }, "every answer to one Idempotency-Key is the first answer"
    assert sum(not o.replayed for o in same) == 1
    charges = list(server.api(seeded.provider_token).pages("/v1/charges"))
    assert len(charges) == 34 and sum(c["id"] == same[0].body["id"] for c in charges) == 1
    wallet = server.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert wallet["available"] == 40, wallet
    assert server.stop() == 0
    assert_check_passes(files)


# Graceful shutdown.


async def test_sigterm_answers_the_charges_in_flight_exits_0_and_loses_nothing(
    files: WalletFiles, start_server: Callable[..., Server]
) -> None:
    server = start_server(WALLET_PROVIDER_CHARGES_BURST="10000", WALLET_PROVIDER_CHARGES_PER_SECOND="10000")
    seeded = seed(files, server, 1_000_000)
    total = 300
    async with session(connections=100) as http:
        tasks = [asyncio.create_task(send_charge(http, server, seeded, 100, f"drain-{n}")) for n in range(total)]
        await answered(tasks, 20)
        server.signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        # New requests once the shutdown has begun: refused, or answered 503, never left hanging.
        late = [asyncio.create_task(send_charge(http, server, seeded, 100, f"late-{n}")) for n in range(5)]
        outcomes = await asyncio.gather(*tasks)
        late_outcomes = await asyncio.gather(*late)
    limit = Settings().shutdown_timeout_seconds + SHUTDOWN_MARGIN_SECONDS
    assert await asyncio.to_thread(server.wait, limit) == 0, server.log_tail()
    assert time.monotonic() - signalled_at < limit

    acknowledged = [o for o in outcomes if o.status == 201]
    assert all(o.status in (201, 503) or isinstance(o.error, aiohttp.ClientConnectionError) for o in outcomes), [
        (o.status, o.body, repr(o.error)) for o in outcomes if o.status not in (201, 503)
    ]
    assert all(o.status == 503 or isinstance(o.error, aiohttp.ClientConnectionError) for o in late_outcomes), [
        (o.status, repr(o.error)) for o in late_outcomes
    ]
    answered_after_signal = [o for o in acknowledged if o.answered_at > signalled_at]
    assert answered_after_signal, "no charge was in flight at SIGTERM: the test did not make the race happen"

    restarted = start_server()
    provider = restarted.api(seeded.provider_token)
    for outcome in acknowledged:
        charge = provider.call("GET", f"/v1/charges/{outcome.body['id']}", expect=200)
        assert charge["status"] == "captured" and charge["amount"] == 100
    stored = list(provider.pages("/v1/charges"))
    # Nothing was written whose answer the shutdown swallowed: what is stored is what was answered.
    assert len(stored) == len(acknowledged), (len(stored), len(acknowledged))
    wallet = restarted.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert wallet["balance"] == 1_000_000 - 100 * len(acknowledged), wallet
    assert restarted.stop() == 0
    assert_check_passes(files)
    log = files.server_log.read_text(encoding="utf-8")
    assert "Traceback" not in log and "[error" not in log, log[-4000:]
    late_seen = [o.status or type(o.error).__name__ for o in late_outcomes]
    print(
        f"SIGTERM: {len(acknowledged)}/{total} acknowledged, {len(answered_after_signal)} after it; late: {late_seen}"
    )


# Crash safety.


async def test_sigkill_at_random_moments_loses_no_acknowledged_charge_and_retries_are_exactly_once(
    files: WalletFiles, start_server: Callable[..., Server]
) -> None:
    rounds = int(os.environ.get("WALLET_CRASH_ROUNDS", "5"))
    seed_value = int(os.environ.get("WALLET_CRASH_SEED", str(random.randrange(2**32))))
    rng = random.Random(seed_value)
    print(f"crash rounds={rounds} WALLET_CRASH_SEED={seed_value}")
    files.extra_env.update(WALLET_PROVIDER_CHARGES_BURST="100000", WALLET_PROVIDER_CHARGES_PER_SECOND="100000")
    per_round = 80
    monthly = max(5_000_000, rounds * per_round * 500)  # enough that no charge is refused for funds
    server = start_server()
    seeded = seed(files, server, monthly)
    amounts: dict[str, int] = {}  # every key ever sent → its amount
    ids: dict[str, str] = {}  # key → the charge id the service answered (201) with
    lost_total = 0
    for round_number in range(rounds):
        keys = [f"crash-{round_number}-{n}" for n in range(per_round)]
        for key in keys:
            amounts[key] = rng.randint(1, 500)
        kill_after = rng.randint(0, per_round * 3 // 4)
        async with session(connections=16) as http:
            tasks = [
                asyncio.create_task(send_charge(http, server, seeded, amounts[key], key, description=key))
                for key in keys
            ]
            await answered(tasks, kill_after)
            server.kill()  # SIGKILL: no shutdown, no flush beyond what was committed
            outcomes = await asyncio.gather(*tasks)
        for outcome in outcomes:
            assert outcome.status in (201, None), (outcome.status, outcome.body)
            if outcome.status == 201:
                assert outcome.body["status"] == "captured" and outcome.body["amount"] == outcome.amount
                ids[outcome.key] = outcome.body["id"]
        lost = [o for o in outcomes if o.status is None]
        lost_total += len(lost)

        server = start_server()
        provider = server.api(seeded.provider_token)
        for outcome in outcomes:
            if outcome.status == 201:
                charge = provider.call("GET", f"/v1/charges/{outcome.body['id']}", expect=200)
                expected_charge = ("captured", outcome.amount, outcome.key)
                assert (charge["status"], charge["amount"], charge["description"]) == expected_charge
        stored = charges_by_description(server, seeded)
        assert set(stored) <= set(amounts), "a charge nobody asked for"
        assert all(len(charges) == 1 for charges in stored.values()), "a request was charged twice"
        for key, charge_id in ids.items():
            assert [c["id"] for c in stored[key]] == [charge_id], key
        # A charge whose answer was lost may or may not exist: the retry with its key tells which.
        for outcome in lost:
            retry = charge_body(seeded, outcome.amount, description=outcome.key)
            status, body = provider.call("POST", "/v1/charges", retry, key=outcome.key)
            assert status == 201 and body["amount"] == outcome.amount, (status, body)
            if outcome.key in stored:
                assert body["id"] == stored[outcome.key][0]["id"], "the retry made a second charge"
            ids[outcome.key] = body["id"]
        stored = charges_by_description(server, seeded)
        assert {key: [c["id"] for c in charges] for key, charges in stored.items()} == {
            key: [charge_id] for key, charge_id in ids.items()
        }
        wallet = server.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        expected = monthly - sum(amounts[key] for key in ids)
        assert (wallet["balance"], wallet["held"], wallet["available"]) == (expected, 0, expected), wallet
        assert_check_passes(files)
    assert server.stop() == 0
    assert_check_passes(files)
    print(f"crash: {len(ids)} charges over {rounds} rounds, {lost_total} answers lost to SIGKILL and retried")


# `wallet check` finds what was planted.


def test_wallet_check_names_a_breach_planted_in_the_database(
    files: WalletFiles, server: Server, tmp_path: Path
) -> None:
    seeded = seed(files, server, 10_000)
    server.api(seeded.provider_token).call("POST", "/v1/charges", charge_body(seeded, 1_234), key="k", expect=201)
    assert server.stop() == 0
    assert_check_passes(files)
    account = f"wallet:{seeded.client_id}:{seeded.category}"
    pristine = tmp_path / "pristine.db"
    with closing(sqlite3.connect(files.db)) as source, closing(sqlite3.connect(pristine)) as target:
        source.backup(target)

    with sqlite3.connect(files.db) as connection:
        connection.execute("UPDATE accounts SET balance = balance + 1 WHERE kind = 'wallet'")
    connection.close()
    completed = files.check()
    assert completed.returncode == 1, completed.stdout
    named = [line for line in completed.stdout.splitlines() if account in line]
    assert named and "8767" in named[0] and "8766" in named[0], completed.stdout  # the balance and the truth

    shutil.copyfile(pristine, files.db)
    assert_check_passes(files)
    with sqlite3.connect(files.db) as connection:
        (balance,) = connection.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()
        connection.execute(
            "INSERT INTO transactions (id, type, created_at, client_id, category) VALUES (?, 'credit', ?, ?, ?)",
            ("tx_planted", "2030-01-01T00:00:00.000Z", seeded.client_id, seeded.category),
        )
        connection.execute(
            "INSERT INTO postings (transaction_id, account_id, amount, balance_after) VALUES (?, ?, ?, ?)",
            ("tx_planted", account, 1, balance + 1),
        )
        connection.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", (account,))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM postings WHERE transaction_id = 'tx_planted'")
    connection.close()
    completed = files.check()
    assert completed.returncode == 1, completed.stdout
    assert "transaction tx_planted" in completed.stdout, completed.stdout


# The event loop.


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_serve_charges_on_the_event_loop_it_is_set_to(
    files: WalletFiles, start_server: Callable[..., Server], event_loop: str
) -> None:
    server = start_server(WALLET_EVENT_LOOP=event_loop)
    seeded = seed(files, server, 10_000)
    captured = server.api(seeded.provider_token).call(
        "POST", "/v1/charges", charge_body(seeded, 2_500), key=f"loop-{event_loop}", expect=201
    )
    assert captured["status"] == "captured", captured
    wallet = server.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert wallet["balance"] == 7_500, wallet
    assert server.stop() == 0, server.log_tail()
    started = [line for line in files.server_log.read_text(encoding="utf-8").splitlines() if "service_started" in line]
    assert len(started) == 1 and f"event_loop={event_loop}" in started[0], started
    assert_check_passes(files)


# Bad configuration.


@pytest.mark.parametrize("variable, value", [("WALLET_PORT", "abc"), ("WALLET_TOKEN_TTL_SECONDS", "0")])
def test_serve_refuses_a_bad_setting_with_exit_2_naming_it(files: WalletFiles, variable: str, value: str) -> None:
    arguments = ["serve"] if variable == "WALLET_PORT" else ["serve", "--port", str(free_port())]
    completed = files.cli(*arguments, env=files.env(**{variable: value}))
    assert completed.returncode == 2, (completed.returncode, completed.stderr)
    assert variable in completed.stderr, completed.stderr
    assert not files.db.exists(), "nothing is created with a bad setting"
