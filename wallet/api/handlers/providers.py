"""A provider's handlers: its offers, charges (confirming, voiding, refunding them) and settling."""

from __future__ import annotations

from aiohttp import web

from wallet import validation
from wallet.api.http import (
    idempotency,
    json_response,
    optional_command,
    page_params,
    parse_json,
    read_body,
    read_json,
    render_page,
    requires,
    written_response,
)
from wallet.api.keys import PRINCIPAL, SERVICE
from wallet.api.metrics import METRICS
from wallet.auth.tokens import Role
from wallet.ledger.charges import ChargeStatus
from wallet.shapes import requests
from wallet.shapes.requests import decode

# Offers.


@requires(Role.ADMIN, Role.PROVIDER)
async def create_offer(request: web.Request) -> web.Response:
    command = decode(requests.NewOffer, await read_json(request))
    offer = await request.app[SERVICE].create_offer(request[PRINCIPAL], request.match_info["provider_id"], command)
    return json_response(offer, status=201)


@requires(Role.PROVIDER, Role.ADMIN, Role.FINANCE)
async def list_provider_offers(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_provider_offers(
        request[PRINCIPAL], request.match_info["provider_id"], limit, before
    )
    return json_response(render_page(page))


@requires(Role.ADMIN, Role.PROVIDER)
async def change_offer(request: web.Request) -> web.Response:
    command = decode(requests.OfferChange, await read_json(request))
    offer = await request.app[SERVICE].change_offer(
        request[PRINCIPAL], request.match_info["provider_id"], request.match_info["offer_id"], command
    )
    return json_response(offer)


@requires(Role.ADMIN, Role.PROVIDER)
async def withdraw_offer(request: web.Request) -> web.Response:
    offer = await request.app[SERVICE].withdraw_offer(
        request[PRINCIPAL], request.match_info["provider_id"], request.match_info["offer_id"]
    )
    return json_response(offer)


# Charges.


@requires(Role.PROVIDER)
async def create_charge(request: web.Request) -> web.Response:
    with request.app[METRICS].charge_outcome("create") as outcome:
        raw = await read_body(request)
        body = parse_json(raw)
        command = decode(requests.NewCharge, body)
        key = idempotency(request, request[PRINCIPAL], raw, body)
        written = outcome(await request.app[SERVICE].charge(request[PRINCIPAL], command, key))
    return written_response(written, 201)


@requires(Role.PROVIDER)
async def confirm_charge(request: web.Request) -> web.Response:
    with request.app[METRICS].charge_outcome("confirm") as outcome:
        raw = await read_body(request)
        confirmation = decode(requests.ChargeConfirmation, parse_json(raw))
        key = idempotency(request, request[PRINCIPAL], raw)
        charge_id = request.match_info["charge_id"]
        written = outcome(
            await request.app[SERVICE].confirm_charge(request[PRINCIPAL], charge_id, confirmation.code, key)
        )
    return written_response(written, 200)


@requires(Role.PROVIDER)
async def void_charge(request: web.Request) -> web.Response:
    key = idempotency(request, request[PRINCIPAL], b"")  # a body, if any, is ignored
    written = await request.app[SERVICE].void_charge(request[PRINCIPAL], request.match_info["charge_id"], key)
    return written_response(written, 201)  # PRODUCT.md: void and refunds answer 201 (the void is a new ledger movement)


@requires(Role.PROVIDER)
async def create_refund(request: web.Request) -> web.Response:
    raw = await read_body(request)
    refund = decode(requests.NewRefund, parse_json(raw))
    key = idempotency(request, request[PRINCIPAL], raw)
    written = await request.app[SERVICE].refund(request[PRINCIPAL], request.match_info["charge_id"], refund.amount, key)
    return written_response(written, 201)


@requires(Role.PROVIDER)
async def list_charges(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    status = request.query.get("status")
    if status is not None:
        validation.one_of(status, "status", tuple(s.value for s in ChargeStatus))
    page = await request.app[SERVICE].list_charges(request[PRINCIPAL], limit, before, status)
    return json_response(render_page(page))


@requires(Role.PROVIDER)
async def get_charge(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_charge(request[PRINCIPAL], request.match_info["charge_id"]))


# Settling what it has charged.


@requires(Role.PROVIDER)
async def create_settlement(request: web.Request) -> web.Response:
    command, raw = await optional_command(request, requests.NewSettlement)
    key = idempotency(request, request[PRINCIPAL], raw)
    return written_response(await request.app[SERVICE].settle(request[PRINCIPAL], command.cutoff(), key), 201)
