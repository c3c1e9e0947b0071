"""SQLite: the monthly credit run's steps worked out ahead, in a thread, while the writer writes.

With ``plan_ahead`` (``wallet credit-run``, where the process has nothing else to do) this process
works the next step out on a read-only connection (``credit_runs.plan_step``) while the writer
writes this one, and hands it to the writer before this one is answered. The writer checks every
plan against its own read inside the writing transaction and works the step out itself where they
differ: the outcome is the same either way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from wallet.clock import rfc3339
from wallet.storage.port import (
    ACTOR,
    Record,
    Written,
)
from wallet.storage.sql import (
    credit_runs,
)
from wallet.storage.sql.storage import StepKey
from wallet.storage.sql.units import Unit
from wallet.storage.sqlite.connection import SqliteConnection

log = structlog.get_logger(__name__)


class CreditRunPlanner:
    def __init__(self, path: str, write: Callable[[Unit, datetime], Awaitable[Written]]) -> None:
        self.path = path
        self._write = write
        # The planner's connection, used by one thread at a time, and the step expected next:
        # being planned, then handed to the writer.
        self._planner: SqliteConnection | None = None
        self._planner_lock = threading.Lock()
        self._ahead: (
            tuple[StepKey, asyncio.Future[tuple[credit_runs.CreditPlan, asyncio.Future[Written]] | None]] | None
        ) = None

    async def step(self, key: StepKey, now: datetime, plan_ahead: Callable[[], datetime]) -> Record:
        """One step; the one after it planned and handed to the writer meanwhile. A step worked out
        ahead is stamped with ``plan_ahead()``, the caller's clock, when it is."""
        now_text = rfc3339(now)
        month, current_month, _, batch = key
        ahead, self._ahead = self._ahead, None
        prepared = await ahead[1] if ahead is not None else None
        plan: credit_runs.CreditPlan | None
        if ahead is not None and ahead[0] == key and prepared is not None:
            plan, writing = prepared
        else:
            if prepared is not None:  # a step prepared for another call than this one: let it finish
                await _settled(prepared[1])
            plan = await asyncio.to_thread(self._plan, *key, now_text, ACTOR.get(), None)
            writing = self._submit_step(key, plan, now_text, now)
        if plan is not None and not plan.result["done"]:
            following = (month, current_month, int(plan.result["last_budget_seq"]), batch)
            self._ahead = (following, asyncio.ensure_future(self._prepare_step(following, plan, plan_ahead)))
        return (await writing).value

    async def _prepare_step(
        self, key: StepKey, before: credit_runs.CreditPlan, clock: Callable[[], datetime]
    ) -> tuple[credit_runs.CreditPlan, asyncio.Future[Written]] | None:
        """Plan the step after ``before`` and hand it to the writer; ``None`` if no plan could be made
        (the call for that step then hands it to the writer without one)."""
        now = clock()
        plan = await asyncio.to_thread(self._plan, *key, rfc3339(now), ACTOR.get(), before)
        if plan is None:
            return None
        return plan, self._submit_step(key, plan, plan.now, now)

    def _submit_step(
        self, key: StepKey, plan: credit_runs.CreditPlan | None, now_text: str, now: datetime
    ) -> asyncio.Future[Written]:
        unit = credit_runs.credit_run_step(*key, plan.now if plan is not None else now_text, plan)
        return asyncio.ensure_future(self._write(unit, now))

    def _plan(
        self,
        month: str,
        current_month: str,
        after_budget_seq: int,
        batch: int,
        now: str,
        actor: str,
        before: credit_runs.CreditPlan | None,
    ) -> credit_runs.CreditPlan | None:
        """In a thread: a plan, or ``None`` (then the writer works the step out itself)."""
        with self._planner_lock:
            try:
                if self._planner is None:
                    self._planner = _planner_connection(self.path)
                return credit_runs.plan_step(
                    self._planner, month, current_month, after_budget_seq, batch, now, actor, before
                )
            except Exception:  # a plan is only ever a head start: the writer does the step regardless
                log.exception("credit_run_plan_failed", month=month, after_budget_seq=after_budget_seq)
                return None

    async def close(self) -> None:
        if self._ahead is not None:  # a step prepared that nobody asked for (the run failed): let it finish
            prepared = await self._ahead[1]
            self._ahead = None
            if prepared is not None:
                await _settled(prepared[1])
        if self._planner is not None:
            self._planner.close()
            self._planner = None


async def _settled(writing: asyncio.Future[Written]) -> None:
    """Wait for a credit-run step that its caller no longer waits for; what it raised is logged."""
    try:
        await writing
    except Exception as error:
        log.warning("credit_run_step_ahead_failed", error_type=type(error).__name__, error=str(error))


def _planner_connection(path: str) -> SqliteConnection:
    """Read-only, plain tuples, for whichever thread plans the credit run (one at a time)."""
    connection = sqlite3.connect(
        path, factory=SqliteConnection, isolation_level=None, timeout=10.0, check_same_thread=False
    )
    connection.execute("PRAGMA query_only = ON")
    return connection
