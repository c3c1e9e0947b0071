"""The one middleware around every handler (``wallet.api.middlewares.frame``): request ids and the
access log, the request metrics, problem+json errors and admission, each as a caller sees it.

The app is the service's own (``create_app``) with a few routes added for outcomes no real route
gives on demand (an unexpected exception, a redirect, a handler that binds to the log context).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import START
from wallet.api.app import create_app
from wallet.api.keys import SERVICE
from wallet.api.middlewares import SHUTTING_DOWN, frame
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.ledger.errors import Conflict
from wallet.settings import Settings

PHONE = "+358401234567"


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("something unexpected")


async def conflict(request: web.Request) -> web.Response:
    raise Conflict("it was changed meanwhile")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/healthz")


async def teapot(request: web.Request) -> web.Response:
    raise web.HTTPGone(text="short and stout")


async def context(request: web.Request) -> web.Response:
    """The log context as this request's handler sees it; ``?bind=`` binds one more name to it."""
    seen = dict(structlog.contextvars.get_contextvars())
    if "bind" in request.query:
        structlog.contextvars.bind_contextvars(leaked=request.query["bind"])
    assert request.transport is not None
    return web.json_response({"context": seen, "connection": request.transport.get_extra_info("peername")})


HELD = web.AppKey("held", tuple)


async def hold(request: web.Request) -> web.Response:
    """Answers when the test lets it (``HELD``: the entered and released events)."""
    entered, released = request.app[HELD]
    entered.set()
    await released.wait()
    return web.json_response({})


