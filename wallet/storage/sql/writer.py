"""The one writer: a thread that owns the only write connection (the datasette pattern).

Callers submit a unit of work, a plain function of a ``Connection``. The thread drains its queue
into a batch, begins a write transaction (``Connection.begin_write``: the write lock held from the
start), runs each unit inside its own savepoint (so a refused or failing unit undoes only itself),
then ``COMMIT``s once for the whole batch: group commit. On a database whose writers run side by
side (``Dialect.side_by_side``: PostgreSQL), a batch of new charges and units of ``SIDE_BY_SIDE``
only holds the write lock shared: those units first, each in its savepoint, then the charges to
their batch runner whole; what cannot be done that way runs again holding the lock alone. An
exclusive batch tries the lock with its first statement; if another writer (another node) holds it,
the writer rolls back, waits for the lock in a round trip of its own, and then adds to the batch what
was queued meanwhile (up to ``batch_max``): group commit across nodes. Every caller is answered only after the
commit that holds its work. A storage fault refuses the whole batch (503); a retryable conflict
(PostgreSQL) runs it again, up to ``attempts`` times.

A unit of work runs start to end in this thread, with no ``await`` anywhere inside it: nothing
can come between reading a balance and debiting it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from wallet.ledger.errors import OperationError, RateLimited, Unavailable
from wallet.storage.port import ACTOR, CommitObserver, Idempotency, Record, Refusal, WriterStats, Written
from wallet.storage.sql import audit
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.idempotency import REMEMBER_SQL, REPLAY_SQL, replay_outcome
from wallet.storage.sql.units import (
    BATCH_RUNNERS,
    SIDE_BY_SIDE,
    BatchRunner,
    NeedsWriteOrder,
    Task,
    Unit,
    UnitCall,
    compact_json,
)

log = structlog.get_logger(__name__)

_STOP = object()


def writer_stats(writer: Any) -> WriterStats:
    """What readiness and metrics see of a writer, the thread or the process: its ``alive``,
    ``queue_depth``, ``batches``, ``last_batch_size``, ``last_commit_seconds`` and when its last
    batch committed or was undone by a storage fault."""
    last_fault = writer.last_fault_monotonic
    return WriterStats(
        alive=writer.alive,
        queue_depth=writer.queue_depth,
        batches=writer.batches,
        last_batch_size=writer.last_batch_size,
        last_commit_seconds=writer.last_commit_seconds,
        seconds_since_progress=time.monotonic() - max(writer.last_commit_monotonic, last_fault or 0.0),
        storage_fault=last_fault is not None and last_fault > writer.last_commit_monotonic,
    )


class Writer:
    # Whether runs of units that a ``BATCH_RUNNERS`` runner takes run together (tests compare both ways).
    batch_runners = True
    # Whether batches run side by side with other writers' where the dialect can
    # (``WALLET_POSTGRES_SIDE_BY_SIDE``; the adapter sets it).
    side_by_side = False

    def __init__(
        self,
        open_connection: Callable[[], Connection],
        *,
        queue_max: int,
        batch_max: int,
        attempts: int = 1,
        application_name: str = "wallet-writer",
    ) -> None:
        self._open_connection = open_connection
        self._attempts = attempts
        self.application_name = application_name  # how its connection shows to the database
        self.retries = 0  # batches run again after a retryable conflict
        # The last batch found the write lock another writer's: the next takes it first, waiting.
        self._lock_first = False
        self._stopping = False  # ``_STOP`` taken from the queue: stop after this batch
        self.in_order_reruns = 0  # batches run side by side, undone and run again holding the lock alone
        self.one_by_one_reruns = 0  # batches whose COMMIT failed, undone and run again one unit at a time
        self.left_over = 0  # side by side: charges a batch left for the next (another writer held the client)
        # Those charges, for the next batch, first (the thread's loop here; the writer process's its own).
        self.carried: list[Task] = []
        self._queue: queue.Queue[Task | object] = queue.Queue(maxsize=queue_max)
        self._batch_max = batch_max
        self._thread: threading.Thread | None = None
        self._closing = False
        self.last_batch_size = 0
        self.last_commit_seconds = 0.0
        self.last_commit_monotonic = time.monotonic()
        self.last_fault_monotonic: float | None = None  # when a storage fault last undid a batch
        self.batches = 0
        self._commit_observers: list[CommitObserver] = []
        # Called in this thread after each COMMIT, never inside a transaction; what it raises is
        # logged, never let through: the batch is committed whatever it does.
        self.after_commit: Callable[[Connection], None] | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> WriterStats:
        return writer_stats(self)

    def observe_commits(self, observer: CommitObserver) -> None:
        """Call ``observer(batch_size, commit_seconds)`` after each commit, in the writer thread."""
        self._commit_observers.append(observer)

    def start(self) -> None:
        connection = self._open_connection()  # fail here, in the caller, if it cannot be opened
        self._thread = threading.Thread(target=self._run, args=(connection,), name="wallet-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Finish every queued unit, then close the connection."""
        if self._thread is None:
            return
        self._closing = True
        await asyncio.to_thread(self._queue.put, _STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def submit(self, unit: Unit, idempotency: Idempotency | None, created_at: str) -> Written:
        if self._closing or self._thread is None:
            raise Unavailable("the service is shutting down", retry_after_seconds=1)
        loop = asyncio.get_running_loop()
        task = Task(unit, idempotency, created_at, loop.create_future(), loop, ACTOR.get())
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            raise Unavailable("too many writes queued; retry shortly", retry_after_seconds=1) from None
        return await asyncio.shield(task.future)  # type: ignore[arg-type]  # set just above

    # The thread.

    def _run(self, connection: Connection) -> None:
        try:
            while not self._stopping or self.carried:  # what a batch left over runs before the stop
                batch: list[Task] = self.carried
                self.carried = []
                if not batch:
                    first = self._queue.get()
                    if first is _STOP:
                        return
                    batch.append(first)  # type: ignore[arg-type]
                self._take_queued(batch)
                self.run_guarded(connection, batch)
        finally:
            connection.close()

    def _take_queued(self, batch: list[Task]) -> None:
        """Add to ``batch`` what is queued now, up to ``batch_max``, without waiting."""
        while len(batch) < self._batch_max and not self._stopping:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _STOP:
                self._stopping = True
            else:
                batch.append(item)  # type: ignore[arg-type]

    def run_guarded(self, connection: Connection, batch: list[Task]) -> None:
        """Run one batch and answer its callers, whatever happens: the only writer never dies."""
        try:
            self._run_batch(connection, batch)
        except BaseException as error:
            log.exception("writer_batch_crashed")
            rollback(connection)
            self._answer_all(batch, error)

    def _run_batch(self, connection: Connection, batch: list[Task]) -> None:
        started = time.perf_counter()
        side_by_side = self._side_by_side(connection, batch)
        one_by_one = False  # after a failed COMMIT: no batch runners, nothing left to go with it
        attempt = 1
        left: list[Task] = []  # side by side: charges left for the next batch
        while True:
            try:
                left = []
                if side_by_side is not None:
                    connection.begin_write(shared=True)
                    alone, runner, together = side_by_side
                    for task in alone:  # first: they lock no row a charge batch holds (``SIDE_BY_SIDE``)
                        task.outcome = self._run_task(connection, task)
                    if runner is not None:
                        # A batch with charges left over before waits for their clients: once at most.
                        wait = any(task.left_over for task in together)
                        left = runner.run_side_by_side(connection, together, wait=wait)
                else:
                    if self._lock_first:
                        self._lock_first = connection.lock_write()
                        # What came while the lock was another writer's commits with this batch.
                        self._take_queued(batch)
                    else:
                        connection.begin_write()  # the lock tried, with the first statement
                    audit.track_head(connection)  # nobody else appends to the audit chain until COMMIT
                    self._run_tasks(connection, batch, runners=not one_by_one)
                connection.execute("COMMIT")  # with what a batch runner left to go with it
                break
            except connection.dialect.write_lock_busy:
                # Nothing after the try ran: undone (with the next BEGIN), and begun again waiting.
                connection.defer("ROLLBACK")
                self._lock_first = True
            except connection.dialect.retryable_conflict as error:
                rollback(connection)
                if attempt == self._attempts:
                    self._fault(batch, error)
                    return
                attempt += 1
                self.retries += 1
                log.warning("writer_batch_retried", error=str(error), attempt=attempt - 1, batch=len(batch))
            except connection.dialect.storage_fault as error:
                rollback(connection)
                self._fault(batch, error)
                return
            except Exception as error:
                if side_by_side is None:
                    if one_by_one:
                        raise
                    # A batch runner's writes, sent with the COMMIT, failed there (or a bug): undone,
                    # and run again one unit at a time, each in its savepoint.
                    rollback(connection)
                    one_by_one = True
                    self.one_by_one_reruns += 1
                    log.error("writer_batch_rerun_one_by_one", error_type=type(error).__name__, error=str(error))
                    continue
                # ``NeedsWriteOrder`` or a bug: undone, and run again holding the write lock alone.
                rollback(connection)
                side_by_side = None
                self.in_order_reruns += 1
                if not isinstance(error, NeedsWriteOrder):
                    log.error("side_by_side_batch_failed", error_type=type(error).__name__, error=str(error))
            finally:
                audit.untrack_head(connection)
        if left:
            for task in left:
                task.left_over = True
            self.left_over += len(left)
            self.carried.extend(left)
            waiting = {id(task) for task in left}
            batch = [task for task in batch if id(task) not in waiting]
        self._committed(connection, batch, started)

    def _side_by_side(
        self, connection: Connection, batch: list[Task]
    ) -> tuple[list[Task], BatchRunner | None, list[Task]] | None:
        """How the batch runs side by side with other writers' (PostgreSQL): the units that run so
        alone (``SIDE_BY_SIDE``), and the runner of the rest (new charges) with its tasks; or None:
        the batch holds the write lock alone (any other unit, or the database has one writer)."""
        if connection.dialect.side_by_side is None or not self.side_by_side:
            return None
        alone: list[Task] = []
        together: list[Task] = []
        runner: BatchRunner | None = None
        for task in batch:
            found = self._runner(task)
            if found is not None and (runner is None or found is runner):
                runner = found
                together.append(task)
            elif _by_itself(task):
                alone.append(task)
            else:
                return None
        return alone, runner, together

    def _fault(self, batch: list[Task], error: BaseException) -> None:
        # Disk full, I/O error, unreachable, locked: nothing of the batch is kept, every caller hears
        # 503 and may retry; the next batch tries again, so the service recovers when the fault clears.
        log.error("writer_storage_fault", error=str(error), batch=len(batch))
        self.last_fault_monotonic = time.monotonic()
        self._answer_all(batch, Unavailable("the database is not writable now", retry_after_seconds=1))

    def _committed(self, connection: Connection, batch: list[Task], started: float) -> None:
        """After the COMMIT of ``batch``: the figures, the after-commit hook, then the callers' answers."""
        self.last_commit_monotonic = time.monotonic()
        self.batches += 1
        self.last_batch_size = len(batch)
        self.last_commit_seconds = time.perf_counter() - started
        if self.after_commit is not None:
            try:
                self.after_commit(connection)
            except Exception:
                log.exception("writer_after_commit_failed")
        self._deliver([(task, task.outcome) for task in batch])  # type: ignore[misc]
        for observer in self._commit_observers:
            try:
                observer(len(batch), self.last_commit_seconds)
            except Exception:  # an observer (metrics) never stops the writer
                log.exception("commit_observer_failed")

    def _run_tasks(self, connection: Connection, batch: list[Task], runners: bool = True) -> None:
        """Run the batch's tasks in order: each on its own, but (with ``runners``) a run of units
        that a batch runner takes (two or more side by side) together; the last run may leave its
        writes to go with the ``COMMIT``."""
        # ``SIDE_BY_SIDE`` units first: they read and change only receipt rows, which other units only
        # add (a claim that goes first leaves the batch's new receipts to the next claim). The rest keep
        # their order, and a batch's new charges stay one run, last, whose writes go with the COMMIT.
        batch = [task for task in batch if _by_itself(task)] + [task for task in batch if not _by_itself(task)]
        index = 0
        while index < len(batch):
            runner = self._runner(batch[index]) if runners else None
            end = index + 1
            if runner is not None:
                while end < len(batch) and self._runner(batch[end]) is runner:
                    end += 1
            if runner is None or end - index == 1:
                batch[index].outcome = self._run_task(connection, batch[index])
            else:
                runner.run(connection, batch[index:end], self._run_task, ends_batch=end == len(batch))
            index = end

    def _runner(self, task: Task) -> BatchRunner | None:
        unit = task.unit
        if not self.batch_runners or not isinstance(unit, UnitCall):
            return None
        runner = BATCH_RUNNERS.get(unit.factory)
        return runner if runner is not None and runner.accepts(unit) else None

    def _run_task(self, connection: Connection, task: Task) -> Written | BaseException:
        idempotency = task.idempotency
        if idempotency is not None:
            row = connection.execute(REPLAY_SQL, (idempotency.scope, idempotency.key)).fetchone()
            if row is not None:
                return replay_outcome(row, idempotency)
        connection.defer("SAVEPOINT unit")  # SAVEPOINT, RELEASE and the outcome go with the next statement
        head = audit.tracked_head(connection)
        actor = ACTOR.set(task.actor)
        try:
            value = task.unit(connection)
        except OperationError as error:
            connection.execute("ROLLBACK TO unit")
            audit.restore_head(connection, head)
            connection.execute("RELEASE unit")
            self._remember(connection, task, {"error": error.to_record()}, error)
            return error
        except connection.dialect.storage_fault:
            raise  # a storage fault fails the whole batch
        except BaseException as error:  # a bug: undo this unit only
            connection.execute("ROLLBACK TO unit")
            audit.restore_head(connection, head)
            connection.execute("RELEASE unit")
            log.error("write_unit_failed", error_type=type(error).__name__, error=str(error))
            return error
        finally:
            ACTOR.reset(actor)
        connection.defer("RELEASE unit")
        if isinstance(value, Refusal):
            self._remember(connection, task, {"error": value.error.to_record()}, value.error)
            return value.error
        self._remember(connection, task, {"value": value}, None)
        return Written(value)

    @staticmethod
    def _remember(connection: Connection, task: Task, outcome: Record, error: OperationError | None) -> None:
        # A rate limit or overload is about the moment, not the request: not remembered.
        if task.idempotency is None or isinstance(error, (RateLimited, Unavailable)):
            return
        connection.defer(
            REMEMBER_SQL,
            (
                task.idempotency.scope,
                task.idempotency.key,
                task.idempotency.fingerprint,
                compact_json(outcome),
                task.created_at,
            ),
        )

    def _answer_all(self, batch: list[Task], error: BaseException) -> None:
        self._deliver([(task, error) for task in batch])

    def _deliver(self, answers: list[tuple[Task, Written | BaseException]]) -> None:
        """Give each caller its outcome (the writer process overrides this to send them back)."""
        _answer(answers)


def rollback(connection: Connection) -> None:
    """Undo the open transaction, if any; a failure to is logged (the next BEGIN finds out)."""
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except Exception:
            log.exception("writer_rollback_failed")


def _answer(answers: list[tuple[Task, Written | BaseException]]) -> None:
    """Resolve the callers' futures, with one wake-up of each event loop for the whole batch
    (``call_soon_threadsafe`` writes to the loop's self-pipe: a system call per call)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Task, Written | BaseException]]] = {}
    for task, outcome in answers:
        if task.loop is not None:
            by_loop.setdefault(task.loop, []).append((task, outcome))

    def resolve(answered: list[tuple[Task, Written | BaseException]]) -> None:
        for task, outcome in answered:
            future = task.future
            if future is None or future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    for loop, answered in by_loop.items():
        try:
            loop.call_soon_threadsafe(resolve, answered)
        except RuntimeError:  # the event loop has closed: nobody is waiting any more
            pass


def _by_itself(task: Task) -> bool:
    """Whether the task is a unit of ``SIDE_BY_SIDE`` (the receipts' claims and marks), independent of the rest."""
    return isinstance(task.unit, UnitCall) and task.unit.factory in SIDE_BY_SIDE and task.idempotency is None
