"""The load-test tooling itself: argument parsing, the people it seeds, the Lua it hands wrk.

Fast and without wrk or a server: the benchmark's figures are measured by running it, never here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from stdnum.fi import hetu

from loadtests import bench
from tests.conftest import postgres_dsn, with_search_path
from tests.pg import RawDatabase, create_schema, drop_schema
from wallet import validation
from wallet.check import check_database
from wallet.storage.postgres.dialect import (
    LOCK_CLIENTS_SQL,
    LOCK_KEYS_SQL,
    ORDER_LOCK_SQL,
    WRITE_LOCK_SQL,
    render_numbered,
)


def test_defaults_are_the_issue_s_setting() -> None:
    arguments = bench.parser().parse_args([])
    assert (arguments.duration, arguments.connections, arguments.threads) == (8, 32, 1)
    assert arguments.rounds >= 2  # alternating needs more than one round
    assert arguments.clients == 1000


def test_options_are_parsed() -> None:
    arguments = bench.parser().parse_args(["--duration", "3", "--connections", "64", "--threads", "2"])
    assert (arguments.duration, arguments.connections, arguments.threads) == (3, 64, 2)


@pytest.mark.parametrize("argv", [["--duration", "0"], ["--threads", "4", "--connections", "2"], ["--rounds", "0"]])
def test_impossible_options_are_refused(argv: list[str]) -> None:
    parser = bench.parser()
    with pytest.raises(SystemExit) as exited:
        bench.validate(parser.parse_args(argv), parser)
    assert exited.value.code == 2


def test_the_floor_is_opt_in_and_runs_beside_one_node() -> None:
    parser = bench.parser()
    assert parser.parse_args([]).floor is False
    assert parser.parse_args(["--floor"]).floor is True
    bench.validate(parser.parse_args(["--floor", "--db", "postgresql://u@h/db"]), parser)
    with pytest.raises(SystemExit) as exited:
        bench.validate(parser.parse_args(["--floor", "--db", "postgresql://u@h/db", "--nodes", "2"]), parser)
    assert exited.value.code == 2


# One wrk run's result line, as the bench's Lua script prints it.
_WRK_RESULT: dict[str, Any] = {
    "requests": 20000,
    "duration_us": 4_000_000,
    "p50_us": 1500,
    "p90_us": 2500,
    "p99_us": 9000,
    "mean_us": 1700.5,
    "max_us": 30000,
    "socket_errors": 0,
    "timeouts": 2,
    "statuses": {"201": 19000, "402": 998},
}


def test_nodes_apart_are_opt_in_and_need_several_nodes_on_postgresql() -> None:
    parser = bench.parser()
    assert parser.parse_args([]).apart is False
    bench.validate(parser.parse_args(["--apart", "--db", "postgresql://u@h/db", "--nodes", "3"]), parser)
    for argv in (["--apart", "--db", "postgresql://u@h/db"], ["--apart", "--nodes", "3"]):
        with pytest.raises(SystemExit) as exited:
            bench.validate(parser.parse_args(argv), parser)
        assert exited.value.code == 2


def test_each_node_apart_is_driven_with_its_own_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One wrk a node; with a script a node (``--apart``: each schema's own tokens) each gets its own."""
    started: list[list[str]] = []

    class Wrk:
        returncode = 0

        def __init__(self, command: list[str], **_: Any) -> None:
            started.append(command)

        def communicate(self) -> tuple[str, str]:
            return bench.RESULT_MARKER + json.dumps(_WRK_RESULT), ""

    monkeypatch.setattr(bench.subprocess, "Popen", Wrk)
    monkeypatch.setattr(bench, "writer_batches", lambda url: (0.0, 0.0))
    arguments = bench.parser().parse_args(["--connections", "30", "--nodes", "3"])
    urls = [f"http://127.0.0.1:{port}" for port in (1001, 1002, 1003)]
    scripts = [tmp_path / f"charge-{number}.lua" for number in range(3)]
    measured = bench.run_wrk(urls, scripts, "charge", "wallet", 1, arguments)
    assert [(command[2], command[6], command[7]) for command in started] == [
        ("-c10", str(script), url) for script, url in zip(scripts, urls, strict=True)
    ]
    assert measured.requests == 3 * _WRK_RESULT["requests"]
    started.clear()
    bench.run_wrk(urls, scripts[0], "charge", "wallet", 1, arguments)  # one script: every node runs it
    assert {command[6] for command in started} == {str(scripts[0])}
    with pytest.raises(ValueError, match="2 scripts for 3 URLs"):
        bench.run_wrk(urls, scripts[:2], "charge", "wallet", 1, arguments)


