"""The million-wallet credit run two ways, on copies of one generated database, order alternated.

    python -m loadtests.credit_paths [--clients 1000000] [--rounds 2] [--directory DIR]

``wallet credit-run`` works each step out ahead in its own process while the writer process writes
the one before (``credit_runs.plan_step``); ``wallet credit-run --no-plan-ahead`` leaves every step
to the writer alone, as the service's own monthly run and ``POST /v1/credit-runs`` do. Whether the
second core buys time depends on the machine and the schema (docs/performance.md): this measures
it. The clients are generated once (``loadtests.scale.generate``), the database checkpointed and
copied once per run; each run is timed from start to exit with its CPU time (the command's process
and its writer process) and peak memory (``loadtests.measured``). Rounds alternate which way goes
first. Every run must credit every line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from loadtests import scale
from loadtests.bench import bench_environment, free_port

WAYS = {"planned": (), "unplanned": ("--no-plan-ahead",)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="runs each way, the order alternated (default 2)")
    parser.add_argument("--directory", type=Path, help="work here (must be empty) instead of a temporary directory")
    arguments = parser.parse_args(argv)
    if arguments.clients < 1 or arguments.rounds < 1:
        parser.error("--clients and --rounds must be at least 1")
    if arguments.directory is not None:
        arguments.directory.mkdir(parents=True, exist_ok=True)
        if any(arguments.directory.iterdir()):
            parser.error(f"--directory {arguments.directory} is not empty")
        return _run(arguments, arguments.directory)
    with tempfile.TemporaryDirectory(prefix="wallet-credit-paths-") as directory:
        return _run(arguments, Path(directory))


def _run(arguments: argparse.Namespace, directory: Path) -> int:
    environment = bench_environment(directory, free_port())
    info = scale.machine()
    load = " ".join(f"{x:.2f}" for x in scale.load_average())
    print(
        f"machine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB; Python {info['python']},"
        f" SQLite {info['sqlite']}; load average {load}",
        flush=True,
    )
    generated = scale.generate(environment, arguments.clients, False)
    pristine = Path(environment["WALLET_DB"])
    with sqlite3.connect(pristine) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    print(f"generated  {generated.clients:,} clients for {generated.month} in {generated.seconds:.1f} s", flush=True)
    results: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    failed = False
    for round_number in range(arguments.rounds):
        order = list(WAYS) if round_number % 2 == 0 else list(reversed(WAYS))
        for way in order:
            copy = directory / f"{way}-{round_number}.db"
            shutil.copyfile(pristine, copy)
            ran = scale.run_measured(
                {**environment, "WALLET_DB": str(copy)}, "credit-run", "--month", generated.month, *WAYS[way]
            )
            credited = json.loads(ran.stdout.strip().splitlines()[-1])["credited"] if ran.returncode == 0 else None
            ok = credited == generated.lines
            failed |= not ok
            figures = {"seconds": ran.seconds, "cpu_seconds": ran.cpu_seconds, "peak_mb": ran.peak_mb}
            results[way].append(figures)
            print(
                f"round {round_number + 1} {way:9}  {ran.seconds:6.1f} s  ({ran.cpu_seconds:.1f} s CPU,"
                f" peak {ran.peak_mb:.0f} MiB)  {'all lines' if ok else f'FAILED: {ran.stderr[-2000:]}'}",
                flush=True,
            )
            copy.unlink()
            for suffix in ("-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
    for way, runs in results.items():
        seconds = [run["seconds"] for run in runs]
        print(f"{way:9}  median {statistics.median(seconds):.1f} s of {', '.join(f'{s:.1f}' for s in seconds)}")
    print("CREDIT_PATHS " + json.dumps({"machine": info, "clients": arguments.clients, "results": results}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
