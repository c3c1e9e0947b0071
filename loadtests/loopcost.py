"""The event loop's share of a request: CPU per request by thread, for charges and wallet reads.

    python -m loadtests.loopcost [--duration 5] [--rounds 3] [--clients 1000] [--scenarios charge,read]
                                 [--py-spy DIR] [--directory DIR]

Seeds a database like ``loadtests.bench`` (or reuses ``--directory`` when it holds one), starts
``wallet serve`` from this checkout, and drives it with the bench's own wrk scripts. For each
measurement it reads the CPU time (utime + stime, ``/proc/PID/task/TID/stat``) of every thread of
the server before and after, and prints per answered request: the main thread's (the event loop:
aiohttp, middlewares, validation, the service, loop reads, rendering), the others' (the writer
thread, aiosqlite's, the thread pool) and the total. Unlike requests/s these barely move when the
machine is shared; compare two checkouts back to back.

``--py-spy DIR`` records a raw py-spy profile of the main thread for each scenario (one more run
each, not in the figures), for ``flamegraph.pl`` or a quick ``sort | head``. ``--cprofile FILE``
runs the server under cProfile instead (``loadtests.profiled_serve``; the figures are then
cProfile's, slower) and writes its stats to FILE when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtests import bench

SCENARIOS = ("charge", "read")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of ``pid``."""
    ticks = os.sysconf("SC_CLK_TCK")
    result: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return result


def _prepare(directory: Path, clients: int) -> tuple[dict[str, str], dict[str, Path]]:
    environment = bench.bench_environment(directory, bench.free_port())
    scripts = {name: directory / f"{name}.lua" for name in SCENARIOS}
    seeded_already = [*scripts.values(), directory / "seed.json", Path(environment["WALLET_DB"])]
    if all(path.exists() for path in seeded_already):
        return environment, scripts
    everyone = bench.people(clients)
    seeded = asyncio.run(bench.seed(environment, everyone))
    provider_token = (
        bench.wallet_cli(
            environment,
            "token",
            "--role",
            "provider",
            "--provider-id",
            seeded.provider_id,
            "--ttl",
            str(24 * 3600),
        )
        .strip()
        .splitlines()[-1]
    )
    tokens = bench.client_tokens(environment, seeded.client_ids[:-1])
    (directory / "seed.json").write_text(
        json.dumps(
            {
                "provider_token": provider_token,
                "client_tokens": tokens,
                "people": [[person.phone, person.national_id] for person in everyone[:-1]],
            }
        )
    )
    scripts["charge"].write_text(bench.charge_script(provider_token, everyone[:-1]))
    scripts["read"].write_text(bench.read_script(tokens))
    return environment, scripts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.loopcost", description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--clients", type=int, default=bench.CLIENTS_DEFAULT)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--directory", type=Path, help="seed here, or reuse what a previous run seeded here")
    parser.add_argument("--py-spy", type=Path, dest="py_spy", help="also write raw py-spy profiles here")
    parser.add_argument(
        "--cprofile",
        type=Path,
        help="run the server under cProfile (loadtests.profiled_serve) and write its stats here",
    )
    arguments = parser.parse_args(argv)
    arguments.threads = 1
    scenarios = [name for name in arguments.scenarios.split(",") if name]
    directory = arguments.directory or Path(tempfile.mkdtemp(prefix="wallet-loopcost-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        environment, scripts = _prepare(directory, arguments.clients)
        port = bench.free_port()
        environment = {**environment, "WALLET_PORT": str(port)}
        url = f"http://{bench.HOST}:{port}"
        serve = [sys.executable, "-m", "wallet", "serve", "--host", bench.HOST, "--port", str(port)]
        if arguments.cprofile:
            serve = [
                sys.executable,
                "-m",
                "loadtests.profiled_serve",
                "--host",
                bench.HOST,
                "--port",
                str(port),
                "--output",
                str(arguments.cprofile.resolve()),
            ]
        print(f"load average before {bench._load(bench.load_average())}; code from {bench.PROJECT_ROOT}")
        with bench.process(serve, environment, directory / "serve.log", f"{url}/healthz") as server:
            for scenario in scenarios:
                bench.run_wrk(url, scripts[scenario], f"warmup-{scenario}", "wallet", 0, arguments, 2)
                loop, other, rates = [], [], []
                for round_number in range(1, arguments.rounds + 1):
                    before = thread_cpu_seconds(server.pid)
                    measured = bench.run_wrk(url, scripts[scenario], scenario, "wallet", round_number, arguments)
                    after = thread_cpu_seconds(server.pid)
                    answered = max(measured.answered, 1)
                    main_thread = (after.get(server.pid, 0.0) - before.get(server.pid, 0.0)) * 1e6 / answered
                    rest = sum(after[t] - before.get(t, 0.0) for t in after if t != server.pid) * 1e6 / answered
                    non_2xx = measured.answered - measured.successes
                    loop.append(main_thread)
                    other.append(rest)
                    rates.append(measured.per_second)
                    print(
                        f"  {scenario:<6} round {round_number}: {measured.per_second:8,.0f} req/s"
                        f"  loop thread {main_thread:6.1f} us/req  other threads {rest:6.1f} us/req"
                        f"  total {main_thread + rest:6.1f} us/req  non-2xx {non_2xx}"
                    )
                print(
                    f"  {scenario:<6} median: {statistics.median(rates):8,.0f} req/s"
                    f"  loop {statistics.median(loop):6.1f}  other {statistics.median(other):6.1f}"
                    f"  total {statistics.median([a + b for a, b in zip(loop, other)]):6.1f} us/req"
                )
                if arguments.py_spy:
                    arguments.py_spy.mkdir(parents=True, exist_ok=True)
                    output = arguments.py_spy / f"{scenario}.txt"
                    spy = subprocess.Popen(
                        [
                            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "-p",
                            str(server.pid),
                            "-r",
                            "250",
                            "-f",
                            "raw",
                            "--nonblocking",
                            "--threads",
                            "-d",
                            str(arguments.duration),
                            "-o",
                            str(output),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    bench.run_wrk(url, scripts[scenario], f"spy-{scenario}", "wallet", 0, arguments)
                    spy.wait()
                    print(f"  py-spy profile: {output}")
        print(f"load average after {bench._load(bench.load_average())}")
    finally:
        if arguments.directory is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
