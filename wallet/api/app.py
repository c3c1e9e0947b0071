"""The application factory, its resources and its route table, and ``serve``: how a process runs it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from wallet.api.handlers import clients, desk, documents, finance, operations, organizer, providers, tokens
from wallet.api.keys import SERVICE, SETTINGS, SIGNIN
from wallet.api.metrics import METRICS, Metrics
from wallet.api.middlewares import SHUTTING_DOWN, ProblemRequestHandler, frame
from wallet.api.readiness import CREDIT_RUN_JOB, JOBS, Jobs
from wallet.bootstrap import open_service
from wallet.clock import Clock
from wallet.service import IDEMPOTENCY_PURGE_INTERVAL_SECONDS, WalletService
from wallet.service.signin import SignIn
from wallet.settings import Settings
from wallet.sms import SmsSender
from wallet.storage.migrations import shown
from wallet.web import routes as page_routes
from wallet.web import signin

log = structlog.get_logger(__name__)
BACKGROUND_TASKS = web.AppKey("background_tasks", list)

KEEPALIVE_SECONDS = 75.0  # an idle connection is closed after this (web.run_app's default)
MONTH_START_MARGIN_SECONDS = 1.0  # the scheduled credit run wakes this long after a month begins


def routes(app: web.Application) -> None:
    add = app.router.add_route
    add("GET", "/healthz", operations.healthz)
    add("GET", "/readyz", operations.readyz)
    add("GET", "/metrics", operations.metrics)
    add("GET", "/v1/openapi.json", operations.openapi_document)
    add("POST", "/v1/token", tokens.token)
    add("POST", "/v1/login", tokens.login)
    add("POST", "/v1/login/verify", tokens.login_verify)
    # Organizer.
    add("POST", "/v1/categories", organizer.create_category)
    add("GET", "/v1/categories", organizer.list_categories)
    add("POST", "/v1/clients", organizer.create_client)
    add("GET", "/v1/clients/{client_id}", organizer.get_client)
    add("POST", "/v1/clients/{client_id}/budgets", organizer.create_budget)
    add("GET", "/v1/clients/{client_id}/budgets", organizer.list_budgets)
    add("POST", "/v1/clients/{client_id}/budgets/{budget_id}/end", organizer.end_budget)
    add("POST", "/v1/clients/{client_id}/representatives", organizer.create_representation)
    add("GET", "/v1/clients/{client_id}/representatives", organizer.list_representations)
    add("POST", "/v1/clients/{client_id}/representatives/{representation_id}/revoke", organizer.revoke_representation)
    add("POST", "/v1/providers", organizer.create_provider)
    add("GET", "/v1/providers/{provider_id}", organizer.get_provider)
    add("POST", "/v1/providers/{provider_id}/approve", organizer.approve_provider)
    add("POST", "/v1/providers/{provider_id}/suspend", organizer.suspend_provider)
    add("POST", "/v1/providers/{provider_id}/credentials", organizer.create_credentials)
    add("POST", "/v1/credit-runs", organizer.create_credit_run)
    # The service catalog and offers.
    add("POST", "/v1/services", organizer.create_service)
    add("GET", "/v1/services", organizer.list_services)
    add("GET", "/v1/services/{service_id}", organizer.get_service)
    add("POST", "/v1/services/{service_id}/unit-values", organizer.add_unit_value)
    add("POST", "/v1/providers/{provider_id}/offers", providers.create_offer)
    add("GET", "/v1/providers/{provider_id}/offers", providers.list_provider_offers)
    add("PATCH", "/v1/providers/{provider_id}/offers/{offer_id}", providers.change_offer)
    add("POST", "/v1/providers/{provider_id}/offers/{offer_id}/withdraw", providers.withdraw_offer)
    add("GET", "/v1/offers", clients.compare_offers)
    add("GET", "/v1/municipalities", organizer.list_municipalities)
    # Providers.
    add("POST", "/v1/charges", providers.create_charge)
    add("GET", "/v1/charges", providers.list_charges)
    add("GET", "/v1/charges/{charge_id}", providers.get_charge)
    add("POST", "/v1/charges/{charge_id}/confirm", providers.confirm_charge)
    add("POST", "/v1/charges/{charge_id}/void", providers.void_charge)
    add("POST", "/v1/charges/{charge_id}/refunds", providers.create_refund)
    add("POST", "/v1/settlements", providers.create_settlement)
    add("GET", "/v1/settlements", finance.list_settlements)
    add("GET", "/v1/settlements/{settlement_id}", finance.get_settlement)
    add("POST", "/v1/settlements/{settlement_id}/paid", finance.mark_settlement_paid)
    # Finance.
    add("GET", "/v1/exports/transactions", finance.export_transactions)
    add("GET", "/v1/exports/settlements", finance.export_settlements)
    add("GET", "/v1/exports/items", finance.export_items)
    add("POST", "/v1/reconciliations", finance.create_reconciliation)
    add("POST", "/v1/bank-statements", finance.create_bank_statement)
    add("POST", "/v1/payment-batches", finance.create_payment_batch)
    add("GET", "/v1/payment-batches/{batch_id}", finance.get_payment_batch)
    add("GET", "/v1/payment-batches/{batch_id}/file", finance.payment_batch_file)
    add("POST", "/v1/payment-batches/{batch_id}/cancel", finance.cancel_payment_batch)
    add("GET", "/v1/reports/usage", finance.usage_report)
    # Clients.
    add("GET", "/v1/me/wallet", clients.my_wallet)
    add("GET", "/v1/me/transactions", clients.my_transactions)
    add("GET", "/v1/me/events", clients.my_events)
    add("GET", "/v1/me/statements/{month}", clients.my_statement)
    add("GET", "/v1/me/charges", clients.list_my_charges)
    add("POST", "/v1/me/charges/{charge_id}/approve", clients.approve_my_charge)
    add("POST", "/v1/me/charges/{charge_id}/decline", clients.decline_my_charge)
    add("GET", "/v1/me/mandates", clients.my_mandates)
    # The organizer's desk.
    add("GET", "/v1/clients", desk.search_clients)
    add("GET", "/v1/providers", desk.search_providers)
    # Decisions on budgets.
    add("POST", "/v1/clients/{client_id}/budgets/{budget_id}/decisions", documents.change_budget)
    add("GET", "/v1/clients/{client_id}/budgets/{budget_id}/decision", documents.budget_decision)
    add("GET", "/v1/me/decisions", documents.my_decisions)
    add("GET", "/v1/me/decisions/{decision_id}", documents.my_decision)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sms: SmsSender | None = None,
    background_jobs: bool = True,
    writer_socket: str | None = None,
) -> web.Application:
    """The service's app. ``writer_socket``: an HTTP worker's (``wallet.workers``) path to the
    writer process its supervisor runs; otherwise the storage starts its own writer."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[frame],
        handler_args={
            "max_line_size": settings.max_request_line_bytes,
            "max_field_size": settings.max_header_field_bytes,
            "max_headers": settings.max_header_fields,
        },
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics = Metrics()  # a registry of its own: many apps may live in one process
    app[JOBS] = jobs = Jobs(metrics)
    app[SHUTTING_DOWN] = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        log.info("shutdown_started")
        app[SHUTTING_DOWN].set()

    app.on_shutdown.append(on_shutdown)

    async def end_event_streams(app: web.Application) -> None:
        # Open streams would otherwise hold the shutdown for its whole timeout.
        if SERVICE in app:
            app[SERVICE].events.close()

    app.on_shutdown.append(end_event_streams)

    async def service_context(app: web.Application) -> AsyncIterator[None]:
        async with open_service(settings, clock=clock, sms=sms, writer_socket=writer_socket) as service:
            app[SERVICE] = service
            app[SIGNIN] = SignIn(settings, service.storage, service.hasher, service.clock)
            metrics.watch_writer(service.storage.writer_stats)
            service.storage.observe_commits(metrics.observe_commit)
            metrics.watch(
                "wallet_event_streams_open", "Open GET /v1/me/events streams", lambda: service.events.open_streams
            )
            loop_module = type(asyncio.get_running_loop()).__module__  # "uvloop" or "asyncio.unix_events"
            log.info("service_started", database=shown(settings.db), event_loop=loop_module.split(".")[0])
            try:
                yield
            finally:
                await app[SIGNIN].close()
            log.info("shutdown_draining_writes")
        log.info("shutdown_complete")

    async def background_context(app: web.Application) -> AsyncIterator[None]:
        service = app[SERVICE]
        tasks: list[asyncio.Task[None]] = []
        if background_jobs:
            tasks.append(
                asyncio.create_task(
                    _every(settings.hold_sweep_interval_seconds, service.sweep_expired_holds, "hold_sweep", jobs)
                )
            )
            tasks.append(
                asyncio.create_task(
                    _every(
                        IDEMPOTENCY_PURGE_INTERVAL_SECONDS, service.purge_idempotency_keys, "idempotency_purge", jobs
                    )
                )
            )
            tasks.append(  # ended page sessions forgotten (wallet/service/signin.py)
                asyncio.create_task(
                    _every(IDEMPOTENCY_PURGE_INTERVAL_SECONDS, app[SIGNIN].purge_ended, "session_purge", jobs)
                )
            )
            tasks.append(  # SMS about new decisions and last month's statements (wallet/service/decisions.py)
                asyncio.create_task(
                    _every(settings.notice_sweep_interval_seconds, service.send_notices, "notices", jobs)
                )
            )
            if settings.auto_credit_run:

                async def monthly() -> None:
                    with metrics.credit_run_outcome("schedule") as outcome:
                        outcome(await service.credit_run(service.current_month()))

                tasks.append(
                    asyncio.create_task(
                        _every(
                            settings.credit_run_interval_seconds,
                            monthly,
                            CREDIT_RUN_JOB,
                            jobs,
                            # ... and at each month's first midnight, which releases the month's staged credits.
                            until_next=lambda: service.seconds_until_next_month() + MONTH_START_MARGIN_SECONDS,
                        )
                    )
                )
            if settings.auto_settlement:
                tasks.append(
                    asyncio.create_task(
                        _every(
                            settings.settlement_check_interval_seconds, service.settle_due, "settlement_schedule", jobs
                        )
                    )
                )
            tasks.append(asyncio.create_task(send_receipts_forever(service, settings.receipt_interval_seconds, jobs)))
        app[BACKGROUND_TASKS] = tasks
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(service_context)
    app.cleanup_ctx.append(background_context)
    routes(app)
    page_routes(app)  # the web pages: outside /v1 and outside the OpenAPI document
    signin.routes(app)  # the pages' sign-in: outside the OpenAPI document too
    return app


