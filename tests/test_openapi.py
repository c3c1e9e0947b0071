"""The OpenAPI document: valid OpenAPI 3.1, one operation for every route and a route for every
operation, and real responses that match it (every documented object closed, so an undocumented
field fails as surely as a missing one)."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import RecordingSms, World
from wallet.api import openapi
from wallet.api.problems import STATUS_BY_CODE
from wallet.auth.tokens import Role
from wallet.clock import FakeClock
from wallet.ledger.errors import OperationError
from wallet.settings import Settings
from wallet.web import ROUTES as PAGE_ROUTES

DOCUMENT_URI = "urn:wallet:openapi"
MONEY_MOVING_POSTS = {
    "/v1/charges",
    "/v1/charges/{charge_id}/confirm",
    "/v1/charges/{charge_id}/void",
    "/v1/charges/{charge_id}/refunds",
    "/v1/credit-runs",
    "/v1/settlements",
    "/v1/settlements/{settlement_id}/paid",
    "/v1/reconciliations",
}
CORE_FLOW = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/token"),
    ("POST", "/v1/login"),
    ("POST", "/v1/login/verify"),
    ("POST", "/v1/categories"),
    ("GET", "/v1/categories"),
    ("POST", "/v1/clients"),
    ("GET", "/v1/clients/{client_id}"),
    ("POST", "/v1/clients/{client_id}/budgets"),
    ("POST", "/v1/providers"),
    ("GET", "/v1/providers/{provider_id}"),
    ("POST", "/v1/providers/{provider_id}/approve"),
    ("POST", "/v1/providers/{provider_id}/credentials"),
    ("POST", "/v1/credit-runs"),
    ("POST", "/v1/charges"),
    ("GET", "/v1/charges"),
    ("GET", "/v1/charges/{charge_id}"),
    ("POST", "/v1/charges/{charge_id}/confirm"),
    ("POST", "/v1/charges/{charge_id}/void"),
    ("POST", "/v1/charges/{charge_id}/refunds"),
    ("POST", "/v1/settlements"),
    ("GET", "/v1/settlements"),
    ("GET", "/v1/settlements/{settlement_id}"),
    ("POST", "/v1/settlements/{settlement_id}/paid"),
    ("GET", "/v1/exports/transactions"),
    ("GET", "/v1/exports/settlements"),
    ("POST", "/v1/reconciliations"),
    ("GET", "/v1/me/wallet"),
    ("GET", "/v1/me/transactions"),
}


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every API route; the web pages and their static files (``wallet.web.ROUTES``, exactly those
    and all of them served) are not part of the API."""
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert served >= PAGE_ROUTES, f"page routes named but not served: {sorted(PAGE_ROUTES - served)}"
    return served - PAGE_ROUTES


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def all_codes(cls: type[OperationError] = OperationError) -> set[str]:
    codes = set()
    for sub in cls.__subclasses__():
        codes.add(sub.code)
        codes |= all_codes(sub)
    return codes


async def fetch_document(http: TestClient) -> dict[str, Any]:
    response = await http.get("/v1/openapi.json")  # no Authorization: client generators fetch it as is
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()  # type: ignore[no-any-return]


# The document.


async def test_every_route_has_an_operation_and_every_operation_a_route(http: TestClient) -> None:
    document = await fetch_document(http)
    served = served_routes(http.app)
    undocumented = served - documented_operations(document)
    assert not undocumented, f"routes without an operation in wallet/api/routes.py: {sorted(undocumented)}"
    missing = documented_operations(document) - served
    assert not missing, f"documented operations with no route: {sorted(missing)}"


async def test_the_document_is_valid_openapi_3_1(http: TestClient) -> None:
    document = await fetch_document(http)
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises naming the first problem


