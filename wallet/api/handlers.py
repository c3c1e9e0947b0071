"""Thin handlers: decode the request into its shape (``wallet.shapes.requests``), call the service, render."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from wallet import validation
from wallet.api import openapi
from wallet.api.http import (
    EVENT_CURSOR_PREFIX,
    OFFER_CURSOR_PREFIX,
    idempotency,
    json_response,
    page_params,
    parse_json,
    position_params,
    read_body,
    read_json,
    render_page,
    render_positioned,
    requires,
)
from wallet.api.keys import PRINCIPAL, REQUEST_ID, SERVICE, SETTINGS
from wallet.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from wallet.api.metrics import METRICS
from wallet.api.middlewares import BODY_LIMIT_SETTING
from wallet.api.problems import NO_STORE, BadRequest, oauth_problem
from wallet.api.readiness import JOBS, readiness
from wallet.auth.tokens import Role
from wallet.exports import Encoder, ExportKind, file_name, write_export
from wallet.ledger.charges import ChargeStatus
from wallet.ledger.errors import Forbidden, Unauthorized, Unavailable, ValidationError
from wallet.ledger.months import parse_month
from wallet.ledger.parties import ProviderStatus
from wallet.ledger.places import PILOT_MUNICIPALITIES
from wallet.ledger.reconciliation import InvoiceSource
from wallet.ledger.settlements import SettlementStatus
from wallet.shapes import requests
from wallet.shapes.requests import Shape, decode
from wallet.storage.port import OfferFilter, Page, Written

ADMIN = Role.ADMIN
FINANCE = Role.FINANCE
PROVIDER = Role.PROVIDER
CLIENT = Role.CLIENT
REPRESENTATIVE = Role.REPRESENTATIVE
log = structlog.get_logger(__name__)


def _written(written: Written, status: int) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if written.replayed else None
    return json_response(written.value, status, headers)


# Operations.


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = await readiness(request.app[SERVICE], request.app[JOBS], request.app[SETTINGS])
    rendered = {name: check.render() for name, check in checks.items()}
    failing = [name for name, check in checks.items() if not check.ok]
    if failing:
        raise Unavailable(f"not ready: {', '.join(failing)}", checks=rendered)
    return json_response({"status": "ready", "checks": rendered}, headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store"})


async def openapi_document(request: web.Request) -> web.Response:
    return json_response(openapi.document(request.app.router, request.app[SETTINGS]))


# Tokens.


async def token(request: web.Request) -> web.Response:
    """OAuth2 client credentials: form or JSON body, or HTTP Basic for the id and secret. Refusals
    as RFC 6749 section 5.2 writes them (``problems.oauth_problem``); a 413 or 503 as on any route."""
    try:
        client_id, client_secret = requests.client_credentials(await _token_fields(request))
        issued = await request.app[SERVICE].token_for_credentials(client_id, client_secret)
    except ValidationError as error:  # a parameter missing or malformed, or another grant type
        return oauth_problem(str(error.extra.get("error", "invalid_request")), error.detail, field=error.field)
    except BadRequest as error:  # a body that cannot be read
        return oauth_problem("invalid_request", error.detail)
    except Unauthorized as error:  # unknown id, wrong secret, malformed Basic credentials
        return oauth_problem("invalid_client", error.detail)
    except Forbidden as error:  # a suspended provider: it authenticated, but may not have a token
        return oauth_problem("unauthorized_client", error.detail)
    return json_response(issued.render(), headers=dict(NO_STORE))


async def _token_fields(request: web.Request) -> dict[str, Any]:
    """The token request's fields from a form or a JSON object, with HTTP Basic's id and secret over them."""
    raw = await request.read()
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8", errors="strict"), strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest("the body is not valid UTF-8") from None
        fields: dict[str, Any] = dict(pairs)
        if len(fields) != len(pairs):  # as for JSON: which of two values counts is ambiguous
            raise BadRequest("the body is ambiguous: a field appears twice")
    elif request.content_type == "application/json":
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise ValidationError("body", "must be a JSON object", error="invalid_request")
        fields = {name: value for name, value in body.items() if value is not None}  # null: absent
    else:  # RFC 6749 section 4.4.2: a form; JSON too. Anything else is a malformed request, 400.
        raise BadRequest("send application/x-www-form-urlencoded or application/json")
    if request.headers.get("Authorization", "").lower().startswith("basic "):
        try:
            decoded = base64.b64decode(request.headers["Authorization"][6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        client_id, _, client_secret = decoded.partition(":")
        # RFC 6749 section 2.3: one way of authenticating per request.
        if fields.get("client_secret") is not None:
            raise ValidationError("client_secret", "send the credentials in HTTP Basic or in the body, not both")
        if fields.get("client_id") not in (None, client_id):
            raise ValidationError("client_id", "is not the client id of the HTTP Basic credentials")
        fields["client_id"], fields["client_secret"] = client_id, client_secret
    return fields


def _sms_login_on(request: web.Request) -> None:
    if not request.app[SETTINGS].sms_login:
        raise Forbidden("sign-in by SMS code is off here: sign in with strong identification on the page")


async def login(request: web.Request) -> web.Response:
    _sms_login_on(request)
    login = decode(requests.LoginRequest, await read_json(request))
    return json_response(await request.app[SERVICE].start_login(login.phone), status=202)


async def login_verify(request: web.Request) -> web.Response:
    _sms_login_on(request)
    verification = decode(requests.LoginVerification, await read_json(request))
    issued = await request.app[SERVICE].verify_login(verification.phone, verification.code, verification.client_id)
    return json_response(issued.render(), headers={"Cache-Control": "no-store"})


# Organizer.


@requires(ADMIN)
async def create_category(request: web.Request) -> web.Response:
    command = decode(requests.NewCategory, await read_json(request))
    return json_response(await request.app[SERVICE].create_category(command), status=201)


@requires(ADMIN, FINANCE, PROVIDER, CLIENT, REPRESENTATIVE)
async def list_categories(request: web.Request) -> web.Response:
    return json_response({"data": await request.app[SERVICE].list_categories(), "next_cursor": None})


@requires(ADMIN)
async def create_client(request: web.Request) -> web.Response:
    command = decode(requests.NewClient, await read_json(request))
    return json_response(await request.app[SERVICE].create_client(command), status=201)


@requires(ADMIN)
async def get_client(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_client(request.match_info["client_id"]))


@requires(ADMIN)
async def create_representation(request: web.Request) -> web.Response:
    command = decode(requests.NewRepresentation, await read_json(request))
    created = await request.app[SERVICE].create_representation(request.match_info["client_id"], command)
    return json_response(created, status=201)


@requires(ADMIN)
async def list_representations(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_representations(request.match_info["client_id"], limit, before)
    return json_response(render_page(page))


@requires(ADMIN)
async def revoke_representation(request: web.Request) -> web.Response:
    revoked = await request.app[SERVICE].revoke_representation(
        request.match_info["client_id"], request.match_info["representation_id"]
    )
    return json_response(revoked)


@requires(ADMIN)
async def create_budget(request: web.Request) -> web.Response:
    command = decode(requests.NewBudget, await read_json(request))
    budget = await request.app[SERVICE].create_budget(request.match_info["client_id"], command, request[PRINCIPAL])
    return json_response(budget, status=201)


@requires(ADMIN)
async def list_budgets(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_budgets(request.match_info["client_id"], limit, before)
    return json_response(render_page(page))


@requires(ADMIN)
async def end_budget(request: web.Request) -> web.Response:
    command = decode(requests.BudgetEnd, await read_json(request))
    budget = await request.app[SERVICE].end_budget(
        request.match_info["client_id"], request.match_info["budget_id"], command.end_month
    )
    return json_response(budget)


@requires(ADMIN)
async def create_provider(request: web.Request) -> web.Response:
    command = decode(requests.NewProvider, await read_json(request))
    return json_response(await request.app[SERVICE].create_provider(command), status=201)


@requires(ADMIN, PROVIDER)
async def get_provider(request: web.Request) -> web.Response:
    """The organizer reads any provider; a provider its own (its approved categories, for its till)."""
    provider_id = request.match_info["provider_id"]
    return json_response(await request.app[SERVICE].get_provider(provider_id, request[PRINCIPAL]))


@requires(ADMIN)
async def approve_provider(request: web.Request) -> web.Response:
    provider = await request.app[SERVICE].set_provider_status(
        request.match_info["provider_id"], ProviderStatus.APPROVED
    )
    return json_response(provider)


@requires(ADMIN)
async def suspend_provider(request: web.Request) -> web.Response:
    provider = await request.app[SERVICE].set_provider_status(
        request.match_info["provider_id"], ProviderStatus.SUSPENDED
    )
    return json_response(provider)


@requires(ADMIN)
async def create_credentials(request: web.Request) -> web.Response:
    credentials = await request.app[SERVICE].issue_credentials(request.match_info["provider_id"])
    return json_response(credentials, status=201, headers={"Cache-Control": "no-store"})


# The service catalog and offers.


@requires(ADMIN)
async def create_service(request: web.Request) -> web.Response:
    command = decode(requests.NewService, await read_json(request))
    return json_response(await request.app[SERVICE].create_service(command), status=201)


@requires(ADMIN, FINANCE, PROVIDER, CLIENT, REPRESENTATIVE)
async def list_services(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    category = request.query.get("category")
    if category is not None:
        validation.category_code(category)
    page = await request.app[SERVICE].list_services(category, limit, before)
    return json_response(render_page(page))


@requires(ADMIN, FINANCE, PROVIDER, CLIENT, REPRESENTATIVE)
async def get_service(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_service(request.match_info["service_id"]))


@requires(ADMIN)
async def add_unit_value(request: web.Request) -> web.Response:
    command = decode(requests.NewUnitValue, await read_json(request))
    service = await request.app[SERVICE].add_unit_value(request.match_info["service_id"], command)
    return json_response(service, status=201)


@requires(ADMIN, PROVIDER)
async def create_offer(request: web.Request) -> web.Response:
    command = decode(requests.NewOffer, await read_json(request))
    offer = await request.app[SERVICE].create_offer(request[PRINCIPAL], request.match_info["provider_id"], command)
    return json_response(offer, status=201)


@requires(PROVIDER, ADMIN, FINANCE)
async def list_provider_offers(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_provider_offers(
        request[PRINCIPAL], request.match_info["provider_id"], limit, before
    )
    return json_response(render_page(page))


@requires(ADMIN, PROVIDER)
async def change_offer(request: web.Request) -> web.Response:
    command = decode(requests.OfferChange, await read_json(request))
    offer = await request.app[SERVICE].change_offer(
        request[PRINCIPAL], request.match_info["provider_id"], request.match_info["offer_id"], command
    )
    return json_response(offer)


@requires(ADMIN, PROVIDER)
async def withdraw_offer(request: web.Request) -> web.Response:
    offer = await request.app[SERVICE].withdraw_offer(
        request[PRINCIPAL], request.match_info["provider_id"], request.match_info["offer_id"]
    )
    return json_response(offer)


@requires(ADMIN, FINANCE, CLIENT, REPRESENTATIVE)
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


@requires(ADMIN, FINANCE)
async def create_credit_run(request: web.Request) -> web.Response:
    raw = await read_body(request)
    command = decode(requests.CreditRunRequest, parse_json(raw))
    key = idempotency(request, request[PRINCIPAL], raw)
    with request.app[METRICS].credit_run_outcome("api") as outcome:
        written = outcome(await request.app[SERVICE].credit_run(command.month, key))
    return _written(written, 201 if written.value["credited_now"] else 200)


# Providers.


@requires(PROVIDER)
async def create_charge(request: web.Request) -> web.Response:
    with request.app[METRICS].charge_outcome("create") as outcome:
        raw = await read_body(request)
        body = parse_json(raw)
        command = decode(requests.NewCharge, body)
        key = idempotency(request, request[PRINCIPAL], raw, body)
        written = outcome(await request.app[SERVICE].charge(request[PRINCIPAL], command, key))
    return _written(written, 201)


@requires(PROVIDER)
async def confirm_charge(request: web.Request) -> web.Response:
    with request.app[METRICS].charge_outcome("confirm") as outcome:
        raw = await read_body(request)
        confirmation = decode(requests.ChargeConfirmation, parse_json(raw))
        key = idempotency(request, request[PRINCIPAL], raw)
        charge_id = request.match_info["charge_id"]
        written = outcome(
            await request.app[SERVICE].confirm_charge(request[PRINCIPAL], charge_id, confirmation.code, key)
        )
    return _written(written, 200)


@requires(PROVIDER)
async def void_charge(request: web.Request) -> web.Response:
    key = idempotency(request, request[PRINCIPAL], b"")  # a body, if any, is ignored
    written = await request.app[SERVICE].void_charge(request[PRINCIPAL], request.match_info["charge_id"], key)
    return _written(written, 201)  # PRODUCT.md: void and refunds answer 201 (the void is a new ledger movement)


@requires(PROVIDER)
async def create_refund(request: web.Request) -> web.Response:
    raw = await read_body(request)
    refund = decode(requests.NewRefund, parse_json(raw))
    key = idempotency(request, request[PRINCIPAL], raw)
    written = await request.app[SERVICE].refund(request[PRINCIPAL], request.match_info["charge_id"], refund.amount, key)
    return _written(written, 201)


@requires(PROVIDER)
async def list_charges(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    status = request.query.get("status")
    if status is not None:
        validation.one_of(status, "status", tuple(s.value for s in ChargeStatus))
    page = await request.app[SERVICE].list_charges(request[PRINCIPAL], limit, before, status)
    return json_response(render_page(page))


@requires(PROVIDER)
async def get_charge(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_charge(request[PRINCIPAL], request.match_info["charge_id"]))


# Clients.


@requires(CLIENT, REPRESENTATIVE)
async def my_wallet(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].wallet(request[PRINCIPAL]))


@requires(CLIENT, REPRESENTATIVE)
async def my_transactions(request: web.Request) -> web.Response:
    limit, before = page_params(request, EVENT_CURSOR_PREFIX)
    page = await request.app[SERVICE].transactions(request[PRINCIPAL], limit, before)
    return json_response(render_page(page, EVENT_CURSOR_PREFIX))


# Settlements.


async def _optional_body(request: web.Request) -> bytes:
    """A JSON body, or none at all: a POST whose fields are all optional may come empty."""
    if not request.body_exists:
        return b""
    raw = await request.read()
    if raw.strip() and request.content_type not in ("application/json",):
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    return raw


async def _optional_command(request: web.Request, shape: type[Shape]) -> tuple[Shape, bytes]:
    """The body as ``shape``, an empty body as all its defaults; and the raw bytes, for the key."""
    raw = await _optional_body(request)
    return decode(shape, parse_json(raw) if raw.strip() else {}), raw


@requires(PROVIDER)
async def create_settlement(request: web.Request) -> web.Response:
    command, raw = await _optional_command(request, requests.NewSettlement)
    key = idempotency(request, request[PRINCIPAL], raw)
    return _written(await request.app[SERVICE].settle(request[PRINCIPAL], command.cutoff(), key), 201)


@requires(PROVIDER, FINANCE, ADMIN)
async def list_settlements(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    status = request.query.get("status")
    if status is not None:
        validation.one_of(status, "status", tuple(s.value for s in SettlementStatus))
    provider_id = request.query.get("provider_id")
    page = await request.app[SERVICE].list_settlements(request[PRINCIPAL], limit, before, status, provider_id)
    return json_response(render_page(page))


@requires(PROVIDER, FINANCE, ADMIN)
async def get_settlement(request: web.Request) -> web.Response:
    """A batch with its status history and a page of its lines (``?limit=&cursor=`` page the lines)."""
    limit, after = page_params(request)
    settlement = await request.app[SERVICE].get_settlement(
        request[PRINCIPAL], request.match_info["settlement_id"], limit, after
    )
    cursor = settlement.pop("lines_next_cursor")
    settlement["lines_next_cursor"] = render_page(Page([], cursor))["next_cursor"]
    return json_response(settlement)


@requires(FINANCE)
async def mark_settlement_paid(request: web.Request) -> web.Response:
    payment, raw = await _optional_command(request, requests.SettlementPayment)
    key = idempotency(request, request[PRINCIPAL], raw)
    written = await request.app[SERVICE].mark_settlement_paid(request.match_info["settlement_id"], payment.note, key)
    return _written(written, 200)


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


@requires(FINANCE)
async def export_transactions(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.TRANSACTIONS)


@requires(FINANCE)
async def export_settlements(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.SETTLEMENTS)


@requires(FINANCE)
async def export_items(request: web.Request) -> web.StreamResponse:
    return await _export(request, ExportKind.ITEMS)


# The organizer's view of use.


@requires(ADMIN, FINANCE)
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


@requires(FINANCE)
async def create_reconciliation(request: web.Request) -> web.Response:
    """Finvoice XML (``application/xml``: bare, or a bank channel file of framed invoices) or CSV (``text/csv``)."""
    source = RECONCILIATION_SOURCES.get(request.content_type)
    if source is None:
        raise web.HTTPUnsupportedMediaType(text="send Finvoice as application/xml, or invoices as text/csv")
    document = await _read_document(request, request.app[SETTINGS].reconciliation_max_bytes)
    key = idempotency(request, request[PRINCIPAL], document)
    written = await request.app[SERVICE].reconcile(document, source, key)
    return _written(written, 201)


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


@requires(FINANCE)
async def create_payment_batch(request: web.Request) -> web.Response:
    command, raw = await _optional_command(request, requests.NewPaymentBatch)
    key = idempotency(request, request[PRINCIPAL], raw)
    ids = tuple(command.settlement_ids) if command.settlement_ids is not None else None
    return _written(await request.app[SERVICE].create_payment_batch(ids, key), 201)


@requires(FINANCE)
async def get_payment_batch(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_payment_batch(request.match_info["batch_id"]))


@requires(FINANCE)
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


@requires(FINANCE)
async def cancel_payment_batch(request: web.Request) -> web.Response:
    raw = await _optional_body(request)
    key = idempotency(request, request[PRINCIPAL], raw)
    return _written(await request.app[SERVICE].cancel_payment_batch(request.match_info["batch_id"], key), 200)


# Bank statements.

BANK_STATEMENT_TYPES = ("application/xml", "text/xml")


@requires(FINANCE)
async def create_bank_statement(request: web.Request) -> web.Response:
    """A camt.054 notification or camt.053 statement (``application/xml``): each entry judged."""
    if request.content_type not in BANK_STATEMENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send a camt.054 or camt.053 file as application/xml")
    document = await _read_document(request, request.app[SETTINGS].bank_statement_max_bytes)
    key = idempotency(request, request[PRINCIPAL], document)
    return _written(await request.app[SERVICE].apply_bank_statement(document, key), 201)


setattr(create_bank_statement, BODY_LIMIT_SETTING, "bank_statement_max_bytes")  # its own limit, read above


# Places.


@requires(ADMIN, FINANCE, PROVIDER, CLIENT, REPRESENTATIVE)
async def list_municipalities(request: web.Request) -> web.Response:
    """The municipalities an offer may name, with their names: the pages' pickers show names."""
    places = [{"code": code, "name": name} for code, name in PILOT_MUNICIPALITIES.items()]
    return json_response({"data": sorted(places, key=lambda place: place["name"]), "next_cursor": None})
