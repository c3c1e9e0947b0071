"""Three real ``wallet serve`` nodes on one PostgreSQL database, every kind of money movement through
all of them at once, one node killed with SIGKILL mid-traffic and started again (issue 26, item 5).

Every request carries an Idempotency-Key, and every charge its key as its description, so the
database can be read back key by key. A request whose answer the kill swallowed is sent again with
its key to two nodes at once after the restart. Every answer one key ever got (replays on two nodes
at once, retries) must be the same answer, and at most one of them not a replay. After the retries
every key has an answer, so what the database must hold follows from the answers alone: each
acknowledged movement exactly once and nothing else, each line's balance and hold, the provider's
payable, the funding account; then ``wallet check``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.pg import RawDatabase
from tests.processes import Seeded, Server, WalletFiles, current_month, seed
from wallet.ledger.money import format_euros

pytestmark = pytest.mark.slow

T = TypeVar("T")

DEADLINE_SECONDS = 30.0
CATEGORY = "home_care"
CODE = re.compile(r"vahvistuskoodi (\d{6})\.")

# The race: small lines, two OTP holds on each, then more charges of one amount than the rest holds.
RACE_CLIENTS = 4
RACE_BALANCE = 1_000
FIRST_HOLDS = (150, 250)  # plus the client's number: each hold's code SMS is told apart by its amount
RACE_AMOUNT = 100
RACE_CAPTURES = 10
RACE_HOLDS = 2
PART_REFUND = 40  # three of them on one capture of RACE_AMOUNT, from three nodes: two fit

# The kill: one roomy line (never refused), one small line that runs out around the kill.
KILL_BALANCES = (10_000, 700)
ANCHOR_AMOUNT = 2_000  # a capture the killed node and its successor refund in small parts
ANCHOR_REFUND = 7
PRE_KILL_HOLD = 123  # placed on a node that lives, confirmed on the restarted one
DOOMED = 2
WORKERS_PER_NODE = 3
SURVIVOR_REQUESTS = 15  # per worker on each node that lives on
RESTARTED_REQUESTS = 8  # per worker on the node started again
KILL_AFTER_ANSWERS = 6  # from the doomed node, its workers' next requests in flight
DOOMED_REQUESTS_MAX = 200  # a bound only: its workers stop at their first lost answer


@dataclass
class Person:
    client_id: str
    phone: str
    national_id: str
    credited: int


@dataclass
class Answer:
    node: int
    status: int | None  # None: no answer (the connection broke)
    body: Any = None
    replayed: bool = False
    error: str = ""


@dataclass
class Sent:
    path: str
    body: Any
    answers: list[Answer] = field(default_factory=list)

    def acknowledged(self) -> Answer | None:
        """The key's answer: every answer it got is the same, and at most one was not a replay."""
        got = [answer for answer in self.answers if answer.status is not None]
        for other in got[1:]:
            assert (other.status, other.body) == (got[0].status, got[0].body), (self.path, got[0], other)
        firsts = sum(not answer.replayed for answer in got)
        assert firsts <= 1, f"{self.path}: {firsts} answers that were not replays of the first: {got}"
        if len(got) == len(self.answers) and got:  # none lost: the one that did it answered
            assert firsts == 1, f"{self.path}: every answer a replay, of nothing answered: {got}"
        return got[0] if got else None


def national_id(number: int) -> str:
    """A valid henkilötunnus (born 1 January 1980, individual number 100 + ``number``)."""
    digits = f"010180{100 + number:03d}"
    return f"{digits[:6]}-{digits[6:]}{'0123456789ABCDEFHJKLMNPRSTUVWXY'[int(digits) % 31]}"


