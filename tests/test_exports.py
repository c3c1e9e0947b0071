"""Finance exports: streamed files whose totals reconcile with the ledger."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BUSINESS_ID, IBAN, World
from wallet.auth.tokens import Role
from wallet.exports import Encoder, ExportFormat, ExportKind, euros, write_export
from wallet.ledger.reference import group_finnish_reference
from wallet.settings import Settings

PAGE_ROWS = 50


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, export_page_rows=PAGE_ROWS)  # many pages for a few thousand rows


def refresh_tokens(world: World, parties: list[dict[str, Any]]) -> None:
    world.admin, world.finance = world.token(Role.ADMIN), world.token(Role.FINANCE)
    for party in parties:
        if party["id"].startswith("pr_"):
            party["token"] = world.token(Role.PROVIDER, provider_id=party["id"])
        else:
            party["token"] = world.token(Role.CLIENT, client_id=party["id"])


async def export(world: World, kind: str, export_format: str, **query: str) -> tuple[bytes, Any]:
    params = {"format": export_format, **query}
    response = await world.http.get(f"/v1/exports/{kind}", params=params, headers=world.auth(world.finance))
    body = await response.read()
    assert response.status == 200, body[:500]
    return body, response


def parse(body: bytes, export_format: str) -> list[dict[str, str]] | list[dict[str, Any]]:
    if export_format == "jsonl":
        return [json.loads(line) for line in body.decode().splitlines()]
    text = body.decode("utf-8")
    if export_format == "csv-fi":
        assert text.startswith("\ufeff")
        return list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    assert not text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def ledger(world: World) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """Account balances, each transaction's type, and each settled transaction's reference."""
    with world.database() as database:
        balances = dict(database.execute("SELECT id, balance FROM accounts"))
        types = dict(database.execute("SELECT id, type FROM transactions"))
        references = dict(
            database.execute(
                "SELECT i.transaction_id, s.reference FROM settlement_items i JOIN settlements s ON s.id = i.settlement_id"
                " UNION ALL SELECT transaction_id, reference FROM settlements WHERE transaction_id IS NOT NULL"
            )
        )
    return balances, types, references  # type: ignore[return-value]


async def charges(world: World, provider: dict[str, Any], client: dict[str, Any], count: int) -> None:
    for _ in range(count):
        world.clock.advance(seconds=0.1)  # under the providers' charge throttle
        status, charge = await world.charge(provider, client, 10)
        assert status == 201, charge


async def random_activity(world: World, operations: int, seed: int) -> None:
    """Clients and providers doing what they do, in a random order, across a month boundary."""
    chance = random.Random(seed)
    for code in ("home_care", "transport"):
        await world.category(code)
    clients = []
    for _ in range(6):
        client = await world.client()
        await world.budget(client["id"], {"home_care": 400_000, "transport": 150_000})
        clients.append(client)
    await world.credit("2027-01")
    providers = [await world.provider(["home_care", "transport"]) for _ in range(3)]
    captured: list[tuple[dict[str, Any], str, int]] = []  # provider, charge id, refundable
    for step in range(operations):
        if step == operations // 2:  # into February: January expires, February is credited
            world.clock.advance(days=20)
            refresh_tokens(world, clients + providers)
            await world.credit("2027-02")
        roll = chance.random()
        if roll < 0.65:
            provider, client = chance.choice(providers), chance.choice(clients)
            amount = chance.randint(1, 2_500)
            world.clock.advance(seconds=0.1)  # under the providers' charge throttle
            status, charge = await world.charge(
                provider, client, amount, category=chance.choice(["home_care", "transport"])
            )
            assert status in (201, 402), charge
            if status == 201:
                captured.append((provider, charge["id"], amount))
        elif roll < 0.85 and captured:
            index = chance.randrange(len(captured))
            provider, charge_id, refundable = captured[index]
            amount = chance.randint(1, refundable)
            await world.call(
                "POST", f"/v1/charges/{charge_id}/refunds", provider["token"], {"amount": amount}, expect=201
            )
            captured[index] = (provider, charge_id, refundable - amount)
            if refundable == amount:
                captured.pop(index)
        elif roll < 0.95:
            provider = chance.choice(providers)
            status, _ = await world.call("POST", "/v1/settlements", provider["token"], {})
            assert status in (201, 422)
        else:
            world.clock.advance(minutes=chance.randint(1, 30))
            refresh_tokens(world, clients + providers)


@pytest.mark.parametrize("export_format", ["csv", "jsonl", "csv-fi"])
async def test_export_totals_reconcile_with_the_ledger(world: World, export_format: str) -> None:
    await random_activity(world, operations=1_500 if export_format == "csv" else 400, seed=3)
    balances, types, references = ledger(world)
    assert len(types) > PAGE_ROWS * 5  # the export spans many pages

    body, response = await export(world, "transactions", export_format)
    rows = parse(body, export_format)

    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert [row["transaction_id"] for row in rows] == list(dict.fromkeys(row["transaction_id"] for row in rows))
    assert {row["transaction_id"]: row["type"] for row in rows} == types
    moved: dict[str, int] = defaultdict(int)
    for row in rows:
        amount = int(row["amount"])
        assert amount > 0
        if export_format == "csv-fi":
            assert row["amount_eur"] == euros(amount)
        moved[row["to_account"]] += amount
        moved[row["from_account"]] -= amount
    assert {account: balance for account, balance in moved.items() if balance} == {
        account: balance for account, balance in balances.items() if balance
    }
    # What the wallets spent is what the providers were paid or are owed: by type, too.
    by_type = Counter()
    for row in rows:
        by_type[row["type"]] += int(row["amount"])
    wallets = sum(balance for account, balance in balances.items() if account.startswith("wallet:"))
    assert by_type["credit"] - by_type["expiry"] - by_type["capture"] + by_type["refund"] == wallets
    assert by_type["expiry"] > 0 and by_type["settlement"] > 0
    for row in rows:
        expected = references.get(row["transaction_id"])
        printed = row["settlement_reference"] or None
        if export_format == "csv-fi" and expected:
            expected = group_finnish_reference(expected)
        assert printed == expected, row
    captures = [row for row in rows if row["type"] == "capture"]
    assert all(row["charge_id"] and row["client_id"] and row["business_id"] == BUSINESS_ID for row in captures)
    assert [row["created_at"] for row in rows] == sorted(row["created_at"] for row in rows)


async def test_settlement_export_reconciles_with_settled_accounts(world: World) -> None:
    await random_activity(world, operations=300, seed=5)
    balances, _, _ = ledger(world)
    for export_format in ("csv", "jsonl", "csv-fi"):
        body, _ = await export(world, "settlements", export_format)
        rows = parse(body, export_format)
        settled: dict[str, int] = defaultdict(int)
        for row in rows:
            settled[f"settled:{row['provider_id']}"] += int(row["amount"])
            assert row["iban"] == IBAN and row["status"] == "open"
        assert dict(settled) == {
            account: balance for account, balance in balances.items() if account.startswith("settled:")
        }
        _, page = await world.call("GET", "/v1/settlements?limit=200", world.finance, expect=200)
        assert {row["settlement_id"] for row in rows} == {batch["id"] for batch in page["data"]}
        if export_format == "csv-fi":
            assert all(" " in row["reference"] and row["rf_reference"].startswith("RF") for row in rows)


async def test_csv_fi_is_for_a_finnish_spreadsheet(world: World) -> None:
    await world.category("home_care")
    client = await world.client()
    await world.budget(client["id"], {"home_care": 100_000})
    await world.credit()
    body = {"name": '=HYPERLINK("http://x")', "business_id": BUSINESS_ID, "iban": IBAN, "categories": ["home_care"]}
    _, provider = await world.call("POST", "/v1/providers", world.admin, body, expect=201)
    await world.call("POST", f"/v1/providers/{provider['id']}/approve", world.admin, expect=200)
    provider["token"] = world.token(Role.PROVIDER, provider_id=provider["id"])
    await world.charge(provider, client, 1_250)
    _, batch = await world.call("POST", "/v1/settlements", provider["token"], {}, expect=201)

    raw, response = await export(world, "settlements", "csv-fi")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert raw.startswith("\ufeff".encode())
    text = raw.decode()[1:]
    header, line = text.splitlines()[:2]
    assert header.split(";")[:4] == ["settlement_id", "created_at", "provider_id", "provider_name"]
    fields = next(csv.reader(io.StringIO(line), delimiter=";"))
    row = dict(zip(next(csv.reader(io.StringIO(header), delimiter=";")), fields, strict=True))
    assert row["amount"] == "1250" and row["amount_eur"] == "12,50"
    assert row["reference"] == group_finnish_reference(batch["reference"]) and " " in row["reference"]
    assert row["provider_name"].startswith("'=")  # defused: Excel shows it as text

    raw, _ = await export(world, "settlements", "csv")
    row = next(csv.DictReader(io.StringIO(raw.decode())))
    assert row["provider_name"].startswith("=") and row["reference"] == batch["reference"]


async def test_from_and_to_pick_days_in_helsinki(world: World) -> None:
    client, provider = await world.funded(100_000)
    days: dict[str, list[str]] = {}
    for day in ("2027-01-15", "2027-01-16", "2027-01-17"):
        _, charge = await world.charge(provider, client, 100)
        days[day] = [charge["id"]]
        world.clock.advance(days=1)
        refresh_tokens(world, [client, provider])
    body, _ = await export(world, "transactions", "csv", **{"from": "2027-01-16", "to": "2027-01-17"})
    rows = parse(body, "csv")
    assert [row["charge_id"] for row in rows] == days["2027-01-16"]
    # A Helsinki day starts at 22:00 UTC the evening before.
    body, _ = await export(
        world, "transactions", "jsonl", **{"from": "2027-01-15T21:59:59Z", "to": "2027-01-16T22:00:00Z"}
    )
    assert [row["charge_id"] for row in parse(body, "jsonl")] == days["2027-01-16"]
    body, _ = await export(world, "transactions", "jsonl", **{"from": "2027-01-17"})
    assert [row["charge_id"] for row in parse(body, "jsonl")] == days["2027-01-17"]
    body, _ = await export(world, "transactions", "csv", **{"from": "2030-01-01"})
    assert body.decode().splitlines() == [",".join(ExportKind.TRANSACTIONS.columns)]


async def test_exports_are_for_finance_only_and_checked(world: World) -> None:
    client, provider = await world.funded()
    for token in (world.admin, provider["token"], client["token"]):
        await world.call("GET", "/v1/exports/transactions", token, expect=403)
    await world.call("GET", "/v1/exports/settlements", None, expect=401)
    for query, field in (
        ("format=xlsx", "format"),
        ("from=2027-13-01", "from"),
        ("from=2027-01-16&to=2027-01-15", "to"),
        ("to=tomorrow", "to"),
    ):
        status, problem = await world.call("GET", f"/v1/exports/transactions?{query}", world.finance)
        assert (status, problem["code"], problem["field"]) == (422, "validation_error", field), query


async def test_an_export_is_the_ledger_as_it_stood_when_it_began(world: World) -> None:
    client, provider = await world.funded(100_000)
    await charges(world, provider, client, PAGE_ROWS * 2)
    pages = world.service.export(ExportKind.TRANSACTIONS, None, None)
    first = await anext(pages)
    status, late = await world.charge(provider, client, 10)
    assert status == 201, late
    rest = [row async for page in pages for row in page]
    rows = first + rest
    assert len(first) == PAGE_ROWS
    assert len(rows) == PAGE_ROWS * 2 + 1  # the credit and the charges made before it began
    assert late["id"] not in {row["charge_id"] for row in rows}


async def test_every_page_is_bounded(world: World) -> None:
    client, provider = await world.funded(100_000)
    await charges(world, provider, client, PAGE_ROWS * 3 + 7)
    sizes = [len(page) async for page in world.service.export(ExportKind.TRANSACTIONS, None, None)]
    assert sizes == [PAGE_ROWS, PAGE_ROWS, PAGE_ROWS, 8]


async def run_cli(settings: Settings, *arguments: str) -> tuple[int, bytes, bytes]:
    environment = {
        **os.environ,
        "WALLET_DB": settings.db,
        "WALLET_SIGNING_KEY": settings.signing_key,
        "WALLET_SMS_OUTBOX": settings.sms_outbox,
        "WALLET_EXPORT_PAGE_ROWS": str(PAGE_ROWS),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wallet",
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout, stderr


async def test_the_cli_writes_the_same_files(world: World, tmp_path: Path) -> None:
    await random_activity(world, operations=120, seed=11)
    settings = world.service.settings
    for kind in ("transactions", "settlements"):
        for export_format in ("csv", "jsonl", "csv-fi"):
            served, _ = await export(world, kind, export_format, **{"from": "2027-01-01"})
            output = tmp_path / f"{kind}.{export_format}"
            code, _, stderr = await run_cli(
                settings, "export", kind, "--from", "2027-01-01", "--format", export_format, "--output", str(output)
            )
            assert code == 0, stderr
            assert output.read_bytes() == served
            assert f"export {kind}: {len(served):,} bytes".encode() in stderr, stderr  # progress, then the end
            assert not Path(f"{output}.partial").exists()
    code, stdout, _ = await run_cli(settings, "export", "settlements", "--format", "jsonl")
    assert code == 0 and stdout == (await export(world, "settlements", "jsonl"))[0]
    code, _, stderr = await run_cli(settings, "export", "transactions", "--from", "someday")
    assert code == 2 and b"from" in stderr


# write_export on its own: it reads the next page while it writes this one.


class _Pages:
    """Pages as an export reads them, noting what happened to the reading."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.read: list[int] = []
        self.closed = False

    async def pages(self) -> Any:
        try:
            for number in range(self.count):
                await asyncio.sleep(0)
                if number == self.fail_at:
                    raise OSError("the disk went away")
                self.read.append(number)
                yield [{"n": number}]
        finally:
            self.closed = True  # a reader would go back to its pool here


