"""Edges of the HTTP layer, seen from outside the real ``wallet serve`` (issue 21, items 1 and 2).

- A client closing its event stream (the normal end of a stream) is recorded as the 200 it saw:
  in the access log and in ``/metrics``, never a 500 or an ``unhandled_error``.
- A request aiohttp's HTTP parser refuses (a header field too long, too many headers, a request
  line too long, not HTTP at all) is answered problem+json with a stable code, counted, written
  as an access line, and none of its bytes reach the log.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.processes import HTTP_TIMEOUT_SECONDS, Server, WalletFiles, poll, request, seed

pytestmark = pytest.mark.slow

LOG_DEADLINE_SECONDS = 10.0  # the server notices a closed stream within a second (me.DISCONNECT_CHECK_SECONDS)
OPENING_EVENT = re.compile(rb"event: wallet\ndata: [^\n]*\n\n")  # inside a chunk of the chunked body
ERROR_LEVEL = re.compile(r"\[(error|critical)", re.IGNORECASE)  # the console renderer's level column


@pytest.fixture
def files(tmp_path: Path) -> WalletFiles:
    return WalletFiles(tmp_path)


@pytest.fixture
def server(files: WalletFiles) -> Iterator[Server]:
    started = Server(files).start()
    yield started
    if started.running():
        started.stop()


def raw_exchange(port: int, head: bytes, until: Callable[[bytes], object] | None = None) -> bytes:
    """Send ``head`` on a fresh connection; read until ``until`` holds of what came (then close at
    once, as a client going away does), or else until the server closes."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT_SECONDS) as connection:
        connection.sendall(head)
        while until is None or not until(received):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), headers, body


def access_lines(log: str, route: str) -> list[str]:
    return [line for line in log.splitlines() if " request " in line and f"route={route} " in line + " "]


def request_id_field(headers: dict[str, str]) -> str:
    """The request id the answer named, as the access line writes it."""
    return f"request_id={headers['x-request-id']}"


def metric_samples(port: int, route: str) -> dict[str, float]:
    """``wallet_http_requests_total`` for ``route``: the value by its labels as exposed."""
    raw = raw_exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, body = parse_answer(raw)
    assert status == 200, raw[:300]
    samples = {}
    for line in body.decode().splitlines():
        if line.startswith("wallet_http_requests_total{") and f'route="{route}"' in line:
            labels, _, value = line.rpartition(" ")
            samples[labels] = float(value)
    return samples


# 1. A closed event stream.


def test_a_client_closing_its_event_stream_is_recorded_as_the_200_it_saw(files: WalletFiles, server: Server) -> None:
    seeded = seed(files, server, 10_000, credit="none")
    head = (
        f"GET /v1/me/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {seeded.client_token}\r\n\r\n"
    ).encode()
    opened = raw_exchange(server.port, head, until=OPENING_EVENT.search)
    assert opened.startswith(b"HTTP/1.1 200"), opened[:300]
    # The socket is closed: the stream ends as a phone app ends it.

    def stream_logged() -> list[str]:
        return access_lines(files.server_log.read_text(encoding="utf-8"), "/v1/me/events")

    lines = poll(stream_logged, LOG_DEADLINE_SECONDS, "the access line of the closed stream")
    assert len(lines) == 1 and "status=200" in lines[0], lines
    log = files.server_log.read_text(encoding="utf-8")
    assert "unhandled_error" not in log and "Traceback" not in log, log[-4000:]
    assert not ERROR_LEVEL.search(log), log[-4000:]
    samples = metric_samples(server.port, "/v1/me/events")
    assert samples == {'wallet_http_requests_total{method="GET",route="/v1/me/events",status="200"}': 1.0}, samples
    assert server.stop() == 0, server.log_tail()


# 2. What aiohttp's HTTP parser refuses.


def test_a_header_over_the_limit_is_a_431_problem_counted_logged_and_not_leaked(
    files: WalletFiles, server: Server
) -> None:
    token = ("eyJ" + secrets.token_urlsafe(7_000))[: 9_000 - len("Authorization: Bearer ")]  # a bearer token's look
    head = f"GET /v1/me/wallet HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    assert len(f"Authorization: Bearer {token}") == 9_000
    status, headers, body = parse_answer(raw_exchange(server.port, head))
    assert status == 431, (status, headers, body[:300])
    assert headers["content-type"].startswith("application/problem+json"), headers
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (431, "headers_too_large"), problem
    assert problem["type"] == "/v1/problems/headers_too_large" and problem["title"] and problem["detail"], problem
    assert token[:8] not in body.decode(), "the answer echoes the header"
    assert headers.get("x-request-id"), headers

    samples = metric_samples(server.port, "unmatched")
    assert samples == {'wallet_http_requests_total{method="other",route="unmatched",status="431"}': 1.0}, samples
    assert server.stop() == 0, server.log_tail()
    log = files.server_log.read_text(encoding="utf-8")
    refusals = access_lines(log, "unmatched")
    assert len(refusals) == 1 and "status=431" in refusals[0] and "error=LineTooLong" in refusals[0], refusals
    assert request_id_field(headers) in refusals[0]
    assert "Traceback" not in log and not ERROR_LEVEL.search(log), log[-4000:]
    for fragment in (token[:12], token[3:15], token[100:112], "Bearer eyJ", "Got more than"):
        assert fragment not in log, f"the log holds the header: {fragment!r}"


def test_every_parser_refusal_is_a_problem_with_a_stable_code(files: WalletFiles, server: Server) -> None:
    many_headers = "".join(f"X-Header-{n}: {n}\r\n" for n in range(200))
    cases = {
        "a header field over the limit": (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 9_000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        "too many header fields": (
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n".encode(),
            431,
            "headers_too_large",
        ),
        "a request line over the limit": (
            b"GET /healthz?q=" + b"q" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            414,
            "uri_too_long",
        ),
        "not a request line": (b"HELLO THERE\r\n\r\n", 400, "invalid_request"),
        "NUL in a header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "invalid_request"),
        "two lengths": (
            b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
            400,
            "invalid_request",
        ),
        "TLS on the HTTP port": (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
            400,
            "invalid_request",
        ),
    }
    for name, (head, expected_status, expected_code) in cases.items():
        status, headers, body = parse_answer(raw_exchange(server.port, head))
        assert status == expected_status, (name, status, body[:300])
        assert headers["content-type"].startswith("application/problem+json"), (name, headers)
        problem = json.loads(body)
        assert (problem["status"], problem["code"]) == (expected_status, expected_code), (name, problem)
        assert problem["type"] == f"/v1/problems/{expected_code}" and problem["title"] and problem["detail"], problem
    samples = metric_samples(server.port, "unmatched")
    assert samples == {
        'wallet_http_requests_total{method="other",route="unmatched",status="431"}': 2.0,
        'wallet_http_requests_total{method="other",route="unmatched",status="414"}': 1.0,
        'wallet_http_requests_total{method="other",route="unmatched",status="400"}': 4.0,
    }, samples
    assert request(server.port, "GET", "/healthz")[0] == 200, "the server still answers"
    assert server.stop() == 0, server.log_tail()
    log = files.server_log.read_text(encoding="utf-8")
    assert len(access_lines(log, "unmatched")) == len(cases), log[-4000:]
    assert "Traceback" not in log and not ERROR_LEVEL.search(log), log[-4000:]
    for fragment in ("ppppppppppppppppp", "qqqqqqqqqqqqqqqq", "X-Header-1", "HELLO", "\\x00"):
        assert fragment not in log, f"the log holds the request: {fragment!r}"