class Cluster:
    """The nodes; one killed is replaced by a new process on the same port and schema."""

    def __init__(self, files: WalletFiles) -> None:
        self.files = files
        self.nodes: list[Server] = []
        self.started: list[Server] = []

    def start(self, count: int) -> None:
        for _ in range(count):  # the first makes the schema and the keys; the others find them
            self.nodes.append(self._started(Server(self.files)))

    def restart(self, index: int) -> Server:
        self.nodes[index] = self._started(Server(self.files, port=self.nodes[index].port))
        return self.nodes[index]

    def _started(self, node: Server) -> Server:
        self.started.append(node)
        return node.start()


@pytest.fixture(params=["false", "true"], ids=["one-order", "side-by-side"])
def files(tmp_path: Path, postgres_schema: str, request: pytest.FixtureRequest) -> WalletFiles:
    # No background credit runs or settlements; no per-node charge throttle in the way of the races.
    # Both ways of writing: every transaction alone, and charges side by side (docs/postgresql-writes.md).
    return WalletFiles(
        tmp_path,
        extra_env={
            "WALLET_DB": postgres_schema,
            "WALLET_AUTO_CREDIT_RUN": "false",
            "WALLET_AUTO_SETTLEMENT": "false",
            "WALLET_PROVIDER_CHARGES_BURST": "100000",
            "WALLET_PROVIDER_CHARGES_PER_SECOND": "100000",
            "WALLET_POSTGRES_SIDE_BY_SIDE": request.param,
        },
    )


@pytest.fixture
def cluster(files: WalletFiles) -> Iterator[Cluster]:
    nodes = Cluster(files)
    yield nodes
    for node in nodes.started:
        if node.running():
            node.stop()


class Traffic:
    """Every request sent, by its Idempotency-Key, with every answer it got and from which node."""

    def __init__(self, http: aiohttp.ClientSession, cluster: Cluster, token: str, people: list[Person]) -> None:
        self.http = http
        self.cluster = cluster
        self.token = token
        self.by_phone = {person.phone: person for person in people}
        self.sent: dict[str, Sent] = {}
        self.answered_by: Counter[int] = Counter()
        self._watches: list[tuple[int, int, asyncio.Event]] = []

    async def post(self, node: int, path: str, body: Any, key: str) -> Answer:
        sent = self.sent.setdefault(key, Sent(path, body))
        assert (sent.path, sent.body) == (path, body), f"key {key} reused for another request"
        server = self.cluster.nodes[node]
        try:
            async with self.http.post(
                f"{server.base_url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key},
            ) as response:
                answer = Answer(
                    node,
                    response.status,
                    await response.json(content_type=None),
                    response.headers.get("Idempotent-Replayed") == "true",
                )
        except (TimeoutError, aiohttp.ClientError) as error:
            answer = Answer(node, None, error=repr(error))
        sent.answers.append(answer)
        if answer.status is not None:
            self.answered_by[node] += 1
            for watched, count, event in self._watches:
                if watched == node and self.answered_by[node] >= count:
                    event.set()
        return answer

    def watch(self, node: int, count: int) -> asyncio.Event:
        """Set once ``node`` has answered ``count`` requests in all."""
        event = asyncio.Event()
        self._watches.append((node, count, event))
        return event

    async def charge(self, node: int, key: str, person: Person, amount: int, method: str = "national_id") -> Answer:
        identity: dict[str, str] = {"method": method}
        if method == "national_id":
            identity["national_id"] = person.national_id
        body = {"phone": person.phone, "amount": amount, "category": CATEGORY, "identity": identity, "description": key}
        return await self.post(node, "/v1/charges", body, key)

    async def confirm(self, node: int, key: str, charge_id: str, code: str) -> Answer:
        return await self.post(node, f"/v1/charges/{charge_id}/confirm", {"code": code}, key)

    async def void(self, node: int, key: str, charge_id: str) -> Answer:
        return await self.post(node, f"/v1/charges/{charge_id}/void", None, key)

    async def refund(self, node: int, key: str, charge_id: str, amount: int) -> Answer:
        return await self.post(node, f"/v1/charges/{charge_id}/refunds", {"amount": amount}, key)

    def answer(self, key: str) -> Answer:
        answer = self.sent[key].acknowledged()
        assert answer is not None, f"{key}: no answer"
        return answer


