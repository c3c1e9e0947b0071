"""Running the service: how the background jobs are doing, and whether this node is ready.

``/healthz`` says only that the process answers. ``/readyz`` says whether a load balancer should
send it traffic: the database answers a read within ``readiness_timeout_seconds``, the writer
thread runs, its last batch was not undone by a storage fault, it is not stalled (writes wait
and no batch has ended for ``writer_stall_seconds``), and the last background credit run did
not fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from wallet.api.metrics import Metrics
from wallet.service import WalletService
from wallet.settings import Settings
from wallet.storage.port import Record

CREDIT_RUN_JOB = "credit_run"


@dataclass
class JobHealth:
    runs: int = 0
    failures_in_a_row: int = 0
    last_error: str | None = None  # the exception's type only: its text may carry data


class Jobs:
    """The outcome of each background job's runs, for readiness and metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._jobs: dict[str, JobHealth] = {}

    def get(self, name: str) -> JobHealth | None:
        return self._jobs.get(name)

    def succeeded(self, name: str) -> None:
        health = self._jobs.setdefault(name, JobHealth())
        health.runs += 1
        health.failures_in_a_row = 0
        health.last_error = None
        self._metrics.job_runs.labels(name, "ok").inc()

    def failed(self, name: str, error: BaseException) -> None:
        health = self._jobs.setdefault(name, JobHealth())
        health.runs += 1
        health.failures_in_a_row += 1
        health.last_error = type(error).__name__
        self._metrics.job_runs.labels(name, "failed").inc()


JOBS = web.AppKey("jobs", Jobs)


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str

    def render(self) -> Record:
        return {"status": "ok" if self.ok else "failing", "detail": self.detail}


async def readiness(service: WalletService, jobs: Jobs, settings: Settings) -> dict[str, Check]:
    checks = {"database": await _database(service, settings.readiness_timeout_seconds)}
    stats = service.storage.writer_stats()
    if not stats.alive:
        checks["writer"] = Check(False, "the writer is not running")
    elif stats.storage_fault:
        checks["writer"] = Check(False, "the last write batch failed on a storage fault (disk full, I/O error)")
    elif stats.queue_depth > 0 and stats.seconds_since_progress > settings.writer_stall_seconds:
        checks["writer"] = Check(
            False,
            f"stalled: {stats.queue_depth} writes wait and no batch has ended for "
            f"{int(stats.seconds_since_progress)} s (limit {settings.writer_stall_seconds} s)",
        )
    else:
        checks["writer"] = Check(True, f"{stats.queue_depth} writes queued")
    credit_run = jobs.get(CREDIT_RUN_JOB)
    if credit_run is not None and credit_run.failures_in_a_row > 0:
        checks["credit_run"] = Check(
            False, f"the last {credit_run.failures_in_a_row} background credit run(s) failed ({credit_run.last_error})"
        )
    elif credit_run is None:
        checks["credit_run"] = Check(True, "no background credit run yet")
    else:
        checks["credit_run"] = Check(True, "the last background credit run succeeded")
    return checks


async def _database(service: WalletService, timeout_seconds: int) -> Check:
    try:
        await asyncio.wait_for(service.storage.ping(), timeout_seconds)
    except TimeoutError:
        return Check(False, f"a read did not answer within {timeout_seconds} s")
    except Exception as error:  # any failure to read means not ready; the type says which
        return Check(False, f"a read failed ({type(error).__name__})")
    return Check(True, "a read answered")