def test_every_seeded_person_passes_the_service_s_own_validation() -> None:
    everyone = bench.people(1000)
    assert len(everyone) == 1001  # 1,000 clients and the hot one
    assert len({person.phone for person in everyone}) == len(everyone)
    assert len({person.national_id for person in everyone}) == len(everyone)
    for person in everyone:
        assert validation.phone(person.phone) == person.phone
        assert hetu.is_valid(person.national_id)
        assert validation.national_id(person.national_id) == person.national_id


def test_the_charge_script_varies_phone_national_id_and_key_per_request() -> None:
    everyone = bench.people(3)
    script = bench.charge_script("provider-token", everyone[:-1])
    assert 'token = "provider-token"' in script
    for person in everyone[:-1]:
        assert f'"{person.phone}"' in script and f'"{person.national_id}"' in script
    assert everyone[-1].phone not in script  # the hot wallet has its own script
    assert "math.random(#phones)" in script
    assert 'headers["Idempotency-Key"] = prefix .. "-" .. thread_number .. "-" .. counter' in script
    assert 'wrk.format("POST", "/v1/charges", headers,' in script
    assert '"identity":{"method":"national_id","national_id":"' in script
    assert "function done(summary, latency, requests)" in script


def test_the_hot_script_charges_one_wallet() -> None:
    hot = bench.people(1000)[-1:]
    script = bench.charge_script("t", hot)
    assert f'phones = {{"{hot[0].phone}"}}' in script


def test_the_read_script_reads_the_wallet_as_a_random_client() -> None:
    script = bench.read_script(["a.b.c", "d.e.f"])
    assert 'tokens = {"a.b.c","d.e.f"}' in script
    assert 'wrk.format("GET", "/v1/me/wallet", headers)' in script


def test_wrk_only_ever_targets_the_loopback_address(tmp_path: Path) -> None:
    command = bench.wrk_command("http://127.0.0.1:8080", tmp_path / "s.lua", 5, 32, 1, "p")
    assert command[:5] == ["wrk", "-t1", "-c32", "-d5s", "--timeout=5s"]
    assert command[-3:] == ["http://127.0.0.1:8080", "--", "p"]
    for elsewhere in ("http://example.org:80", "http://10.0.0.1:8080", "http://127.0.0.1.example.org:80"):
        with pytest.raises(ValueError):
            bench.wrk_command(elsewhere, tmp_path / "s.lua", 5, 32, 1, "p")


def test_the_result_line_is_read_into_figures() -> None:
    output = f"Running 4s test\n{bench.RESULT_MARKER}{json.dumps(_WRK_RESULT)}\n"
    measured = bench.parse_wrk_output(output, "charge", "wallet", 1)
    assert measured.per_second == 5000
    assert measured.successes == 19000
    assert (measured.p50_ms, measured.p99_ms) == (1.5, 9.0)
    assert measured.error_share == pytest.approx(1000 / 20000)


def test_no_result_line_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        bench.parse_wrk_output("wrk: connection refused\n", "charge", "wallet", 1)


def test_without_wrk_the_user_is_told_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert bench.main([]) == 2
    assert "apt-get install -y wrk" in capsys.readouterr().err