async def at_once(*requests: Awaitable[T]) -> list[T]:
    """Every request started together: none is sent before all are ready to be."""
    barrier = asyncio.Barrier(len(requests))

    async def together(request: Awaitable[T]) -> T:
        await barrier.wait()
        return await request

    return await asyncio.gather(*(together(request) for request in requests))


def code_for(files: WalletFiles, person: Person, amount: int) -> str:
    """The code in the SMS for a hold of ``amount`` on ``person``'s phone (sent before the 201)."""
    charged = f"Veloitus {format_euros(amount)}."
    codes = [
        match.group(1)
        for message in files.sms()
        if message["to"] == person.phone and charged in message["text"]
        for match in [CODE.search(message["text"])]
        if match
    ]
    assert len(codes) == 1, f"{len(codes)} code messages for a hold of {amount} cents"
    return codes[0]


def add_client(node: Server, admin_token: str, number: int, monthly_amount: int) -> Person:
    """A client with a national id and a budget line from this month (credited by the test's run)."""
    phone, identity = f"+3584076543{number:02d}", national_id(number)
    admin = node.api(admin_token)
    client = admin.call("POST", "/v1/clients", {"name": "Asiakas", "phone": phone, "national_id": identity}, expect=201)
    month = current_month()
    year, month_number = int(month[:4]), int(month[5:])
    budget = {
        "start_month": month,
        "end_month": f"{year:04d}-12" if month_number == 1 else f"{year + 1:04d}-{month_number - 1:02d}",
        "unused": "expire",
        "lines": [{"category": CATEGORY, "monthly_amount": monthly_amount}],
    }
    admin.call("POST", f"/v1/clients/{client['id']}/budgets", budget, expect=201)
    return Person(client["id"], phone, identity, monthly_amount)


