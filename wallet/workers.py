"""Several HTTP worker processes on one port, one writer for all (``WALLET_WORKERS`` > 1).

With N workers ``wallet serve`` becomes a supervisor that serves nothing itself. It starts the
writer process listening on a Unix socket in a private directory (0700, the socket 0600), so every
worker's writes go to one writer in one order, as with one process (on PostgreSQL, or with
``WALLET_WRITER_PROCESS=false``, each worker keeps its own writer and the database orders them).
It starts N workers on the same port with ``SO_REUSEPORT``; reads run in every worker, so they
scale with the cores; only worker 0 runs the background jobs. A worker or writer that dies is
started again. SIGTERM or SIGINT stops the workers gracefully, then the writer, then exits 0.

Per worker, as per node on PostgreSQL: the charge throttle, the event-stream caps, the token cache
and ``/metrics``.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import structlog

from wallet.settings import Settings
from wallet.storage.sql.writer_process import WriterOptions, source_environment, spawn

log = structlog.get_logger(__name__)

# A worker that exits within this long of its start failed to start; this many such failures in a
# row (the port is taken, the configuration cannot work) stop the supervisor with exit code 1.
FAILED_START_SECONDS = 5.0
FAILED_STARTS_MAX = 3
RESTART_DELAY_SECONDS = 1.0
WRITER_STOP_SECONDS = 60.0

_WORKER_ENTRY = "import sys; from wallet.workers import run_worker; sys.exit(run_worker(sys.argv[1:]))"


class _Writer:
    """The writer process, listening for the workers at ``socket_path``."""

    def __init__(self, settings: Settings, socket_path: str) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.process: subprocess.Popen[bytes] | None = None
        self.primary: socket.socket | None = None

    def start(self) -> None:
        from wallet.storage.sqlite.adapter import last_event_seq

        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        listener.listen(128)
        try:
            self.process, primary = spawn(
                WriterOptions(db=self.settings.db, batch_max=self.settings.writer_batch_max),
                last_event_seq(self.settings.db),
                self.settings.log_format,
                self.settings.log_level,
                listener,
            )
        finally:
            listener.close()  # the writer process holds it now
        self.primary = primary
        log.info("writer_process_started", pid=self.process.pid)

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        """End-of-file on its primary socket: it takes no new worker and exits once every worker is done."""
        if self.primary is not None:
            self.primary.close()
            self.primary = None
        if self.process is not None:
            try:
                self.process.wait(WRITER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.error("writer_process_killed", after_seconds=WRITER_STOP_SECONDS)
                self.process.kill()
                self.process.wait()


class _Worker:
    def __init__(self, index: int, host: str, port: int, writer_socket: str | None) -> None:
        self.index = index
        self.arguments = ["--index", str(index), "--host", host, "--port", str(port)]
        if writer_socket is not None:
            self.arguments += ["--writer-socket", writer_socket]
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.failed_starts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_ENTRY, *self.arguments], stdin=subprocess.DEVNULL, env=source_environment()
        )
        self.started = time.monotonic()
        log.info("worker_started", worker=self.index, pid=self.process.pid)

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None


def supervise(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run ``workers`` HTTP workers and the writer until SIGTERM or SIGINT; the exit code."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    stopping: list[int] = []

    def stop(number: int, frame: object) -> None:
        stopping.append(number)
        try:
            os.write(wake_write, b"x")
        except OSError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    directory: str | None = None
    writer: _Writer | None = None
    if not settings.uses_postgres:
        from wallet.storage.sqlite.adapter import migrate

        migrate(settings.db)  # once, before any worker opens the database
        if settings.writer_process:
            directory = tempfile.mkdtemp(prefix="wallet-writer-")  # 0700: this user alone
            writer = _Writer(settings, os.path.join(directory, "writer.sock"))
            writer.start()
    team = [_Worker(index, host, port, writer.socket_path if writer else None) for index in range(workers)]
    for worker in team:
        worker.start()
    print(
        f"wallet serve: {workers} workers on http://{host}:{port} (supervisor pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    code = 0
    try:
        while not stopping:
            select.select([wake_read], [], [], 0.5)
            if stopping:
                break
            if writer is not None and writer.exited():
                log.error("writer_process_died", exit_code=writer.process.returncode if writer.process else None)
                time.sleep(RESTART_DELAY_SECONDS)
                writer.start()  # the workers connect again by themselves
            for worker in team:
                if not worker.exited() or stopping:
                    continue
                assert worker.process is not None
                quick = time.monotonic() - worker.started < FAILED_START_SECONDS
                worker.failed_starts = worker.failed_starts + 1 if quick else 0
                log.error(
                    "worker_died",
                    worker=worker.index,
                    exit_code=worker.process.returncode,
                    failed_starts=worker.failed_starts,
                )
                if worker.failed_starts >= FAILED_STARTS_MAX:
                    print(
                        f"wallet serve: worker {worker.index} failed to start {FAILED_STARTS_MAX} times; stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    code = 1
                    stopping.append(0)
                    break
                time.sleep(RESTART_DELAY_SECONDS)
                worker.start()
    finally:
        _stop_workers(team, settings.shutdown_timeout_seconds + 5)
        if writer is not None:
            writer.stop()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        os.close(wake_read)
        os.close(wake_write)
    return code


def _stop_workers(team: list[_Worker], timeout_seconds: float) -> None:
    running = [worker for worker in team if worker.process is not None and worker.process.poll() is None]
    for worker in running:
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    for worker in running:
        assert worker.process is not None
        try:
            worker.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("worker_killed", worker=worker.index, after_seconds=timeout_seconds)
            worker.process.kill()
            worker.process.wait()


def run_worker(argv: list[str]) -> int:
    """One HTTP worker: the whole app on a shared port (``SO_REUSEPORT``), writing through the
    supervisor's writer process when given its socket."""
    import argparse

    from wallet.api.app import create_app, serve
    from wallet.eventloop import new_event_loop
    from wallet.logs import PROCESS_FIELDS, configure

    parser = argparse.ArgumentParser(prog="wallet-worker", description=run_worker.__doc__)
    parser.add_argument("--index", type=int, required=True, help="0 runs the background jobs")
    parser.add_argument("--host", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, required=True, help="port to listen on, shared by every worker")
    parser.add_argument("--writer-socket", help="the writer process's Unix socket")
    arguments = parser.parse_args(argv)
    settings = Settings.from_env()
    configure(settings.log_format, settings.log_level)
    PROCESS_FIELDS["worker"] = arguments.index
    structlog.contextvars.bind_contextvars(worker=arguments.index)
    app = create_app(settings, background_jobs=arguments.index == 0, writer_socket=arguments.writer_socket)
    serve(
        app,
        loop=new_event_loop(settings.event_loop),
        host=arguments.host,
        port=arguments.port,
        reuse_port=True,
        shutdown_timeout=settings.shutdown_timeout_seconds,
    )
    return 0
