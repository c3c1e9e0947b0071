"""The floor: the least a durable charge can cost on this stack, run as a service of its own.

    python -m loadtests.floor --port 8091 --database PATH|postgresql://... [--secret-dir DIR] [--event-loop uvloop]

``python -m loadtests.bench --floor`` measures it beside the wallet and the no-op app, with the
same wrk script. It keeps what no implementation can skip: an aiohttp handler for
``POST /v1/charges`` that parses the body and reads the ``Idempotency-Key``; the service's framing
to a writer process (``writer_process._frame``, one frame a loop turn); a writer that batches up
to 64 charges, writes exactly the rows a charge by national id writes into the real schema with
the real multi-row ``INSERT``s (the charge, the transaction, two postings, both balances, the
wallet event, the audit entry, the idempotency key) and commits on the real writer connection
(WAL, ``synchronous=FULL``).

On PostgreSQL (``--database postgresql://...``, its ``search_path`` a schema the bench seeded as
the wallet's) the writer is a thread of the serving process with one psycopg connection, as a
wallet node runs it, and a batch is one round trip: ``BEGIN``, the same ``INSERT``s, the one
``UPDATE`` of the moved accounts and ``COMMIT`` in one pipeline, on the real schema (its foreign
keys, checks, indexes, and the triggers on ``wallet_events``: ``NOTIFY`` and the SMS receipt),
with ``synchronous_commit`` as the server has it, each statement prepared after five runs (psycopg's
default). It takes no advisory lock (it is the only writer).

It leaves out, on purpose, authentication, validation, the identity check, the throttle, logging,
metrics, the writer's reads (it keeps the balances in memory, being the database's only writer),
savepoints, the audit chain's hashing (a constant hash stands in) and sending the SMS receipts
(their rows are written, by the trigger, and left unsent). Clients are found by phone
in a dict built at start from the bench's people. Run it only on a copy of a bench database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import psycopg
from aiohttp import web
from psycopg import pq

from wallet.clock import rfc3339
from wallet.eventloop import EVENT_LOOPS, new_event_loop
from wallet.ids import new_id
from wallet.ledger.accounts import payable_account, wallet_account
from wallet.storage.migrations import is_postgres
from wallet.storage.postgres.connection import POSTGRES, connect_options, split_dsn
from wallet.storage.postgres.dialect import render_numbered
from wallet.storage.sql import bulk
from wallet.storage.sql.charge_batch import _CHARGES, _KEYS
from wallet.storage.sql.connection import Dialect

# The real service's framing: the very functions the HTTP side and the writer process use.
from wallet.storage.sql.frames import frame as _frame
from wallet.storage.sql.frames import read_frames as _frames
from wallet.storage.sqlite import library
from wallet.storage.sqlite.connection import SQLITE
from wallet.storage.sqlite.writer import connect

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BATCH_MAX = 64  # the service's WALLET_WRITER_BATCH_MAX default
RECEIVE_BYTES = 1 << 20
SEND_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 60.0
HASH = "f" * 64  # stands in for every hash: the audit chain's, the request fingerprint
METHOD = "national_id"
CAPTURE = "capture"
ACTION = "ledger.capture"
# The writer process's command (``-c``, as ``writer_process._ENTRY``); its name is what the bench
# looks for to count the writer's CPU apart (``bench.writer_cpu_seconds``).
_ENTRY = "import sys; from loadtests.floor import floor_writer_main; sys.exit(floor_writer_main(sys.argv[1:]))"
NOT_FOUND = b'{"error":{"code":"not_found","message":"no such client"}}'
UNAVAILABLE = b'{"error":{"code":"unavailable","message":"the write failed"}}'


# The HTTP side.


class WriterLink:
    """``ProcessWriter.submit``/``_flush``/``_replied``, without the rest: one frame a loop turn."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._waiting: dict[int, asyncio.Future[str | None]] = {}
        self._numbers = 0
        self._outgoing: list[tuple[Any, ...]] = []
        self._flush_scheduled = False
        self._gone: asyncio.Future[None] | None = None

    async def start(self, database: str, batch_max: int) -> None:
        self._loop = asyncio.get_running_loop()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        try:
            self._process = subprocess.Popen(  # noqa: ASYNC220 (started once, before the load)
                [
                    sys.executable,
                    "-c",
                    _ENTRY,
                    "--fd",
                    str(child.fileno()),
                    "--database",
                    database,
                    "--batch-max",
                    str(batch_max),
                ],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        finally:
            child.close()
        self._gone = self._loop.create_future()
        self._transport, _ = await self._loop.create_unix_connection(lambda: _Protocol(self), sock=parent)

    async def stop(self) -> None:
        """Every write sent answered, then end-of-file: the writer commits what it has and exits."""
        if self._transport is None:
            return
        self._flush()
        if not self._transport.is_closing():
            self._transport.write_eof()
        if self._gone is not None:
            await asyncio.wait_for(asyncio.shield(self._gone), STOP_TIMEOUT_SECONDS)
        if self._process is not None:
            await asyncio.to_thread(self._process.wait, STOP_TIMEOUT_SECONDS)
        self._transport.abort()

    def submit(self, request: tuple[Any, ...]) -> asyncio.Future[str | None]:
        assert self._loop is not None
        self._numbers += 1
        number = self._numbers
        future: asyncio.Future[str | None] = self._loop.create_future()
        self._waiting[number] = future
        self._outgoing.append((number, *request))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing or self._transport is None:
            return
        outgoing, self._outgoing = self._outgoing, []
        self._transport.write(_frame(outgoing))

    def replied(self, answers: list[tuple[int, str | None]]) -> None:
        for number, record in answers:
            future = self._waiting.pop(number, None)
            if future is not None and not future.done():
                future.set_result(record)

    def lost(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(None)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)


class _Protocol(asyncio.Protocol):
    def __init__(self, link: WriterLink) -> None:
        self._link = link
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for answers in _frames(self._buffer):
            self._link.replied(answers)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link.lost()


class Link(Protocol):
    """How the handler reaches the writer: a process (SQLite) or a thread (PostgreSQL)."""

    async def start(self, database: str, batch_max: int) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, request: tuple[Any, ...]) -> asyncio.Future[str | None]: ...