async def _every(
    interval_seconds: int,
    job: Callable[[], Awaitable[object]],
    name: str,
    jobs: Jobs,
    until_next: Callable[[], float] | None = None,
) -> None:
    """Run ``job`` now and then every ``interval_seconds``, or sooner when ``until_next`` (seconds to a
    moment it must run at) says so; a failure is logged, recorded (readiness and metrics see it) and
    retried."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("background_job_failed", job=name)
            jobs.failed(name, error)
        else:
            jobs.succeeded(name)
        await asyncio.sleep(interval_seconds if until_next is None else min(interval_seconds, until_next()))


RECEIPTS_JOB = "receipts"


async def send_receipts_forever(service: WalletService, interval_seconds: int, jobs: Jobs) -> None:
    """Send the SMS receipts waiting: at once when a commit (of this process or another) added wallet
    events, else every ``interval_seconds`` (what another process or a failure left)."""
    wakeup = asyncio.Event()
    service.storage.watch_wallet_events(lambda fresh: wakeup.set())
    while True:
        wakeup.clear()
        try:
            await service.send_receipts()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("background_job_failed", job=RECEIPTS_JOB)
            jobs.failed(RECEIPTS_JOB, error)
        else:
            jobs.succeeded(RECEIPTS_JOB)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), interval_seconds)


class _ProblemServer(web.Server):
    """aiohttp's server (a site's protocol factory) with the same arguments, whose connections are
    ``ProblemRequestHandler``: the parser's refusals answered as the app answers its errors."""

    def __init__(self, metrics: Metrics, like: web.Server) -> None:
        super().__init__(
            like.request_handler,
            request_factory=like.request_factory,
            handler_cancellation=like.handler_cancellation,
            loop=like._loop,
            **like._kwargs,
        )
        self._metrics = metrics

    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, self._metrics, loop=self._loop, **self._kwargs)  # as web.Server's