class Scenario:
    """The traffic, phase by phase; each phase asserts what its answers must be."""

    def __init__(self, traffic: Traffic, files: WalletFiles, race: list[Person], kill: list[Person]) -> None:
        self.traffic = traffic
        self.files = files
        self.race = race
        self.kill = kill

    async def hold_then_overspend(self) -> list[list[dict[str, Any]]]:
        """OTP holds on every race line, each placed on one node; then more charges than the lines
        hold, through all three nodes at once, one key per line sent to two nodes at the same moment.
        What each line's charges won, in order of their keys."""
        traffic = self.traffic
        holds = await at_once(
            *(
                traffic.charge((n + h) % 3, f"hold-{n}-{h}", person, amount + n, "otp")
                for n, person in enumerate(self.race)
                for h, amount in enumerate(FIRST_HOLDS)
            )
        )
        assert [(a.status, a.body["status"]) for a in holds] == [(201, "pending")] * len(holds), holds

        calls: list[Awaitable[Answer]] = []
        for n, p in enumerate(self.race):
            for c in range(RACE_CAPTURES):
                calls.append(traffic.charge((n + c) % 3, f"race-{n}-{c}", p, RACE_AMOUNT))
            for h in range(RACE_HOLDS):
                calls.append(traffic.charge((n + h + 1) % 3, f"race-hold-{n}-{h}", p, RACE_AMOUNT, "otp"))
            for node in (n % 3, (n + 1) % 3):
                calls.append(traffic.charge(node, f"race-twin-{n}", p, RACE_AMOUNT))
        await at_once(*calls)

        winners = []
        for n in range(RACE_CLIENTS):
            keys = [key for key in traffic.sent if key.startswith((f"race-{n}-", f"race-hold-{n}-", f"race-twin-{n}"))]
            assert len(keys) == RACE_CAPTURES + RACE_HOLDS + 1 and len(traffic.sent[f"race-twin-{n}"].answers) == 2
            answers = {key: traffic.answer(key) for key in keys}
            won = [answer.body for answer in answers.values() if answer.status == 201]
            refused = [answer.body for answer in answers.values() if answer.status == 402]
            winning = (RACE_BALANCE - sum(FIRST_HOLDS) - len(FIRST_HOLDS) * n) // RACE_AMOUNT  # 6 or 5 of 13 keys
            assert (len(won), len(refused)) == (winning, len(keys) - winning), answers
            assert all(body["code"] == "insufficient_funds" for body in refused), refused
            winners.append(won)
        return winners

    async def confirm_void_and_refund_elsewhere(self, winners: list[list[dict[str, Any]]]) -> None:
        """Each line's first hold confirmed and its second voided on other nodes than their own, the
        race's holds voided, refunds of its captures (three from three nodes on one, more than it
        captured); all at once, with one key of each kind sent to two nodes."""
        traffic = self.traffic
        calls: list[Awaitable[Answer]] = []
        for n, person in enumerate(self.race):
            first, second = traffic.answer(f"hold-{n}-0"), traffic.answer(f"hold-{n}-1")
            code = code_for(self.files, person, FIRST_HOLDS[0] + n)
            for node in (first.node + 1, first.node + 2) if n == 0 else (first.node + 1,):
                calls.append(traffic.confirm(node % 3, f"confirm-{n}", first.body["id"], code))
            for node in (second.node + 1, second.node + 2) if n == 1 else (second.node + 2,):
                calls.append(traffic.void(node % 3, f"void-{n}", second.body["id"]))
            captured = [body["id"] for body in winners[n] if body["status"] == "captured"]
            pending = [body["id"] for body in winners[n] if body["status"] == "pending"]
            assert len(captured) >= 3, winners[n]  # at most RACE_HOLDS of the winners are holds
            for node in range(3):
                calls.append(traffic.refund(node, f"part-{n}-{node}", captured[0], PART_REFUND))
            for node in (n % 3, (n + 2) % 3):
                calls.append(traffic.refund(node, f"whole-{n}", captured[1], RACE_AMOUNT))
            for h, hold in enumerate(pending):
                calls.append(traffic.void((n + h) % 3, f"race-void-{n}-{h}", hold))
        await at_once(*calls)

        for n in range(RACE_CLIENTS):
            confirmed, voided = traffic.answer(f"confirm-{n}"), traffic.answer(f"void-{n}")
            assert (confirmed.status, confirmed.body["status"]) == (200, "captured"), confirmed
            assert (voided.status, voided.body["status"]) == (201, "voided"), voided
            parts = [traffic.answer(f"part-{n}-{node}") for node in range(3)]
            assert sorted(part.status or 0 for part in parts) == [201, 201, 422], parts
            assert [part.body["code"] for part in parts if part.status == 422] == ["refund_exceeds_capture"]
            assert traffic.answer(f"whole-{n}").status == 201
            for key in (key for key in traffic.sent if key.startswith(f"race-void-{n}-")):
                assert traffic.answer(key).status == 201, traffic.sent[key].answers
        twins = [traffic.sent[key] for key in ("confirm-0", "void-1", *(f"whole-{n}" for n in range(RACE_CLIENTS)))]
        assert all(len(twin.answers) == 2 for twin in twins)

    async def kill_and_restart(self, cluster: Cluster) -> None:
        """Charges and refunds through all three nodes; the doomed node killed with SIGKILL while its
        workers wait for answers, started again on the same port, and more traffic through it, which
        also confirms holds placed on another node before the kill."""
        traffic, kill = self.traffic, self.kill
        anchor = await traffic.charge(1, "anchor", kill[0], ANCHOR_AMOUNT)
        assert anchor.status == 201, anchor
        held = await at_once(
            *(traffic.charge(0, f"pre-kill-hold-{n}", p, PRE_KILL_HOLD, "otp") for n, p in enumerate(kill))
        )
        assert [a.status for a in held] == [201] * len(kill), held

        def amount(n: int) -> int:
            return 20 + (n * 7) % 41

        async def charging(node: int, name: str, count: int) -> None:
            for n in range(count):
                if (await traffic.charge(node, f"{name}-{n}", kill[n % 2], amount(n))).status is None:
                    return  # its node is gone

        async def charging_and_refunding(node: int, name: str, count: int) -> None:
            for n in range(count):
                if n % 3 == 2:
                    answer = await traffic.refund(node, f"{name}-{n}", anchor.body["id"], ANCHOR_REFUND)
                else:
                    answer = await traffic.charge(node, f"{name}-{n}", kill[n % 2], amount(n))
                if answer.status is None:
                    return

        async def twins(other: int, name: str) -> None:
            for n in range(DOOMED_REQUESTS_MAX):
                pair = await at_once(
                    *(traffic.charge(node, f"{name}-{n}", kill[n % 2], amount(n)) for node in (other, DOOMED))
                )
                if pair[1].status is None:
                    return

        enough = traffic.watch(DOOMED, KILL_AFTER_ANSWERS)
        running: list[asyncio.Task[Any]] = [
            asyncio.create_task(worker)
            for worker in (
                *(
                    charging(node, f"survivor-{node}-{w}", SURVIVOR_REQUESTS)
                    for node in (0, 1)
                    for w in range(WORKERS_PER_NODE)
                ),
                *(charging_and_refunding(DOOMED, f"doomed-{w}", DOOMED_REQUESTS_MAX) for w in range(WORKERS_PER_NODE)),
                twins(0, "twin-0"),
                twins(1, "twin-1"),
            )
        ]
        await asyncio.wait_for(enough.wait(), DEADLINE_SECONDS)
        await asyncio.to_thread(cluster.nodes[DOOMED].kill)
        killed_after = traffic.answered_by[DOOMED]
        await asyncio.to_thread(cluster.restart, DOOMED)
        codes = [code_for(self.files, person, PRE_KILL_HOLD) for person in kill]
        running += [
            asyncio.create_task(worker)
            for worker in (
                *(
                    charging_and_refunding(DOOMED, f"restarted-{w}", RESTARTED_REQUESTS)
                    for w in range(WORKERS_PER_NODE)
                ),
                *(
                    traffic.confirm(DOOMED, f"pre-kill-confirm-{n}", hold.body["id"], code)
                    for n, (hold, code) in enumerate(zip(held, codes, strict=True))
                ),
            )
        ]
        await asyncio.gather(*running)

        lost = [sent for sent in traffic.sent.values() if any(answer.status is None for answer in sent.answers)]
        assert lost, "no request to the killed node was in flight: the test did not make the race happen"
        assert {answer.node for sent in lost for answer in sent.answers if answer.status is None} == {DOOMED}
        assert traffic.answered_by[DOOMED] >= killed_after + WORKERS_PER_NODE * RESTARTED_REQUESTS + len(kill)
        for n in range(len(kill)):
            confirmed = traffic.answer(f"pre-kill-confirm-{n}")
            assert (confirmed.status, confirmed.body["status"]) == (200, "captured"), confirmed
        print(f"killed after {killed_after} answers from it; {len(lost)} requests lost their answers")

    async def retry_the_lost(self) -> None:
        """Every key whose only answers were lost, sent again to two nodes at once, one the restarted."""
        lost = [(key, sent) for key, sent in self.traffic.sent.items() if sent.acknowledged() is None]
        await at_once(
            *(self.traffic.post(node, sent.path, sent.body, key) for key, sent in lost for node in (0, DOOMED))
        )
        done_before = sum(all(answer.replayed for answer in sent.answers[-2:]) for _, sent in lost)
        print(f"{len(lost)} keys retried; {done_before} of them had been written before the kill")


