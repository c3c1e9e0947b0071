"""Shared fixtures: an app built by the real factory on a fresh database, a fake clock, an SMS
recorder, and a ``World`` that seeds categories, clients, budgets and providers through the API.

The contract suite runs on both adapters: every test that builds the app (through ``settings``)
runs once on SQLite (``[sqlite]``) and once on PostgreSQL (``[postgres]``), in a schema of its own
made for it and dropped after. PostgreSQL is found through ``WALLET_TEST_POSTGRES_DSN`` (``.ci/run``
sets it): unset, the ``[postgres]`` runs are skipped; set but unreachable, they fail. A test that
looks at SQLite's own files or writer says so with ``@pytest.mark.sqlite_only``.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.pg import RawDatabase
from wallet.api.app import create_app
from wallet.api.keys import SERVICE
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.settings import Settings

# A fixed moment inside a month far from any boundary: 15 January 2027, noon in Helsinki.
START = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)
NATIONAL_ID = "131052-308T"
OTHER_NATIONAL_ID = "280264-051U"
BUSINESS_ID = "2077474-0"
IBAN = "FI2112345600000785"


class RecordingSms:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        self.sent.append({"to": to, "text": text})

    def last_code(self, to: str) -> str:
        for message in reversed(self.sent):
            if message["to"] == to:
                match = re.search(r"\b(\d{6})\b", message["text"])
                assert match, message
                return match.group(1)
        raise AssertionError(f"no SMS to {to}")


POSTGRES_DSN_VARIABLE = "WALLET_TEST_POSTGRES_DSN"
BACKENDS = ("sqlite", "postgres")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The PostgreSQL schemas a test's app still held at its teardown, dropped now; a connection
    that holds one even now outlived every test: the run fails, naming it."""
    from tests.pg import drop_left_schemas

    failures = drop_left_schemas()
    if failures:
        session.config.get_terminal_writer().line("\n".join(failures), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = list(BACKENDS)
        if metafunc.definition.get_closest_marker("sqlite_only") is not None:
            backends.remove("postgres")
        if metafunc.definition.get_closest_marker("postgres_only") is not None:
            backends.remove("sqlite")
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def postgres_dsn() -> str:
    """The test server's DSN; skips the test when none is configured."""
    dsn = os.environ.get(POSTGRES_DSN_VARIABLE, "").strip()
    if not dsn:
        pytest.skip(f"{POSTGRES_DSN_VARIABLE} is not set")
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with ``search_path`` set (asyncpg passes unknown DSN parameters as server settings)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh, uniquely named schema on the test server, dropped after the test; its DSN."""
    from tests.pg import create_schema, drop_schema_later

    dsn = postgres_dsn()
    schema = f"wallet_test_{secrets.token_hex(6)}"
    create_schema(dsn, schema)  # fails (never skips) when the server does not answer
    try:
        yield with_search_path(dsn, schema)
    finally:
        drop_schema_later(dsn, schema)


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """``WALLET_DB`` for this test: a SQLite file, or a DSN into a fresh PostgreSQL schema."""
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_schema"))
    return str(tmp_path / "wallet.db")


@pytest.fixture
def settings(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> Settings:
    """With SQLite, writes go to the writer process, as in production (``WALLET_WRITER_PROCESS``),
    except for tests marked ``thread_writer``: they patch or inspect the writer, which only reaches
    a writer running in this process."""
    return Settings(
        db=database,
        signing_key=str(tmp_path / "keys" / "signing-key.pem"),
        sms_outbox=str(tmp_path / "sms.jsonl"),
        auto_credit_run=False,
        writer_process=request.node.get_closest_marker("thread_writer") is None,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sms() -> RecordingSms:
    return RecordingSms()


@pytest.fixture
def app(settings: Settings, clock: FakeClock, sms: RecordingSms) -> web.Application:
    return create_app(settings, clock=clock, sms=sms, background_jobs=False)


@pytest.fixture
async def http(aiohttp_client: Any, app: web.Application) -> TestClient:
    return await aiohttp_client(app)


class World:
    """Talks to the API as the organizer, providers and clients would."""

    def __init__(self, http: TestClient, sms: RecordingSms, clock: FakeClock) -> None:
        self.http = http
        self.sms = sms
        self.clock = clock
        self.service = http.app[SERVICE]
        self.admin = self.token(Role.ADMIN)
        self.finance = self.token(Role.FINANCE)
        self._phones = iter(f"+35840{n:07d}" for n in range(1000000, 9999999, 7919))

    def token(self, role: Role, **ids: str) -> str:
        return self.service.mint(role, **ids).access_token

    @staticmethod
    def auth(token: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", **headers}

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json: Any = None,
        *,
        key: str | None = None,
        expect: int | None = None,
        **headers: str,
    ) -> tuple[int, Any]:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        response = await self.http.request(method, path, json=json, headers=headers)
        body = await response.json(content_type=None) if response.content_length != 0 else None
        if expect is not None:
            assert response.status == expect, (response.status, body)
        if response.status >= 400:
            assert response.content_type == "application/problem+json", response.content_type
            assert isinstance(body["code"], str) and body["status"] == response.status
        return response.status, body

    async def category(self, code: str = "home_care", name: str = "Kotihoito") -> str:
        await self.call("POST", "/v1/categories", self.admin, {"code": code, "name": name}, expect=201)
        return code

    async def client(self, national_id: str | None = NATIONAL_ID, phone: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "Aino Asiakas", "phone": phone or next(self._phones)}
        if national_id:
            body["national_id"] = national_id
        _, client = await self.call("POST", "/v1/clients", self.admin, body, expect=201)
        client["token"] = self.token(Role.CLIENT, client_id=client["id"])
        return client

    async def budget(
        self,
        client_id: str,
        lines: dict[str, int],
        start: str = "2027-01",
        end: str = "2027-12",
        unused: str = "expire",
    ) -> dict[str, Any]:
        body = {
            "start_month": start,
            "end_month": end,
            "unused": unused,
            "lines": [{"category": c, "monthly_amount": a} for c, a in lines.items()],
        }
        return (await self.call("POST", f"/v1/clients/{client_id}/budgets", self.admin, body, expect=201))[1]

    async def provider(self, categories: list[str], approve: bool = True) -> dict[str, Any]:
        body = {"name": "Hoiva Oy", "business_id": BUSINESS_ID, "iban": IBAN, "categories": categories}
        _, provider = await self.call("POST", "/v1/providers", self.admin, body, expect=201)
        if approve:
            await self.call("POST", f"/v1/providers/{provider['id']}/approve", self.admin, expect=200)
        provider["token"] = self.token(Role.PROVIDER, provider_id=provider["id"])
        return provider

    async def credit(self, month: str = "2027-01") -> dict[str, Any]:
        return (await self.call("POST", "/v1/credit-runs", self.admin, {"month": month}))[1]

    async def funded(self, amount: int = 10_000, category: str = "home_care", **client: Any) -> tuple[dict, dict]:
        """A client with ``amount`` on ``category`` this month, and a provider approved for it."""
        codes = {c["code"] for c in (await self.call("GET", "/v1/categories", self.admin))[1]["data"]}
        if category not in codes:
            await self.category(category)
        wallet_owner = await self.client(**client)
        await self.budget(wallet_owner["id"], {category: amount})
        await self.credit()
        provider = await self.provider([category])
        return wallet_owner, provider

    async def charge(
        self,
        provider: dict[str, Any],
        client: dict[str, Any],
        amount: int,
        *,
        category: str = "home_care",
        national_id: str | None = NATIONAL_ID,
        method: str = "national_id",
        key: str | None = None,
    ) -> tuple[int, Any]:
        identity: dict[str, Any] = {"method": method}
        if method == "national_id":
            identity["national_id"] = national_id
        body = {"phone": client["phone"], "amount": amount, "category": category, "identity": identity}
        return await self.call("POST", "/v1/charges", provider["token"], body, key=key)

    async def wallet(self, client: dict[str, Any]) -> dict[str, Any]:
        return (await self.call("GET", "/v1/me/wallet", client["token"], expect=200))[1]

    def database(self) -> RawDatabase:
        """A raw connection to the app's database (SQLite or PostgreSQL), to look under the API."""
        return RawDatabase(self.service.settings.db)

    def sql(self, query: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with self.database() as database:
            return database.execute(query, *parameters)

    def records(self, query: str, *parameters: Any) -> list[dict[str, Any]]:
        with self.database() as database:
            return database.records(query, *parameters)

    def dump(self) -> str:
        """Every row of every table as text: what someone with the database in hand would read."""
        with self.database() as database:
            if not database.postgres:
                return "\n".join(database._connection.iterdump())
            tables = [
                row[0]
                for row in database.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            ]
            return "\n".join(row[0] for table in tables for row in database.execute(f'SELECT t::text FROM "{table}" t'))

    def check(self) -> None:
        from wallet.check import check_database

        assert check_database(self.service.settings.db) == []


@pytest.fixture
async def world(http: TestClient, sms: RecordingSms, clock: FakeClock) -> AsyncIterator[World]:
    world = World(http, sms, clock)
    yield world
    world.check()  # every test leaves a database whose invariants hold


@pytest.fixture
def deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Ids from a counter, reset on demand, so both paths name their transactions alike."""
    counter = itertools.count()

    def new_id(prefix: str) -> str:
        return f"{prefix}_{next(counter):08d}"

    def reset(start: int) -> None:
        nonlocal counter
        counter = itertools.count(start)

    from wallet.storage.sql import charge_batch, charges, credit_runs, ledger_rows, organizer

    for module in (
        ledger_rows,
        organizer,
        charges,
        credit_runs,
        charge_batch,
    ):  # every writer of new ids (test_charge_batch too)
        monkeypatch.setattr(module, "new_id", new_id)
    yield reset