async def test_the_problem_schema_names_every_code(http: TestClient) -> None:
    document = await fetch_document(http)
    codes = set(document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    assert set(STATUS_BY_CODE) | set(openapi.HTTP_CODES) <= codes
    assert all_codes() - {"operation_error"} <= codes, "an error class whose code is not documented"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    if media != "application/problem+json" or "allOf" not in content["schema"]:
                        continue
                    listed = set(content["schema"]["properties"]["code"]["enum"])
                    assert listed <= codes, (method, path, status, listed - codes)
                    for code in listed:  # a code documented under a status is answered with that status
                        expected = 400 if code == "invalid_request" else STATUS_BY_CODE.get(code)
                        if expected is not None:
                            assert str(expected) == status, (method, path, code, status)


async def test_money_moving_posts_take_an_idempotency_key(http: TestClient) -> None:
    document = await fetch_document(http)
    parameters = document["components"]["parameters"]
    assert parameters["IdempotencyKey"]["in"] == "header"
    assert parameters["IdempotencyKey"]["name"] == "Idempotency-Key"
    for path in MONEY_MOVING_POSTS:
        if ("POST", path) not in served_routes(http.app):
            continue
        operation = document["paths"][path]["post"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in operation["parameters"], path
        assert "idempotency_key_reuse" in operation["responses"]["422"]["description"], path


async def test_security_follows_each_handlers_roles(http: TestClient) -> None:
    document = await fetch_document(http)
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    charge = document["paths"]["/v1/charges"]["post"]
    assert charge["security"] == [{"bearer": []}] and charge["x-roles"] == ["provider"]
    assert "401" in charge["responses"] and "403" in charge["responses"]
    assert document["paths"]["/v1/credit-runs"]["post"]["x-roles"] == ["admin", "finance"]
    for open_path in ("/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/login"):
        assert document["paths"][open_path]["get" if open_path != "/v1/login" else "post"]["security"] == []


def test_a_route_without_an_operation_fails_the_check(settings: Settings) -> None:
    """The coverage check is the router against the document: a new route shows up by itself."""
    from wallet.api.app import create_app

    app = create_app(settings, background_jobs=False)

    async def undocumented(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_route("GET", "/v1/undocumented/{thing_id}", undocumented)
    document = openapi.document(app.router, settings)
    assert served_routes(app) - documented_operations(document) == {("GET", "/v1/undocumented/{thing_id}")}


# Real responses against the document.


def closed(schema: Any) -> Any:
    """Every object schema that lists its properties, closed to any other property."""
    if isinstance(schema, dict):
        result = {key: closed(value) for key, value in schema.items()}
        if result.get("type") == "object" and "properties" in result and "additionalProperties" not in result:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Contract:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = closed(copy.deepcopy(document))
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self.templates = [
            (re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$"), path) for path in self.document["paths"]
        ]
        self.seen: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str:
        path = urlsplit(path).path
        if path in self.document["paths"]:
            return path
        matches = [template for pattern, template in self.templates if pattern.match(path)]
        assert len(matches) == 1, (path, matches)
        return matches[0]

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        template = self.template(path)
        operation = self.document["paths"][template][method.lower()]
        assert str(status) in operation["responses"], f"{method} {template}: status {status} is not documented"
        response = operation["responses"][str(status)]
        assert content_type in response.get("content", {}), f"{method} {template} {status}: {content_type}"
        self.seen.add((method, template, status))
        if not is_json(content_type):
            return
        pointer = "/".join(
            [
                "",
                "paths",
                _escape(template),
                method.lower(),
                "responses",
                str(status),
                "content",
                _escape(content_type),
                "schema",
            ]
        )
        validator = Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#{pointer}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
        assert not problems, f"{method} {template} {status} does not match the document: {problems}"


class CheckedWorld(World):
    """A World whose every call is checked against the served document."""

    contract: Contract

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        json: Any = None,
        *,
        key: str | None = None,
        expect: int | None = None,
        **headers: str,
    ) -> tuple[int, Any]:
        status, body, _ = await self.raw(method, path, token, json=json, key=key, **headers)
        if expect is not None:
            assert status == expect, (status, body)
        return status, body

    async def raw(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        json: Any = None,
        data: Any = None,
        key: str | None = None,
        **headers: str,
    ) -> tuple[int, Any, dict[str, str]]:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["Idempotency-Key"] = key
        response = await self.http.request(method, path, json=json, data=data, headers=headers)
        if is_json(response.content_type):
            body = await response.json(content_type=None)
        else:
            body = await response.text()
        self.contract.check(method, path, response.status, response.content_type, body)
        return response.status, body, dict(response.headers)


@pytest.fixture
async def checked(http: TestClient, sms: RecordingSms, clock: FakeClock) -> CheckedWorld:
    world = CheckedWorld(http, sms, clock)
    world.contract = Contract(await fetch_document(http))
    return world


async def test_responses_match_the_document(checked: CheckedWorld) -> None:
    w = checked
    await w.call("GET", "/healthz", expect=200)
    await w.call("GET", "/readyz", expect=200)
    await w.raw("GET", "/metrics")

    # The organizer.
    client, provider = await w.funded(20_000)
    await w.call("GET", "/v1/categories", w.admin, expect=200)
    await w.call("GET", f"/v1/clients/{client['id']}", w.admin, expect=200)
    await w.call("GET", f"/v1/providers/{provider['id']}", w.admin, expect=200)
    await w.call("GET", "/v1/clients/cl_nobody", w.admin, expect=404)
    await w.call("POST", "/v1/categories", w.admin, {"code": "home_care", "name": "Again"}, expect=409)
    await w.call("POST", "/v1/clients", w.admin, {"name": "X", "phone": "not a phone"}, expect=422)
    await w.call("POST", "/v1/credit-runs", w.admin, {"month": "2027-01"}, key="run-1", expect=200)
    await w.call("POST", "/v1/credit-runs", w.admin, {"month": "2031-01"}, expect=422)
    _, credentials = await w.call("POST", f"/v1/providers/{provider['id']}/credentials", w.admin, expect=201)
    await w.call(
        "POST",
        "/v1/token",
        json={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
        expect=200,
    )
    await w.call(
        "POST",
        "/v1/token",
        json={"grant_type": "client_credentials", "client_id": "pc_x", "client_secret": "nope"},
        expect=401,
    )
    await w.call("POST", "/v1/token", json={"client_id": "pc_x", "client_secret": "nope"}, expect=400)

    # The provider.
    status, captured = await w.charge(provider, client, 1_000, key="visit-1")
    assert status == 201 and captured["status"] == "captured"
    _, _, headers = await w.raw(
        "POST",
        "/v1/charges",
        provider["token"],
        key="visit-1",
        json={
            "phone": client["phone"],
            "amount": 1_000,
            "category": "home_care",
            "identity": {"method": "national_id", "national_id": "131052-308T"},
        },
    )
    assert headers.get("Idempotent-Replayed") == "true"
    assert (await w.charge(provider, client, 2_000, key="visit-1"))[0] == 422
    assert (await w.charge(provider, client, 10**6))[0] == 402
    status, pending = await w.charge(provider, client, 500, method="otp")
    assert status == 201 and pending["status"] == "pending"
    confirm = f"/v1/charges/{pending['id']}/confirm"
    await w.call("POST", confirm, provider["token"], {"code": "000000"}, expect=422)
    code = w.sms.last_code(client["phone"])
    await w.call("POST", confirm, provider["token"], {"code": code}, key="confirm-1", expect=200)
    _, to_void = await w.charge(provider, client, 300, method="otp")
    await w.call("POST", f"/v1/charges/{to_void['id']}/void", provider["token"], key="void-1", expect=201)
    await w.call("POST", f"/v1/charges/{captured['id']}/void", provider["token"], expect=409)
    await w.call("POST", f"/v1/charges/{captured['id']}/refunds", provider["token"], {"amount": 200}, expect=201)
    await w.call("POST", f"/v1/charges/{captured['id']}/refunds", provider["token"], {"amount": 5_000}, expect=422)
    await w.call("GET", "/v1/charges?limit=2", provider["token"], expect=200)
    await w.call("GET", f"/v1/charges/{captured['id']}", provider["token"], expect=200)
    await w.call("GET", "/v1/charges/ch_nobody", provider["token"], expect=404)
    await w.call("GET", "/v1/charges", expect=401)
    await w.call("GET", "/v1/charges", w.admin, expect=403)

    # Settlements, exports, reconciliation.
    _, batch = await w.call("POST", "/v1/settlements", provider["token"], key="settle-1", expect=201)
    await w.call("POST", "/v1/settlements", provider["token"], {}, expect=422)
    await w.call("GET", "/v1/settlements", w.finance, expect=200)
    await w.call("GET", f"/v1/settlements/{batch['id']}?limit=1", provider["token"], expect=200)
    for export in ("transactions", "settlements"):
        for export_format in ("csv", "jsonl"):
            status, _, _ = await w.raw("GET", f"/v1/exports/{export}?format={export_format}", w.finance)
            assert status == 200
    euros = f"{batch['amount'] // 100},{batch['amount'] % 100:02d}"
    document = f"reference;amount;business_id;invoice_number\n{batch['reference']};{euros};2077474-0;A-1\n"
    status, reconciliation, _ = await w.raw(
        "POST", "/v1/reconciliations", w.finance, data=document.encode(), **{"Content-Type": "text/csv"}
    )
    assert status == 201 and reconciliation["summary"]["matched"] == 1, reconciliation
    await w.call("POST", f"/v1/settlements/{batch['id']}/paid", w.finance, {"note": "paid"}, expect=200)
    await w.call("POST", f"/v1/settlements/{batch['id']}/paid", w.finance, expect=409)

    # The client.
    await w.call("POST", "/v1/login", json={"phone": client["phone"]}, expect=202)
    login_code = w.sms.last_code(client["phone"])
    _, token = await w.call("POST", "/v1/login/verify", json={"phone": client["phone"], "code": login_code})
    await w.call("GET", "/v1/me/wallet", token["access_token"], expect=200)
    await w.call("GET", "/v1/me/transactions?limit=3", token["access_token"], expect=200)
    await w.call("GET", "/v1/me/transactions?limit=0", token["access_token"], expect=422)

    # The calls above reached every operation of the core flow (the others have their own tests).
    exercised = {(method, path) for method, path, _ in w.contract.seen}
    assert CORE_FLOW - exercised == set(), sorted(CORE_FLOW - exercised)


async def test_a_suspended_provider_and_unknown_fields_still_match(checked: CheckedWorld) -> None:
    w = checked
    client, provider = await w.funded(5_000)
    await w.call("POST", f"/v1/providers/{provider['id']}/suspend", w.admin, expect=200)
    assert (await w.charge(provider, client, 100))[0] == 403
    await w.call("POST", f"/v1/providers/{provider['id']}/approve", w.admin, expect=200)
    other = w.token(Role.PROVIDER, provider_id="pr_unknown")
    assert (await w.charge({"token": other}, client, 100))[0] == 403