@pytest.fixture
async def http(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(
        db=str(tmp_path / "wallet.db"),
        signing_key=str(tmp_path / "keys" / "signing-key.pem"),
        sms_outbox=str(tmp_path / "sms.jsonl"),
        auto_credit_run=False,
        writer_process=False,
        max_body_bytes=1_000,
    )
    app = create_app(settings, clock=FakeClock(START), background_jobs=False)
    for path, handler in (
        ("/test/boom", boom),
        ("/test/conflict", conflict),
        ("/test/moved", moved),
        ("/test/teapot", teapot),
        ("/test/context", context),
        ("/test/hold", hold),
    ):
        app.router.add_get(path, handler)
    app[HELD] = (asyncio.Event(), asyncio.Event())
    yield await aiohttp_client(app)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scraped(http: TestClient) -> Samples:
    return samples(await (await http.get("/metrics")).text())


def answered(found: Samples, method: str, route: str, status: int) -> float:
    labels = tuple(sorted({"method": method, "route": route, "status": str(status)}.items()))
    return found.get(("wallet_http_requests_total", labels), 0.0)


async def test_every_answer_has_a_request_id_its_own_when_well_formed(http: TestClient) -> None:
    mine = await http.get("/healthz", headers={"X-Request-Id": "abc-123.x_y"})
    assert (mine.status, mine.headers["X-Request-Id"]) == (200, "abc-123.x_y")
    made = {(await http.get("/healthz")).headers["X-Request-Id"] for _ in range(5)}
    assert len(made) == 5 and all(len(each) == 16 for each in made)
    for refused in ("a b", "x" * 65, "id\u202e"):
        response = await http.get("/healthz", headers={"X-Request-Id": refused})
        assert response.headers["X-Request-Id"] != refused and len(response.headers["X-Request-Id"]) == 16
    for path in ("/no/such/path", "/test/boom", "/test/conflict"):  # errors too
        response = await http.get(path, headers={"X-Request-Id": "err-1"})
        assert response.status >= 400 and response.headers["X-Request-Id"] == "err-1", path


async def test_the_log_context_holds_the_request_id_and_nothing_from_an_earlier_request(http: TestClient) -> None:
    first = await (await http.get("/test/context?bind=secret-of-the-first", headers={"X-Request-Id": "first"})).json()
    assert first["context"]["request_id"] == "first"
    for _ in range(3):  # on the same connection (the test client keeps it alive)
        second = await (await http.get("/test/context", headers={"X-Request-Id": "second"})).json()
        assert second["connection"] == first["connection"]
        assert second["context"]["request_id"] == "second"
        assert "leaked" not in second["context"], second


async def test_errors_are_problem_json_with_their_codes(http: TestClient) -> None:
    cases = [
        ("GET", "/no/such/path", {}, None, 404, "not_found"),
        ("DELETE", "/healthz", {}, None, 405, "method_not_allowed"),
        ("GET", "/test/conflict", {}, None, 409, "conflict"),
        ("GET", "/test/teapot", {}, None, 410, "invalid_request"),
        ("GET", "/test/boom", {}, None, 500, "internal_error"),
        ("POST", "/v1/categories", {"Content-Type": "application/json"}, b" " * 1_001, 413, "payload_too_large"),
        ("GET", "/v1/categories", {}, None, 401, "unauthorized"),
    ]
    for method, path, headers, body, status, code in cases:
        response = await http.request(method, path, headers=headers, data=body)
        problem = await response.json(content_type=None)
        assert (response.status, response.content_type) == (status, "application/problem+json"), path
        assert (problem["status"], problem["code"], problem["type"]) == (status, code, f"/v1/problems/{code}"), path
    response = await http.delete("/healthz")
    assert "GET" in response.headers["Allow"]
    teapot_problem = await (await http.get("/test/teapot")).json(content_type=None)
    assert teapot_problem["detail"] == "short and stout"
    unexpected = await (await http.get("/test/boom")).json(content_type=None)
    assert PHONE not in str(unexpected) and "RuntimeError" not in str(unexpected)
    unauthorized = await http.get("/v1/categories")
    assert unauthorized.headers["WWW-Authenticate"] == 'Bearer realm="wallet"'


async def test_a_declared_body_over_the_limit_is_refused_before_the_handler_even_where_none_is_read(
    http: TestClient,
) -> None:
    admin = http.app[SERVICE].mint(Role.ADMIN).access_token
    response = await http.post(
        "/v1/providers/pr_x/approve", data=b"x" * 1_001, headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status == 413
    assert (await response.json(content_type=None))["code"] == "payload_too_large"


async def test_while_shutting_down_every_request_is_503_with_retry_after(http: TestClient) -> None:
    http.app[SHUTTING_DOWN].set()
    try:
        response = await http.get("/healthz")
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        assert (await response.json(content_type=None))["code"] == "unavailable"
        assert response.headers["X-Request-Id"]
    finally:
        http.app[SHUTTING_DOWN].clear()
    assert (await http.get("/healthz")).status == 200


async def test_a_redirect_goes_on_as_raised_and_is_counted_with_its_status(http: TestClient) -> None:
    response = await http.get("/test/moved", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/healthz")
    assert answered(await scraped(http), "GET", "/test/moved", 302) == 1


async def test_every_outcome_is_counted_and_timed_by_route(http: TestClient) -> None:
    for path in ("/healthz", "/healthz", "/test/boom", "/test/conflict", "/no/such/path/+358401234567"):
        await http.get(path)
    await http.request("PURGE", "/healthz")
    found = await scraped(http)
    assert answered(found, "GET", "/healthz", 200) == 2
    assert answered(found, "GET", "/test/boom", 500) == 1
    assert answered(found, "GET", "/test/conflict", 409) == 1
    assert answered(found, "GET", "unmatched", 404) == 1
    assert answered(found, "other", "unmatched", 405) == 1  # no route answers it
    timed = found[("wallet_http_request_duration_seconds_count", (("method", "GET"), ("route", "/healthz")))]
    assert timed == 2
    assert found[("wallet_http_requests_in_progress", ())] == 1  # the scrape itself


async def test_a_request_is_in_progress_while_it_is_answered(http: TestClient) -> None:
    entered, released = http.app[HELD]
    held = asyncio.create_task(http.get("/test/hold"))
    await asyncio.wait_for(entered.wait(), 10)
    assert (await scraped(http))[("wallet_http_requests_in_progress", ())] == 2  # it and the scrape
    released.set()
    assert (await held).status == 200
    assert (await scraped(http))[("wallet_http_requests_in_progress", ())] == 1


async def test_a_request_whose_client_went_away_is_counted_as_499(http: TestClient) -> None:
    async def gone(request: web.Request) -> web.Response:
        raise asyncio.CancelledError

    # The test client cannot leave in the middle of a handler (aiohttp lets handlers run on), so
    # the middleware is called as aiohttp would call it, with the real route's match.
    request = make_mocked_request("GET", "/healthz", app=http.app)
    match_info = await http.app.router.resolve(request)
    match_info.add_app(http.app)
    request._match_info = match_info
    with pytest.raises(asyncio.CancelledError):
        await frame(request, gone)
    found = await scraped(http)
    assert answered(found, "GET", "/healthz", 499) == 1
    assert found[("wallet_http_requests_in_progress", ())] == 1  # the scrape


async def test_the_access_log_names_the_route_never_the_path(http: TestClient) -> None:
    with structlog.testing.capture_logs() as logged:
        await http.get("/no/such/path/+358401234567", headers={"X-Request-Id": "logged"})
        await http.get("/test/boom")
    requests = [line for line in logged if line["event"] == "request"]
    assert [(line["method"], line["route"], line["status"]) for line in requests] == [
        ("GET", "unmatched", 404),
        ("GET", "/test/boom", 500),
    ]
    assert all(isinstance(line["duration_ms"], float) for line in requests)
    assert any(line["event"] == "unhandled_error" for line in logged)
    assert "358401234567" not in str([{k: v for k, v in line.items() if k != "exc_info"} for line in logged])
