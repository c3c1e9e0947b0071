"""The writer in a process of its own (``WALLET_WRITER_PROCESS``, the default), on SQLite.

The rest of the contract suite already runs on it (every test not marked ``thread_writer``, on
both databases; PostgreSQL's own in tests/test_postgres.py); these are the things only a second process brings: it is really another
process, it can die and come back, it answers every write sent before it stops, it ends with its
parent, and units cross to it as data.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World
from tests.processes import Server, WalletFiles, charge_body, poll, seed
from wallet.check import check_database
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import OperationError, RateLimited, ValidationError
from wallet.ledger.months import UnusedPolicy
from wallet.ledger.reconciliation import Invoice
from wallet.ledger.settlements import SettlementStatus
from wallet.settings import Settings
from wallet.storage.port import ChargeCommand, Idempotency, Limits, NewBudget, NewClient, NewProvider, NewRepresentation
from wallet.storage.sql import charges, login, organizer, reconciliations, representatives, settlements
from wallet.storage.sql.frames import DISPATCH, decode_outcome, encode_outcome, frame, read_frames
from wallet.storage.sql.units import UnitCall, stored, unit_of_work
from wallet.storage.sql.writer_process import ProcessWriter, WriterOptions

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The charge storms here are the point: no per-provider throttle in the way."""
    return replace(settings, provider_charges_per_second=100_000, provider_charges_burst=100_000, writer_batch_max=8)


def _writer(world: World) -> ProcessWriter:
    writer = world.service.storage.writer  # type: ignore[attr-defined]
    assert isinstance(writer, ProcessWriter)
    return writer


async def until(condition: Any, deadline_seconds: float, what: str) -> None:
    """``poll`` for a test on the event loop: wait without blocking the loop that must do the work."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while not condition():
        assert loop.time() < deadline, f"gave up after {deadline_seconds} s waiting for {what}"
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_writes_run_in_another_process(world: World) -> None:
    writer = _writer(world)
    assert writer.pid is not None and writer.pid != os.getpid() and _alive(writer.pid)
    client, provider = await world.funded(1_000)
    status, charge = await world.charge(provider, client, 250)
    assert status == 201 and charge["status"] == "captured"
    assert (await world.wallet(client))["available"] == 750
    assert writer.stats().batches >= 1 and writer.stats().alive


_ONE_THREAD_PROBE = """
import json, sqlite3, sys, threading
from wallet.storage.sqlite import library
from wallet.storage.sql import login
from wallet.storage.sqlite.writer import connect
tuned = library.configure_for_one_thread()
connection = connect(sys.argv[1], check_same_thread=True)
connection.execute("CREATE TABLE t (x INTEGER)")
connection.execute("INSERT INTO t VALUES (1)")
refused = []
def elsewhere():
    try:
        connection.execute("SELECT x FROM t")
    except sqlite3.ProgrammingError:
        refused.append(True)
thread = threading.Thread(target=elsewhere)
thread.start()
thread.join()
print(json.dumps({"tuned": tuned, "refused": refused == [True],
                  "journal": connection.execute("PRAGMA journal_mode").fetchone()[0],
                  "synchronous": connection.execute("PRAGMA synchronous").fetchone()[0],
                  "temp_store": connection.execute("PRAGMA temp_store").fetchone()[0],
                  "rows": connection.execute("SELECT COUNT(*) FROM t").fetchone()[0]}))