@dataclass
class Ledger:
    """What the database must hold, worked out from the answers alone."""

    charges: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → its row
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)  # id → (charge, amount)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (charge, type) → wallet events
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)  # client → (balance, held)
    payable: int = 0


def expected_ledger(traffic: Traffic, people: list[Person]) -> Ledger:
    ledger = Ledger()
    answers = {key: sent.acknowledged() for key, sent in traffic.sent.items()}
    for key, sent in traffic.sent.items():  # the charges first: the other requests name them
        answer = answers[key]
        assert answer is not None, f"{key}: no answer even after the retries"
        if sent.path != "/v1/charges":
            continue
        assert answer.status in (201, 402), (key, answer)
        if answer.status == 402:
            assert answer.body["code"] == "insufficient_funds", (key, answer)
            continue
        assert answer.body["amount"] == sent.body["amount"], (key, answer)
        ledger.charges[answer.body["id"]] = {
            "id": answer.body["id"],
            "description": key,
            "client_id": traffic.by_phone[sent.body["phone"]].client_id,
            "amount": sent.body["amount"],
            "status": answer.body["status"],
        }
        ledger.events[answer.body["id"], "capture" if answer.body["status"] == "captured" else "hold"] += 1
    for key, sent in traffic.sent.items():
        if sent.path == "/v1/charges":
            continue
        answer = answers[key]
        assert answer is not None
        charge_id, action = sent.path.split("/")[3:5]
        charge = ledger.charges[charge_id]
        if action == "confirm":
            assert answer.status == 200 and charge["status"] == "pending", (key, answer)
            charge["status"] = "captured"
            ledger.events[charge_id, "capture"] += 1
        elif action == "void":
            assert answer.status == 201 and charge["status"] == "pending", (key, answer)
            charge["status"] = "voided"
            ledger.events[charge_id, "void"] += 1
        else:
            assert action == "refunds" and answer.status in (201, 422), (key, answer)
            if answer.status == 422:
                assert answer.body["code"] == "refund_exceeds_capture", (key, answer)
                continue
            assert answer.body["amount"] == sent.body["amount"], (key, answer)
            ledger.refunds[answer.body["id"]] = (charge_id, sent.body["amount"])
            ledger.events[charge_id, "refund"] += 1
    for person in people:
        own = [charge for charge in ledger.charges.values() if charge["client_id"] == person.client_id]
        captured = sum(charge["amount"] for charge in own if charge["status"] == "captured")
        held = sum(charge["amount"] for charge in own if charge["status"] == "pending")
        refunded = sum(
            amount for charge_id, amount in ledger.refunds.values() if charge_id in {charge["id"] for charge in own}
        )
        ledger.lines[person.client_id] = (person.credited - captured + refunded, held)
    captured_total = sum(charge["amount"] for charge in ledger.charges.values() if charge["status"] == "captured")
    ledger.payable = captured_total - sum(amount for _, amount in ledger.refunds.values())
    return ledger


