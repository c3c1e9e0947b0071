"""The single writer's cost per charge: the charge unit run by the real ``Writer`` batch code.

    python -m loadtests.unit_cost [--charges 1000] [--batch 32] [--directory DIR] [--cprofile FILE]
    python -m loadtests.unit_cost --callgrind [--small 200] [--large 1200] [--directory DIR]
    ... [--one-by-one]: every charge through its own savepoint, as before ``charge_batch``
    ... [--protocol]: each batch also pickled into a request frame and read back (``_frame``, ``_frames``)
    ... [--protocol --answers]: and its answers pickled into an answer frame and read back (``_replied``)

No HTTP, no sockets: what the writer process does with a charge once it has it. It seeds a fresh
SQLite database as ``loadtests.bench`` does (``bench.seed``: 1,000 funded clients with budgets
and national ids, one approved provider, the credit run; kept in ``--directory`` and reused from
there when it holds one), copies it, and runs ``--charges`` national-id charges to random clients
(a fixed random seed; a distinct ``Idempotency-Key`` each) through ``Writer.run_guarded`` in
batches of ``--batch``: ``BEGIN IMMEDIATE``, per unit the idempotency lookup, ``SAVEPOINT``, the
unit (``charges.charge``), ``RELEASE``, the idempotency key, then ``COMMIT`` and the after-commit
event watermark (``events.Watermark``), exactly as the writer process runs them
(``writer_process._ProcessSideWriter``, ``synchronous=FULL``, WAL, SQLite configured as the
writer process configures it: ``library.configure_for_one_thread``, ``adapt_none_directly``). Each task is built as the
writer process builds it from a request frame (``Task`` of a ``UnitCall`` of ``charges.charge``; the
moment as ``_reduce_datetime`` sends it; with ``--protocol`` the whole batch through a real frame,
its pickling by the serving process included; with ``--answers`` too, the batch's outcomes
encoded and framed as ``_serve`` sends them back, with the clients of new events and the batch's
figures, and that frame read by a serving process's ``_Protocol``: ``ProcessWriter._replied``
decodes each outcome and resolves the caller's future, here a plain one on a loop that does not
run, so no task wakes: the answer path alone, without the ``await`` that follows it in a server);
every outcome must be a captured charge. It prints wall and CPU time per charge, then, from a
second run on another fresh copy with ``set_trace_callback``, the SQL statements per charge and
which they are.

``--callgrind`` measures what the load on a shared machine cannot move: it runs the charges twice
under ``valgrind --tool=callgrind``, ``--small`` and ``--large`` of them (each on a fresh copy of
the seeded database, the same random clients), and prints instructions per charge as
``(Ir(large) - Ir(small)) / (large - small)``: start-up, imports and the seed cancel out. With it,
the same difference per shared library (from ``callgrind_annotate``) and the statements per
charge. Compare two checkouts by running each one's harness on the same ``--directory``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import bench

BATCH_DEFAULT = 32
CHARGES_DEFAULT = 1_000
SMALL_DEFAULT = 200
LARGE_DEFAULT = 1_200
RANDOM_SEED = 5
SEED_FILE = "unit_cost_seed.json"
DATABASE_FILE = "wallet.db"
RESULT_MARKER = "UNIT_COST "
# A traced statement comes with its values bound in: counted by its text without them.
_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w.])-?\d+(?![\w.])")


# Seeding (outside any measurement).


def prepare(directory: Path) -> dict[str, Any]:
    """Seed ``directory`` like the bench, once; what the charges need to know about it."""
    seed_path = directory / SEED_FILE
    if seed_path.exists() and (directory / DATABASE_FILE).exists():
        return dict(json.loads(seed_path.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    environment = bench.bench_environment(directory, bench.free_port(), str(directory / DATABASE_FILE))
    everyone = bench.people(bench.CLIENTS_DEFAULT)
    seeded = asyncio.run(bench.seed(environment, everyone))
    checkpoint = sqlite3.connect(directory / DATABASE_FILE)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the whole database in the one file
    checkpoint.close()
    seed = {
        "month": seeded.month,
        "provider_id": seeded.provider_id,
        "people": [[person.phone, person.national_id] for person in everyone[:-1]],  # not the hot client
        "environment": {key: value for key, value in environment.items() if key.startswith("WALLET_")},
    }
    seed_path.write_text(json.dumps(seed))
    return seed


# Indexes the copy is made without (--without-index): a measurement of what a leaner write model
# would cost, never a way to run. The reads that use them would scan; the writer's do not use them.
WITHOUT_INDEXES: list[str] = []


def fresh_copy(directory: Path, name: str) -> str:
    """A copy of the seeded database to run on (without ``WITHOUT_INDEXES``); the seed stays as it was."""
    target = directory / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(directory / DATABASE_FILE, target)
    if WITHOUT_INDEXES:
        with contextlib.closing(sqlite3.connect(target)) as connection:
            known = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
            for index in WITHOUT_INDEXES:
                if index not in known:
                    raise SystemExit(f"--without-index: no index {index!r} in the schema")
                connection.execute(f'DROP INDEX "{index}"')
            connection.commit()
    return str(target)


# The charges.


def run_charges(
    directory: Path,
    seed: dict[str, Any],
    charges: int,
    batch_size: int,
    *,
    trace: bool = False,
    profile: Path | None = None,
    protocol: bool = False,
    answers: bool = False,
) -> dict[str, Any]:
    from wallet.auth.hashing import Hasher
    from wallet.auth.keys import HMAC_SECRET_FILENAME, load_or_create_secret
    from wallet.clock import rfc3339
    from wallet.ledger.charges import IdentityMethod
    from wallet.service import NATIONAL_ID, PHONE, storage_limits
    from wallet.settings import Settings
    from wallet.storage.port import ChargeCommand, Idempotency, Written
    from wallet.storage.sql import charges as charge_units
    from wallet.storage.sql import events
    from wallet.storage.sql.units import Task
    from wallet.storage.sqlite import library
    from wallet.storage.sqlite.frames import encode_outcome as _encode
    from wallet.storage.sqlite.frames import frame as _frame
    from wallet.storage.sqlite.frames import read_frames as _frames
    from wallet.storage.sqlite.frames import utc_datetime as _utc_datetime
    from wallet.storage.sqlite.writer import connect
    from wallet.storage.sqlite.writer_process import ProcessWriter, _ProcessSideWriter, _Protocol

    settings = Settings.from_env(seed["environment"])
    hasher = Hasher(load_or_create_secret(settings.secret_dir, HMAC_SECRET_FILENAME))
    limits = storage_limits(settings)
    provider_id = seed["provider_id"]
    scope = f"provider:{provider_id}"
    # The HTTP side's hashing, once per client: not the writer's work.
    hashed = [
        (hasher.keyed(PHONE, phone), hasher.keyed(NATIONAL_ID, national_id)) for phone, national_id in seed["people"]
    ]
    chooser = random.Random(RANDOM_SEED)
    targets = [hashed[chooser.randrange(len(hashed))] for _ in range(charges)]

    path = fresh_copy(directory, "unit_cost_trace.db" if trace else "unit_cost.db")
    library.configure_for_one_thread()  # as the writer process does, before its connection opens
    library.adapt_none_directly()
    connection = connect(path, check_same_thread=True)
    last_seq = connection.execute(events.LAST_SEQ_SQL).fetchone()[0]
    writer = _ProcessSideWriter(path, batch_size)
    watermark = events.Watermark(last_seq)
    fresh: dict[str, int] = {}
    writer.after_commit = lambda committed: fresh.update(watermark.advance(committed))
    statements: collections.Counter[str] = collections.Counter()
    if trace:
        connection.set_trace_callback(lambda sql: statements.update((_LITERAL.sub("?", sql),)))
    # With ``answers``: a serving process's side of the socket, its futures on a loop that never runs.
    loop = asyncio.new_event_loop() if answers else None
    serving = ProcessWriter(path, queue_max=charges, batch_max=batch_size)
    serving._loop = loop
    receiving = _Protocol(serving)

    def request(index: int) -> tuple[Any, ...]:
        """A charge as a serving process sends it (``ProcessWriter.submit``): number, unit, key, time, actor."""
        phone_hash, national_id_hash = targets[index]
        now = datetime.now(UTC)
        command = ChargeCommand(
            provider_id=provider_id,
            phone_hash=phone_hash,
            amount=bench.CHARGE_AMOUNT_CENTS,
            category=bench.CATEGORY,
            description=None,
            method=IdentityMethod.NATIONAL_ID,
            national_id_hash=national_id_hash,
        )
        idempotency = Idempotency(scope, f"unit-cost-{index}", f"{index:064x}")
        created_at = rfc3339(now)  # formatted by the serving process: the writer gets the text
        if not protocol:  # the moment as unpickled in the writer process (``_reduce_datetime``)
            now = _utc_datetime(now.year, now.month, now.day, now.hour, now.minute, now.second, now.microsecond)
        return (index, charge_units.charge(command, limits, now, seed["month"]), idempotency, created_at, scope)

    def tasks(indexes: range) -> list[Task]:
        """A batch as the writer process builds it (``_serve``); with ``protocol``, from a request
        frame that the charges were pickled into, as a serving process sends them."""
        requests = [request(index) for index in indexes]
        if protocol:
            (requests,) = _frames(bytearray(_frame(requests)))
        return [
            Task(unit, idempotency, created_at, None, None, actor)
            for _, unit, idempotency, created_at, actor in requests
        ]

    profiler = cProfile.Profile() if profile else None
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for start in range(0, charges, batch_size):
        indexes = range(start, min(start + batch_size, charges))
        batch = tasks(indexes)
        writer.answers.clear()
        writer.run_guarded(connection, batch)
        if loop is None:
            outcomes: list[Any] = [outcome for _, outcome in writer.answers]
        else:
            futures = [loop.create_future() for _ in indexes]
            serving._waiting.update(zip(indexes, futures, strict=True))  # as ``submit`` keeps them
            # As ``_serve`` answers one peer: each outcome encoded under its request's number, then
            # one frame with the clients of new events and the batch's figures.
            whose = {id(task): index for index, task in zip(indexes, batch, strict=True)}
            replies = [(whose[id(task)], _encode(outcome)) for task, outcome in writer.answers]
            figures = (writer.batches, writer.last_batch_size, writer.last_commit_seconds, writer.stats().storage_fault)
            receiving.data_received(_frame((replies, dict(fresh), figures)))
            fresh.clear()
            outcomes = [future.result() if future.done() else future for future in futures]
        for outcome in outcomes:
            if not isinstance(outcome, Written) or outcome.value["status"] != "captured":
                raise SystemExit(f"a charge was not captured: {outcome!r}")
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(profile))
    wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
    connection.set_trace_callback(None)
    if loop is not None:
        loop.close()
    captured = connection.execute("SELECT COUNT(*) FROM charges WHERE status = 'captured'").fetchone()[0]
    connection.close()
    if captured != charges:
        raise SystemExit(f"{captured} captured charges in the database, {charges} run")
    return {
        "charges": charges,
        "batch": batch_size,
        "wall_us_per_charge": wall * 1e6 / charges,
        "cpu_us_per_charge": cpu * 1e6 / charges,
        "statements_per_charge": sum(statements.values()) / charges if trace else None,
        "statements": dict(statements.most_common()) if trace else None,
    }


# Callgrind.

_SUMMARY = re.compile(r"^\s*([\d,]+)\s+\(?[\d.%\s)]*PROGRAM TOTALS")
_FUNCTION_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?)\s+\[(.*)\]\s*$")


def callgrind(
    directory: Path,
    small: int,
    large: int,
    batch_size: int,
    one_by_one: bool = False,
    protocol: bool = False,
    answers: bool = False,
) -> dict[str, Any]:
    """Ir of ``small`` and ``large`` charges, and their difference per charge, in total and by library."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    totals: dict[int, int] = {}
    libraries: dict[int, dict[str, int]] = {}
    for charges in (small, large):
        output = directory / f"callgrind.out.{charges}"
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={output}",
                sys.executable,
                "-m",
                "loadtests.unit_cost",
                "--directory",
                str(directory),
                "--charges",
                str(charges),
                "--batch",
                str(batch_size),
                "--quiet",
                *(["--one-by-one"] if one_by_one else []),
                *(["--protocol"] if protocol else []),
                *(["--answers"] if answers else []),
                *(argument for index in WITHOUT_INDEXES for argument in ("--without-index", index)),
            ],
            cwd=bench.PROJECT_ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        totals[charges], libraries[charges] = _annotate(output)
    span = large - small
    by_library = {
        name: (libraries[large].get(name, 0) - libraries[small].get(name, 0)) / span
        for name in set(libraries[large]) | set(libraries[small])
    }
    return {
        "instructions_per_charge": (totals[large] - totals[small]) / span,
        "ir": totals,
        "by_library": dict(sorted(by_library.items(), key=lambda item: -item[1])),
    }


