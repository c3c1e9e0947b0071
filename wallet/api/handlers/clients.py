"""A client's handlers, or its representative's: the wallet and its history, the live event stream,
the monthly statement, the charges that wait for the client's approval in the app, mandates, and
the comparison of offers.

``GET /v1/me/events`` is a ``text/event-stream`` (Server-Sent Events). Without ``Last-Event-ID``
the stream opens with a ``wallet`` event (the wallet as it stands, with the id it stands at); then
one event per change to the wallet, named by its type (``credit``, ``expiry``, ``hold``,
``capture``, ``void``, ``refund``), each with an ``id``. A client that reconnects with
``Last-Event-ID`` (the header, or ``?last_event_id=`` where headers cannot be set) gets every event
after that id, in commit order, and nothing twice. A comment line is sent when the stream has been
quiet for ``events_heartbeat_seconds``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from aiohttp import web

from wallet import validation
from wallet.api.handlers.documents import PDF, statement_language, statement_pdf
from wallet.api.http import (
    EVENT_CURSOR_PREFIX,
    OFFER_CURSOR_PREFIX,
    idempotency,
    json_response,
    page_params,
    position_params,
    render_page,
    render_positioned,
    requires,
    written_response,
)
from wallet.api.keys import PRINCIPAL, REQUEST_ID, SERVICE, SETTINGS
from wallet.auth.tokens import Role
from wallet.ledger.charges import ChargeStatus
from wallet.ledger.errors import Forbidden, ValidationError
from wallet.ledger.months import parse_month
from wallet.storage.port import OfferFilter

log = structlog.get_logger(__name__)

EVENTS_RETRY_MILLISECONDS = 3000  # how long an EventSource waits before reconnecting
EVENT_ID_MAX_DIGITS = 19  # an SQLite integer
DISCONNECT_CHECK_SECONDS = 1.0  # a quiet stream notices a closed connection within this


class _Stalled(Exception):
    """The reader has not taken a write within the write timeout."""


def _last_event_id(request: web.Request) -> int | None:
    """The header, else the query parameter; each one that is sent must be an event id (not empty)."""
    sent = (request.headers.get("Last-Event-ID"), request.query.get("last_event_id"))
    given = [raw for raw in sent if raw is not None]
    for raw in given:
        if not raw.isdigit() or not raw.isascii() or len(raw) > EVENT_ID_MAX_DIGITS:
            raise ValidationError("Last-Event-ID", "must be the id of an event this stream sent")
    return int(given[0]) if given else None


def _event(name: str, event_id: str, data: Any) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id}\nevent: {name}\ndata: {body}\n\n".encode()


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_wallet(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].wallet(request[PRINCIPAL]))


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_transactions(request: web.Request) -> web.Response:
    limit, before = page_params(request, EVENT_CURSOR_PREFIX)
    page = await request.app[SERVICE].transactions(request[PRINCIPAL], limit, before)
    return json_response(render_page(page, EVENT_CURSOR_PREFIX))


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_events(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    settings = request.app[SETTINGS]
    principal = request[PRINCIPAL]
    after = _last_event_id(request)
    with await service.subscribe_events(principal) as subscription:  # before reading the position: no gap
        snapshot = None
        if after is None:
            snapshot = await service.wallet(principal)
            after = int(snapshot["last_event_id"])
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # tell a proxy in front not to buffer the stream
                "X-Request-Id": request[REQUEST_ID],
            }
        )
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + settings.events_stream_max_seconds
        last_write = loop.time()

        async def send(data: bytes) -> None:
            nonlocal last_write
            try:
                await asyncio.wait_for(response.write(data), settings.events_write_timeout_seconds)
            except TimeoutError:
                raise _Stalled from None
            last_write = loop.time()

        try:
            await send(f"retry: {EVENTS_RETRY_MILLISECONDS}\n\n".encode())
            if snapshot is not None:
                await send(_event("wallet", snapshot["last_event_id"], snapshot))
            while not subscription.closed and loop.time() < ends_at:
                try:
                    batch = await service.events_after(principal, after)
                except Forbidden:  # a representative's mandate was revoked: the stream ends at once
                    log.info(
                        "event_stream_mandate_ended",
                        representative_id=principal.representative_id,
                        client_id=principal.client_id,
                    )
                    break
                for event in batch:
                    await send(_event(event["type"], event["id"], event))
                    after = int(event["id"])
                if len(batch) >= settings.events_batch_max:
                    continue  # more waiting in the log
                woken = await subscription.wait(DISCONNECT_CHECK_SECONDS)
                if request.transport is None or request.transport.is_closing():
                    break  # the client went away
                if not woken and loop.time() - last_write >= settings.events_heartbeat_seconds:
                    await send(b": heartbeat\n\n")
            await response.write_eof()  # raises as a write does when the client has gone
        except _Stalled:
            log.info("event_stream_stalled", client_id=principal.client_id, last_event_id=after)
            if request.transport is not None:
                request.transport.close()
        except ConnectionResetError:
            # The client went away, mid-write or before the end: how a stream normally ends. It saw
            # 200 and so the stream is recorded (not 499, which is for a client gone before the answer).
            pass
        return response


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def my_statement(request: web.Request) -> web.Response:
    """``GET /v1/me/statements/{YYYY-MM}``: the month's statement; the current month so far."""
    month = parse_month(request.match_info["month"], "month")
    statement_language(request)
    if PDF in request.headers.get("Accept", ""):  # the same statement as a document (wallet/api/handlers/documents.py)
        return await statement_pdf(request, month)
    return json_response(await request.app[SERVICE].statement(request[PRINCIPAL], month))