def test_a_process_s_cpu_time_includes_its_children_s() -> None:
    """``process_cpu_seconds``: user + system time of a process and its live children (/proc), the
    bench's "server CPU" figures; 0 for no process."""
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    script = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {spin!r} + 'print(1, flush=True); sys.stdin.read()'],"
        " stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print('done', flush=True)\n"
        "sys.stdin.read()\n"
        "child.communicate('')\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "done\n"
        children = bench.child_pids(parent.pid)
        assert len(children) == 1
        assert bench.process_cpu_seconds(parent.pid) >= bench.process_cpu_seconds(children[0]) >= 0.25
    finally:
        parent.communicate("", timeout=30)
    assert bench.process_cpu_seconds(None) == 0.0


def test_the_environment_points_every_path_into_the_run_s_directory(tmp_path: Path) -> None:
    environment = bench.bench_environment(tmp_path, 8123)
    for name in ("WALLET_DB", "WALLET_SIGNING_KEY", "WALLET_SMS_OUTBOX"):
        assert environment[name].startswith(str(tmp_path))
    assert environment["WALLET_LOG_LEVEL"] == "warning"
    assert (environment["WALLET_HOST"], environment["WALLET_PORT"]) == ("127.0.0.1", "8123")


def test_the_locustfile_compiles() -> None:
    # Importing it would let gevent patch this process; compiling checks it without running it.
    path = Path(bench.PROJECT_ROOT, "loadtests", "locustfile.py")
    compile(path.read_text(), str(path), "exec")


def test_national_ids_stay_valid_and_distinct_far_beyond_one_lifetime_of_days() -> None:
    # The locust mix seeds from random indexes up to 9,000,000: each must be a valid, distinct id.
    indexes = [0, 1, bench.BIRTH_DAYS - 1, bench.BIRTH_DAYS, 2_000_000, 8_999_999, bench.NATIONAL_IDS - 1]
    ids = [bench.national_id(index) for index in indexes]
    assert len(set(ids)) == len(ids)
    for identity in ids:
        assert validation.national_id(identity) == identity
    with pytest.raises(ValueError):
        bench.national_id(bench.NATIONAL_IDS)


# The million-scale runs (loadtests/scale.py): the command end to end at a tiny size; no times asserted.


def test_the_scale_people_are_distinct_and_valid_up_to_millions() -> None:
    from loadtests import scale

    sample = [*range(3000), 999_999, 8_999_999, 9_000_000, 9_999_999]
    phones = [scale.phone(index) for index in sample]
    national_ids = [scale.national_id(index) for index in sample]
    assert len(set(phones)) == len(set(national_ids)) == len(sample)
    for phone, national_id in zip(phones, national_ids):
        assert validation.phone(phone) == phone
        assert hetu.is_valid(national_id) and validation.national_id(national_id) == national_id