_STOP = object()


class PostgresLink:
    """The writer as a thread of the serving process with one psycopg connection, as a wallet node
    on PostgreSQL runs it (``Writer``): a blocking queue drained into batches, one wake-up of the
    event loop a batch (``writer._answer``)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def start(self, database: str, batch_max: int) -> None:
        self._loop = asyncio.get_running_loop()
        connection = await asyncio.to_thread(postgres_connect, database)
        ledger = await asyncio.to_thread(_Ledger, connection)
        self._thread = threading.Thread(
            target=self._run, args=(connection, ledger, batch_max), name="floor-writer", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """Every write queued committed and answered, then the thread ends."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT_SECONDS)
        self._thread = None

    def submit(self, request: tuple[Any, ...]) -> asyncio.Future[str | None]:
        assert self._loop is not None
        future: asyncio.Future[str | None] = self._loop.create_future()
        self._queue.put((future, request))
        return future

    def _run(self, connection: Any, ledger: _Ledger, batch_max: int) -> None:
        written = commits = 0
        stopping = False
        try:
            while not stopping:
                items = [self._queue.get()]
                while len(items) < batch_max:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if items[-1] is _STOP:
                    stopping = True
                    items.pop()
                if not items:
                    continue
                futures = [future for future, _ in items]
                batch = [(number, *request) for number, (_, request) in enumerate(items)]
                try:
                    answers: list[tuple[int, str | None]] = list(_write_postgres(connection, ledger, batch))
                    written, commits = written + len(batch), commits + 1
                except Exception as error:  # every caller of the batch hears 503; the balances are read again
                    print(
                        f"floor writer: batch of {len(batch)} failed: {type(error).__name__}: {error}", file=sys.stderr
                    )
                    if connection.info.transaction_status != pq.TransactionStatus.IDLE:
                        connection.execute("ROLLBACK")
                    ledger.reload(connection)
                    answers = [(number, None) for number, *_ in batch]
                assert self._loop is not None
                with contextlib.suppress(RuntimeError):  # the event loop has closed: nobody waits
                    self._loop.call_soon_threadsafe(_resolve, futures, answers)
        finally:
            connection.close()
            print(
                f"floor writer: {written} charges in {commits} commits"
                f" ({written / commits if commits else 0:.1f} a commit)",
                file=sys.stderr,
                flush=True,
            )