ONE_COLUMN = Encoder(ExportFormat.CSV, ("n",))


async def test_write_export_writes_every_page_in_order() -> None:
    source, written = _Pages(5), []

    async def write(chunk: bytes) -> None:
        written.append(chunk)

    assert await write_export(source.pages(), ONE_COLUMN, write) == 5
    assert b"".join(written) == b"n\r\n0\r\n1\r\n2\r\n3\r\n4\r\n"


async def test_a_page_that_cannot_be_read_fails_the_export_after_the_pages_before_it() -> None:
    source, written = _Pages(5, fail_at=3), []

    async def write(chunk: bytes) -> None:
        written.append(chunk)

    with pytest.raises(OSError, match="the disk went away"):
        await write_export(source.pages(), ONE_COLUMN, write)
    assert b"".join(written) == b"n\r\n0\r\n1\r\n2\r\n"
    assert source.closed


async def test_when_the_client_goes_away_the_reading_ahead_stops_too() -> None:
    source = _Pages(100)

    async def write(chunk: bytes) -> None:
        if chunk.startswith(b"1\r\n"):
            raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await write_export(source.pages(), ONE_COLUMN, write)
    assert source.read[:2] == [0, 1] and len(source.read) <= 3  # one page ahead of the failed one at most
    assert source.closed  # its reading was stopped and cleaned up, not left pending


