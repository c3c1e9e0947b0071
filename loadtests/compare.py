"""One node on SQLite, one and N nodes on PostgreSQL, measured in one sitting (issue 26's table).

    python -m loadtests.compare [--rounds 2] [--nodes 3] [--duration 8] [--dsn postgresql://...]

Each round runs ``python -m loadtests.bench --rounds 1`` once per setup, in an order that turns
round by round (so a drift of the machine's load falls on every setup alike), each on a database
seeded afresh. Then one table of medians over the rounds: charges/s, p99, writes a commit, the
service's and PostgreSQL's backends' CPU a charge, and how the writers' backends spent their time;
and the issue's two targets: a PostgreSQL node at least half a SQLite node's charges/s, and N
PostgreSQL nodes at least as many as one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from loadtests.bench import format_load, load_average, machine

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
HALF = 0.5  # a PostgreSQL node against a SQLite node: the target share


@dataclass(frozen=True)
class Setup:
    name: str
    arguments: tuple[str, ...]  # given to loadtests.bench


@dataclass
class Row:
    """A setup's figures: each a median over its rounds."""

    name: str
    rounds: int
    charges_per_second: float
    p99_ms: float
    writes_per_commit: float
    server_cpu_us: float
    database_cpu_us: float
    writer_states: dict[str, float]
    runs: list[float]  # each round's charges/s, as measured


def setups(dsn: str, nodes: int) -> list[Setup]:
    return [
        Setup("SQLite, one node", ()),
        Setup("PostgreSQL, one node", ("--db", dsn)),
        Setup(f"PostgreSQL, {nodes} nodes", ("--db", dsn, "--nodes", str(nodes))),
    ]


def round_order(count: int, round_number: int) -> list[int]:
    """Setups' indices for a round: each round starts one later, so none is always first."""
    return [(round_number + index) % count for index in range(count)]


def row(name: str, results: Sequence[dict[str, Any]]) -> Row:
    """The medians of ``results`` (each a bench's ``--json``): its charge rounds on the wallet."""
    charges = [
        [m for m in result["measurements"] if m["scenario"] == "charge" and m["target"] == "wallet"]
        for result in results
    ]

    def each(field: str) -> list[float]:
        return [median(m[field] for m in runs) for runs in charges if runs]

    def per_charge(field: str) -> float:
        values = [
            sum(m[field] for m in runs) / max(sum(m["requests"] for m in runs), 1) * 1e6 for runs in charges if runs
        ]
        return median(values) if values else 0.0

    per_second = [result["summary"]["charge_wallet"]["successes_per_second"] for result in results]
    writes = [
        sum(m["writer_writes"] for m in runs) / max(sum(m["writer_commits"] for m in runs), 1) for runs in charges
    ]
    states: dict[str, list[float]] = {}
    for runs in charges:
        for m in runs:
            for state, share in m.get("writer_states", {}).items():
                states.setdefault(state, []).append(share)
    return Row(
        name=name,
        rounds=len(results),
        charges_per_second=median(per_second),
        p99_ms=median(each("p99_ms")),
        writes_per_commit=median(writes) if writes else 0.0,
        server_cpu_us=per_charge("server_cpu_seconds"),
        database_cpu_us=per_charge("database_cpu_seconds"),
        writer_states={state: median(shares) for state, shares in sorted(states.items())},
        runs=per_second,
    )


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| setup | charges/s (median; each round) | p99 | writes per commit | service CPU a charge | PostgreSQL CPU a charge |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rounds = ", ".join(f"{value:,.0f}" for value in r.runs)
        database = f"{r.database_cpu_us:,.0f} µs" if r.database_cpu_us else "-"
        lines.append(
            f"| {r.name} | {r.charges_per_second:,.0f} ({rounds}) | {r.p99_ms:.1f} ms | {r.writes_per_commit:.1f}"
            f" | {r.server_cpu_us:,.0f} µs | {database} |"
        )
    for r in rows:
        if r.writer_states:
            shares = ", ".join(f"{state} {share:.0%}" for state, share in r.writer_states.items())
            lines.append(f"\n{r.name}, writers' backends: {shares}")
    return "\n".join(lines)


def verdicts(sqlite: Row, one: Row, several: Row) -> list[str]:
    share = one.charges_per_second / sqlite.charges_per_second if sqlite.charges_per_second else 0.0
    scaled = several.charges_per_second / one.charges_per_second if one.charges_per_second else 0.0
    return [
        f"a PostgreSQL node against a SQLite node: {share:.0%} (target at least {HALF:.0%}:"
        f" {'meets' if share >= HALF else 'below'})",
        f"{several.name} against one: {scaled:.0%} (target at least 100%: {'meets' if scaled >= 1 else 'below'})",
    ]


def run_bench(setup: Setup, arguments: argparse.Namespace, output: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "loadtests.bench",
        "--rounds",
        "1",
        "--duration",
        str(arguments.duration),
        "--connections",
        str(arguments.connections),
        "--json",
        str(output),
        *setup.arguments,
    ]
    print(f"== {setup.name}: {' '.join(command[1:])}", flush=True)
    finished = subprocess.run(command, check=False, env=os.environ.copy())
    if finished.returncode != 0 or not output.exists():
        raise SystemExit(f"loadtests.bench failed for {setup.name} (exit {finished.returncode})")
    return dict(json.loads(output.read_text()))


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(prog="python -m loadtests.compare", description=__doc__.split("\n\n")[0])
    arguments.add_argument("--rounds", type=int, default=2, help="bench runs of each setup, alternating (default 2)")
    arguments.add_argument("--nodes", type=int, default=3, help="nodes of the several-node setup (default 3)")
    arguments.add_argument("--duration", type=int, default=8, help="seconds a measurement (default 8)")
    arguments.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    arguments.add_argument("--dsn", default=DEFAULT_DSN, help=f"PostgreSQL (default {DEFAULT_DSN})")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.rounds < 1 or arguments.nodes < 2:
        parser().error("--rounds must be at least 1 and --nodes at least 2")
    every = setups(arguments.dsn, arguments.nodes)
    results: list[list[dict[str, Any]]] = [[] for _ in every]
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="wallet-compare-") as directory:
        for round_number in range(arguments.rounds):
            for index in round_order(len(every), round_number):
                output = Path(directory) / f"{index}-{round_number}.json"
                results[index].append(run_bench(every[index], arguments, output))
    rows = [row(setup.name, found) for setup, found in zip(every, results, strict=True)]
    info = machine()
    print(
        f"\nmachine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB, Python {info['python']},"
        f" wrk {info['wrk']}; load average before {format_load(load_before)}, after {format_load(load_average())}"
    )
    print(table(rows))
    for line in verdicts(*rows):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
