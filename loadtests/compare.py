"""One node on SQLite, one and N nodes on PostgreSQL, measured in one sitting (issue 26's table).

    python -m loadtests.compare [--rounds 2] [--nodes 3] [--duration 8] [--connections 32[,96,...]]
                                [--dsn postgresql://...] [--apart]

Each round runs ``python -m loadtests.bench --rounds 1`` once per setup, in an order that turns
round by round (so a drift of the machine's load falls on every setup alike), each on a database
seeded afresh. Then one table of medians over the rounds: charges/s, p99, writes a commit, the
service's and PostgreSQL's backends' CPU a charge, and how the writers' backends spent their time;
and the issue's two targets: a PostgreSQL node at least half a SQLite node's charges/s, and N
PostgreSQL nodes at least as many as one.

With several ``--connections`` levels, every setup runs at each (a round goes through the levels
in turn), a table and the targets are printed for each level, and then each setup's capacity: the
most charges/s it reached at any level, and the targets on those. At a fixed level each of N nodes
has a Nth of the requests in flight to gather into its batches; driven until it levels off, each
setup shows what it can carry.

``--apart`` adds N nodes that share no row, no lock and no event (``loadtests.bench --apart``: each
its own schema, seeded the same way): what N processes reach here with nothing of one database's
between them. Against one node it is what spreading the work over N processes costs on this
machine, whatever the write order; the N nodes against it, what sharing the database costs or (a
write lock's wait gathers larger batches) gains.
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


def setups(dsn: str, nodes: int, apart: bool = False) -> list[Setup]:
    every = [
        Setup("SQLite, one node", ()),
        Setup("PostgreSQL, one node", ("--db", dsn)),
        Setup(f"PostgreSQL, {nodes} nodes", ("--db", dsn, "--nodes", str(nodes))),
    ]
    if apart:
        every.append(Setup(f"PostgreSQL, {nodes} nodes apart", ("--db", dsn, "--nodes", str(nodes), "--apart")))
    return every


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


def _share(part: Row, whole: Row) -> float:
    return part.charges_per_second / whole.charges_per_second if whole.charges_per_second else 0.0


def verdicts(sqlite: Row, one: Row, several: Row, apart: Row | None = None) -> list[str]:
    share, scaled = _share(one, sqlite), _share(several, one)
    lines = [
        f"a PostgreSQL node against a SQLite node: {share:.0%} (target at least {HALF:.0%}:"
        f" {'meets' if share >= HALF else 'below'})",
        f"{several.name} against one: {scaled:.0%} (target at least 100%: {'meets' if scaled >= 1 else 'below'})",
    ]
    if apart is not None:
        lines += [
            f"{apart.name} (sharing no row, lock or event) against one: {_share(apart, one):.0%}:"
            " what spreading the work over these processes costs here, with no write order",
            f"{several.name} against {apart.name}: {_share(several, apart):.0%}: what sharing one database"
            " costs them (below 100%) or gains (above: a wait for the write lock gathers larger batches)",
        ]
    return lines


def capacities(levels: Sequence[int], rows: Sequence[Sequence[Row]]) -> list[tuple[Row, int]]:
    """Each setup's row at the level where it charged the most (``rows[level][setup]``), with that level."""
    best: list[tuple[Row, int]] = []
    for index in range(len(rows[0])):
        level, found = max(zip(levels, (at[index] for at in rows), strict=True), key=lambda p: p[1].charges_per_second)
        best.append((found, level))
    return best


def capacity_table(best: Sequence[tuple[Row, int]]) -> str:
    lines = ["| setup | capacity: charges/s (median) | at connections | p99 there |", "|---|---|---|---|"]
    for found, level in best:
        lines.append(f"| {found.name} | {found.charges_per_second:,.0f} | {level} | {found.p99_ms:.1f} ms |")
    return "\n".join(lines)


def connection_levels(text: str) -> list[int]:
    """``--connections``: one number, or several separated by commas, each at least 1."""
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or a list of numbers: {text!r}") from None
    if not levels or min(levels) < 1 or len(set(levels)) != len(levels):
        raise argparse.ArgumentTypeError(f"each level at least 1, none twice: {text!r}")
    return levels


def run_bench(setup: Setup, arguments: argparse.Namespace, connections: int, output: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "loadtests.bench",
        "--rounds",
        "1",
        "--duration",
        str(arguments.duration),
        "--connections",
        str(connections),
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
    arguments.add_argument(
        "--connections",
        type=connection_levels,
        default=[32],
        help="wrk connections, or several levels separated by commas for each setup's capacity (default 32)",
    )
    arguments.add_argument("--dsn", default=DEFAULT_DSN, help=f"PostgreSQL (default {DEFAULT_DSN})")
    arguments.add_argument(
        "--apart",
        action="store_true",
        help="add the N nodes on schemas of their own (no shared row, lock or event): what N processes reach"
        " here without one database between them",
    )
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.rounds < 1 or arguments.nodes < 2:
        parser().error("--rounds must be at least 1 and --nodes at least 2")
    every = setups(arguments.dsn, arguments.nodes, arguments.apart)
    levels: list[int] = arguments.connections
    results: list[list[list[dict[str, Any]]]] = [[[] for _ in every] for _ in levels]
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="wallet-compare-") as directory:
        for round_number in range(arguments.rounds):
            for level_index, connections in enumerate(levels):
                for index in round_order(len(every), round_number):
                    output = Path(directory) / f"{connections}-{index}-{round_number}.json"
                    results[level_index][index].append(run_bench(every[index], arguments, connections, output))
    rows = [[row(setup.name, found) for setup, found in zip(every, at, strict=True)] for at in results]
    info = machine()
    print(
        f"\nmachine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory_gib']} GiB, Python {info['python']},"
        f" wrk {info['wrk']}; load average before {format_load(load_before)}, after {format_load(load_average())}"
    )
    for connections, at in zip(levels, rows, strict=True):
        if len(levels) > 1:
            print(f"\n## {connections} connections\n")
        print(table(at))
        for line in verdicts(*at):
            print(line)
    if len(levels) > 1:
        best = capacities(levels, rows)
        print("\n## Capacity: each setup's most charges/s at any level\n")
        print(capacity_table(best))
        for line in verdicts(*(found for found, _ in best)):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
