"""Several real ``wallet serve`` nodes on one PostgreSQL database, driven from outside.

Each test starts two or three nodes on a fresh schema, makes the race happen through all of them
at once, and asserts what clients see and what ``wallet check`` finds afterwards.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.pg import RawDatabase
from tests.processes import Server, WalletFiles, charge_body, current_month, seed
from tests.test_events import EventStream
from wallet.storage.postgres.dialect import LOCK_CLIENTS_SQL

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 30.0


@pytest.fixture
def files(tmp_path: Path, postgres_schema: str) -> WalletFiles:
    # Background credit runs and settlements off: each test starts its races itself.
    return WalletFiles(
        tmp_path,
        extra_env={
            "WALLET_DB": postgres_schema,
            "WALLET_AUTO_CREDIT_RUN": "false",
            "WALLET_AUTO_SETTLEMENT": "false",
            # Several nodes: their charges run side by side (docs/postgresql-writes.md).
            "WALLET_POSTGRES_SIDE_BY_SIDE": "true",
        },
    )


@pytest.fixture
def start_nodes(files: WalletFiles) -> Iterator[Callable[[int], list[Server]]]:
    started: list[Server] = []

    def start(count: int) -> list[Server]:
        # The first node makes the schema and the keys; the others find them.
        first = Server(files)
        started.append(first)
        first.start()
        others = [Server(files) for _ in range(count - 1)]
        started.extend(others)
        for node in others:
            node.start()
        return [first, *others]

    yield start
    for node in started:
        if node.running():
            node.stop()


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=DEADLINE_SECONDS)
    )


async def post(
    http: aiohttp.ClientSession, node: Server, path: str, token: str, body: Any, key: str
) -> tuple[int, Any]:
    async with http.post(
        f"{node.base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    ) as response:
        return response.status, await response.json(content_type=None)


def assert_check_passes(files: WalletFiles) -> None:
    completed = files.check()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "every invariant holds" in completed.stdout


def test_charges_through_three_nodes_at_once_never_overspend(files: WalletFiles, start_nodes: Any) -> None:
    nodes = start_nodes(3)
    seeded = seed(files, nodes[0], 10_000)

    async def race() -> list[tuple[int, Any]]:
        async with session() as http:
            return await asyncio.gather(
                *(
                    post(
                        http, nodes[n % 3], "/v1/charges", seeded.provider_token, charge_body(seeded, 300), f"race-{n}"
                    )
                    for n in range(60)
                )
            )

    results = asyncio.run(race())
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 33 and statuses.count(402) == 27, statuses  # 33 × 300 ≤ 10 000 < 34 × 300
    assert all(body["code"] == "insufficient_funds" for status, body in results if status == 402)
    for node in nodes:  # every node reads the same wallet
        wallet = node.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        assert (wallet["balance"], wallet["held"], wallet["available"]) == (100, 0, 100), wallet

    # One key sent to every node at once: one effect, and every node answers with it.
    async def same_key() -> list[tuple[int, Any]]:
        async with session() as http:
            return await asyncio.gather(
                *(
                    post(http, node, "/v1/charges", seeded.provider_token, charge_body(seeded, 100), "one-key")
                    for node in nodes
                )
            )

    answers = asyncio.run(same_key())
    assert [status for status, _ in answers] == [201, 201, 201], answers
    assert len({body["id"] for _, body in answers}) == 1, answers
    charges = list(nodes[1].api(seeded.provider_token).pages("/v1/charges"))
    assert len(charges) == 34 and sum(charge["amount"] for charge in charges) == 10_000
    for node in nodes:
        assert node.stop() == 0, node.log_tail()
    assert_check_passes(files)


def test_credit_runs_and_settlements_started_on_two_nodes_at_once_happen_once(
    files: WalletFiles, start_nodes: Any, postgres_schema: str
) -> None:
    nodes = start_nodes(2)
    seeded = seed(files, nodes[0], 5_000, credit="none")
    month = current_month()
    admin_token = files.token("admin")

    async def credit_everywhere() -> list[tuple[int, Any]]:
        async with session() as http:
            return await asyncio.gather(
                *(
                    post(http, nodes[n % 2], "/v1/credit-runs", admin_token, {"month": month}, f"credit-{n}")
                    for n in range(6)
                )
            )

    runs = asyncio.run(credit_everywhere())
    assert all(status in (200, 201) for status, _ in runs), runs
    assert sum(body["credited_now"] for _, body in runs) == 1, runs  # one line, credited by one run only
    wallet = nodes[1].api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert wallet["balance"] == 5_000, wallet

    provider = nodes[0].api(seeded.provider_token)
    for n in range(5):
        provider.call("POST", "/v1/charges", charge_body(seeded, 100 + n), key=f"charge-{n}", expect=201)

    async def settle_everywhere() -> list[tuple[int, Any]]:
        async with session() as http:
            return await asyncio.gather(
                *(
                    post(http, nodes[n % 2], "/v1/settlements", seeded.provider_token, {}, f"settle-{n}")
                    for n in range(4)
                )
            )

    settled = asyncio.run(settle_everywhere())
    made = [body for status, body in settled if status == 201]
    assert made and all(status in (201, 422) for status, _ in settled), settled
    assert all(body["code"] == "nothing_to_settle" for status, body in settled if status == 422), settled
    assert sum(batch["amount"] for batch in made) == sum(100 + n for n in range(5))  # every line, once
    with RawDatabase(postgres_schema) as database:
        assert database.execute("SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM settlement_items") == [(5, 5)]
        assert database.execute("SELECT COUNT(*) FROM credits") == [(1,)]
    for node in nodes:
        assert node.stop() == 0, node.log_tail()
    assert_check_passes(files)


def test_a_wallet_stream_on_one_node_hears_charges_made_on_another(files: WalletFiles, start_nodes: Any) -> None:
    nodes = start_nodes(2)
    seeded = seed(files, nodes[0], 5_000)

    async def listen_and_charge() -> list[dict[str, Any]]:
        async with (
            session() as http,
            http.get(
                f"{nodes[1].base_url}/v1/me/events", headers={"Authorization": f"Bearer {seeded.client_token}"}
            ) as response,
        ):
            assert response.status == 200
            stream = EventStream(response)
            first = await stream.next_change()
            assert first["event"] == "wallet" and first["data"]["available"] == 5_000, first
            status, charge = await post(
                http, nodes[0], "/v1/charges", seeded.provider_token, charge_body(seeded, 1_200), "far-away"
            )
            assert status == 201, charge
            heard = await stream.next_change()
            assert heard["event"] == "capture" and heard["data"]["charge_id"] == charge["id"], heard
            status, hold = await post(
                http, nodes[0], "/v1/charges", seeded.provider_token, charge_body(seeded, 300, method="otp"), "otp"
            )
            assert status == 201, hold
            return [heard, await stream.next_change()]

    capture, hold = asyncio.run(listen_and_charge())
    assert capture["data"]["available"] == 3_800
    assert hold["event"] == "hold" and hold["data"]["available"] == 3_500 and int(hold["id"]) > int(capture["id"])


def test_an_installation_moved_from_sqlite_with_migrate_to_serves_on_two_nodes(
    tmp_path: Path, postgres_schema: str
) -> None:
    lite = WalletFiles(tmp_path, extra_env={"WALLET_AUTO_SETTLEMENT": "false"})
    node = Server(lite).start()
    seeded = seed(lite, node, 8_000)
    provider = node.api(seeded.provider_token)
    provider.call("POST", "/v1/charges", charge_body(seeded, 1_500), key="before-the-move", expect=201)
    before = node.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert node.stop() == 0, node.log_tail()

    usage = lite.cli("migrate-to", "data/elsewhere.db")
    assert usage.returncode == 2 and "postgresql://" in usage.stderr
    moved = lite.cli("migrate-to", postgres_schema)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "copied and verified" in moved.stdout and "rows of postings" in moved.stdout
    again = lite.cli("migrate-to", postgres_schema)
    assert again.returncode == 1 and "not empty" in again.stderr

    # The same key files, the new database: tokens, phone lookups and idempotency keys carry over.
    moved_files = WalletFiles(tmp_path, extra_env={"WALLET_DB": postgres_schema, "WALLET_AUTO_SETTLEMENT": "false"})
    nodes = [Server(moved_files).start(), Server(moved_files).start()]
    try:
        after = nodes[1].api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        assert after == before
        status, replay = (
            nodes[0]
            .api(seeded.provider_token)
            .call("POST", "/v1/charges", charge_body(seeded, 1_500), key="before-the-move")
        )
        assert status == 201 and replay["amount"] == 1_500  # the first answer, not a second charge
        nodes[1].api(seeded.provider_token).call(
            "POST", "/v1/charges", charge_body(seeded, 500), key="after", expect=201
        )
        wallet = nodes[0].api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        assert wallet["available"] == 8_000 - 1_500 - 500, wallet
    finally:
        for each in nodes:
            each.stop()
    assert_check_passes(moved_files)


def test_one_key_sent_to_two_nodes_is_charged_by_one_and_replayed_by_the_other(
    files: WalletFiles, start_nodes: Any, postgres_schema: str
) -> None:
    """Node 0's batch locks the key, then waits for the client (held from here, as another batch in
    its reading phase would hold it: its first batch tried the client and left the charge for the
    next, which waits); node 1's batch with the same key waits for node 0's transaction (its lock
    on the key), not for the write lock; when the client is let go, node 0 charges and node 1
    answers with that charge. Charges on the line queued meanwhile on both nodes see every charge
    before them: no overspending."""
    # No background sweep on either node while the line is held: each would wait for the write
    # lock exclusively, and the node's charges behind it.
    files.extra_env.update(WALLET_HOLD_SWEEP_INTERVAL_SECONDS="3600", WALLET_NOTICE_SWEEP_INTERVAL_SECONDS="3600")
    nodes = start_nodes(2)
    seeded = seed(files, nodes[0], 1_000)

    def waiting_writer(watch: RawDatabase, node: Server) -> tuple[int, list[int]] | None:
        rows = watch.execute(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE ? AND wait_event_type = 'Lock'",
            f"wallet-writer-{node.pid}-%",
        )
        return (rows[0][0], list(rows[0][1])) if rows else None

    async def until(condition: Callable[[], Any], what: str) -> Any:
        deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
        while not (value := condition()):
            assert asyncio.get_running_loop().time() < deadline, what
            await asyncio.sleep(0.01)
        return value

    async def race(held: RawDatabase, watch: RawDatabase) -> tuple[list[tuple[int, Any]], list[tuple[int, Any]]]:
        held.execute("BEGIN")
        held.execute("SELECT pg_advisory_xact_lock_shared(hashtext('wallet.writer:' || current_schema()))")
        held.execute(LOCK_CLIENTS_SQL, json.dumps([seeded.client_id]))  # as another node's batch holds a client
        held_pid = held.execute("SELECT pg_backend_pid()")[0][0]
        token = seeded.provider_token
        async with session() as http:
            first = asyncio.create_task(post(http, nodes[0], "/v1/charges", token, charge_body(seeded, 400), "one"))
            node0, blockers = await until(lambda: waiting_writer(watch, nodes[0]), "node 0 waits for the client")
            assert blockers == [held_pid]
            second = asyncio.create_task(post(http, nodes[1], "/v1/charges", token, charge_body(seeded, 400), "one"))
            _, blockers = await until(lambda: waiting_writer(watch, nodes[1]), "node 1 waits for the key")
            assert blockers == [node0]  # node 0's lock on the key, not the write lock
            more = [
                asyncio.create_task(post(http, nodes[n % 2], "/v1/charges", token, charge_body(seeded, 400), f"m{n}"))
                for n in range(3)
            ]
            held.execute("COMMIT")
            return list(await asyncio.gather(first, second)), list(await asyncio.gather(*more))

    with RawDatabase(postgres_schema) as held, RawDatabase(postgres_schema) as watch:
        same_key, more = asyncio.run(race(held, watch))
    assert [status for status, _ in same_key] == [201, 201], same_key
    assert same_key[0][1]["id"] == same_key[1][1]["id"]
    assert sorted(status for status, _ in more) == [201, 402, 402], more  # 1 000 - 400 leaves one more of 400
    charges = list(nodes[1].api(seeded.provider_token).pages("/v1/charges"))
    assert len(charges) == 2 and sum(charge["amount"] for charge in charges) == 800
    wallet = nodes[0].api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert wallet["available"] == 200, wallet
    for node in nodes:
        assert node.stop() == 0, node.log_tail()
    assert_check_passes(files)
