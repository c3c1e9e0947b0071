"""Finance's handlers: settlements read and paid, exports, the usage report, invoice reconciliation,
payment batches and bank statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web

from wallet import validation
from wallet.api.http import (
    idempotency,
    json_response,
    optional_body,
    optional_command,
    page_params,
    render_page,
    requires,
    written_response,
)
from wallet.api.keys import PRINCIPAL, REQUEST_ID, SERVICE, SETTINGS
from wallet.api.middlewares import BODY_LIMIT_SETTING
from wallet.auth.tokens import Role
from wallet.exports import Encoder, ExportKind, file_name, write_export
from wallet.ledger.months import parse_month
from wallet.ledger.reconciliation import InvoiceSource
from wallet.ledger.settlements import SettlementStatus
from wallet.shapes import requests
from wallet.storage.port import Page

log = structlog.get_logger(__name__)


# Settlements.


@requires(Role.PROVIDER, Role.FINANCE, Role.ADMIN)
async def list_settlements(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    status = request.query.get("status")
    if status is not None:
        validation.one_of(status, "status", tuple(s.value for s in SettlementStatus))
    provider_id = request.query.get("provider_id")
    page = await request.app[SERVICE].list_settlements(request[PRINCIPAL], limit, before, status, provider_id)
    return json_response(render_page(page))


@requires(Role.PROVIDER, Role.FINANCE, Role.ADMIN)
async def get_settlement(request: web.Request) -> web.Response:
    """A batch with its status history and a page of its lines (``?limit=&cursor=`` page the lines)."""
    limit, after = page_params(request)
    settlement = await request.app[SERVICE].get_settlement(
        request[PRINCIPAL], request.match_info["settlement_id"], limit, after
    )
    cursor = settlement.pop("lines_next_cursor")
    settlement["lines_next_cursor"] = render_page(Page([], cursor))["next_cursor"]
    return json_response(settlement)


@requires(Role.FINANCE)
async def mark_settlement_paid(request: web.Request) -> web.Response:
    payment, raw = await optional_command(request, requests.SettlementPayment)
    key = idempotency(request, request[PRINCIPAL], raw)
    written = await request.app[SERVICE].mark_settlement_paid(request.match_info["settlement_id"], payment.note, key)
    return written_response(written, 200)


# Finance exports.


async def _export(request: web.Request, kind: ExportKind) -> web.StreamResponse:
    """Stream an export page by page; each ``write`` waits while the client is slow (backpressure)."""
    query = requests.export_query(request.query, request.app[SETTINGS].zone)
    pages = request.app[SERVICE].export(kind, query.start, query.end)
    # The first page before the status line: a failure here is still a problem response.
    first: list[dict[str, Any]] = await anext(pages, [])
    encoder = Encoder(query.format, kind.columns)
    name = file_name(kind, query.format, request.query.get("from"), request.query.get("to"))
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{query.format.content_type}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Request-Id": request[REQUEST_ID],
        }
    )
    await response.prepare(request)

    async def all_pages() -> AsyncIterator[list[dict[str, Any]]]:
        yield first
        async for page in pages:
            yield page

    try:
        await write_export(all_pages(), encoder, response.write)
    except ConnectionResetError:
        log.info("export_abandoned", kind=kind.value)  # the client went away: nothing to repair
        return response
    except Exception:
        # The status line is gone: cut the connection so the client sees a broken file, not a short one.
        log.exception("export_failed", kind=kind.value)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


@requires(Role.FINANCE)
async def export_transactions(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.TRANSACTIONS)


@requires(Role.FINANCE)
async def export_settlements(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.SETTLEMENTS)


@requires(Role.FINANCE)
async def export_items(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.ITEMS)


# The organizer's view of use.


@requires(Role.ADMIN, Role.FINANCE)
async def usage_report(request: web.Request) -> web.Response:
    """``GET /v1/reports/usage?month=YYYY-MM[&low_use=true]``: the month's use; clients paged."""
    limit, before = page_params(request)
    service = request.app[SERVICE]
    raw_month = request.query.get("month")
    month = service.current_month() if raw_month is None else parse_month(raw_month, "month")
    low_use = validation.one_of(request.query.get("low_use", "false"), "low_use", ("true", "false")) == "true"
    report = await service.usage_report(month, low_use, limit, before)
    report["next_cursor"] = render_page(Page([], report["next_cursor"]))["next_cursor"]
    return json_response(report)