def test_wallet_credit_run_hands_the_writer_process_steps_planned_ahead(tmp_path: Path) -> None:
    """The real ``wallet credit-run`` (its writer in a process of its own) over three steps of 500
    budgets: every step is planned in the command's process and applied by the writer (its log
    line counts them), every line is credited once, and ``wallet check`` passes."""

    from loadtests import scale
    from wallet.service import CREDIT_RUN_BATCH_BUDGETS

    clients = 2 * CREDIT_RUN_BATCH_BUDGETS + 200
    environment = bench.bench_environment(tmp_path, bench.free_port())
    generated = scale.generate(environment, clients, True)
    environment.update(WALLET_LOG_LEVEL="info", WALLET_WRITER_PROCESS="true")

    def wallet(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wallet", *arguments],
            env=environment,
            cwd=bench.PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    ran = wallet("credit-run", "--month", generated.month)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (result["credited"], result["credited_now"], result["amount"]) == (
        generated.lines,
        generated.lines,
        generated.monthly_amount,
    )
    logged = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    run = next(entry for entry in logged if entry.get("event") == "credit_run")
    assert run["steps"] == run["steps_planned_ahead"] == 3
    assert not [entry for entry in logged if entry.get("event") in ("credit_run_plan_stale", "credit_run_plan_failed")]
    stamps = (
        sqlite3.connect(environment["WALLET_DB"])
        .execute("SELECT COUNT(DISTINCT created_at) FROM transactions WHERE type = 'credit'")
        .fetchone()[0]
    )
    assert stamps == 3  # each step stamped when it was worked out
    checked = wallet("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = wallet("credit-run", "--month", generated.month)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["credited_now"] == 0


def test_wallet_credit_run_no_plan_ahead_leaves_every_step_to_the_writer(tmp_path: Path) -> None:
    """``--no-plan-ahead``: the same credits, in the same steps, none worked out ahead."""

    from loadtests import scale
    from wallet.service import CREDIT_RUN_BATCH_BUDGETS

    environment = bench.bench_environment(tmp_path, bench.free_port())
    generated = scale.generate(environment, 2 * CREDIT_RUN_BATCH_BUDGETS + 200, False)
    environment.update(WALLET_LOG_LEVEL="info", WALLET_WRITER_PROCESS="true")
    ran = subprocess.run(
        [sys.executable, "-m", "wallet", "credit-run", "--month", generated.month, "--no-plan-ahead"],
        env=environment,
        cwd=bench.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (result["credited_now"], result["amount"]) == (generated.lines, generated.monthly_amount)
    logged = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    run = next(entry for entry in logged if entry.get("event") == "credit_run")
    assert (run["steps"], run["steps_planned_ahead"]) == (3, 0), run
    assert check_database(environment["WALLET_DB"]) == []


@pytest.mark.slow
def test_the_scale_command_runs_end_to_end_at_a_tiny_size(tmp_path: Path, backend: str) -> None:
    """``python -m loadtests.scale`` on SQLite, and with ``--db`` on PostgreSQL (a fresh schema of
    the test server, dropped after): every step, its figures, and ``wallet check`` passing."""
    from loadtests import scale

    database = ["--db", postgres_dsn()] if backend == "postgres" else []
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.scale",
            "--clients",
            "600",
            "--charges",
            "700",
            "--mix",
            "--directory",
            str(tmp_path / "run"),
            *database,
        ],
        cwd=bench.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    marker = next(line for line in finished.stdout.splitlines() if line.startswith("SCALE_RESULT "))
    report = json.loads(marker.removeprefix("SCALE_RESULT "))
    figures = report["figures"]
    lines = sum(len(scale.budget_lines(index, True)) for index in range(600))
    monthly = sum(amount for index in range(600) for _, amount in scale.budget_lines(index, True))
    assert figures["generate"]["clients"] == 600 and figures["generate"]["lines"] == lines > 600
    assert (figures["credit_run"]["credited"], figures["credit_run"]["amount"]) == (lines, monthly)
    assert figures["charges"]["count"] == 700  # more charges than clients: some clients twice
    assert figures["settlement"]["count"] == 700
    assert figures["settlement"]["amount"] == 700 * scale.CHARGE_AMOUNT_CENTS
    assert figures["export"]["rows"] == figures["database"]["transactions"] == lines + 700 + 1
    assert figures["database"]["clients"] == 600 and figures["database"]["captured"] == 700
    assert figures["check"]["passed"] is True and report["passed"] is True
    assert figures["credit_run"]["peak_mb"] > 0 and figures["export"]["server_peak_mb"] > 0
    for bound in ("bound 60 s", "bound 30 s", "peak RSS", "load average before"):
        assert bound in finished.stdout
    assert report["arguments"]["db"] == ("postgresql" if backend == "postgres" else "sqlite")
    assert figures["database"]["database_bytes"] > 0
    if backend == "postgres":
        assert "PostgreSQL" in finished.stdout and "kept schema" not in finished.stdout
        # The server's CPU for the charges' connections, counted before they close. (A step in a
        # process of its own is sampled while it runs: at this size it may end between samples.)
        assert figures["charges"]["database_cpu_seconds"] > 0
        assert figures["credit_run"]["database_cpu_seconds"] >= 0 and figures["check"]["database_cpu_seconds"] >= 0
        assert "s PostgreSQL CPU" in finished.stdout
    else:
        assert figures["credit_run"]["database_cpu_seconds"] == 0 and "PostgreSQL CPU" not in finished.stdout


# The floor (loadtests/floor.py): the least a durable charge costs, a service of its own.

_FLOOR_TABLES = ("charges", "transactions", "postings", "wallet_events", "audit_log", "idempotency_keys")


def _floor_counts(database: str) -> dict[str, int]:
    with RawDatabase(database) as connection:
        return {table: connection.execute(f"SELECT COUNT(*) FROM {table}")[0][0] for table in _FLOOR_TABLES}


def _balances(database: str) -> dict[str, int]:
    with RawDatabase(database) as connection:
        return {
            str(account): int(balance) for account, balance in connection.execute("SELECT id, balance FROM accounts")
        }


def _floor_charge(url: str, phone: str, amount: int, key: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {
            "phone": phone,
            "amount": amount,
            "category": bench.CATEGORY,
            "identity": {"method": "national_id", "national_id": "010130-002X"},
        }
    ).encode()
    request = urllib.request.Request(
        f"{url}/v1/charges",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_the_floor_writes_every_row_of_a_charge_and_moves_both_balances(tmp_path: Path, backend: str) -> None:
    """The floor on a small seeded database (SQLite: a copy; PostgreSQL: a schema seeded as the
    bench seeds the floor's): each 201 is one charge, one transaction, two postings, one wallet
    event, one audit entry and one idempotency key, committed when answered; the client's wallet
    line and the provider's payable account moved by the amounts; an unknown phone writes nothing."""
    if backend == "postgres":
        schema = f"wallet_test_{secrets.token_hex(6)}"
        create_schema(postgres_dsn(), schema)
        try:
            _the_floor_writes_every_row_of_a_charge(tmp_path, with_search_path(postgres_dsn(), schema))
        finally:
            drop_schema(postgres_dsn(), schema)
    else:
        _the_floor_writes_every_row_of_a_charge(tmp_path, None)


def _the_floor_writes_every_row_of_a_charge(tmp_path: Path, postgres: str | None) -> None:
    from loadtests import floor
    from wallet.ledger.accounts import payable_account, wallet_account

    environment = bench.bench_environment(tmp_path, bench.free_port(), postgres)
    everyone = bench.people(6)
    seeded = asyncio.run(bench.seed(environment, everyone))
    if postgres is None:
        database = str(tmp_path / "floor.db")
        bench.copy_database(environment["WALLET_DB"], Path(database))
    else:
        database = postgres  # the floor writes the seeded schema itself
    before, balances_before = _floor_counts(database), _balances(database)
    port = bench.free_port()
    url = f"http://{bench.HOST}:{port}"
    command = [
        sys.executable,
        "-m",
        "loadtests.floor",
        "--port",
        str(port),
        "--database",
        database,
        "--secret-dir",
        str(tmp_path / "keys"),
    ]
    charges = [(everyone[n % len(everyone)], 100 + 7 * n, f"floor-test-{n}") for n in range(40)]
    with bench.process(command, environment, tmp_path / "floor.log", f"{url}/healthz") as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # at once: several to a frame and a commit
            answers = list(pool.map(lambda c: _floor_charge(url, c[0].phone, c[1], c[2]), charges))
        unknown = _floor_charge(url, "+358409999999", 100, "floor-test-unknown")
        after, balances_after = _floor_counts(database), _balances(database)  # answered: committed already
        bench.stop(server)
    assert server.returncode == 0, (tmp_path / "floor.log").read_text()
    assert unknown[0] == 404
    assert [status for status, _ in answers] == [201] * len(charges)
    created = len(answers)
    assert {table: after[table] - before[table] for table in _FLOOR_TABLES} == {
        "charges": created,
        "transactions": created,
        "postings": 2 * created,
        "wallet_events": created,
        "audit_log": created,
        "idempotency_keys": created,
    }
    spent: dict[str, int] = {}
    for (person, amount, _), (_, record) in zip(charges, answers):
        client_id = seeded.client_ids[everyone.index(person)]
        account = wallet_account(client_id, bench.CATEGORY)
        spent[account] = spent.get(account, 0) + amount
        assert (record["status"], record["amount"], record["category"]) == ("captured", amount, bench.CATEGORY)
        assert len(json.dumps(record)) > 200  # about the size of the service's charge record
    payable = payable_account(seeded.provider_id)
    moved = {
        account: balances_after[account] - balances_before[account]
        for account in balances_before
        if balances_after[account] != balances_before[account]
    }
    assert moved == {**{account: -amount for account, amount in spent.items()}, payable: sum(spent.values())}
    with RawDatabase(database) as connection:
        ids = [record["id"] for _, record in answers]
        stored = dict(
            connection.execute(
                f"SELECT id, amount FROM charges WHERE status = 'captured' AND id IN ({','.join('?' * len(ids))})", *ids
            )
        )
        assert stored == {record["id"]: record["amount"] for _, record in answers}
        # Every transaction balances, and each account's last posting leaves it at its balance.
        assert (
            connection.execute(
                "SELECT COUNT(*) FROM (SELECT transaction_id FROM postings"
                " GROUP BY transaction_id HAVING SUM(amount) != 0) unbalanced"
            )[0][0]
            == 0
        )
        for account, balance in balances_after.items():
            last = connection.execute(
                "SELECT balance_after FROM postings WHERE account_id = ? ORDER BY seq DESC LIMIT 1", account
            )
            assert not last or last[0][0] == balance, account
        if postgres is not None:  # the real schema's triggers ran: a receipt to send for each capture
            receipts = connection.execute("SELECT COUNT(*) FROM receipts WHERE sent_at IS NULL")[0][0]
            assert receipts == after["wallet_events"] - before["wallet_events"]
    assert f"floor writer: {created} charges in " in (tmp_path / "floor.log").read_text()
    assert floor.BATCH_MAX == 64


@pytest.mark.skipif(not os.environ.get("WALLET_TEST_POSTGRES_DSN"), reason="needs WALLET_TEST_POSTGRES_DSN")
def test_the_postgres_backend_of_a_connection_is_found_and_its_cpu_counted() -> None:
    """``loadtests.pgcpu``: the server process behind this process's connection, found by its
    socket, and the CPU it spends on a query counted."""
    import psycopg

    from loadtests import pgcpu

    dsn = os.environ["WALLET_TEST_POSTGRES_DSN"]
    with psycopg.connect(dsn) as connection:
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        assert backend in pgcpu.backend_pids([os.getpid()], pgcpu.server_port(dsn))
        measured = pgcpu.BackendCpu([os.getpid()], pgcpu.server_port(dsn))
        measured.start()
        connection.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
        spent, counted = measured.stop()
    assert counted >= 1
    assert spent >= 0.05


@pytest.mark.skipif(not os.environ.get("WALLET_TEST_POSTGRES_DSN"), reason="needs WALLET_TEST_POSTGRES_DSN")
def test_the_writer_states_are_sampled_from_pg_stat_activity() -> None:
    """``loadtests.pgcpu.WriterStates``: a node's writer (its application name) holding a transaction
    open while the node does nothing is seen "idle in transaction"."""
    import time

    import psycopg

    from loadtests import pgcpu

    dsn = os.environ["WALLET_TEST_POSTGRES_DSN"]
    node = 2**22 + os.getpid()  # a pid no real node of another test has
    with psycopg.connect(dsn, application_name=f"wallet-writer-{node}-test") as writer:
        writer.execute("SELECT 1")  # psycopg begins a transaction and leaves it open
        states = pgcpu.WriterStates(dsn, [node], interval=0.005)
        states.start()
        time.sleep(0.2)
        shares = states.stop()
    assert shares == {"idle in transaction": 1.0}


def test_the_bench_counts_the_sms_still_to_send_before_it_measures(tmp_path: Path) -> None:
    path = tmp_path / "outboxes.db"
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE receipts (event_seq INTEGER PRIMARY KEY, sent_at TEXT, abandoned_at TEXT)")
        connection.execute("CREATE TABLE notices (seq INTEGER PRIMARY KEY, sent_at TEXT)")
        connection.executemany(
            "INSERT INTO receipts VALUES (?, ?, ?)", [(1, None, None), (2, "sent", None), (3, None, "given up")]
        )
        connection.executemany("INSERT INTO notices VALUES (?, ?)", [(1, None), (2, "sent")])
    assert bench.unsent_messages(str(path)) == 2  # one receipt and one notice still to send
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE receipts SET sent_at = 'sent' WHERE event_seq = 1")
        connection.execute("UPDATE notices SET sent_at = 'sent' WHERE seq = 1")
    assert bench.unsent_messages(str(path)) == 0


def _bench_json(per_second: float, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``loadtests.bench --json`` writes, as much as ``loadtests.compare`` reads."""
    measurements = [
        {
            "scenario": "charge",
            "target": "wallet",
            "requests": 1000,
            "writer_writes": 800,
            "writer_commits": 100,
            "writer_states": {},
            **run,
        }
        for run in runs
    ]
    measurements.append({"scenario": "charge", "target": "noop", "requests": 9, "p99_ms": 99.0})
    return {"summary": {"charge_wallet": {"successes_per_second": per_second}}, "measurements": measurements}


def test_the_comparison_takes_medians_of_the_charge_rounds_and_costs_per_charge() -> None:
    from loadtests import compare

    results = [
        _bench_json(1000, [{"p99_ms": 10.0, "server_cpu_seconds": 0.3, "database_cpu_seconds": 0.2}]),
        _bench_json(3000, [{"p99_ms": 30.0, "server_cpu_seconds": 0.5, "database_cpu_seconds": 0.4}]),
        _bench_json(2000, [{"p99_ms": 20.0, "server_cpu_seconds": 0.4, "database_cpu_seconds": 0.3}]),
    ]
    results[0]["measurements"][0]["writer_states"] = {"waiting Lock (write lock)": 0.6}
    row = compare.row("PostgreSQL, one node", results)
    assert row.charges_per_second == 2000 and row.runs == [1000, 3000, 2000]
    assert row.p99_ms == 20.0 and row.writes_per_commit == 8.0
    assert (row.server_cpu_us, row.database_cpu_us) == (pytest.approx(400), pytest.approx(300))
    assert row.writer_states == {"waiting Lock (write lock)": 0.6}
    assert "| PostgreSQL, one node | 2,000 (1,000, 3,000, 2,000) | 20.0 ms | 8.0 | 400 µs | 300 µs |" in compare.table(
        [row]
    )


def test_the_comparison_s_verdicts_are_the_issue_s_two_targets() -> None:
    from loadtests import compare

    def at(name: str, per_second: float) -> compare.Row:
        return compare.Row(name, 1, per_second, 1.0, 1.0, 1.0, 0.0, {}, [per_second])

    half, fewer = compare.verdicts(at("SQLite", 4000), at("PostgreSQL", 2000), at("PostgreSQL, 3 nodes", 1900))
    assert half == "a PostgreSQL node against a SQLite node: 50% (target at least 50%: meets)"
    assert fewer == "PostgreSQL, 3 nodes against one: 95% (target at least 100%: below)"
    _, more = compare.verdicts(at("SQLite", 4000), at("PostgreSQL", 1999), at("PostgreSQL, 3 nodes", 2000))
    assert more.endswith("meets)")


def test_each_round_of_the_comparison_starts_with_another_setup() -> None:
    from loadtests import compare

    assert [compare.round_order(3, number) for number in range(3)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    assert [setup.arguments for setup in compare.setups("postgresql://x", 3)] == [
        (),
        ("--db", "postgresql://x"),
        ("--db", "postgresql://x", "--nodes", "3"),
    ]


def test_the_comparison_can_add_the_nodes_apart_and_say_what_the_write_order_costs() -> None:
    from loadtests import compare

    assert len(compare.setups("postgresql://x", 3)) == 3
    assert compare.setups("postgresql://x", 3, apart=True)[-1] == compare.Setup(
        "PostgreSQL, 3 nodes apart", ("--db", "postgresql://x", "--nodes", "3", "--apart")
    )
    assert compare.parser().parse_args(["--apart"]).apart is True

    def at(name: str, per_second: float) -> compare.Row:
        return compare.Row(name, 1, per_second, 1.0, 1.0, 1.0, 0.0, {}, [per_second])

    lines = compare.verdicts(
        at("SQLite", 4000),
        at("PostgreSQL", 2000),
        at("PostgreSQL, 3 nodes", 1100),
        at("PostgreSQL, 3 nodes apart", 800),
    )
    assert lines[2].startswith("PostgreSQL, 3 nodes apart (sharing no row, lock or event) against one: 40%:")
    assert lines[3].startswith("PostgreSQL, 3 nodes against PostgreSQL, 3 nodes apart: 138%: what sharing")
    assert len(compare.verdicts(at("SQLite", 4000), at("PostgreSQL", 2000), at("PostgreSQL, 3 nodes", 1100))) == 2


def test_the_comparison_s_capacity_is_each_setup_s_best_level() -> None:
    from loadtests import compare

    def at(name: str, per_second: float) -> compare.Row:
        return compare.Row(name, 1, per_second, float(per_second) / 100, 1.0, 1.0, 0.0, {}, [per_second])

    names = ("SQLite", "PostgreSQL", "PostgreSQL, 3 nodes")
    rows = [
        [at(name, value) for name, value in zip(names, values, strict=True)]
        for values in ((4000, 2000, 1200), (6500, 4100, 2900), (6400, 4150, 3200))
    ]
    best = compare.capacities([32, 96, 192], rows)
    assert [(found.name, found.charges_per_second, level) for found, level in best] == [
        ("SQLite", 6500, 96),
        ("PostgreSQL", 4150, 192),
        ("PostgreSQL, 3 nodes", 3200, 192),
    ]
    assert "| PostgreSQL, 3 nodes | 3,200 | 192 | 32.0 ms |" in compare.capacity_table(best)
    half, fewer = compare.verdicts(*(found for found, _ in best))
    assert half.endswith("(target at least 50%: meets)") and fewer.endswith("77% (target at least 100%: below)")


@pytest.mark.parametrize("text", ["0", "32,x", "32,32", ""])
def test_the_comparison_refuses_connection_levels_that_are_not_whole_and_distinct(text: str) -> None:
    from loadtests import compare

    with pytest.raises(SystemExit):
        compare.parser().parse_args(["--connections", text])
    assert compare.parser().parse_args(["--connections", "32,96"]).connections == [32, 96]


@pytest.mark.parametrize(
    ("query", "waited"),
    [
        (LOCK_CLIENTS_SQL, "client lock"),
        (LOCK_KEYS_SQL, "key lock"),
        (ORDER_LOCK_SQL, "order lock"),
        (WRITE_LOCK_SQL, "write lock"),
    ],
)
def test_a_writer_s_advisory_wait_is_named_by_the_lock_its_statement_takes(query: str, waited: str) -> None:
    from loadtests import pgcpu

    assert pgcpu._lock_waited("advisory", render_numbered(query)) == waited
    assert pgcpu._lock_waited("transactionid", render_numbered(query)) == "transactionid"