def _resolve(futures: list[asyncio.Future[str | None]], answers: list[tuple[int, str | None]]) -> None:
    for number, record in answers:
        if not futures[number].done():
            futures[number].set_result(record)


LINK = web.AppKey("link", Link)
CLIENTS = web.AppKey("clients", dict)


async def charge(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    client_id = request.app[CLIENTS].get(body["phone"])
    if client_id is None:
        return web.Response(status=404, body=NOT_FOUND, content_type="application/json")
    record = await request.app[LINK].submit(
        (request.headers.get("Idempotency-Key"), client_id, body["amount"], body["category"])
    )
    if record is None:
        return web.Response(status=503, body=UNAVAILABLE, content_type="application/json")
    return web.Response(status=201, body=record.encode(), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def create_app(database: str, clients: dict[str, str], batch_max: int = BATCH_MAX) -> web.Application:
    app = web.Application()
    app[CLIENTS] = clients
    link: Link = PostgresLink() if is_postgres(database) else WriterLink()
    app[LINK] = link

    async def start_writer(app: web.Application) -> None:
        await link.start(database, batch_max)

    async def stop_writer(app: web.Application) -> None:
        await link.stop()

    app.on_startup.append(start_writer)
    app.on_cleanup.append(stop_writer)
    app.router.add_route("POST", "/v1/charges", charge)
    app.router.add_route("GET", "/healthz", health)
    return app


def phone_to_client(database: str, secret_dir: Path) -> dict[str, str]:
    """The bench's people's phones to their client ids: each phone hashed as the service hashes it
    (``Hasher.keyed("phone", ...)`` under its secret), found in the clients table."""
    from loadtests.bench import people
    from wallet.auth.hashing import Hasher
    from wallet.auth.keys import HMAC_SECRET_FILENAME
    from wallet.service import PHONE

    secret_path = secret_dir / HMAC_SECRET_FILENAME
    if not secret_path.exists():
        raise SystemExit(f"no service secret at {secret_path}: give --secret-dir")
    hasher = Hasher(bytes.fromhex(secret_path.read_text().strip()))
    connection = (
        postgres_connect(database) if is_postgres(database) else sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    )
    try:
        by_hash = {
            str(phone_hash): str(client_id)
            for phone_hash, client_id in connection.execute("SELECT phone_hash, id FROM clients").fetchall()
        }
    finally:
        connection.close()
    clients = {}
    for person in people(max(len(by_hash) - 1, 0)):
        client_id = by_hash.get(hasher.keyed(PHONE, person.phone))
        if client_id is not None:
            clients[person.phone] = client_id
    if not clients:
        raise SystemExit(f"none of the bench's people is a client in {database}")
    return clients


# The writer process.


class _Ledger:
    """What the writer keeps in memory: the balances (it is the only writer), the provider."""

    def __init__(self, connection: Any) -> None:  # sqlite3's or psycopg's: both ``execute`` SQL as written
        provider = connection.execute(
            "SELECT id FROM providers WHERE status = 'approved' ORDER BY seq LIMIT 1"
        ).fetchone()
        if provider is None:
            raise SystemExit("no approved provider in the database")
        self.provider_id = str(provider[0])
        self.payable_id = payable_account(self.provider_id)
        self.actor = f"provider:{self.provider_id}"  # the principal's scope: audit actor, key scope
        self.reload(connection)

    def reload(self, connection: Any) -> None:
        self.accounts = {
            str(account_id): [int(balance), int(held)]
            for account_id, balance, held in connection.execute(
                "SELECT id, balance, held FROM accounts WHERE kind IN ('wallet', 'payable')"
            )
        }
        self.totals = {
            str(client_id): [int(balance), int(held)]
            for client_id, balance, held in connection.execute(
                "SELECT client_id, SUM(balance), SUM(held) FROM accounts WHERE kind = 'wallet' GROUP BY client_id"
            )
        }


@dataclass
class _Rows:
    """A batch's rows, table by table, each account's net move, and the answers by request number."""

    charges: list[bulk.RowValues] = field(default_factory=list)
    transactions: list[bulk.RowValues] = field(default_factory=list)
    postings: list[bulk.RowValues] = field(default_factory=list)
    moves: dict[str, int] = field(default_factory=dict)
    events: list[bulk.RowValues] = field(default_factory=list)
    audit: list[bulk.RowValues] = field(default_factory=list)
    keys: list[bulk.RowValues] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)

    def statements(self, dialect: Dialect) -> list[tuple[str, Sequence[object]]]:
        """Every row's ``INSERT`` (the service's multi-row statements) and one ``UPDATE`` of the moved
        accounts, in the order a charge batch writes them."""
        moves = [(account_id, change, 0) for account_id, change in self.moves.items()]
        return [
            *_CHARGES.statements(self.charges),
            *bulk.TRANSACTIONS.statements(self.transactions),
            *bulk.POSTINGS.statements(self.postings),
            *([bulk.move_balances_statement(dialect, moves)] if moves else []),
            *bulk.WALLET_EVENTS.statements(self.events),
            *bulk.AUDIT_LOG.statements(self.audit),
            *_KEYS.statements(self.keys),
        ]


def _rows(ledger: _Ledger, batch: list[tuple[Any, ...]]) -> _Rows:
    """The rows of every charge of the batch, worked out on the balances in memory (moved here)."""
    stamp = rfc3339(datetime.now(UTC))
    provider_id, payable_id, actor = ledger.provider_id, ledger.payable_id, ledger.actor
    accounts, totals = ledger.accounts, ledger.totals
    payable = accounts[payable_id]
    rows = _Rows()
    charges, transactions, postings, events = rows.charges, rows.transactions, rows.postings, rows.events
    audit, keys, moves, answers = rows.audit, rows.keys, rows.moves, rows.answers
    for number, key, client_id, amount, category in batch:
        account_id = wallet_account(client_id, category)
        charge_id = new_id("ch")
        transaction_id = new_id("tx")
        line = accounts[account_id]
        wallet = totals[client_id]
        line[0] -= amount
        payable[0] += amount
        wallet[0] -= amount
        moves[account_id] = moves.get(account_id, 0) - amount
        moves[payable_id] = moves.get(payable_id, 0) + amount
        record = orjson.dumps(
            {
                "id": charge_id,
                "status": "captured",
                "amount": amount,
                "category": category,
                "method": METHOD,
                "description": None,
                "created_at": stamp,
                "refunded_amount": 0,
                "captured_at": stamp,
            }
        ).decode()
        charges.append(
            (
                charge_id,
                provider_id,
                client_id,
                category,
                account_id,
                amount,
                METHOD,
                "captured",
                None,
                stamp,
                None,
                stamp,
                None,
            )
        )
        transactions.append((transaction_id, CAPTURE, stamp, client_id, provider_id, category, charge_id, None, None))
        postings.append((transaction_id, account_id, -amount, line[0]))
        postings.append((transaction_id, payable_id, amount, payable[0]))
        events.append(
            (
                client_id,
                CAPTURE,
                category,
                -amount,
                charge_id,
                provider_id,
                transaction_id,
                None,
                line[0],
                line[0] - line[1],
                wallet[0],
                wallet[0] - wallet[1],
                stamp,
            )
        )
        data = (
            f'{{"charge_id":"{charge_id}","month":null,"postings":[["{account_id}",{-amount}],'
            f'["{payable_id}",{amount}]],"refund_id":null}}'
        )
        audit.append((stamp, actor, ACTION, transaction_id, data, HASH, HASH))
        if key is not None:
            keys.append((actor, key, HASH, f'{{"value":{record}}}', stamp))
        answers.append((number, record))
    return rows


def _write(connection: sqlite3.Connection, ledger: _Ledger, batch: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
    """One batch in one transaction (SQLite): the rows of every charge, then ``COMMIT``; the answers."""
    rows = _rows(ledger, batch)
    connection.execute("BEGIN IMMEDIATE")
    for sql, parameters in rows.statements(SQLITE):
        connection.execute(sql, parameters).fetchall()
    connection.execute("COMMIT")
    return rows.answers


def postgres_connect(dsn: str) -> Any:
    """The floor's PostgreSQL connection: psycopg in autocommit (its own ``BEGIN`` … ``COMMIT``),
    ``$1`` placeholders sent as written, the bench's ``search_path``; named as a wallet writer's
    backend (``wallet-writer-<pid>-…``), so the bench samples its states as a node's."""
    dsn, settings = split_dsn(dsn)
    return psycopg.connect(
        dsn,
        autocommit=True,
        cursor_factory=psycopg.RawCursor,
        application_name=f"wallet-writer-{os.getpid()}-floor",
        options=connect_options(settings, None),
    )


def _write_postgres(connection: Any, ledger: _Ledger, batch: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
    """One batch in one transaction (PostgreSQL), in one round trip: ``BEGIN``, every row, the
    accounts moved and ``COMMIT`` in one pipeline; the answers once it has committed."""
    rows = _rows(ledger, batch)
    with connection.pipeline():
        connection.execute("BEGIN")
        for sql, parameters in rows.statements(POSTGRES):
            connection.execute(render_numbered(sql), parameters)
        connection.execute("COMMIT")
    return rows.answers


def _serve(connection: sqlite3.Connection, ledger: _Ledger, peer: socket.socket, batch_max: int) -> tuple[int, int]:
    """``writer_process._serve`` for one peer: receive, batch, commit, answer, until end-of-file
    and nothing pending. The charges written and the commits made."""
    peer.settimeout(SEND_TIMEOUT_SECONDS)  # reads only when ready; a send waits at most this long
    selector = selectors.DefaultSelector()
    selector.register(peer, selectors.EVENT_READ)
    buffer = bytearray()
    pending: deque[tuple[Any, ...]] = deque()
    reading = True
    written = commits = 0
    while reading or pending:
        for _ in selector.select(0 if pending else None):
            try:
                data = peer.recv(RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError, TimeoutError):
                continue
            except OSError:
                data = b""
            if not data:  # end-of-file: nothing more comes
                selector.unregister(peer)
                reading = False
                continue
            buffer += data
            for requests in _frames(buffer):
                pending.extend(requests)
        if not pending:
            continue
        batch = [pending.popleft() for _ in range(min(batch_max, len(pending)))]
        try:
            answers: list[tuple[int, str | None]] = list(_write(connection, ledger, batch))
            written, commits = written + len(batch), commits + 1
        except Exception as error:  # every caller of the batch hears 503; the balances are read again
            print(f"floor writer: batch of {len(batch)} failed: {type(error).__name__}: {error}", file=sys.stderr)
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            ledger.reload(connection)
            answers = [(request[0], None) for request in batch]
        try:
            peer.sendall(_frame(answers))
        except OSError:
            pending.clear()
            break
    return written, commits


def floor_writer_main(argv: list[str]) -> int:
    """The writer process's entry (``_ENTRY``): started by ``WriterLink.start``, never by hand."""
    parser = argparse.ArgumentParser(prog="floor-writer")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--batch-max", type=int, required=True)
    arguments = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when writing stops (end-of-file)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    library.configure_for_one_thread()
    library.adapt_none_directly()
    connection = connect(arguments.database, check_same_thread=True)
    peer = socket.socket(fileno=arguments.fd)
    try:
        written, commits = _serve(connection, _Ledger(connection), peer, arguments.batch_max)
    finally:
        connection.close()
        peer.close()
    print(
        f"floor writer: {written} charges in {commits} commits ({written / commits if commits else 0:.1f} a commit)",
        file=sys.stderr,
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    arguments = argparse.ArgumentParser(
        prog="python -m loadtests.floor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument("--port", type=int, default=8091)
    arguments.add_argument(
        "--database",
        required=True,
        help="a database the bench seeded (a copy: this writes it), a SQLite path or a postgresql:// DSN"
        " (its search_path a schema of its own)",
    )
    arguments.add_argument(
        "--secret-dir", type=Path, help="the service's secrets (hmac-secret.key); default: keys/ beside the database"
    )
    arguments.add_argument("--batch-max", type=int, default=BATCH_MAX, help="charges in one commit at most (64)")
    arguments.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="asyncio",
        help="as wallet serve's WALLET_EVENT_LOOP (the bench passes the service's)",
    )
    parsed = arguments.parse_args(argv)
    if is_postgres(parsed.database):
        if parsed.secret_dir is None:
            raise SystemExit("give --secret-dir with a postgresql:// database")
        database = parsed.database
    else:
        database = str(Path(parsed.database).resolve())
    clients = phone_to_client(database, parsed.secret_dir or Path(database).parent / "keys")
    web.run_app(
        create_app(database, clients, parsed.batch_max),
        loop=new_event_loop(parsed.event_loop),
        host="127.0.0.1",
        port=parsed.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
