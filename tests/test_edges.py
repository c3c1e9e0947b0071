"""Edges of the HTTP layer, seen from outside the real ``wallet serve`` (issue 21).

- A client closing its event stream (the normal end of a stream) is recorded as the 200 it saw:
  in the access log and in ``/metrics``, never a 500 or an ``unhandled_error``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.processes import HTTP_TIMEOUT_SECONDS, Server, WalletFiles, poll, seed

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
