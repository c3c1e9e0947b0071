"""The one writer in a process of its own (``WALLET_WRITER_PROCESS``, on by default).

Why: in one process the writer thread and the event loop compete for one GIL. Here the writer has
a core of its own (on PostgreSQL a node's writer thread waited for the GIL at every round trip,
with its transaction and the write lock open meanwhile). The units (``wallet/storage/sql``) and
the ``Writer`` code that runs them (batches, a savepoint per unit, group commit) are the same,
only in another process.

How a unit travels: a ``UnitCall`` pickles as its factory's module-level name and its arguments
(plain values and dataclasses); the writer process builds the same unit from them. Requests go over
one Unix socket pair, framed (``frames``), several to a frame: every request the
event loop made in one turn is one ``send``. The writer process drains what has arrived into a
batch of at most ``batch_max``, runs it, and only after its ``COMMIT`` sends back one frame: every
caller's outcome, the clients with new wallet events (for the live streams), and the batch's
figures. So a 2xx still means the write is on disk, exactly as with the thread. The same process
serves SQLite and PostgreSQL (``WriterOptions``); with SQLite it also says which wallets have new
events, while on PostgreSQL every node hears of them by ``NOTIFY``.

The socket is a private pair between this process and its child, never a path on disk: nothing
else can speak to the writer. Pickles cross only that pair.

Lifetimes: the writer process ignores SIGINT and SIGTERM (a terminal's Ctrl-C or a service
manager's signal reaches the whole process group; the parent decides when writing stops). It ends
when its socket reaches end-of-file: after the parent's ``stop`` (which half-closes the socket once
every write it sent is answered) or when the parent dies, even by SIGKILL (the kernel closes the
parent's end). Whatever it had received is run and committed first; a parent that died hears
nothing, and its callers' retries with the same Idempotency-Key get the committed outcome. If the
writer process dies, every unanswered caller gets 503 and the parent starts a new writer process.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from wallet.ledger.errors import Unavailable
from wallet.storage import is_postgres
from wallet.storage.port import ACTOR, CommitObserver, Idempotency, WriterStats, Written
from wallet.storage.sql import events
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.frames import WriteFailed, decode_outcome, encode_outcome, frame, read_frames
from wallet.storage.sql.units import Task, Unit
from wallet.storage.sql.writer import Writer, writer_stats

log = structlog.get_logger(__name__)

# The writer process's command (not ``-m``: the package imports this module before running it).
_ENTRY = f"import sys; from {__name__} import main; sys.exit(main(sys.argv[1:]))"
_RECEIVE_BYTES = 1 << 20
# How long the parent waits for the writer process to finish and exit when stopping, and between a
# writer process that died and its successor.
STOP_TIMEOUT_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0
# The writer process waits at most this long for a serving process to take an answer, then drops it.
SEND_TIMEOUT_SECONDS = 10.0
# The child's environment variable that names its database: a DSN may hold a password, and a
# command line is anyone's to read (``ps``); a process's environment is its user's alone.
DB_VARIABLE = "WALLET_WRITER_DB"


@dataclass(frozen=True)
class WriterOptions:
    """What a writer process writes to, and how it runs its batches."""

    db: str  # a SQLite file, or a PostgreSQL DSN
    batch_max: int
    attempts: int = 1  # PostgreSQL: runs of a batch in all after serialization failures or deadlocks
    lock_timeout_seconds: int | None = None  # PostgreSQL's ``lock_timeout`` for the write connection
    application_name: str = "wallet-writer"  # how the write connection shows in ``pg_stat_activity``
    side_by_side: bool = False  # ``WALLET_POSTGRES_SIDE_BY_SIDE``

    @property
    def postgres(self) -> bool:
        return is_postgres(self.db)

    def arguments(self) -> list[str]:
        """Everything but ``db``, as the writer process's command line (``main``)."""
        arguments = ["--batch-max", str(self.batch_max), "--attempts", str(self.attempts)]
        arguments += ["--application-name", self.application_name]
        if self.lock_timeout_seconds is not None:
            arguments += ["--lock-timeout-seconds", str(self.lock_timeout_seconds)]
        return [*arguments, "--side-by-side"] if self.side_by_side else arguments


# The writer process.


