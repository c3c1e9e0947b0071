"""The ``wallet`` command line. Every command reads the same ``WALLET_*`` environment.

Exit codes: 0 success; 1 ``wallet check`` found a breach, or a command failed; 2 bad usage or a
bad setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from wallet import settings as settings_module
from wallet.auth.tokens import Role
from wallet.exports import ExportFormat, ExportKind
from wallet.progress import Progress
from wallet.settings import Settings, SettingsError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _settings_epilog() -> str:
    lines = ["environment (each optional):"]
    lines += [f"  {name}={default}" for name, default in settings_module.describe()]
    lines += ["", "exit codes: 0 success, 1 failure or invariant breach, 2 bad usage or setting"]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="wallet",
        description="Personal-budget wallet: payments for Finnish social-care personal budgets.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = _command(
        commands,
        "serve",
        "run the HTTP service",
        "Run the service until SIGTERM or SIGINT: then stop accepting, finish requests in flight\n"
        "(WALLET_SHUTDOWN_TIMEOUT_SECONDS), commit queued writes, close event streams, exit 0.",
    )
    serve.add_argument("--host", help="address to listen on (default WALLET_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default WALLET_PORT, 8080)")

    token = _command(
        commands,
        "token",
        "print a signed token (its last line) for bootstrapping",
        "Mint a token signed with WALLET_SIGNING_KEY, for the first admin or for scripts; the\n"
        "service accepts it as it accepts tokens from POST /v1/token.",
    )
    token.add_argument(
        "--role",
        required=True,
        choices=[role.value for role in Role if role is not Role.REPRESENTATIVE],
        help="whose token: admin and finance are the organizer's, provider and client need an id",
    )
    whose = token.add_mutually_exclusive_group()
    whose.add_argument("--provider-id", help="the provider, for --role provider")
    whose.add_argument("--client-id", help="the client, for --role client")
    token.add_argument("--ttl", type=int, help="lifetime in seconds (default WALLET_TOKEN_TTL_SECONDS)")

    credit = _command(
        commands,
        "credit-run",
        "credit every active budget line for a month (idempotent)",
        "Credit each active budget line once for MONTH (and expire unused money at a month\n"
        "boundary for budgets that expire it). Safe to repeat and to run beside the service.\n"
        "Progress on stderr; the result as one JSON object on stdout.",
    )
    credit.add_argument("--month", required=True, help="YYYY-MM: the current month or the next")
    credit.add_argument(
        "--no-plan-ahead",
        dest="plan_ahead",
        action="store_false",
        help="work every step out in the writer alone, on one core, as the service's own run"
        " does (by default the next step is worked out in this process meanwhile)",
    )

    export = _command(
        commands,
        "export",
        "write a finance export (as GET /v1/exports/... serves it)",
        "Write the export byte for byte as the API serves it; with --output the file appears\n"
        "only when complete. Progress on stderr.",
    )
    export.add_argument("kind", choices=[kind.value for kind in ExportKind], help="what to export")
    export.add_argument("--from", dest="start", help="first day (YYYY-MM-DD, Helsinki) or RFC 3339 time, inclusive")
    export.add_argument("--to", dest="end", help="last day or time, exclusive (default: now)")
    export.add_argument(
        "--format",
        default=ExportFormat.CSV.value,
        choices=[form.value for form in ExportFormat],
        help="csv (default), jsonl, or csv-fi (Excel in Finland: ; and decimal comma)",
    )
    export.add_argument("--output", default="-", help="file to write (default: standard output)")

    _command(
        commands,
        "check",
        "verify every ledger invariant; exit 1 naming any breach",
        "Recompute every balance from the postings and check each invariant of PRODUCT.md and the\n"
        "audit log's hash chain; print each breach (the first broken link for the chain).",
    )

    migrate_to = _command(
        commands,
        "migrate-to",
        "copy the SQLite database (WALLET_DB) into an empty PostgreSQL schema and verify it",
        "Copy every table of the SQLite WALLET_DB, row for row, into the PostgreSQL schema DSN\n"
        "names (it must hold no wallet data), then compare the row counts and run the checks\n"
        "of `wallet check` on the copy. Stop the SQLite node first.",
    )
    migrate_to.add_argument("dsn", help="the target: postgresql://user@host:5432/database[?search_path=schema]")

    _command(
        commands,
        "demo",
        "seed a category, client, budget and provider; print tokens and curl examples",
        "Seed a small world into WALLET_DB (for trying the service) and print what to try next.",
    )
    return root


EXIT_CODES_HELP = "exit codes: 0 success; 1 failure (or an invariant breach); 2 bad usage or a bad setting"


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"wallet: bad setting: {error}", file=sys.stderr)
        return EXIT_USAGE
    from wallet.logs import configure

    configure(settings.log_format, settings.log_level)
    handler = {
        "serve": _serve,
        "token": _token,
        "credit-run": _credit_run,
        "check": _check,
        "migrate-to": _migrate_to,
        "export": _export,
        "demo": _demo,
    }[arguments.command]
    return handler(settings, arguments)


def _serve(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.api.app import create_app, serve
    from wallet.eventloop import new_event_loop

    host = arguments.host if arguments.host is not None else settings.host
    port = arguments.port if arguments.port is not None else settings.port
    if not 0 < port <= 65535 or not host.strip():
        print("wallet serve: --port must be 1..65535 and --host must not be empty", file=sys.stderr)
        return EXIT_USAGE
    if settings.workers > 1:
        from wallet.workers import supervise

        return supervise(settings, host, port, settings.workers)
    app = create_app(settings)
    serve(
        app,
        loop=new_event_loop(settings.event_loop),
        host=host,
        port=port,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        announce=lambda message: print(message, file=sys.stderr, flush=True),
    )
    return EXIT_OK


def _token(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.auth.tokens import Role
    from wallet.bootstrap import token_service
    from wallet.clock import SystemClock

    role = Role(arguments.role)
    if role is Role.PROVIDER and not arguments.provider_id:
        print("wallet token: --role provider needs --provider-id", file=sys.stderr)
        return EXIT_USAGE
    if role is Role.CLIENT and not arguments.client_id:
        print("wallet token: --role client needs --client-id", file=sys.stderr)
        return EXIT_USAGE
    ttl = arguments.ttl or settings.token_ttl_seconds
    if not 0 < ttl <= settings.token_max_ttl_seconds:
        print(f"wallet token: --ttl must be 1..{settings.token_max_ttl_seconds}", file=sys.stderr)
        return EXIT_USAGE
    token = token_service(settings).mint(
        role,
        SystemClock().now(),
        ttl,
        provider_id=arguments.provider_id if role is Role.PROVIDER else None,
        client_id=arguments.client_id if role is Role.CLIENT else None,
    )
    print(token)
    return EXIT_OK


def _credit_run(settings: Settings, arguments: argparse.Namespace) -> int:
    """Progress goes to stderr (a bar on a terminal, a line every few seconds otherwise); the
    result, one JSON object, to stdout."""
    from wallet.bootstrap import open_service
    from wallet.ledger.errors import OperationError
    from wallet.ledger.months import parse_month

    async def run() -> dict[str, Any]:
        month = parse_month(arguments.month, "--month")
        async with open_service(settings) as service:
            progress = Progress(f"credit run {month}", "budgets", await service.storage.credit_run_budgets(month))
            result = (await service.credit_run(month, progress=progress.advance, plan_ahead=arguments.plan_ahead)).value
            progress.finish()
            return result

    try:
        result = asyncio.run(run())
    except OperationError as error:
        print(f"wallet credit-run: {error.detail}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps(result))
    return EXIT_OK


def _export(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.bootstrap import open_service
    from wallet.exports import Encoder, ExportKind, write_export
    from wallet.ledger.errors import OperationError
    from wallet.shapes import requests

    kind = ExportKind(arguments.kind)
    query = {"format": arguments.format, "from": arguments.start or "", "to": arguments.end or ""}

    async def run(output: BinaryIO) -> int:
        parsed = requests.export_query(query, settings.zone)
        async with open_service(settings) as service:
            pages = service.export(kind, parsed.start, parsed.end)

            progress = Progress(f"export {kind.value}", "bytes")

            async def write(chunk: bytes) -> None:
                output.write(chunk)
                progress.advance(len(chunk))

            rows = await write_export(pages, Encoder(parsed.format, kind.columns), write)
            progress.finish()
            return rows

    try:
        if arguments.output == "-":
            rows = asyncio.run(run(sys.stdout.buffer))
            sys.stdout.buffer.flush()
        else:  # written beside, then renamed: a failed export leaves no half file behind
            partial = Path(f"{arguments.output}.partial")
            try:
                with partial.open("wb") as output:
                    rows = asyncio.run(run(output))
                partial.replace(arguments.output)
            finally:
                partial.unlink(missing_ok=True)
    except OperationError as error:
        print(f"wallet export: {error.detail}", file=sys.stderr)
        return EXIT_USAGE if error.code == "validation_error" else EXIT_FAILURE
    except OSError as error:
        print(f"wallet export: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wallet export: {rows} {kind.value} rows", file=sys.stderr)
    return EXIT_OK


def _check(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.check import check_database
    from wallet.clock import SystemClock, month_of

    released_through = None
    if settings.auto_credit_run:  # the schedule releases staged credits within an interval of midnight
        begun = SystemClock().now() - timedelta(seconds=settings.credit_run_interval_seconds)
        released_through = month_of(begun, settings.zone)
    breaches = check_database(settings.db, released_through)
    for breach in breaches:
        print(f"BREACH: {breach}")
    if breaches:
        print(f"wallet check: {len(breaches)} breach(es) in {settings.db}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wallet check: every invariant holds in {settings.db}")
    return EXIT_OK


def _migrate_to(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.storage.migrations import is_postgres
    from wallet.storage.postgres.transfer import TransferError, transfer

    if settings.uses_postgres:
        print("wallet migrate-to: WALLET_DB must be the SQLite database to copy from", file=sys.stderr)
        return EXIT_USAGE
    if not is_postgres(arguments.dsn):
        print("wallet migrate-to: the target must be a postgresql:// DSN", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = transfer(settings.db, arguments.dsn)
    except TransferError as error:
        print(f"wallet migrate-to: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:
        print(f"wallet migrate-to: cannot reach the target: {error}", file=sys.stderr)
        return EXIT_FAILURE
    for table, count in report.rows.items():
        print(f"copied {count} rows of {table}")
    for breach in report.breaches:
        print(f"BREACH: {breach}")
    if report.breaches:
        print(f"wallet migrate-to: the copy does not verify: {len(report.breaches)} breach(es)", file=sys.stderr)
        return EXIT_FAILURE
    print("wallet migrate-to: copied and verified; every invariant holds in the target")
    return EXIT_OK


def _demo(settings: Settings, arguments: argparse.Namespace) -> int:
    from wallet.demo import seed

    print(asyncio.run(seed(settings)))
    return EXIT_OK


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
