"""Request ids, access logs, metrics, admission, and errors rendered as problem+json: one middleware.

``frame`` does, around every handler, from the outside in:

1. the request id (``X-Request-Id`` taken when well formed, else made) bound to the request's log
   context and answered in ``X-Request-Id``; the access log at info;
2. the request counted and timed by its route (``wallet.api.metrics``), and the requests in
   progress, whatever the outcome (a client gone away counts as 499);
3. errors rendered as problem+json (operation errors by their code, HTTP errors of 400 and up,
   anything else as 500, logged); a redirect or the like goes on as raised;
4. admission: 503 while shutting down, then 413 for a declared body over the route's limit.

What aiohttp's HTTP parser refuses never reaches ``frame``: ``ProblemRequestHandler`` answers it
alike (problem+json, a request id, counted, an access line), and logs none of its bytes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from wallet import logs
from wallet.api.http import Handler
from wallet.api.keys import REQUEST_ID, SETTINGS
from wallet.api.metrics import CLIENT_CLOSED_STATUS, KNOWN_METHODS, METRICS, UNMATCHED_ROUTE, Metrics
from wallet.api.problems import from_operation_error, problem
from wallet.ledger.errors import OperationError, Unavailable
from wallet.logs import PROCESS_FIELDS

log = structlog.get_logger("wallet.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
# Request ids only tell log lines apart: unique, not unguessable, so a generator seeded once from
# the OS rather than a system call per request.
_REQUEST_IDS = random.Random(secrets.randbits(128))


def new_request_id() -> str:
    return f"{_REQUEST_IDS.getrandbits(64):016x}"


SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
# A handler that reads a larger body than max_body_bytes names the setting that bounds it here.
BODY_LIMIT_SETTING = "body_limit_setting"


def limit_declared_body(request: web.Request) -> None:
    """A body declared (Content-Length) larger than the route's limit is 413 before anything else,
    on every route alike: also on those that take no body and would otherwise ignore it. A body
    sent chunked is bounded where it is read (``client_max_size``, or the handler's own limit)."""
    declared = request.content_length
    if declared is None:  # most requests (every GET): nothing declared, the route's limit not looked up
        return
    setting = getattr(request.match_info.handler, BODY_LIMIT_SETTING, "max_body_bytes")
    limit = getattr(request.app[SETTINGS], setting)
    if declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)


def refuse_when_shutting_down(request: web.Request) -> None:
    """After SIGTERM the listener is closed; a request still arriving on an open connection gets
    503 (try another node) while the requests already in flight finish."""
    if request.app[SHUTTING_DOWN].is_set():
        raise Unavailable("the service is shutting down; retry on another node", retry_after_seconds=1)


_HTTP_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _http_problem(error: web.HTTPException) -> web.Response:
    code = _HTTP_ERROR_CODES.get(error.status, "invalid_request")
    detail = error.text if error.text and not error.text.startswith(f"{error.status}:") else error.reason
    headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "retry-after")}
    return problem(error.status, code, detail or error.reason, headers)


@web.middleware
async def frame(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request id and access log, the request metrics, problem+json errors and admission (the
    module's docstring), in one coroutine."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
    request[REQUEST_ID] = request_id
    # Nothing to clear first: aiohttp runs each request in a task of its own, whose context is a
    # copy of the connection's, so what a request binds ends with it (tests/test_frame.py).
    structlog.contextvars.bind_contextvars(request_id=request_id, **PROCESS_FIELDS)
    metrics = request.app[METRICS]
    started = time.perf_counter()
    metrics.in_progress += 1
    status = 500
    try:
        try:
            refuse_when_shutting_down(request)
            limit_declared_body(request)
            response = await handler(request)
        except OperationError as error:
            response = from_operation_error(error)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = _http_problem(error)
        except Exception:
            log.exception("unhandled_error")
            response = problem(500, "internal_error", "an unexpected error; it has been logged")
        status = response.status
    except web.HTTPException as error:  # a redirect or the like, let through as raised
        status = error.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_STATUS
        raise
    finally:
        metrics.in_progress -= 1
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED_ROUTE
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.request_answered(method, route, status, time.perf_counter() - started)
    response.headers["X-Request-Id"] = request_id
    if logs.enabled(logging.INFO):  # the access log; `wallet serve` in production logs at warning
        log.info(
            "request",
            method=request.method,
            route=route,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return response


# aiohttp's parser names "too many headers" only in its message: no class, no count of its own.
_TOO_MANY_HEADERS = "Too many headers received"
_NOT_READ = "other"  # the method and route of a request the parser refused: neither was read


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's HTTP connection, whose answers to what its parser refuses are the app's: a
    problem+json with a stable code, a request id, counted and written as an access line.

    aiohttp answers those in ``handle_error``, outside the app and its middlewares, as text/plain
    that quotes the request's bytes, and logs them with a traceback at error. Here the answer names
    the limit, and the log line only the error's class: a refused header may hold a bearer token.
    """

    __slots__ = ("_metrics",)

    def __init__(self, manager: web.Server, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._metrics = metrics

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: an answer has begun, there is no other to send
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        request_id = new_request_id()
        structlog.contextvars.bind_contextvars(request_id=request_id, **PROCESS_FIELDS)
        if isinstance(exc, HttpProcessingError):
            response = self._refusal(exc)
            # No clock to read: aiohttp starts its own just before this call, answering at once.
            self._metrics.request_answered(_NOT_READ, UNMATCHED_ROUTE, response.status, 0.0)
            if logs.enabled(logging.INFO):
                log.info(
                    "request",
                    method=_NOT_READ,
                    route=UNMATCHED_ROUTE,
                    status=response.status,
                    duration_ms=0.0,
                    error=type(exc).__name__,
                )
        else:  # an exception that escaped frame (none should): as frame answers one
            log.error("unhandled_error", exc_info=exc)
            response = problem(500, "internal_error", "an unexpected error; it has been logged")
        response.headers["X-Request-Id"] = request_id
        response.force_close()  # the parser's state is lost: the connection ends with this answer
        return response

    def _refusal(self, error: HttpProcessingError) -> web.Response:
        """431 for a header field over ``max_field_size`` or more than ``max_headers`` of them (RFC
        6585), 414 for a request target over ``max_line_size`` (RFC 9112 section 3), 400 otherwise.
        A LineTooLong names the limit it hit, which is how a header tells from the request line."""
        if isinstance(error, LineTooLong):
            if error.args[1] == self.max_line_size and self.max_line_size != self.max_field_size:
                detail = f"the request line is longer than {self.max_line_size} bytes"
                return problem(414, "uri_too_long", detail)
            detail = f"a header field is longer than {self.max_field_size} bytes"
            return problem(431, "headers_too_large", detail)
        if error.message == _TOO_MANY_HEADERS:
            detail = f"more than {self.max_headers} header fields"
            return problem(431, "headers_too_large", detail)
        return problem(400, "invalid_request", "the request is not well-formed HTTP/1.1")