def test_a_page_after_many_rows_stamped_alike_costs_what_the_first_does(tmp_path: Path) -> None:
    """A run of transactions with one ``created_at`` (a credit step, charges in one millisecond):
    each page seeks to where the one before stopped. Counted in SQLite's own VM steps (a progress
    handler every 100), not in time: with one range ``(created_at, seq) > (?, ?)`` each page read
    the run again from its start (the 30th cost four times the first here; a million credits
    stamped alike took 124 s to export instead of 21 s)."""
    import sqlite3

    from wallet.storage.sql import exports
    from wallet.storage.sqlite.adapter import migrate

    path = str(tmp_path / "wallet.db")
    migrate(path)
    stamp = "2027-01-10T10:00:00.000Z"
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    with connection:
        connection.executemany(
            "INSERT INTO transactions (id, type, created_at, month) VALUES (?, 'credit', ?, '2027-01')",
            [(f"tx_{n:05d}", stamp) for n in range(3_000)],
        )
        connection.execute(
            "INSERT INTO transactions (id, type, created_at, month) VALUES ('tx_later', 'credit',"
            " '2027-01-10T10:00:00.001Z', '2027-01')"
        )
        connection.execute(
            "INSERT INTO postings (transaction_id, account_id, amount, balance_after)"
            " SELECT id, 'funding', -100, 0 FROM transactions"
        )
        connection.execute(
            "INSERT INTO postings (transaction_id, account_id, amount, balance_after)"
            " SELECT id, 'funding', 100, 0 FROM transactions"
        )
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    connection.set_progress_handler(count, 100)

    class Reader:
        async def execute_fetchall(self, sql: str, parameters: Any = None) -> list[sqlite3.Row]:
            return connection.execute(sql, parameters or ()).fetchall()

    async def pages() -> tuple[list[str], list[int]]:
        after: exports.Keyset = (exports.EARLIEST, 0)
        ids: list[str] = []
        cost: list[int] = []
        while True:
            steps[0] = 0
            page, after = await exports.transactions_page(Reader(), None, None, 10**9, after, 100)
            cost.append(steps[0])
            ids += [record["transaction_id"] for record in page]
            if len(page) < 100:
                return ids, cost

    ids, cost = asyncio.run(pages())
    connection.close()
    assert ids == [f"tx_{n:05d}" for n in range(3_000)] + ["tx_later"]  # each once, in order, the tie run then later
    assert len(cost) == 31 and cost[0] > 0
    assert max(cost) <= 2 * cost[0], cost  # the 30th page: no rescan of the 2,900 rows before it