def assert_database_holds(dsn: str, ledger: Ledger, traffic: Traffic, seeded: Seeded, credited: int) -> None:
    """Each acknowledged movement in the database exactly once, and nothing that was not answered."""
    with RawDatabase(dsn) as database:
        charges = database.records("SELECT id, description, client_id, amount, status FROM charges")
        assert sorted(charges, key=lambda row: str(row["id"])) == sorted(
            ledger.charges.values(), key=lambda row: str(row["id"])
        )
        captures = database.execute("SELECT charge_id, COUNT(*) FROM transactions WHERE type = 'capture' GROUP BY 1")
        assert dict(captures) == {id: 1 for id, charge in ledger.charges.items() if charge["status"] == "captured"}
        refunds = database.execute("SELECT id, charge_id, amount FROM refunds")
        assert {id: (charge_id, amount) for id, charge_id, amount in refunds} == ledger.refunds
        booked = database.execute("SELECT refund_id, COUNT(*) FROM transactions WHERE type = 'refund' GROUP BY 1")
        assert dict(booked) == dict.fromkeys(ledger.refunds, 1)
        events = database.execute(
            "SELECT charge_id, type, COUNT(*) FROM wallet_events WHERE charge_id IS NOT NULL GROUP BY 1, 2"
        )
        assert {(charge_id, kind): count for charge_id, kind, count in events} == dict(ledger.events)

        # Every key sent is kept once with the outcome its answers carried.
        kept = database.execute(
            "SELECT key, outcome FROM idempotency_keys WHERE scope = ?", f"provider:{seeded.provider_id}"
        )
        outcomes = {key: json.loads(outcome) for key, outcome in kept}
        assert set(outcomes) == set(traffic.sent)
        for key in traffic.sent:
            answer = traffic.answer(key)
            if answer.status is not None and answer.status < 300:
                assert outcomes[key] == {"value": answer.body}, key
            else:
                assert outcomes[key]["error"]["code"] == answer.body["code"], key

        lines = database.execute(
            "SELECT client_id, SUM(balance), SUM(held) FROM accounts WHERE kind = 'wallet' GROUP BY 1"
        )
        assert {client_id: (balance, held) for client_id, balance, held in lines} == ledger.lines
        assert database.execute("SELECT id FROM accounts WHERE kind = 'wallet' AND (held < 0 OR balance < held)") == []
        payable = database.execute(
            "SELECT SUM(balance) FROM accounts WHERE kind = 'payable' AND provider_id = ?", seeded.provider_id
        )
        assert payable == [(ledger.payable,)]
        assert database.execute("SELECT balance FROM accounts WHERE kind = 'funding'") == [(-credited,)]
        assert database.execute("SELECT SUM(amount) FROM postings") == [(0,)]


