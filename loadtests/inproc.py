"""The event loop's CPU per request, in one process, without sockets or wrk.

    python -m loadtests.inproc [--requests 20000] [--rounds 3] [--connections 32] [--scenarios charge,read]
                               [--directory DIR]

The real application (``create_app`` with the settings ``loadtests.bench`` gives ``wallet serve``:
JSON logs at warning, the charge throttle lifted) on a database seeded like the bench's (reused
from ``--directory`` when ``loadtests.loopcost`` seeded it there). Requests are raw HTTP/1.1 bytes
fed to aiohttp's own protocol (``RequestHandler.data_received``) on ``--connections`` keep-alive
connections at once, and the answers read back from a transport that only collects bytes: the
parser, the middlewares, the handler, the service, the writer thread and the response writing
are all the real ones; the kernel's socket work and wrk's CPU are not in the figures.

It prints the main thread's CPU (``time.thread_time``: the event loop's share) and the whole
process's (with the writer thread) per request, for charges by national id with a distinct
``Idempotency-Key`` each and for ``GET /v1/me/wallet`` with a random client's token — the bench's
two requests; ``healthz`` (the middlewares around a trivial handler) and ``noop`` (``loadtests.noop``,
no middlewares) show the floor. Every answer must be 201 / 200. Compare two checkouts back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from loadtests import bench
from loadtests.loopcost import _prepare

SCENARIOS = ("charge", "read")


class _Transport(asyncio.Transport):
    """Collects what the server writes; one answer at a time (keep-alive, no pipelining)."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self.answered: asyncio.Future[bytes] | None = None

    def expect(self) -> asyncio.Future[bytes]:
        self.answered = asyncio.get_running_loop().create_future()
        return self.answered

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
        if len(self._buffer) >= end + 4 + length and self.answered is not None and not self.answered.done():
            answer = bytes(self._buffer[: end + 4 + length])
            del self._buffer[: end + 4 + length]
            self.answered.set_result(answer)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def charge_request(token: str, phone: str, national_id: str, key: str) -> bytes:
    body = (
        f'{{"phone":"{phone}","amount":{bench.CHARGE_AMOUNT_CENTS},"category":"{bench.CATEGORY}",'
        f'"identity":{{"method":"national_id","national_id":"{national_id}"}}}}'
    ).encode()
    return (
        f"POST /v1/charges HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def healthz_request() -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


def read_request(token: str) -> bytes:
    return f"GET /v1/me/wallet HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


async def _drive(runner: web.AppRunner, requests: list[bytes], connections: int, expected: bytes) -> dict[str, int]:
    server = runner.server
    assert server is not None
    statuses: dict[str, int] = {}
    queue = iter(requests)

    async def connection() -> None:
        protocol = server()
        transport = _Transport()
        protocol.connection_made(transport)
        for raw in queue:
            answered = transport.expect()
            protocol.data_received(raw)
            answer = await answered
            status = answer[9:12].decode()
            statuses[status] = statuses.get(status, 0) + 1
        protocol.connection_lost(None)

    await asyncio.gather(*(connection() for _ in range(connections)))
    unexpected = {status: count for status, count in statuses.items() if status != expected.decode()}
    if unexpected:
        raise RuntimeError(f"unexpected answers: {unexpected}")
    return statuses


async def run(arguments: argparse.Namespace) -> None:
    from wallet.api.app import create_app
    from wallet.logs import configure
    from wallet.settings import Settings

    directory = arguments.directory
    directory.mkdir(parents=True, exist_ok=True)
    environment, _ = await asyncio.to_thread(_prepare, directory, arguments.clients)
    seeded = json.loads((directory / "seed.json").read_text())
    settings = Settings.from_env(environment)
    configure(settings.log_format, settings.log_level)
    runner = web.AppRunner(create_app(settings, background_jobs=False), access_log=None)
    await runner.setup()
    from loadtests import noop

    noop_runner = web.AppRunner(noop.create_app(), access_log=None)  # the HTTP floor, in the same harness
    await noop_runner.setup()
    choose = random.Random(5)
    profile = cProfile.Profile() if arguments.cprofile else None
    people = seeded["people"]
    run_tag = f"{time.time_ns():x}"
    try:
        for scenario in arguments.scenarios.split(","):

            def batch(count: int, tag: str, scenario: str = scenario) -> list[bytes]:
                if scenario == "read":
                    return [read_request(choose.choice(seeded["client_tokens"])) for _ in range(count)]
                if scenario in ("healthz", "noop"):
                    return [healthz_request() for _ in range(count)]
                requests = []
                for i in range(count):
                    phone, national_id = choose.choice(people)
                    key = f"inproc-{run_tag}-{tag}-{i}"
                    requests.append(charge_request(seeded["provider_token"], phone, national_id, key))
                return requests

            expected = b"201" if scenario == "charge" else b"200"
            target = noop_runner if scenario == "noop" else runner
            # Warm up: every token verified once (then cached), statements prepared, pages cached.
            warmup = arguments.warmup if arguments.warmup is not None else max(len(seeded["client_tokens"]) * 2, 2000)
            warmup_requests = batch(warmup, "warmup")
            if scenario == "read":  # every token once at least, so the measured rounds verify none
                warmup_requests += [read_request(token) for token in seeded["client_tokens"]]
            await _drive(target, warmup_requests, arguments.connections, expected)
            loop_figures, total_figures, rates = [], [], []
            for round_number in range(1, arguments.rounds + 1):
                requests = batch(arguments.requests, str(round_number))
                if profile is not None:
                    profile.enable()
                thread0, process0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
                await _drive(target, requests, arguments.connections, expected)
                thread1, process1, wall1 = time.thread_time(), time.process_time(), time.perf_counter()
                if profile is not None:
                    profile.disable()
                loop_us = (thread1 - thread0) * 1e6 / len(requests)
                total_us = (process1 - process0) * 1e6 / len(requests)
                loop_figures.append(loop_us)
                total_figures.append(total_us)
                rates.append(len(requests) / (wall1 - wall0))
                print(
                    f"  {scenario:<6} round {round_number}: loop thread {loop_us:6.1f} us/req"
                    f"  process {total_us:6.1f} us/req  {rates[-1]:8,.0f} req/s in-process"
                )
            print(
                f"  {scenario:<6} median: loop thread {statistics.median(loop_figures):6.1f} us/req"
                f" (min {min(loop_figures):6.1f})"
                f"  process {statistics.median(total_figures):6.1f} us/req"
                f"  ({arguments.requests} requests x {arguments.rounds}, {arguments.connections} connections)"
            )
    finally:
        await runner.cleanup()
        await noop_runner.cleanup()
        if profile is not None:
            profile.dump_stats(arguments.cprofile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.inproc", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--warmup", type=int, help="requests before the measured rounds (default: two per client token)"
    )
    parser.add_argument("--clients", type=int, default=bench.CLIENTS_DEFAULT)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--directory", type=Path, required=True, help="seeded here (or reused)")
    parser.add_argument("--cprofile", type=Path, help="cProfile the measured rounds (not the warm-up) into this file")
    arguments = parser.parse_args(argv)
    print(f"load average before {bench._load(bench.load_average())}; code from {bench.PROJECT_ROOT}")
    asyncio.run(run(arguments))
    print(f"load average after {bench._load(bench.load_average())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
