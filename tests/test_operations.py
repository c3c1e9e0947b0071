"""Running the service: readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import NATIONAL_ID, OTHER_NATIONAL_ID, RecordingSms, World
from wallet.api.app import create_app
from wallet.api.keys import SERVICE
from wallet.api.metrics import METRICS
from wallet.api.readiness import Jobs
from wallet.clock import FakeClock
from wallet.service import WalletService
from wallet.settings import Settings
from wallet.storage.sql.connection import Connection
from wallet.storage.sql.units import stored, unit_of_work

WAIT_SECONDS = 10.0


def writer_of(http: TestClient) -> Any:
    return http.app[SERVICE].storage.writer  # type: ignore[attr-defined]


async def readyz(http: TestClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    return response.status, await response.json(content_type=None)


# Readiness.


async def test_ready_when_the_database_reads_and_the_writer_runs(http: TestClient) -> None:
    status, body = await readyz(http)
    assert status == 200, body
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "writer": "ok",
        "credit_run": "ok",
    }
    assert (await http.get("/healthz")).status == 200


@pytest.mark.thread_writer  # the stuck unit waits on an event of this process
async def test_a_stalled_writer_is_not_ready_and_recovers(http: TestClient) -> None:
    writer = writer_of(http)
    started, release = threading.Event(), threading.Event()

    def stuck(connection: sqlite3.Connection) -> dict[str, int]:
        started.set()
        release.wait(WAIT_SECONDS)
        return {}

    first = asyncio.create_task(writer.submit(stuck, None, "now"))
    assert await asyncio.to_thread(started.wait, WAIT_SECONDS), "the writer never took the first unit"
    waiting = asyncio.create_task(writer.submit(lambda connection: {}, None, "now"))
    await asyncio.sleep(0)  # the second unit is queued behind the stuck one
    assert writer.queue_depth == 1
    assert (await readyz(http))[0] == 200, "a queue alone is not a stall"
    writer.last_commit_monotonic -= http.app[SERVICE].settings.writer_stall_seconds + 1  # time passes
    response = await http.get("/readyz")
    problem = await response.json()
    assert response.status == 503 and response.content_type == "application/problem+json"
    assert problem["code"] == "unavailable" and response.headers["Retry-After"]
    assert problem["checks"]["writer"]["status"] == "failing"
    assert "stalled" in problem["checks"]["writer"]["detail"]
    assert problem["checks"]["database"]["status"] == "ok", "reads go on while the writer is stuck"
    release.set()
    await asyncio.gather(first, waiting)
    assert (await readyz(http))[0] == 200


@unit_of_work
def disk_error() -> Any:
    def unit(connection: Connection) -> None:
        raise connection.dialect.storage_fault("disk I/O error")

    return unit


async def test_a_storage_fault_is_not_ready_until_a_write_commits(http: TestClient) -> None:
    writer = writer_of(http)
    with pytest.raises(Exception, match="not writable"):
        await writer.submit(disk_error(), None, "now")
    status, problem = await readyz(http)
    assert status == 503 and "storage fault" in problem["checks"]["writer"]["detail"]
    await writer.submit(stored({}), None, "now")
    assert (await readyz(http))[0] == 200


async def test_a_stopped_writer_is_not_ready(http: TestClient) -> None:
    await writer_of(http).stop()
    status, problem = await readyz(http)
    assert status == 503
    assert problem["checks"]["writer"] == {"status": "failing", "detail": "the writer is not running"}


async def test_a_database_that_does_not_read_is_not_ready(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, sms: RecordingSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = await aiohttp_client(
        create_app(replace(settings, readiness_timeout_seconds=1), clock=clock, sms=sms, background_jobs=False)
    )
    storage = http.app[SERVICE].storage

    async def broken() -> None:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(storage, "ping", broken)
    status, problem = await readyz(http)
    assert status == 503 and problem["checks"]["database"]["detail"] == "a read failed (OperationalError)"

    async def hanging() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(storage, "ping", hanging)
    status, problem = await readyz(http)
    assert status == 503 and problem["checks"]["database"]["detail"] == "a read did not answer within 1 s"


async def test_a_failing_background_credit_run_is_not_ready(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, sms: RecordingSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = asyncio.Event()

    async def failing_credit_run(self: WalletService, month: str, idempotency: Any = None) -> Any:
        ran.set()
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(WalletService, "credit_run", failing_credit_run)
    app = create_app(replace(settings, auto_credit_run=True), clock=clock, sms=sms, background_jobs=True)
    http = await aiohttp_client(app)
    await asyncio.wait_for(ran.wait(), WAIT_SECONDS)  # the job records its failure before it next awaits
    status, problem = await readyz(http)
    assert status == 503, problem
    assert problem["checks"]["credit_run"]["status"] == "failing"
    assert "OperationalError" in problem["checks"]["credit_run"]["detail"]
    samples = scrape_samples(await (await http.get("/metrics")).text())
    assert samples[("wallet_credit_runs_total", (("outcome", "failed"), ("trigger", "schedule")))] == 1
    assert samples[("wallet_background_job_runs_total", (("job", "credit_run"), ("outcome", "failed")))] == 1


def test_a_job_that_succeeds_again_is_healthy_again() -> None:
    from wallet.api.metrics import Metrics

    jobs = Jobs(Metrics())
    jobs.failed("credit_run", RuntimeError("boom"))
    jobs.failed("credit_run", RuntimeError("boom"))
    health = jobs.get("credit_run")
    assert health is not None and (health.failures_in_a_row, health.last_error) == (2, "RuntimeError")
    jobs.succeeded("credit_run")
    assert (health.failures_in_a_row, health.last_error, health.runs) == (0, None, 3)


# Metrics.


def scrape_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_count_requests_charges_credit_runs_and_the_writer(world: World) -> None:
    client, provider = await world.funded(5_000)  # one credit run through the API
    assert (await world.charge(provider, client, 1_000))[0] == 201
    assert (await world.charge(provider, client, 1_000, key="k1"))[0] == 201
    assert (await world.charge(provider, client, 1_000, key="k1"))[0] == 201  # a replay
    assert (await world.charge(provider, client, 10_000))[0] == 402
    assert (await world.charge(provider, client, 100, national_id=OTHER_NATIONAL_ID))[0] == 422
    status, pending = await world.charge(provider, client, 100, method="otp")
    assert status == 201
    code = world.sms.last_code(client["phone"])
    await world.call("POST", f"/v1/charges/{pending['id']}/confirm", provider["token"], {"code": code}, expect=200)
    await world.call("GET", f"/v1/charges/{pending['id']}", provider["token"], expect=200)
    await world.call("GET", f"/v1/no/such/path/{client['phone']}", expect=404)

    response = await world.http.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    samples = scrape_samples(text)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("wallet_http_requests_total", method="POST", route="/v1/charges", status="201") == 4
    assert value("wallet_http_requests_total", method="POST", route="/v1/charges", status="402") == 1
    assert value("wallet_http_requests_total", method="GET", route="/v1/charges/{charge_id}", status="200") == 1
    assert value("wallet_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value("wallet_http_request_duration_seconds_count", method="POST", route="/v1/charges") == 6
    assert value("wallet_charges_total", step="create", outcome="captured") == 2
    assert value("wallet_charges_total", step="create", outcome="replayed") == 1
    assert value("wallet_charges_total", step="create", outcome="insufficient_funds") == 1
    assert value("wallet_charges_total", step="create", outcome="identity_check_failed") == 1
    assert value("wallet_charges_total", step="create", outcome="pending") == 1
    assert value("wallet_charges_total", step="confirm", outcome="captured") == 1
    assert value("wallet_credit_runs_total", trigger="api", outcome="ok") == 1
    assert value("wallet_credit_run_lines_total", kind="credited") == 1
    assert value("wallet_writer_alive") == 1
    assert ("wallet_event_streams_open", ()) in samples
    assert value("wallet_writer_queue_depth") == 0
    assert value("wallet_writer_last_batch_size") >= 1
    assert value("wallet_writer_commit_duration_seconds_count") >= 5
    assert value("wallet_writer_batch_size_count") == value("wallet_writer_commit_duration_seconds_count")
    # No personal data, and no ids, anywhere in the scrape.
    for secret in (
        client["phone"],
        client["phone"].lstrip("+"),
        NATIONAL_ID,
        client["id"],
        provider["id"],
        pending["id"],
    ):
        assert secret not in text
    assert not re.search(r"\b(cl|pr|ch|se|tx)_[0-9a-f]{8,}", text)


def test_the_request_metrics_are_exposed_as_prometheus_client_s_own_would_be_but_for_created() -> None:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from wallet.api.metrics import Metrics

    registry = CollectorRegistry()
    requests = Counter(
        "wallet_http_requests",
        "HTTP requests answered, by route and status",
        ["method", "route", "status"],
        registry=registry,
    )
    seconds = Histogram(
        "wallet_http_request_duration_seconds",
        "Time to answer an HTTP request (a stream: until it ends)",
        ["method", "route"],
        registry=registry,
    )
    in_progress = Gauge("wallet_http_requests_in_progress", "HTTP requests being answered", registry=registry)
    metrics = Metrics()
    answers = [
        ("POST", "/v1/charges", 201, 0.0031),
        ("GET", "/v1/me/wallet", 200, 0.0),
        ("POST", "/v1/charges", 402, 0.005),
        ("POST", "/v1/charges", 201, 0.0051),
        ("GET", "/v1/me/wallet", 200, 12.5),
        ("other", "unmatched", 404, 7.5),
        ("GET", "/v1/me/wallet", 200, 0.1),
        ("POST", "/v1/charges", 201, 10.0),
    ]
    for method, route, status, duration in answers:
        requests.labels(method, route, str(status)).inc()
        seconds.labels(method, route).observe(duration)
        metrics.request_answered(method, route, status, duration)
    in_progress.inc()
    in_progress.inc()
    metrics.in_progress += 2

    def lines(text: bytes) -> list[str]:
        return [line for line in text.decode().splitlines() if "wallet_http" in line and "_created" not in line]

    expected = lines(generate_latest(registry))
    assert len(expected) > 40
    assert lines(metrics.render()) == expected


async def test_each_app_has_its_own_registry(world: World, settings: Settings) -> None:
    await world.call("GET", "/healthz", expect=200)
    other = create_app(settings, background_jobs=False)
    assert other[METRICS].registry is not world.http.app[METRICS].registry
    fresh = scrape_samples(other[METRICS].render().decode())
    assert not any(name == "wallet_http_requests_total" for name, _ in fresh)