"""


def test_the_writer_process_s_sqlite_has_one_thread_and_keeps_its_connection_to_it(tmp_path: Path) -> None:
    """What ``writer_process._serve`` does before it opens its connection (``library.py``): SQLite
    takes the single-thread configuration here, and Python refuses the connection to other threads,
    which that configuration needs. WAL and synchronous=FULL as always; statement journals in memory
    (``temp_store = MEMORY``, 2). In a process of its own: the configuration is the whole process's."""
    import json
    import subprocess
    import sys

    finished = subprocess.run(
        [sys.executable, "-c", _ONE_THREAD_PROBE, str(tmp_path / "probe.db")],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {
        "tuned": True,
        "refused": True,
        "journal": "wal",
        "synchronous": 2,
        "temp_store": 2,
        "rows": 1,
    }


def test_a_unit_crosses_as_its_factory_and_arguments() -> None:
    limits = Limits(5, 900, 50, 3, 5, 5, 900)
    command = ChargeCommand("pr_x", "hash", 100, "home_care", None, IdentityMethod.NATIONAL_ID, "nid")
    now = datetime(2027, 1, 15, 10, tzinfo=UTC)
    unit = charges.charge(command, limits, now, "2027-01")
    copy = pickle.loads(pickle.dumps(unit))
    assert isinstance(copy, UnitCall)
    assert copy.factory is charges.charge and copy.args == (command, limits, now, "2027-01")


def test_a_request_frame_gives_back_the_moments_and_arguments_it_was_given() -> None:
    """What ``frame`` sends (the UTC moment as its seven fields, dataclasses by their fields) is
    what ``read_frames`` reads: equal values of the same types, a UTC moment still in ``UTC``."""
    limits = Limits(5, 900, 50, 3, 5, 5, 900, {"x": 1})
    moments = [
        datetime(2027, 1, 15, 10, 4, 5, 123_456, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 3, 1, 2, 30, tzinfo=timezone(timedelta(hours=-3))),
        datetime(2027, 3, 1, 2, 30),
    ]
    commands = [
        ChargeCommand("pr_x", "hash", 100, "home_care", None, IdentityMethod.NATIONAL_ID, "nid"),
        ChargeCommand("pr_y", "hash2", 7, "food", "lunch", IdentityMethod.OTP, None, "otp", moments[0]),
    ]
    requests = [
        (number, charges.charge(command, limits, moment, "2027-01"), Idempotency("s", f"k{number}", "f"), "t", "a")
        for number, (command, moment) in enumerate(zip(commands * 3, moments, strict=False))
    ]
    buffer = bytearray(frame(requests))
    (read,) = read_frames(buffer)
    assert not buffer
    for (number, unit, idempotency, created_at, actor), (sent_number, sent, *rest) in zip(read, requests, strict=True):
        assert (number, idempotency, created_at, actor) == (sent_number, *rest)
        assert type(unit.args[0]) is ChargeCommand and unit.args == sent.args  # type: ignore[attr-defined]
        assert unit.args[2].tzinfo == sent.args[2].tzinfo  # type: ignore[attr-defined]
        assert (unit.args[2].tzinfo is UTC) == (sent.args[2].tzinfo is UTC)  # type: ignore[attr-defined]


def test_every_kind_of_argument_crosses_equal_through_a_frame() -> None:
    """Each kind of value a unit carries (every ``by_fields`` class, enums, moments, invoices, a
    stored value) comes back from ``read_frames(frame(...))`` equal and of its own type, inside the
    requests of the factories that carry it."""
    now = datetime(2027, 1, 15, 10, 4, 5, 123_456, tzinfo=UTC)
    limits = Limits(5, 900, 50, 3, 5, 5, 900, {"x": 1})
    commands = [
        ChargeCommand("pr_x", "h", 100, "food", None, IdentityMethod.NATIONAL_ID, "nid"),
        ChargeCommand("pr_x", "h", 7, "food", "lunch", IdentityMethod.OTP, None, "otp", now),
        ChargeCommand("pr_x", "h", 7, "food", None, IdentityMethod.APP, None, None, now),
    ]
    units = [
        *(charges.charge(command, limits, now, "2027-01") for command in commands),
        organizer.create_client(NewClient("Aino", "ph", "pc", None), "t"),
        organizer.create_budget(NewBudget("cl_1", "2027-01", "2027-12", UnusedPolicy.EXPIRE, (("food", 100),)), "t"),
        organizer.create_provider(NewProvider("Hoiva Oy", "1234567-8", "FI00", ("food", "home_care")), "t"),
        representatives.create(NewRepresentation("cl_1", "manage", None, "ph", "pc", "nh"), "t"),
        charges.confirm_charge("pr_x", "ch_1", "code", limits, now),
        charges.answer_charge("cl_1", "ch_1", True, now, representative_id="rp_1"),
        login.start_login("ph", "code", now, limits, now),
        settlements.set_status("st_1", SettlementStatus.PAID, "t", None),
        reconciliations.reconcile((Invoice(1, "n1", "RF18", None, 100, "EUR", "1234567-8"),), "mail", "t"),
        stored({"n": [1, "two", None]}),
    ]
    requests = [(number, unit, Idempotency("s", f"k{number}", "f"), "t", "actor") for number, unit in enumerate(units)]
    requests.append((len(units), units[0], None, "t", "system"))
    (read,) = read_frames(bytearray(frame(requests)))
    assert len(read) == len(requests)
    for (number, unit, *rest), (sent_number, sent, *sent_rest) in zip(read, requests, strict=True):
        assert (number, *rest) == (sent_number, *sent_rest)
        assert type(unit) is UnitCall and unit.factory is sent.factory  # type: ignore[attr-defined]
        assert (unit.args, unit.kwargs) == (sent.args, sent.kwargs)  # type: ignore[attr-defined]
        assert [type(value) for value in unit.args] == [type(value) for value in sent.args]  # type: ignore[attr-defined]


def test_the_frame_s_pickler_reduces_every_class_that_crosses_without_object_reduce_ex() -> None:
    """Pickle looks a value's type up in ``DISPATCH`` before it falls back to ``__reduce_ex__``:
    every ``by_fields`` class and ``UnitCall`` is there, with the reducer the class has."""
    for cls in (ChargeCommand, Idempotency, Limits, NewBudget, NewClient, NewProvider, NewRepresentation, UnitCall):
        assert DISPATCH[cls] is cls.__reduce__


@unit_of_work
def _refuses_here(marker: str) -> Any:
    if os.environ.get("WALLET_TEST_REFUSE_UNIT") == marker:
        raise ValueError("refused when built")
    return lambda connection: marker


def test_a_unit_that_cannot_be_built_fails_when_run_not_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = _refuses_here("m")
    monkeypatch.setenv("WALLET_TEST_REFUSE_UNIT", "m")
    rebuilt = pickle.loads(pickle.dumps(unit))  # never raises while a frame is read: inside the writer's guard
    with pytest.raises(ValueError, match="refused when built"):
        rebuilt(None)


async def test_a_killed_writer_loses_nothing_answered_and_comes_back(world: World) -> None:
    """SIGKILL the writer process while charges are in flight: each is answered 201 or 503, a new
    writer process starts by itself, retries with the same keys charge exactly once, and the ledger
    holds exactly the charges made."""
    writer = _writer(world)
    client, provider = await world.funded(100_000)
    first_pid = writer.pid
    assert first_pid is not None
    count = 240
    answered = asyncio.Event()

    async def one(number: int) -> tuple[int, Any]:
        outcome = await world.charge(provider, client, 100, key=f"kill-{number}")
        answered.set()
        return outcome

    tasks = [asyncio.create_task(one(number)) for number in range(count)]
    await answered.wait()  # at least one batch committed; the rest are queued or in the writer
    assert writer.queue_depth > 0  # the kill cuts charges in flight
    os.kill(first_pid, signal.SIGKILL)
    outcomes = await asyncio.gather(*tasks)
    statuses = {status for status, _ in outcomes}
    assert statuses <= {201, 503}, statuses
    unanswered = [number for number, (status, _) in enumerate(outcomes) if status == 503]
    assert unanswered and len(unanswered) < count
    for status, body in outcomes:
        if status == 503:
            assert body["code"] == "unavailable"

    await until(lambda: writer.alive and writer.pid != first_pid, 30.0, "a new writer process")
    assert writer.restarts == 1
    for number in unanswered:
        status, _ = await world.charge(provider, client, 100, key=f"kill-{number}")
        assert status == 201
    # Every key once more: each answers the same charge, replayed, and no charge is made twice.
    ids = set()
    for number in range(count):
        status, charge = await world.charge(provider, client, 100, key=f"kill-{number}")
        assert status == 201
        ids.add(charge["id"])
    assert len(ids) == count
    assert world.sql("SELECT COUNT(*) FROM charges")[0][0] == count
    assert (await world.wallet(client))["available"] == 100_000 - 100 * count
    assert check_database(world.service.settings.db) == []


async def test_stopping_answers_every_write_already_sent(world: World) -> None:
    """Writes handed to the writer, none of them sent yet, then the storage closes: every one is
    committed and answered before the writer process exits."""
    writer = _writer(world)
    futures = [
        asyncio.ensure_future(writer.submit(stored({"n": n}), Idempotency("test", f"stop-{n}", "f"), "now"))
        for n in range(60)
    ]
    await asyncio.sleep(0)  # each submit runs up to its await; the frame is sent on a later turn
    assert writer.queue_depth == 60 and not any(future.done() for future in futures)
    await world.service.storage.close()
    assert [written.value for written in await asyncio.gather(*futures)] == [{"n": n} for n in range(60)]
    with sqlite3.connect(world.service.settings.db) as connection:
        kept = connection.execute("SELECT COUNT(*) FROM idempotency_keys WHERE scope = 'test'").fetchone()[0]
    assert kept == 60
    assert world.service.storage.writer_stats().alive is False


@pytest.mark.slow
def test_the_writer_process_ends_with_a_killed_server(tmp_path: Path) -> None:
    files = WalletFiles(tmp_path)
    server = Server(files).start()
    try:
        seeded = seed(files, server, 10_000)
        children = [
            int(pid)
            for task in Path(f"/proc/{server.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        assert len(children) == 1, children
        writer_pid = children[0]
        status, _ = server.api(seeded.provider_token).call("POST", "/v1/charges", charge_body(seeded, 100))
        assert status == 201
    finally:
        server.kill()
    poll(lambda: not _alive(writer_pid), 30.0, "the writer process to end after its server was killed")
    assert files.check().returncode == 0


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


@pytest.mark.parametrize(
    "error_type",
    [cls for cls in _subclasses(OperationError) if cls.__module__ == OperationError.__module__],
    ids=lambda cls: cls.__name__,
)  # the ledger's refusals: what a unit can raise
def test_every_refusal_crosses_back_as_itself(error_type: type[OperationError]) -> None:
    """A refusal made in the writer process reaches the caller as the same error, with its status
    and fields (an ``unavailable`` that turned into a plain 400 was a bug found here)."""
    if error_type is ValidationError:
        error: OperationError = ValidationError("amount", "must be positive", minimum=1)
    elif error_type is RateLimited:
        error = RateLimited("slow down", 7)
    else:
        error = error_type("refused", field="phone")
    crossed = decode_outcome(encode_outcome(error))
    assert type(crossed) is error_type
    assert crossed.to_record() == error.to_record()


@unit_of_work
def _wallet_event(client_id: str) -> Any:
    def unit(connection: sqlite3.Connection) -> dict[str, str]:
        connection.execute(
            "INSERT INTO wallet_events (client_id, type, category, amount, line_balance, line_available, balance,"
            " available, created_at) VALUES (?, 'credit', 'home_care', 1, 1, 1, 1, 1, 'now')",
            (client_id,),
        )
        return {"client_id": client_id}

    return unit


async def test_workers_hear_of_new_events_and_the_supervisor_is_sent_nothing(tmp_path: Path) -> None:
    """With workers the writer process has a primary connection to the supervisor, which never
    reads: sending it the event notices filled its buffer and stalled every write for the send
    timeout (found by the locust mix). A worker that has only said hello hears of every event."""
    from wallet.storage.sqlite.adapter import migrate
    from wallet.workers import _Writer

    settings = Settings(db=str(tmp_path / "wallet.db"), signing_key=str(tmp_path / "key.pem"), writer_batch_max=1)
    migrate(settings.db)
    with sqlite3.connect(settings.db) as connection:
        connection.execute(
            "INSERT INTO clients (id, name, phone_hash, phone_ciphertext, created_at)"
            " VALUES ('cl_1', 'Aino', 'h', 'c', 'now')"
        )
    writer = _Writer(settings, str(tmp_path / "writer.sock"))
    writer.start()
    assert writer.primary is not None
    writing, listening = (
        ProcessWriter(WriterOptions(db=settings.db, batch_max=1), queue_max=100, connect_to=writer.socket_path)
        for _ in range(2)
    )
    heard: list[dict[str, int]] = []
    listening.on_fresh_events = heard.append
    try:
        await writing.start(0)
        await listening.start(0)
        for _ in range(50):  # one batch each: fifty notices of new events
            await writing.submit(_wallet_event("cl_1"), None, "now")
        await until(lambda: heard and max(fresh["cl_1"] for fresh in heard) == 50, 30.0, "the listening worker")
        with pytest.raises(BlockingIOError):
            writer.primary.recv(1, socket.MSG_DONTWAIT)
    finally:
        await writing.stop()
        await listening.stop()
        writer.stop()
    assert writer.process is not None and writer.process.returncode == 0