def _annotate(output: Path) -> tuple[int, dict[str, int]]:
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(output)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = 0
    by_library: collections.Counter[str] = collections.Counter()
    for line in annotated.splitlines():
        summary = _SUMMARY.match(line)
        if summary:
            total = int(summary.group(1).replace(",", ""))
            continue
        function = _FUNCTION_LINE.match(line)
        if function:
            library = os.path.basename(function.group(3))
            by_library[re.sub(r"(\.so)[.\d]*$|\.cpython-.*$", r"\1", library)] += int(
                function.group(1).replace(",", "")
            )
    return total, dict(by_library)


# The command.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.unit_cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--charges", type=int, default=CHARGES_DEFAULT)
    parser.add_argument("--batch", type=int, default=BATCH_DEFAULT, help="units per BEGIN ... COMMIT")
    parser.add_argument("--directory", type=Path, help="seed here, or reuse what a previous run seeded here")
    parser.add_argument("--callgrind", action="store_true", help="instructions per charge under valgrind")
    parser.add_argument("--small", type=int, default=SMALL_DEFAULT)
    parser.add_argument("--large", type=int, default=LARGE_DEFAULT)
    parser.add_argument("--cprofile", type=Path, help="write cProfile stats of the charges here")
    parser.add_argument("--quiet", action="store_true", help="run the charges only (what --callgrind runs)")
    parser.add_argument(
        "--one-by-one",
        action="store_true",
        help="every charge in its own savepoint (Writer.batch_runners off): no charge_batch",
    )
    parser.add_argument(
        "--protocol", action="store_true", help="each batch pickled into a request frame and read back, as sent"
    )
    parser.add_argument(
        "--answers",
        action="store_true",
        help="with --protocol: each batch's answers framed as the writer sends them, read back",
    )
    parser.add_argument(
        "--without-index",
        action="append",
        default=[],
        metavar="NAME",
        help="drop this index from the copy first (measurement only; repeatable)",
    )
    arguments = parser.parse_args(argv)
    if arguments.answers and not arguments.protocol:
        parser.error("--answers prices the answer frames of --protocol: give both")
    WITHOUT_INDEXES[:] = arguments.without_index
    if arguments.one_by_one:
        from wallet.storage.sql.writer import Writer

        Writer.batch_runners = False
    directory = arguments.directory or Path(tempfile.mkdtemp(prefix="wallet-unit-cost-"))
    try:
        seed = prepare(directory.resolve())
        directory = directory.resolve()
        if arguments.quiet:
            run_charges(
                directory,
                seed,
                arguments.charges,
                arguments.batch,
                protocol=arguments.protocol,
                answers=arguments.answers,
            )
            return 0
        traced = run_charges(
            directory,
            seed,
            arguments.charges if not arguments.callgrind else arguments.large - arguments.small,
            arguments.batch,
            trace=True,
            protocol=arguments.protocol,
            answers=arguments.answers,
        )
        if arguments.callgrind:
            measured = callgrind(
                directory,
                arguments.small,
                arguments.large,
                arguments.batch,
                arguments.one_by_one,
                arguments.protocol,
                arguments.answers,
            )
            print(
                f"instructions per charge: {measured['instructions_per_charge']:,.0f}"
                f"  (Ir {measured['ir'][arguments.large]:,} - {measured['ir'][arguments.small]:,})"
                f" / {arguments.large - arguments.small}, batches of {arguments.batch}"
            )
            for name, instructions in measured["by_library"].items():
                if abs(instructions) >= 500:
                    print(f"  {name:<40} {instructions:>10,.0f}")
        else:
            timed = run_charges(
                directory,
                seed,
                arguments.charges,
                arguments.batch,
                profile=arguments.cprofile,
                protocol=arguments.protocol,
                answers=arguments.answers,
            )
            print(
                f"{timed['charges']} charges in batches of {timed['batch']}: wall {timed['wall_us_per_charge']:.1f} us"
                f" per charge, CPU {timed['cpu_us_per_charge']:.1f} us per charge"
            )
            measured = {"timed": timed}
        print(f"statements per charge: {traced['statements_per_charge']:.2f}")
        for sql, count in traced["statements"].items():
            print(f"  {count / traced['charges']:6.2f}  {sql[:150]}")
        print(RESULT_MARKER + json.dumps({**measured, "statements_per_charge": traced["statements_per_charge"]}))
    finally:
        if arguments.directory is None:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