# Invoice reconciliation.

RECONCILIATION_SOURCES = {
    "application/xml": InvoiceSource.FINVOICE,
    "text/xml": InvoiceSource.FINVOICE,
    "text/csv": InvoiceSource.CSV,
}


@requires(Role.FINANCE)
async def create_reconciliation(request: web.Request) -> web.Response:
    """Finvoice XML (``application/xml``: bare, or a bank channel file of framed invoices) or CSV (``text/csv``)."""
    source = RECONCILIATION_SOURCES.get(request.content_type)
    if source is None:
        raise web.HTTPUnsupportedMediaType(text="send Finvoice as application/xml, or invoices as text/csv")
    document = await _read_document(request, request.app[SETTINGS].reconciliation_max_bytes)
    key = idempotency(request, request[PRINCIPAL], document)
    written = await request.app[SERVICE].reconcile(document, source, key)
    return written_response(written, 201)


setattr(create_reconciliation, BODY_LIMIT_SETTING, "reconciliation_max_bytes")  # its own limit, read above


async def _read_document(request: web.Request, limit: int) -> bytes:
    """An uploaded file under its own limit, larger than a JSON body's: read from the stream, never
    more than ``limit`` bytes (413 ``payload_too_large`` beyond)."""
    document = bytearray()
    async for chunk in request.content.iter_any():
        document += chunk
        if len(document) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(document))
    return bytes(document)


# Payment batches.


@requires(Role.FINANCE)
async def create_payment_batch(request: web.Request) -> web.Response:
    command, raw = await optional_command(request, requests.NewPaymentBatch)
    key = idempotency(request, request[PRINCIPAL], raw)
    ids = tuple(command.settlement_ids) if command.settlement_ids is not None else None
    return written_response(await request.app[SERVICE].create_payment_batch(ids, key), 201)


@requires(Role.FINANCE)
async def get_payment_batch(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_payment_batch(request.match_info["batch_id"]))


@requires(Role.FINANCE)
async def payment_batch_file(request: web.Request) -> web.Response:
    """The batch's pain.001.001.09 credit-transfer file, to upload to the bank."""
    batch, document = await request.app[SERVICE].payment_file(request.match_info["batch_id"])
    return web.Response(
        body=document,
        headers={
            "Content-Type": "application/xml; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{batch["message_id"]}.xml"',
            "Cache-Control": "no-store",
        },
    )


@requires(Role.FINANCE)
async def cancel_payment_batch(request: web.Request) -> web.Response:
    raw = await optional_body(request)
    key = idempotency(request, request[PRINCIPAL], raw)
    return written_response(await request.app[SERVICE].cancel_payment_batch(request.match_info["batch_id"], key), 200)


# Bank statements.

BANK_STATEMENT_TYPES = ("application/xml", "text/xml")


@requires(Role.FINANCE)
async def create_bank_statement(request: web.Request) -> web.Response:
    """A camt.054 notification or camt.053 statement (``application/xml``): each entry judged."""
    if request.content_type not in BANK_STATEMENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send a camt.054 or camt.053 file as application/xml")
    document = await _read_document(request, request.app[SETTINGS].bank_statement_max_bytes)
    key = idempotency(request, request[PRINCIPAL], document)
    return written_response(await request.app[SERVICE].apply_bank_statement(document, key), 201)


setattr(create_bank_statement, BODY_LIMIT_SETTING, "bank_statement_max_bytes")  # its own limit, read above