def test_three_nodes_one_killed_every_acknowledged_answer_is_in_the_database_once(
    files: WalletFiles, cluster: Cluster, postgres_schema: str
) -> None:
    began = time.monotonic()
    cluster.start(3)
    nodes = cluster.nodes
    seeded = seed(files, nodes[0], RACE_BALANCE, category=CATEGORY, credit="none")
    admin_token = files.token("admin")
    race = [Person(seeded.client_id, seeded.phone, seeded.national_id, RACE_BALANCE)]
    race += [add_client(nodes[n % 3], admin_token, n, RACE_BALANCE) for n in range(1, RACE_CLIENTS)]
    kill = [add_client(nodes[n % 3], admin_token, n, b) for n, b in enumerate(KILL_BALANCES, start=RACE_CLIENTS)]
    people = race + kill
    credited = sum(person.credited for person in people)
    status, run = nodes[1].api(admin_token).call("POST", "/v1/credit-runs", {"month": current_month()}, key="credit")
    assert status == 201 and run["amount"] == credited, run

    async def drive() -> Traffic:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=300), timeout=aiohttp.ClientTimeout(total=DEADLINE_SECONDS)
        ) as http:
            scenario = Scenario(Traffic(http, cluster, seeded.provider_token, people), files, race, kill)
            winners = await scenario.hold_then_overspend()
            await scenario.confirm_void_and_refund_elsewhere(winners)
            await scenario.kill_and_restart(cluster)
            await scenario.retry_the_lost()
            return scenario.traffic

    traffic = asyncio.run(drive())
    ledger = expected_ledger(traffic, people)
    assert_database_holds(postgres_schema, ledger, traffic, seeded, credited)
    for node in cluster.nodes:  # every node reads the same wallet
        wallet = node.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
        assert (wallet["balance"], wallet["held"]) == ledger.lines[seeded.client_id], wallet
    for node in cluster.nodes:
        assert node.stop() == 0, node.log_tail()
    completed = files.check()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "every invariant holds" in completed.stdout
    print(
        f"{len(traffic.sent)} keys, {sum(len(sent.answers) for sent in traffic.sent.values())} requests,"
        f" {len(ledger.charges)} charges, {len(ledger.refunds)} refunds in {time.monotonic() - began:.1f} s"
    )
