"""The organizer's handlers: categories, clients and their representatives, budgets, providers,
the service catalog and the municipalities, and the monthly credit run."""

from __future__ import annotations

from aiohttp import web

from wallet import validation
from wallet.api.http import (
    idempotency,
    json_response,
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
from wallet.ledger.parties import ProviderStatus
from wallet.ledger.places import PILOT_MUNICIPALITIES
from wallet.shapes import requests
from wallet.shapes.requests import decode


@requires(Role.ADMIN)
async def create_category(request: web.Request) -> web.Response:
    command = decode(requests.NewCategory, await read_json(request))
    return json_response(await request.app[SERVICE].create_category(command), status=201)


@requires(Role.ADMIN, Role.FINANCE, Role.PROVIDER, Role.CLIENT, Role.REPRESENTATIVE)
async def list_categories(request: web.Request) -> web.Response:
    return json_response({"data": await request.app[SERVICE].list_categories(), "next_cursor": None})


@requires(Role.ADMIN)
async def create_client(request: web.Request) -> web.Response:
    command = decode(requests.NewClient, await read_json(request))
    return json_response(await request.app[SERVICE].create_client(command), status=201)


@requires(Role.ADMIN)
async def get_client(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_client(request.match_info["client_id"]))


@requires(Role.ADMIN)
async def create_representation(request: web.Request) -> web.Response:
    command = decode(requests.NewRepresentation, await read_json(request))
    created = await request.app[SERVICE].create_representation(request.match_info["client_id"], command)
    return json_response(created, status=201)


@requires(Role.ADMIN)
async def list_representations(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_representations(request.match_info["client_id"], limit, before)
    return json_response(render_page(page))


@requires(Role.ADMIN)
async def revoke_representation(request: web.Request) -> web.Response:
    revoked = await request.app[SERVICE].revoke_representation(
        request.match_info["client_id"], request.match_info["representation_id"]
    )
    return json_response(revoked)


@requires(Role.ADMIN)
async def create_budget(request: web.Request) -> web.Response:
    command = decode(requests.NewBudget, await read_json(request))
    budget = await request.app[SERVICE].create_budget(request.match_info["client_id"], command, request[PRINCIPAL])
    return json_response(budget, status=201)


@requires(Role.ADMIN)
async def list_budgets(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].list_budgets(request.match_info["client_id"], limit, before)
    return json_response(render_page(page))


@requires(Role.ADMIN)
async def end_budget(request: web.Request) -> web.Response:
    command = decode(requests.BudgetEnd, await read_json(request))
    budget = await request.app[SERVICE].end_budget(
        request.match_info["client_id"], request.match_info["budget_id"], command.end_month
    )
    return json_response(budget)


@requires(Role.ADMIN)
async def create_provider(request: web.Request) -> web.Response:
    command = decode(requests.NewProvider, await read_json(request))
    return json_response(await request.app[SERVICE].create_provider(command), status=201)


@requires(Role.ADMIN, Role.PROVIDER)
async def get_provider(request: web.Request) -> web.Response:
    """The organizer reads any provider; a provider its own (its approved categories, for its till)."""
    provider_id = request.match_info["provider_id"]
    return json_response(await request.app[SERVICE].get_provider(provider_id, request[PRINCIPAL]))


@requires(Role.ADMIN)
async def approve_provider(request: web.Request) -> web.Response:
    provider = await request.app[SERVICE].set_provider_status(
        request.match_info["provider_id"], ProviderStatus.APPROVED
    )
    return json_response(provider)


@requires(Role.ADMIN)
async def suspend_provider(request: web.Request) -> web.Response:
    provider = await request.app[SERVICE].set_provider_status(
        request.match_info["provider_id"], ProviderStatus.SUSPENDED
    )
    return json_response(provider)


@requires(Role.ADMIN)
async def create_credentials(request: web.Request) -> web.Response:
    credentials = await request.app[SERVICE].issue_credentials(request.match_info["provider_id"])
    return json_response(credentials, status=201, headers={"Cache-Control": "no-store"})


# The service catalog.


@requires(Role.ADMIN)
async def create_service(request: web.Request) -> web.Response:
    command = decode(requests.NewService, await read_json(request))
    return json_response(await request.app[SERVICE].create_service(command), status=201)


@requires(Role.ADMIN, Role.FINANCE, Role.PROVIDER, Role.CLIENT, Role.REPRESENTATIVE)
async def list_services(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    category = request.query.get("category")
    if category is not None:
        validation.category_code(category)
    page = await request.app[SERVICE].list_services(category, limit, before)
    return json_response(render_page(page))


@requires(Role.ADMIN, Role.FINANCE, Role.PROVIDER, Role.CLIENT, Role.REPRESENTATIVE)
async def get_service(request: web.Request) -> web.Response:
    return json_response(await request.app[SERVICE].get_service(request.match_info["service_id"]))


@requires(Role.ADMIN)
async def add_unit_value(request: web.Request) -> web.Response:
    command = decode(requests.NewUnitValue, await read_json(request))
    service = await request.app[SERVICE].add_unit_value(request.match_info["service_id"], command)
    return json_response(service, status=201)


# The monthly credit run.


@requires(Role.ADMIN, Role.FINANCE)
async def create_credit_run(request: web.Request) -> web.Response:
    raw = await read_body(request)
    command = decode(requests.CreditRunRequest, parse_json(raw))
    key = idempotency(request, request[PRINCIPAL], raw)
    with request.app[METRICS].credit_run_outcome("api") as outcome:
        written = outcome(await request.app[SERVICE].credit_run(command.month, key))
    return written_response(written, 201 if written.value["credited_now"] else 200)


# Places.


@requires(Role.ADMIN, Role.FINANCE, Role.PROVIDER, Role.CLIENT, Role.REPRESENTATIVE)
async def list_municipalities(request: web.Request) -> web.Response:
    """The municipalities an offer may name, with their names: the pages' pickers show names."""
    places = [{"code": code, "name": name} for code, name in PILOT_MUNICIPALITIES.items()]
    return json_response({"data": sorted(places, key=lambda place: place["name"]), "next_cursor": None})
