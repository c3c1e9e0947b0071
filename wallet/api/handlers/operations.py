"""Operations: liveness, readiness, the Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from wallet.api import openapi
from wallet.api.http import (
    json_response,
)
from wallet.api.keys import SERVICE, SETTINGS
from wallet.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from wallet.api.metrics import METRICS
from wallet.api.readiness import JOBS, readiness
from wallet.ledger.errors import Unavailable


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