class _ProcessSideWriter(Writer):
    """The thread writer's batch code, answering into a list instead of futures."""

    def __init__(self, connection: Connection, options: WriterOptions) -> None:
        super().__init__(
            lambda: connection,
            queue_max=1,
            batch_max=options.batch_max,
            attempts=options.attempts,
            application_name=options.application_name,
        )
        self.side_by_side = options.side_by_side
        self.answers: list[tuple[Task, Written | BaseException]] = []
        # Up to n of the tasks that have arrived since the batch was taken (``_serve``).
        self.top_up: Callable[[int], list[Task]] | None = None

    def _take_queued(self, batch: list[Task]) -> None:
        """What the serving processes sent while the batch waited for the write lock joins it."""
        if self.top_up is not None and len(batch) < self._batch_max:
            batch.extend(self.top_up(self._batch_max - len(batch)))

    def _deliver(self, answers: list[tuple[Task, Written | BaseException]]) -> None:
        self.answers.extend(answers)


class _Peer:
    """One serving process's connection: its unread bytes, and how many of its writes are unanswered."""

    __slots__ = ("buffer", "listening", "reading", "socket", "unanswered")

    def __init__(self, connection: socket.socket) -> None:
        connection.settimeout(SEND_TIMEOUT_SECONDS)  # reads only when ready; a send waits at most this long
        self.socket = connection
        self.buffer = bytearray()
        self.reading = True
        self.unanswered = 0
        # A peer hears of new wallet events once it has sent a frame (a serving process says hello
        # when it connects); the supervisor's primary connection sends none and is sent nothing.
        self.listening = False


def _open(options: WriterOptions) -> Connection:
    """The write connection, opened here (in the writer process, before anything is received)."""
    if options.postgres:
        from wallet.storage.postgres.connection import PostgresConnection

        postgres = PostgresConnection(
            options.db, lock_timeout_seconds=options.lock_timeout_seconds, application_name=options.application_name
        )
        postgres.connect()
        log.info("writer_process_postgresql", application_name=options.application_name)
        return postgres
    from wallet.storage.sqlite import library
    from wallet.storage.sqlite.writer import connect

    # One thread, one connection (which Python keeps to this thread): SQLite's per-call mutexes and
    # memory statistics are not needed here (library.py). Before the first connection opens.
    tuned = library.configure_for_one_thread()
    library.adapt_none_directly()
    connection = connect(options.db, check_same_thread=True)
    log.info("writer_process_sqlite", single_thread_configuration=tuned)
    return connection


