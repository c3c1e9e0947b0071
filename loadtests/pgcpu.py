"""The CPU the PostgreSQL server spends for the bench's nodes, read from ``/proc`` (issue 26, item 3).

A node's cost on PostgreSQL is its own process and the server backends its connections talk to.
The backends are found by their sockets: a server process whose TCP socket has the database's
port on its own side and, on the other, a port held by a socket of one of the nodes' processes.
Only those backends are counted: the server's shared processes (WAL writer, checkpointer) also
serve whatever else uses the server, and other databases' backends are someone else's.
Everything here is read from ``/proc`` on this machine, so it needs the server to be local and
``/proc/<pid>/fd`` readable (the same user as the server, or root); otherwise it counts nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

_TICKS = os.sysconf("SC_CLK_TCK")


def server_port(dsn: str) -> int:
    return urlsplit(dsn).port or 5432


def _tcp_sockets() -> dict[int, tuple[int, int]]:
    """Every TCP socket of this network namespace: inode -> (local port, remote port)."""
    sockets: dict[int, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            sockets[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return sockets


def _socket_inodes(pid: int) -> list[int]:
    inodes: list[int] = []
    try:
        entries = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.append(int(target[8:-1]))
    return inodes


def _descendants(pids: Iterable[int]) -> list[int]:
    found: list[int] = []
    pending = list(pids)
    while pending:
        pid = pending.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                pending += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def backend_pids(node_pids: Sequence[int], port: int) -> list[int]:
    """The server processes serving a connection of ``node_pids`` (or their descendants) on ``port``."""
    sockets = _tcp_sockets()
    client_ports = set()
    for pid in _descendants(node_pids):
        for inode in _socket_inodes(pid):
            ends = sockets.get(inode)
            if ends is not None and ends[1] == port:
                client_ports.add(ends[0])
    backends = []
    for pid in _postgres_pids():
        for inode in _socket_inodes(pid):
            ends = sockets.get(inode)
            if ends is not None and ends[0] == port and ends[1] in client_ports:
                backends.append(pid)
                break
    return backends


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each process (those gone are left out)."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


class BackendCpu:
    """The CPU seconds the nodes' backends spend between ``start`` and ``stop`` (a backend that
    connects meanwhile counts from zero; one that disconnects meanwhile is lost)."""

    def __init__(self, node_pids: Sequence[int], port: int) -> None:
        self._node_pids = list(node_pids)
        self._port = port
        self._before: dict[int, float] = {}

    def start(self) -> None:
        self._before = cpu_seconds(backend_pids(self._node_pids, self._port))

    def stop(self) -> tuple[float, int]:
        """The CPU seconds spent, and the backends counted."""
        after = cpu_seconds(set(backend_pids(self._node_pids, self._port)) | set(self._before))
        spent = sum(max(seconds - self._before.get(pid, 0.0), 0.0) for pid, seconds in after.items())
        return spent, len(after)


# The advisory locks a writer waits for, by the name in the statement that takes them.
_ADVISORY = (("wallet.order", "order lock"), ("wallet.client", "client lock"), ("wallet.key", "key lock"))


def _lock_waited(event: str, query: str) -> str:
    """What a writer's ``Lock`` wait is for, by its wait event and statement."""
    if event == "advisory":
        return next((name for marker, name in _ADVISORY if marker in query), "write lock")
    return event


class WriterStates:
    """What the nodes' writer backends are doing, sampled from ``pg_stat_activity`` every
    ``interval`` seconds in a thread between ``start`` and ``stop``: the share of samples in each
    state. "idle in transaction" is a writer holding its transaction (and its locks) while the
    database waits for the node; a "Lock" wait says what it waits for: the write lock, the order
    lock (``wallet.order``), a client (``wallet.client``), an idempotency key (``wallet.key``), a row (``transactionid``, ``tuple``: a wallet line or an idempotency
    key another node's batch holds) or ``object`` (the commit order of NOTIFY)."""

    def __init__(self, dsn: str, node_pids: Sequence[int], interval: float = 0.01) -> None:
        self._dsn = dsn
        self._patterns = [f"wallet-writer-{pid}-%" for pid in node_pids]
        self._interval = interval
        self._counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sample, name="writer-states", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psycopg

        try:
            connection = psycopg.connect(self._dsn, autocommit=True)
        except psycopg.Error:
            return
        with connection:
            while not self._stopping.wait(self._interval):
                rows = connection.execute(
                    "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity"
                    " WHERE application_name LIKE ANY (%s)",
                    (self._patterns,),
                ).fetchall()
                for state, wait, event, query in rows:
                    key = state if state != "active" else f"waiting {wait}" if wait else "on CPU"
                    if wait == "Lock":
                        key += f" ({_lock_waited(event, query)})"
                    self._counts[key] = self._counts.get(key, 0) + 1

    def stop(self) -> dict[str, float]:
        """Each state's share of the samples."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        total = sum(self._counts.values())
        return {state: count / total for state, count in sorted(self._counts.items())} if total else {}
