"""The organizer's desk: ``GET /v1/clients?query=`` and ``GET /v1/providers?query=&status=``."""

from __future__ import annotations

from aiohttp import web

from wallet.api.http import json_response, page_params, render_page, requires
from wallet.api.keys import SERVICE
from wallet.auth.tokens import Role


@requires(Role.ADMIN, Role.FINANCE)
async def search_clients(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    page = await request.app[SERVICE].search_clients(request.query.get("query"), limit, before)
    return json_response(render_page(page), headers={"Cache-Control": "no-store"})


@requires(Role.ADMIN, Role.FINANCE)
async def search_providers(request: web.Request) -> web.Response:
    limit, before = page_params(request)
    service = request.app[SERVICE]
    page = await service.search_providers(request.query.get("query"), request.query.get("status"), limit, before)
    return json_response(render_page(page))