def _serve(
    options: WriterOptions,
    primary: socket.socket,
    listener: socket.socket | None,
    log_format: str,
    log_level: str,
    last_seq: int,
) -> None:
    """The writer process's whole life: receive, batch, commit, answer, until every peer is done.

    ``primary`` is the connection to the process that started this one; ``listener``, with several
    HTTP workers (``WALLET_WORKERS``), a Unix socket in a private directory that the workers
    connect to. When the primary reaches end-of-file no new peer is taken; the process ends once
    every peer has closed its side and had every write it sent answered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from wallet import logs

    logs.configure(log_format, log_level)
    batch_max = options.batch_max
    connection = _open(options)
    writer = _ProcessSideWriter(connection, options)
    fresh: dict[str, int] = {}
    if not options.postgres:  # PostgreSQL tells every node itself (``NOTIFY``, the adapter listens)
        watermark = events.Watermark(last_seq)

        def announce(committed: Any) -> None:
            fresh.update(watermark.advance(committed))

        writer.after_commit = announce
    selector = selectors.DefaultSelector()
    peers: dict[int, _Peer] = {}
    pending: deque[tuple[_Peer, int, Task]] = deque()

    def add(joined: socket.socket) -> _Peer:
        peer = _Peer(joined)
        peers[id(peer)] = peer
        selector.register(joined, selectors.EVENT_READ, peer)
        return peer

    def close(peer: _Peer) -> None:
        if peer.reading:
            selector.unregister(peer.socket)
        peers.pop(id(peer), None)
        peer.socket.close()

    def receive(timeout: float | None) -> None:
        """Take in what the peers sent (waiting up to ``timeout``, None: until something comes)."""
        nonlocal listener
        for key, _ in selector.select(timeout):
            if key.data is None:  # a worker connects
                try:
                    joined, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError):
                    continue
                add(joined)
                continue
            peer = key.data
            try:
                data = peer.socket.recv(_RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError, TimeoutError):
                continue
            except OSError:
                data = b""
            if not data:  # end-of-file: this peer sends nothing more
                selector.unregister(peer.socket)
                peer.reading = False
                if peer is primary_peer and listener is not None:
                    selector.unregister(listener)
                    listener.close()
                    listener = None
                if peer.unanswered == 0:
                    close(peer)
                continue
            peer.buffer += data
            for requests in read_frames(peer.buffer):
                peer.listening = True
                for number, unit, idempotency, created_at, actor in requests:
                    pending.append((peer, number, Task(unit, idempotency, created_at, None, None, actor)))
                    peer.unanswered += 1

    whose: dict[int, tuple[_Peer, int]] = {}  # the batch's tasks: who sent each, under which number

    def take(room: int) -> list[Task]:
        taken: list[Task] = []
        while pending and len(taken) < room:
            peer, number, task = pending.popleft()
            whose[id(task)] = (peer, number)
            taken.append(task)
        return taken

    def top_up(room: int) -> list[Task]:
        receive(0)  # sent while the batch waited for the write lock (PostgreSQL, another node's)
        return take(room)

    writer.top_up = top_up
    primary_peer = add(primary)
    if listener is not None:
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, None)
    try:
        while peers or pending:
            receive(0 if pending else None)
            if not pending:
                continue
            whose.clear()
            batch = take(batch_max)
            writer.answers.clear()
            writer.run_guarded(connection, batch)
            for task in reversed(writer.carried):  # left for the next batch (side by side), first in it
                peer, number = whose[id(task)]
                pending.appendleft((peer, number, task))
            writer.carried.clear()
            replies: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
            for task, outcome in writer.answers:
                peer, number = whose[id(task)]
                peer.unanswered -= 1
                replies.setdefault(id(peer), []).append((number, encode_outcome(outcome)))
            figures = (writer.batches, writer.last_batch_size, writer.last_commit_seconds, writer.stats().storage_fault)
            for peer in list(peers.values()):
                answers = replies.get(id(peer), [])
                if answers or (fresh and peer.listening):  # every serving process hears of new events
                    try:
                        peer.socket.sendall(frame((answers, dict(fresh), figures)))
                    except OSError:  # gone, or not reading for SEND_TIMEOUT_SECONDS: nobody to answer
                        log.warning("writer_peer_dropped", unanswered=peer.unanswered)
                        peer.unanswered = 0
                        close(peer)
                        continue
                if not peer.reading and peer.unanswered == 0:
                    close(peer)
            fresh.clear()
    finally:
        connection.close()
        for peer in list(peers.values()):
            peer.socket.close()
        if listener is not None:
            listener.close()


# The parent's side.


def source_environment() -> dict[str, str]:
    """This environment, with the code this process runs first on the path of a child's."""
    source = str(Path(__file__).resolve().parents[3])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


def spawn(
    options: WriterOptions,
    last_event_seq: int,
    log_format: str,
    log_level: str,
    listener: socket.socket | None = None,
) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start a writer process on ``options.db``; it and the connection to it (its primary peer)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        command = [
            sys.executable,
            "-c",
            _ENTRY,
            "--fd",
            str(child.fileno()),
            *options.arguments(),
            "--last-event-seq",
            str(last_event_seq),
            "--log-format",
            log_format,
            "--log-level",
            log_level,
        ]
        fds = [child.fileno()]
        if listener is not None:
            command += ["--listen-fd", str(listener.fileno())]
            fds.append(listener.fileno())
        environment = {**source_environment(), DB_VARIABLE: options.db}
        process = subprocess.Popen(command, pass_fds=fds, stdin=subprocess.DEVNULL, env=environment)
    finally:
        child.close()
    return process, parent


