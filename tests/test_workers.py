"""``WALLET_WORKERS=2 wallet serve``: a supervisor, one writer process, two HTTP workers on one port.

Real processes: the race for one wallet line crosses workers and still never overspends, a worker
or the writer killed is replaced, SIGTERM stops everything cleanly, and the ledger checks out."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.processes import Server, WalletFiles, charge_body, poll, seed
from tests.test_process import assert_check_passes, files, send_charge, session, start_server

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]

WORKERS = {
    "WALLET_WORKERS": "2",
    "WALLET_PROVIDER_CHARGES_BURST": "10000",
    "WALLET_PROVIDER_CHARGES_PER_SECOND": "10000",
}


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(number) for number in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def team(server: Server) -> tuple[int, list[int]]:
    """The writer's pid and the workers' pids under the supervisor."""
    pids = children(server.pid)
    writers = [pid for pid in pids if "writer_process" in command_line(pid)]
    workers = [pid for pid in pids if "run_worker" in command_line(pid)]
    assert len(writers) == 1 and len(workers) == 2, [command_line(pid) for pid in pids]
    return writers[0], workers


def served_by(files: WalletFiles) -> set[str]:
    """The workers that logged an answered charge."""
    return set(re.findall(r"route=/v1/charges status=\d+ worker=(\d)", files.server_log.read_text()))


async def test_two_workers_one_writer_never_overspend(files: WalletFiles, start_server: Callable[..., Server]) -> None:
    server = start_server(**WORKERS)
    writer, workers = team(server)
    seeded = seed(files, server, 10_000)
    # Many connections, so that the kernel gives both workers some (SO_REUSEPORT hashes each one).
    async with session(connections=60) as http:
        outcomes = await asyncio.gather(*(send_charge(http, server, seeded, 300, f"race-{n}") for n in range(60)))
    assert [o.error for o in outcomes if o.error] == []
    statuses = sorted(o.status for o in outcomes if o.status is not None)
    assert statuses.count(201) == 33 and statuses.count(402) == 27, statuses
    assert served_by(files) == {"0", "1"}, "both workers answered charges"
    wallet = server.api(seeded.client_token).call("GET", "/v1/me/wallet", expect=200)
    assert (wallet["balance"], wallet["available"]) == (100, 100), wallet
    assert server.stop() == 0, server.log_tail()
    for pid in (writer, *workers):
        poll(
            lambda pid=pid: (
                not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            ),
            10.0,
            f"process {pid} to end",
        )
    assert_check_passes(files)


def test_a_killed_worker_or_writer_is_replaced(files: WalletFiles, start_server: Callable[..., Server]) -> None:
    server = start_server(**WORKERS)
    writer, workers = team(server)
    seeded = seed(files, server, 100_000)
    os.kill(workers[1], signal.SIGKILL)
    poll(
        lambda: (
            len([pid for pid in children(server.pid) if "run_worker" in command_line(pid)]) == 2
            and workers[1] not in children(server.pid)
        ),
        30.0,
        "a new worker",
    )
    os.kill(writer, signal.SIGKILL)
    poll(
        lambda: (
            writer not in children(server.pid)
            and any("writer_process" in command_line(pid) for pid in children(server.pid))
        ),
        30.0,
        "a new writer",
    )

    provider = server.api(seeded.provider_token)
    # Both workers reconnect to the new writer by themselves: charges are taken again (a retry with
    # the same key while they reconnect is answered 503 and is safe).
    poll(
        lambda: provider.call("POST", "/v1/charges", charge_body(seeded, 100), key="after-kills")[0] == 201,
        30.0,
        "a charge after the kills",
    )
    assert server.stop() == 0, server.log_tail()
    assert_check_passes(files)


def _server_side_owner(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """The worker whose socket is the server side of the connection from ``client_port``."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inode = fields[9]
    if inode is None:
        return None
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


async def test_a_stream_on_one_worker_hears_a_charge_answered_by_the_other(
    files: WalletFiles,
    start_server: Callable[..., Server],
) -> None:
    """Events cross workers. Streams are opened until each worker holds one (the kernel picks the
    worker per connection); one charge later, both hear it. (The writer's notice to every worker
    is what makes it prompt, tested in test_writer_process.py; a stream also re-reads the log each
    second, so this test proves the outcome, not that path.)"""
    import aiohttp

    from tests.test_events import EventStream

    server = start_server(**WORKERS, WALLET_EVENTS_STREAMS_PER_CLIENT_MAX="20")
    _, workers = team(server)
    seeded = seed(files, server, 10_000)
    held: dict[int, tuple[aiohttp.ClientSession, EventStream]] = {}
    sessions: list[aiohttp.ClientSession] = []
    responses: list[aiohttp.ClientResponse] = []
    try:
        for _ in range(20):
            http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
            sessions.append(http)
            response = await http.get(
                f"{server.base_url}/v1/me/events", headers={"Authorization": f"Bearer {seeded.client_token}"}
            )
            responses.append(response)
            assert response.status == 200
            events = EventStream(response)
            assert (await events.next_change())["event"] == "wallet"  # the stream is being served
            transport = response.connection.transport if response.connection else None
            assert transport is not None
            owner = _server_side_owner(server.port, transport.get_extra_info("sockname")[1], workers)
            assert owner in workers
            held.setdefault(owner, (http, events))
            if len(held) == 2:
                break
        assert len(held) == 2, "twenty connections all went to one worker"
        status, _ = server.api(seeded.provider_token).call("POST", "/v1/charges", charge_body(seeded, 250))
        assert status == 201
        for _, events in held.values():
            assert (await events.next_change())["data"]["amount"] == -250
    finally:
        for response in responses:
            response.close()
        for http in sessions:
            await http.close()
    assert server.stop() == 0, server.log_tail()