class WalletRunner(web.AppRunner):
    """``web.AppRunner`` whose server is a ``_ProblemServer``."""

    async def _make_server(self) -> web.Server:
        # aiohttp offers no public hook for the answers to what its parser refuses: they are made
        # in RequestHandler.handle_error, outside the app (aio-libs/aiohttp#3287). The least private
        # way in: this, BaseRunner's own extension point, and a web.Server subclass's factory.
        server = await super()._make_server()  # the app started, aiohttp's server with its handler_args
        return _ProblemServer(self.app[METRICS], server)


def serve(
    app: web.Application,
    *,
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    shutdown_timeout: float,
    reuse_port: bool | None = None,
    announce: Callable[[str], Any] | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully: ``web.run_app``'s steps,
    with a ``WalletRunner`` (``run_app`` takes no runner). ``announce`` gets the address line."""

    async def run() -> None:
        runner = WalletRunner(
            app,
            handle_signals=True,
            access_log=None,
            keepalive_timeout=KEEPALIVE_SECONDS,
            shutdown_timeout=shutdown_timeout,
        )
        await runner.setup()
        # What startup built (modules, routes, the storage's pools and caches) is taken out of the
        # collector's reach: a full collection then scans only what came since, not every object
        # with every request in flight waiting for it (those pauses were the charge p99's tail).
        gc.collect()
        gc.freeze()
        try:
            site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
            await site.start()
            if announce is not None:
                announce(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
            await asyncio.Event().wait()  # until a signal: GracefulExit, then this task is cancelled
        finally:
            await runner.cleanup()  # the graceful shutdown: on_shutdown, connections drained, cleanup

    main = loop.create_task(run())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):  # the runner's signal handlers raise GracefulExit
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """As ``asyncio.run`` (and ``web.run_app``) end: every task left is cancelled and awaited."""
    remaining = asyncio.all_tasks(loop)
    if not remaining:
        return
    for task in remaining:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*remaining, return_exceptions=True))
    for task in remaining:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during shutdown", "exception": task.exception(), "task": task}
            )