class _Protocol(asyncio.Protocol):
    def __init__(self, writer: ProcessWriter) -> None:
        self._writer = writer
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for reply in read_frames(self._buffer):
            self._writer._replied(*reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writer._lost()


_LIVE: weakref.WeakSet[ProcessWriter] = weakref.WeakSet()


@atexit.register
def _close_live_sockets() -> None:
    """At interpreter exit, end-of-file for every writer process still connected: it commits what
    it has and exits rather than outliving this process."""
    for writer in list(_LIVE):
        writer._close_socket()


class ProcessWriter:
    """The ``Writer`` interface, with the writer in a process of its own."""

    def __init__(
        self,
        options: WriterOptions,
        *,
        queue_max: int,
        log_format: str = "json",
        log_level: str = "info",
        connect_to: str | None = None,
    ) -> None:
        self._options = options
        self.application_name = options.application_name
        # An HTTP worker (WALLET_WORKERS > 1) connects to the writer process its supervisor started,
        # at this Unix socket, instead of starting one of its own.
        self._connect_to = connect_to
        self._queue_max = queue_max
        self._log_format = log_format
        self._log_level = log_level
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: Any = None
        self._socket: socket.socket | None = None
        self._transport: asyncio.Transport | None = None
        self._connected = False
        self._closing = False
        self._gone: asyncio.Future[None] | None = None
        self._waiting: dict[int, asyncio.Future[Written]] = {}
        self._numbers = 0
        self._outgoing: list[tuple[Any, ...]] = []
        self._flush_scheduled = False
        self._commit_observers: list[CommitObserver] = []
        self.on_fresh_events: Any = None  # called on the loop with {client_id: last event id}
        self.last_event_seq = 0
        self.batches = 0
        self.last_batch_size = 0
        self.last_commit_seconds = 0.0
        self.last_commit_monotonic = time.monotonic()
        self.last_fault_monotonic: float | None = None
        self.restarts = 0
        self._restarting: asyncio.Task[None] | None = None
        _LIVE.add(self)

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def unsent(self) -> int:
        """Writes not yet handed to the socket (they go at the end of this turn of the loop)."""
        return len(self._outgoing)

    @property
    def alive(self) -> bool:
        if self._connect_to is not None:
            return self._connected
        return self._connected and self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def stats(self) -> WriterStats:
        return writer_stats(self)

    def observe_commits(self, observer: CommitObserver) -> None:
        self._commit_observers.append(observer)

    async def start(self, last_event_seq: int) -> None:
        self._loop = asyncio.get_running_loop()
        self.last_event_seq = last_event_seq
        await self._spawn()

    async def _spawn(self) -> None:
        assert self._loop is not None
        if self._connect_to is not None:
            await self._connect(path=self._connect_to)
            log.info("writer_connected")
            return
        process, parent = spawn(self._options, self.last_event_seq, self._log_format, self._log_level)
        self._process, self._socket = process, parent
        await self._connect(sock=parent)
        log.info("writer_process_started", pid=process.pid)

    async def _connect(self, **where: Any) -> None:
        """Connect (``sock=`` the pair's end, or ``path=`` the supervisor's writer) and say hello:
        from then on this process hears of new wallet events."""
        assert self._loop is not None
        self._gone = self._loop.create_future()
        self._transport, _ = await self._loop.create_unix_connection(lambda: _Protocol(self), **where)
        self._transport.write(frame([]))
        self._connected = True

    async def stop(self) -> None:
        """Let every write already sent finish and be answered, then end the writer process."""
        if self._closing or self._transport is None:
            return
        self._closing = True
        if self._restarting is not None and not self._restarting.done():
            self._restarting.cancel()
        self._flush()
        if self._connected:
            self._transport.write_eof()  # the writer runs what it has, answers, and exits
            assert self._gone is not None
            await asyncio.wait_for(asyncio.shield(self._gone), STOP_TIMEOUT_SECONDS)
        if self._process is not None:
            await asyncio.to_thread(self._process.wait, STOP_TIMEOUT_SECONDS)
        self._close_socket()

    def _close_socket(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        if self._socket is not None:
            self._socket.close()

    async def submit(self, unit: Unit, idempotency: Idempotency | None, created_at: str) -> Written:
        if self._closing:
            raise Unavailable("the service is shutting down", retry_after_seconds=1)
        if not self._connected:
            raise Unavailable("the writer is restarting; retry shortly", retry_after_seconds=1)
        if len(self._waiting) >= self._queue_max:
            raise Unavailable("too many writes queued; retry shortly", retry_after_seconds=1)
        assert self._loop is not None
        self._numbers += 1
        number = self._numbers
        future: asyncio.Future[Written] = self._loop.create_future()
        self._waiting[number] = future
        self._outgoing.append((number, unit, idempotency, created_at, ACTOR.get()))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return await asyncio.shield(future)

    def _flush(self) -> None:
        """Send every request made in this turn of the loop as one frame."""
        self._flush_scheduled = False
        if not self._outgoing:
            return
        outgoing, self._outgoing = self._outgoing, []
        try:
            framed = frame(outgoing)
        except Exception as error:  # a unit whose arguments do not pickle: a bug, one request at a time
            for request in outgoing:
                try:
                    single = frame([request])
                except Exception:
                    self._fail(request[0], WriteFailed(f"the write cannot be sent to the writer: {error}"))
                    continue
                self._send(single)
            return
        self._send(framed)

    def _send(self, framed: bytes) -> None:
        if self._transport is None or not self._connected:
            return
        self._transport.write(framed)

    def _fail(self, number: int, error: BaseException) -> None:
        future = self._waiting.pop(number, None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _replied(
        self, answers: list[tuple[int, tuple[Any, ...]]], fresh: dict[str, int], figures: tuple[Any, ...]
    ) -> None:
        now = time.monotonic()
        self.batches, self.last_batch_size, self.last_commit_seconds, fault = figures
        if fault:
            self.last_fault_monotonic = now
        else:
            self.last_commit_monotonic = now
        for number, encoded in answers:
            future = self._waiting.pop(number, None)
            if future is None or future.done():
                continue
            outcome = decode_outcome(encoded)
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        if fresh:
            self.last_event_seq = max(self.last_event_seq, max(fresh.values()))
            if self.on_fresh_events is not None:
                try:
                    self.on_fresh_events(fresh)
                except Exception:
                    log.exception("writer_after_commit_failed")
        if not fault:
            for observer in self._commit_observers:
                try:
                    observer(self.last_batch_size, self.last_commit_seconds)
                except Exception:
                    log.exception("commit_observer_failed")

    def _lost(self) -> None:
        """The socket closed: the writer process ended (after ``stop``) or died."""
        self._connected = False
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(Unavailable("the writer stopped; retry shortly", retry_after_seconds=1))
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        if self._closing or self._loop is None or self._loop.is_closed():
            return
        exit_code = None if self._process is None else self._process.poll()
        log.error(
            "writer_process_died" if self._connect_to is None else "writer_connection_lost",
            exit_code=exit_code,
            unanswered=len(waiting),
        )
        self._restarting = self._loop.create_task(self._restart())  # kept: a task nobody holds may vanish

    async def _restart(self) -> None:
        while not self._closing:
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            if self._closing:
                return
            try:
                if self._process is not None:
                    await asyncio.to_thread(self._process.wait, STOP_TIMEOUT_SECONDS)
                if self._socket is not None:
                    self._socket.close()
                await self._spawn()  # with workers: connect again, once the supervisor's new writer listens
                self.restarts += 1
                return
            except Exception:
                log.exception("writer_process_restart_failed")


def main(argv: list[str] | None = None) -> int:
    """The writer process's entry (``_ENTRY``): started by ``spawn``, never by hand."""
    parser = argparse.ArgumentParser(prog="wallet-writer", description=main.__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the socket to the serving process")
    parser.add_argument("--listen-fd", type=int, help="a listening Unix socket for HTTP workers to connect to")
    parser.add_argument("--batch-max", type=int, required=True, help="units in one commit at most")
    parser.add_argument("--attempts", type=int, default=1, help="PostgreSQL: runs of a batch after conflicts")
    parser.add_argument("--lock-timeout-seconds", type=int, help="PostgreSQL: lock_timeout of the write connection")
    parser.add_argument("--application-name", default="wallet-writer", help="PostgreSQL: the connection's name")
    parser.add_argument("--side-by-side", action="store_true", help="PostgreSQL: WALLET_POSTGRES_SIDE_BY_SIDE")
    parser.add_argument("--last-event-seq", type=int, required=True, help="the newest wallet event already announced")
    parser.add_argument("--log-format", default="json", help="json or console")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    arguments = parser.parse_args(argv)
    primary = socket.socket(fileno=arguments.fd)
    listener = None if arguments.listen_fd is None else socket.socket(fileno=arguments.listen_fd)
    options = WriterOptions(
        db=os.environ[DB_VARIABLE],
        batch_max=arguments.batch_max,
        attempts=arguments.attempts,
        lock_timeout_seconds=arguments.lock_timeout_seconds,
        application_name=arguments.application_name,
        side_by_side=arguments.side_by_side,
    )
    _serve(
        options,
        primary,
        listener,
        arguments.log_format,
        arguments.log_level,
        arguments.last_event_seq,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