# Approval in the app: a provider charges with identity method "app"; the charge is held and waits.


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def list_my_charges(request: web.Request) -> web.Response:
    """``GET /v1/me/charges[?status=pending]``: the client's charges, newest first."""
    limit, before = page_params(request, EVENT_CURSOR_PREFIX)
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in ChargeStatus}:
        raise ValidationError("status", "must be one of " + ", ".join(s.value for s in ChargeStatus))
    page = await request.app[SERVICE].my_charges(request[PRINCIPAL], limit, before, status)
    return json_response(render_page(page, EVENT_CURSOR_PREFIX))


async def _answer(request: web.Request, approve: bool) -> web.Response:
    key = idempotency(request, request[PRINCIPAL], b"")  # a body, if any, is ignored
    written = await request.app[SERVICE].answer_charge(
        request[PRINCIPAL], request.match_info["charge_id"], approve, key
    )
    return written_response(written, 200)


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def approve_my_charge(request: web.Request) -> web.Response:
    """``POST /v1/me/charges/{charge_id}/approve``: the held charge is captured."""
    return await _answer(request, approve=True)


@requires(Role.CLIENT, Role.REPRESENTATIVE)
async def decline_my_charge(request: web.Request) -> web.Response:
    """``POST /v1/me/charges/{charge_id}/decline``: the held charge is voided, the hold released."""
    return await _answer(request, approve=False)


@requires(Role.REPRESENTATIVE)
async def my_mandates(request: web.Request) -> web.Response:
    """``GET /v1/me/mandates``: the clients a representative may act for now, and how."""
    mandates = await request.app[SERVICE].mandates(request[PRINCIPAL])
    return json_response({"data": mandates, "next_cursor": None})


# The comparison of offers.


@requires(Role.ADMIN, Role.FINANCE, Role.CLIENT, Role.REPRESENTATIVE)
async def compare_offers(request: web.Request) -> web.Response:
    """The comparison: offers of approved providers, the smallest own share first."""
    limit, position = position_params(request, OFFER_CURSOR_PREFIX, 3)
    after = None if position is None else (position[0], position[1], position[2])
    query = request.query
    service, municipality, language = query.get("service"), query.get("municipality"), query.get("language")
    offer_filter = OfferFilter(
        None if service is None else validation.category_code(service, "service"),
        None if municipality is None else validation.municipality(municipality, "municipality"),
        None if language is None else validation.language(language, "language"),
    )
    data, last = await request.app[SERVICE].compare_offers(request[PRINCIPAL], offer_filter, limit, after)
    return json_response(render_positioned(data, last, OFFER_CURSOR_PREFIX))
