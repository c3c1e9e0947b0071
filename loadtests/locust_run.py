"""Run the locust mix headless against a fresh local service: one command.

    python -m loadtests.locust_run [--users 40] [--spawn-rate 20] [--run-time 60s]

Starts ``wallet serve`` on 127.0.0.1 in a temporary directory (its own database, keys and SMS
outbox), runs ``loadtests/locustfile.py`` headless against it with the same ``WALLET_*``
environment, stops the service gracefully and exits with locust's code: non-zero on any failed
request, or when the ledger check at the end finds anything lost or created.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtests.bench import HOST, PROJECT_ROOT, bench_environment, free_port, process


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(
        prog="python -m loadtests.locust_run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument("--users", type=int, default=40, help="simulated users (default 40)")
    arguments.add_argument("--spawn-rate", type=float, default=20, help="users started a second (default 20)")
    arguments.add_argument("--run-time", default="60s", help="how long, e.g. 60s, 5m (default 60s)")
    arguments.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs)")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="wallet-locust-"))
    port = free_port()
    environment = bench_environment(directory, port)
    # The realistic mix runs with the service's own limits: unlike the wrk benchmark, nothing lifted.
    for lifted in ("WALLET_PROVIDER_CHARGES_PER_SECOND", "WALLET_PROVIDER_CHARGES_BURST"):
        environment.pop(lifted)
    url = f"http://{HOST}:{port}"
    serve = [sys.executable, "-m", "wallet", "serve", "--host", HOST, "--port", str(port)]
    try:
        with process(serve, environment, directory / "serve.log", f"{url}/healthz"):
            finished = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(PROJECT_ROOT / "loadtests" / "locustfile.py"),
                    "--headless",
                    "--only-summary",
                    "--users",
                    str(arguments.users),
                    "--spawn-rate",
                    str(arguments.spawn_rate),
                    "--run-time",
                    arguments.run_time,
                    "--stop-timeout",
                    "5",
                    "--host",
                    url,
                ],
                env=environment,
                cwd=PROJECT_ROOT,
                check=False,
            )
        return finished.returncode
    finally:
        if arguments.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
