"""Hostile input on every route: always a 4xx problem+json, never a 5xx, and nothing written.

The POST routes are read from the app's router and their bodies from the OpenAPI document, so a
new route is covered by these tests (and a new JSON route without a valid body below fails one).
Each refusal is checked against the whole database (tests/state.py) and then the same route is
sent a valid body, which succeeds: the refusals were for the hostile part, not for a broken setup.

Decisions where the issue was silent:
- Unknown members of a JSON object are ignored (a tolerant reader: clients may be newer than the
  service), on every route alike; they never set anything (no mass assignment of id or status).
- A member named twice in one object is refused (400 invalid_request): parsers differ on which one
  wins, so a proxy and this service could read two different requests from the same bytes.
- A route that takes no body (void, approve, ...) ignores one, as the document says.
- A header too large for aiohttp's HTTP parser (over 8190 bytes) or a request that is not HTTP is
  refused by the parser itself, before the app: 400 text/plain, the connection closed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from tests.camt import Entry, notification
from tests.conftest import BUSINESS_ID, IBAN, NATIONAL_ID, OTHER_NATIONAL_ID, World
from tests.state import changed_tables, database_state
from wallet.api import openapi
from wallet.api.app import create_app
from wallet.auth.tokens import Role
from wallet.ledger.charges import IdentityMethod
from wallet.ledger.errors import ValidationError
from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.settings import Settings
from wallet.shapes import requests
from wallet.web import ROUTES as PAGE_ROUTES

PROBLEM = "application/problem+json"
NAN, INFINITY = float("nan"), float("inf")


def _routes() -> tuple[web.Application, dict[str, Any]]:
    """The route table and the document, from an app that is built but never started."""
    app = create_app(Settings(), background_jobs=False)
    return app, openapi.document(app.router, Settings())


_APP, DOCUMENT = _routes()
POST_ROUTES = sorted(
    route.resource.canonical
    for route in _APP.router.routes()
    if route.method == "POST" and route.resource is not None and ("POST", route.resource.canonical) not in PAGE_ROUTES
)  # the pages' sign-out (POST /v1/auth/logout) is a page route: tests/test_oidc_signin.py takes it
GET_ROUTES = sorted(
    route.resource.canonical
    for route in _APP.router.routes()
    if route.method == "GET" and route.resource is not None and ("GET", route.resource.canonical) not in PAGE_ROUTES
)  # the web pages and their files are not API routes: tests/test_web.py takes them
ROLES = {
    (route.method, route.resource.canonical): tuple(getattr(route.handler, "roles", ()))
    for route in _APP.router.routes()
    if route.resource is not None
}


def _operation(method: str, path: str) -> dict[str, Any]:
    return DOCUMENT["paths"][path][method.lower()]  # type: ignore[no-any-return]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _json_body_schema(path: str) -> dict[str, Any] | None:
    body = _operation("POST", path).get("requestBody")
    if body is None or "application/json" not in body["content"]:
        return None
    return _resolve(body["content"]["application/json"]["schema"])


def _body_required(path: str) -> bool:
    return bool(_operation("POST", path).get("requestBody", {}).get("required"))


JSON_ROUTES = [path for path in POST_ROUTES if _json_body_schema(path) is not None]
BODYLESS_ROUTES = [path for path in POST_ROUTES if "requestBody" not in _operation("POST", path)]
IDEMPOTENT_ROUTES = [
    path
    for path in POST_ROUTES
    if {"$ref": "#/components/parameters/IdempotencyKey"} in _operation("POST", path).get("parameters", [])
]
PAGED_ROUTES = [
    path
    for path in GET_ROUTES
    if {"$ref": "#/components/parameters/Limit"} in _operation("GET", path).get("parameters", [])
]


# A world in which every POST route has something real to act on.


class Scene:
    def __init__(self, world: World) -> None:
        self.world = world
        self.values: dict[str, Any] = {}

    async def build(self) -> Scene:
        w = self.world
        client, provider = await w.funded(50_000)
        _, captured = await w.charge(provider, client, 1_000)
        _, batch = await w.call("POST", "/v1/settlements", provider["token"], expect=201)
        _, unsettled = await w.charge(provider, client, 500)
        _, pending = await w.charge(provider, client, 700, method="otp")
        otp = w.sms.last_code(client["phone"])
        _, waiting = await w.charge(provider, client, 300, method="app")
        await w.call("POST", "/v1/login", json={"phone": client["phone"]}, expect=202)
        login_code = w.sms.last_code(client["phone"])
        without_budget = await w.client(national_id=None)
        _, representation = await w.call(
            "POST",
            f"/v1/clients/{client['id']}/representatives",
            w.admin,
            {"phone": "+358401234777", "scope": "manage"},
            expect=201,
        )
        _, budgets = await w.call("GET", f"/v1/clients/{client['id']}/budgets", w.admin, expect=200)
        name = {"fi": "Kotipalvelu", "sv": "Hemservice"}
        service = {"category": "home_care", "name": name, "unit": "hour", "unit_value": 3000}
        _, offered = await w.call("POST", "/v1/services", w.admin, {**service, "code": "home_help"}, expect=201)
        await w.call("POST", "/v1/services", w.admin, {**service, "code": "cleaning"}, expect=201)
        _, offer = await w.call(
            "POST",
            f"/v1/providers/{provider['id']}/offers",
            provider["token"],
            {"service": "home_help", "unit_price": 3500},
            expect=201,
        )
        assert captured["status"] == unsettled["status"] == "captured" and pending["status"] == "pending"
        assert waiting["status"] == "pending"
        w.clock.advance(seconds=60)  # so that "until" = now closes the unsettled capture
        self.values = {
            "client": client,
            "provider": provider,
            "captured": captured,
            "batch": batch,
            "pending": pending,
            "otp": otp,
            "waiting": waiting,
            "login_code": login_code,
            "without_budget": without_budget,
            "representation": representation,
            "budget": budgets["data"][0],
            "service": offered,
            "offer": offer,
        }
        return self

    async def with_credentials(self) -> Scene:
        """The provider's client id and secret: only where needed, their hashing is slow on purpose."""
        path = f"/v1/providers/{self['provider']['id']}/credentials"
        _, self.values["credentials"] = await self.world.call("POST", path, self.world.admin, expect=201)
        return self

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def token(self, method: str, path: str) -> str | None:
        roles = ROLES[(method, path)]
        if not roles:
            return None
        return {
            Role.ADMIN: self.world.admin,
            Role.FINANCE: self.world.finance,
            Role.PROVIDER: self["provider"]["token"],
            Role.CLIENT: self["client"]["token"],
        }[roles[0]]

    def path(self, template: str, *, missing: bool = False) -> str:
        """The template filled with real ids (or ids never issued)."""
        if missing:
            ids = {
                "client_id": "cl_never",
                "provider_id": "pr_never",
                "charge_id": "ch_never",
                "settlement_id": "se_never",
                "month": "2027-01",
                "representation_id": "rl_never",
                "budget_id": "bu_never",
                "batch_id": "pb_never",
                "service_id": "sv_never",
                "offer_id": "of_never",
            }
        else:
            charge = self["waiting"] if template.startswith("/v1/me/") else self["pending"]
            if template.endswith("/refunds"):
                charge = self["captured"]
            client = self["without_budget"] if template.endswith("/budgets") else self["client"]
            ids = {
                "client_id": client["id"],
                "provider_id": self["provider"]["id"],
                "charge_id": charge["id"],
                "settlement_id": self["batch"]["id"],
                "month": "2027-01",
                "representation_id": self["representation"]["id"],
                "budget_id": self["budget"]["id"],
                "batch_id": "pb_never",  # payment batches are made by tests/test_payment_batches.py
                "service_id": self["service"]["id"],
                "offer_id": self["offer"]["id"],
            }
        return template.format(**ids)


# A body each JSON route accepts in the scene above; the hostile bodies are these, spoilt.
VALID_BODIES: dict[str, Callable[[Scene], dict[str, Any]]] = {
    "/v1/token": lambda s: {
        "grant_type": "client_credentials",
        "client_id": s["credentials"]["client_id"],
        "client_secret": s["credentials"]["client_secret"],
    },
    "/v1/login": lambda s: {"phone": s["client"]["phone"]},
    "/v1/login/verify": lambda s: {"phone": s["client"]["phone"], "code": s["login_code"]},
    "/v1/categories": lambda s: {"code": "respite_care", "name": "Omaishoidon vapaa"},
    "/v1/clients": lambda s: {"name": "Eino Esimerkki", "phone": "+358401234999", "national_id": OTHER_NATIONAL_ID},
    "/v1/clients/{client_id}/budgets": lambda s: {
        "start_month": "2027-01",
        "end_month": "2027-12",
        "unused": "expire",
        "lines": [{"category": "home_care", "monthly_amount": 1_000}],
    },
    "/v1/clients/{client_id}/budgets/{budget_id}/end": lambda s: {"end_month": "2027-06"},
    "/v1/clients/{client_id}/budgets/{budget_id}/decisions": lambda s: {
        "from_month": "2027-03",
        "lines": [{"category": "home_care", "monthly_amount": 2_000}],
    },
    "/v1/providers": lambda s: {
        "name": "Apu Oy",
        "business_id": BUSINESS_ID,
        "iban": IBAN,
        "categories": ["home_care"],
    },
    "/v1/credit-runs": lambda s: {"month": "2027-02"},
    "/v1/charges": lambda s: {
        "phone": s["client"]["phone"],
        "amount": 100,
        "category": "home_care",
        "description": "Kotikäynti",
        "identity": {"method": "national_id", "national_id": NATIONAL_ID},
    },
    "/v1/charges/{charge_id}/confirm": lambda s: {"code": s["otp"]},
    "/v1/charges/{charge_id}/refunds": lambda s: {"amount": 100},
    "/v1/settlements": lambda s: {"until": "2027-01-15T10:00:30Z"},
    "/v1/settlements/{settlement_id}/paid": lambda s: {"note": "Maksettu"},
    "/v1/payment-batches": lambda s: {"settlement_ids": [s["batch"]["id"]]},
    "/v1/services": lambda s: {
        "code": "escort",
        "category": "home_care",
        "name": {"fi": "Saattaja", "sv": "Ledsagare", "en": "Escort"},
        "unit": "trip",
        "unit_value": 2500,
    },
    "/v1/services/{service_id}/unit-values": lambda s: {"unit_value": 3100, "valid_from": "2027-02-01"},
    # Municipalities and languages are left out: an empty list is a valid one (tests/test_catalog.py
    # refuses their bad codes).
    "/v1/providers/{provider_id}/offers": lambda s: {
        "service": "cleaning",
        "unit_price": 2800,
        "description": "Arkisin",
        "address": "Kauppakatu 1, Kajaani",
    },
    "/v1/clients/{client_id}/representatives": lambda s: {
        "phone": "+358401234888",
        "scope": "view",
        "name": "Omainen",
        "national_id": OTHER_NATIONAL_ID,
    },
}
# Members inside members, spoilt one at a time like the top-level ones.
NESTED_FIELDS: dict[str, list[tuple[tuple[str | int, ...], str]]] = {
    "/v1/charges": [(("identity", "method"), "string"), (("identity", "national_id"), "string")],
    "/v1/clients/{client_id}/budgets": [
        (("lines", 0, "category"), "string"),
        (("lines", 0, "monthly_amount"), "integer"),
    ],
    "/v1/providers": [(("categories", 0), "string")],
    "/v1/payment-batches": [(("settlement_ids", 0), "string")],
}

# Values no field of their type accepts.
NOT_A_STRING = [10**400, -(10**400), 1e308, -1, 0, True, False, 12.5, [], {}, ["x"], {"x": 1}, NAN, INFINITY]
BAD_STRINGS = [
    "\u202e",
    "Aino \u202eAsiakas",
    "\u2066x\u2069",
    "\x00",
    "a\x00b",
    "a\nb",
    "a\x1bb",
    "x" * 10_000,
    "\ud800",
    "\ue000",
    "\uffff",
    "\x1c\x85" + "a" * 250,  # strip() would drop these two and leave a string under most limits
    "Aino\n",
    "\tAino",  # a control character at an end is still a control character
]
BAD_INTEGERS = [
    "100",
    "1e3",
    "",
    12.5,
    100.0,
    1e308,
    10**400,
    -(10**400),
    -1,
    0,
    MAX_AMOUNT_CENTS + 1,
    True,
    False,
    [],
    {},
    [100],
    NAN,
    INFINITY,
    -INFINITY,
    "\u202e",
]
BAD_OBJECTS = [10**400, "national_id", [], True, 1.5, NAN, {}, {"method": "\u202e"}, {"method": ["otp"]}]
BAD_ARRAYS = [10**400, "home_care", {}, [], [None], [10**400], [[]], ["\u202e"], ["home_care"] * 1_000, NAN]
HOSTILE_VALUES = {
    "string": NOT_A_STRING + BAD_STRINGS,
    "integer": BAD_INTEGERS,
    "object": BAD_OBJECTS,
    "array": BAD_ARRAYS,
}


def _field_type(schema: dict[str, Any]) -> str:
    schema = _resolve(schema)
    if "oneOf" in schema:
        return "object"
    kind = schema["type"]
    return kind if isinstance(kind, str) else next(k for k in kind if k != "null")


def _dumps(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode()  # NaN and Infinity go out as the bare literals


def _set(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _has_constant(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_constant(item) for item in value)
    if isinstance(value, dict):
        return any(_has_constant(item) for item in value.values())
    return False


async def _send(
    world: World,
    method: str,
    path: str | URL,
    token: str | None,
    data: bytes | None = None,
    content_type: str | None = "application/json",
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    """Send raw bytes; check the answer is a 4xx problem+json with type, title, status and code."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    skip = []
    if content_type is None:
        skip.append("Content-Type")
    else:
        headers["Content-Type"] = content_type
    payload: Any = io.BytesIO(data) if data is not None and len(data) > 1_000_000 else data  # aiohttp's advice
    response = await world.http.request(method, path, data=payload, headers=headers, skip_auto_headers=skip)
    text = await response.text()
    assert 400 <= response.status < 500, (method, str(path), response.status, text[:300])
    assert response.content_type == PROBLEM, (method, str(path), response.status, response.content_type, text[:300])
    problem = json.loads(text)
    assert problem["status"] == response.status and isinstance(problem["code"], str), problem
    assert isinstance(problem["type"], str) and isinstance(problem["title"], str), problem
    return response.status, problem


class Unchanged:
    """``async with Unchanged(world):`` fails if the block wrote anything anywhere."""

    def __init__(self, world: World) -> None:
        self.db = world.service.settings.db

    async def __aenter__(self) -> None:
        self.before = database_state(self.db)

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            assert changed_tables(self.before, database_state(self.db)) == []


# The routes that read an uploaded file rather than JSON, with the setting that bounds the file.
DOCUMENT_ROUTES = {"/v1/reconciliations": "reconciliation_max_bytes", "/v1/bank-statements": "bank_statement_max_bytes"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The payer's account set, so that a payment batch can be made."""
    return replace(settings, payer_name="Hyvinvointialue", payer_iban="FI4819503000000010", payer_bic="NDEAFIHH")


@pytest.fixture
async def scene(world: World) -> Scene:
    return await Scene(world).build()


def test_every_json_route_has_a_valid_body_here() -> None:
    """A new POST route with a JSON body must be given one here, and so is covered by every test below."""
    assert set(JSON_ROUTES) == set(VALID_BODIES), "add the new route to VALID_BODIES in tests/test_hostile_input.py"
    assert len(POST_ROUTES) >= 20 and BODYLESS_ROUTES and IDEMPOTENT_ROUTES and PAGED_ROUTES
    assert set(POST_ROUTES) == set(JSON_ROUTES) | set(BODYLESS_ROUTES) | set(DOCUMENT_ROUTES)


# Bodies that are not JSON objects, on every POST route.

RAW_BODIES: dict[str, bytes] = {
    "malformed": b'{"amount": ',
    "unterminated string": b'{"name": "abc',
    "trailing garbage": b'{"name": "a"} x',
    "two documents": b'{"a": 1}{"b": 2}',
    "single quotes": b"{'name': 'a'}",
    "invalid utf-8": b'{"name": "\xff\xfe"}',
    "overlong utf-8": b'{"name": "\xc0\xaf"}',
    "utf-16": '{"name": "a"}'.encode("utf-16"),
    "utf-8 byte order mark": b'\xef\xbb\xbf{"name": "a"}',
    "raw NUL in a string": b'{"name": "a\x00b"}',
    "raw newline in a string": b'{"name": "a\nb"}',
    "deep arrays": b"[" * 60_000,
    "deep objects": b'{"a":' * 12_000,
    "NaN": b'{"amount": NaN}',
    "Infinity": b'{"amount": Infinity}',
    "-Infinity": b'{"amount": -Infinity}',
    "an integer of 5000 digits": b'{"amount": ' + b"9" * 5_000 + b"}",
    "a list": b"[]",
    "a string": b'"text"',
    "a number": b"42",
    "null": b"null",
    "true": b"true",
    "a list of objects": b'[{"amount": 100}]',
}
REQUIRED_ONLY = {"empty": b"", "whitespace": b" \r\n\t "}  # an optional body may be empty: that is valid


def _wrong_content_types(path: str) -> list[str | None]:
    accepted = set(_operation("POST", path)["requestBody"]["content"])
    wrong = [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
        "application/xml",
        "text/csv",
        "application/octet-stream",
        None,
    ]
    return [kind for kind in wrong if (kind or "").split(";")[0] not in accepted]


def _spoilt_bodies(path: str, valid: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, hostile value, body): each member in turn given every value its type refuses."""
    schema = _json_body_schema(path)
    assert schema is not None
    spoilt: list[tuple[str, Any, Any]] = []
    for name, member in schema["properties"].items():
        if name in valid:
            spoilt += [(name, value, _set(valid, (name,), value)) for value in HOSTILE_VALUES[_field_type(member)]]
        if name in schema.get("required", []) and name in valid:
            spoilt.append((name, "(missing)", {k: v for k, v in valid.items() if k != name}))
            spoilt.append((name, None, _set(valid, (name,), None)))
    for steps, kind in NESTED_FIELDS.get(path, []):
        label = ".".join(map(str, steps))
        spoilt += [(label, value, _set(valid, steps, value)) for value in HOSTILE_VALUES[kind]]
    return spoilt


def _expect_refusal(path: str, field: str, value: Any, status: int, problem: dict[str, Any]) -> None:
    where = (path, field, repr(value)[:60], problem)
    if _has_constant(value):
        assert (status, problem["code"]) == (400, "invalid_request"), where  # NaN and Infinity are not JSON
    elif path == "/v1/token" and status == 401:
        assert problem["code"] == "unauthorized", where  # a secret of the right shape that is wrong
        assert problem["error"] == "invalid_client", where
    elif path == "/v1/token":  # RFC 6749 section 5.2: a malformed token request is 400, not 422
        assert (status, problem["code"]) == (400, "invalid_request"), where
        assert problem["error"] in ("invalid_request", "unsupported_grant_type"), where
        assert problem["field"].startswith(field.split(".")[0].split("[")[0]), where
    else:
        assert status == 422 and problem["code"] == "validation_error", where
        assert problem["field"].startswith(field.split(".")[0].split("[")[0]), where


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_hostile_json_bodies_are_refused_and_write_nothing(world: World, scene: Scene, path: str) -> None:
    """On each JSON route: bodies that are not JSON objects, wrong content types, each member spoilt
    in turn, a member named twice. Then the valid body is accepted: the refusals were for the spoiling."""
    if path == "/v1/token":
        await scene.with_credentials()
    token, target = scene.token("POST", path), scene.path(path)
    valid = VALID_BODIES[path](scene)
    async with Unchanged(world):
        for name, data in {**RAW_BODIES, **(REQUIRED_ONLY if _body_required(path) else {})}.items():
            status, problem = await _send(world, "POST", target, token, data)
            assert status in (400, 422), (name, problem)
            if status == 422:
                assert problem["code"] == "validation_error" and problem["field"] == "body", (name, problem)
        for content_type in _wrong_content_types(path):
            status, problem = await _send(world, "POST", target, token, _dumps(valid), content_type)
            # RFC 6749 section 5.2: a token request in another format is malformed (400 invalid_request).
            refused = (400, "invalid_request") if path == "/v1/token" else (415, "unsupported_media_type")
            assert (status, problem["code"]) == refused, (content_type, problem)
        spoilt = _spoilt_bodies(path, valid)
        assert len(spoilt) >= 20
        for field, value, body in spoilt:
            status, problem = await _send(world, "POST", target, token, _dumps(body))
            _expect_refusal(path, field, value, status, problem)
        first, encoded = next(iter(valid)), _dumps(valid).decode()
        for duplicate in (json.dumps(valid[first]), '"spoilt"', "1"):
            data = ("{" + json.dumps(first) + ": " + duplicate + ", " + encoded[1:]).encode()
            status, problem = await _send(world, "POST", target, token, data)
            assert (status, problem["code"]) == (400, "invalid_request") and "twice" in problem["detail"], problem
    await _accepted(world, scene, path)


async def test_a_body_over_the_size_limit_is_413_on_every_post_route(world: World, scene: Scene) -> None:
    """Declared by Content-Length: refused before anything else, even where the route takes no body."""
    settings = world.service.settings
    async with Unchanged(world):
        for path in POST_ROUTES:
            limit, content_type = settings.max_body_bytes, "application/json"
            if path in DOCUMENT_ROUTES:
                limit, content_type = getattr(settings, DOCUMENT_ROUTES[path]), "application/xml"
            data = b'{"name": "' + b"a" * limit + b'"}'
            status, problem = await _send(
                world, "POST", scene.path(path), scene.token("POST", path), data, content_type
            )
            assert (status, problem["code"]) == (413, "payload_too_large"), path


async def test_a_chunked_body_over_the_size_limit_is_413(world: World, scene: Scene) -> None:
    """Without a Content-Length the limit holds where the body is read."""
    limit = world.service.settings.max_body_bytes

    async def chunks() -> Any:
        yield b'{"description": "'
        for _ in range(limit // 1024 + 1):
            yield b"a" * 1024
        yield b'"}'

    async with Unchanged(world):
        response = await world.http.post(
            "/v1/charges",
            data=chunks(),
            headers={"Authorization": f"Bearer {scene['provider']['token']}", "Content-Type": "application/json"},
        )
        assert response.status == 413 and response.content_type == PROBLEM


async def test_a_route_without_a_body_survives_any_body(world: World, scene: Scene) -> None:
    async with Unchanged(world):
        for path in BODYLESS_ROUTES:
            for name in ("malformed", "invalid utf-8", "deep arrays", "NaN", "a list", "empty"):
                data = {**RAW_BODIES, **REQUIRED_ONLY}[name]
                status, problem = await _send(
                    world, "POST", scene.path(path, missing=True), scene.token("POST", path), data
                )
                assert (status, problem["code"]) == (404, "not_found"), (path, name, problem)


async def test_a_route_without_a_body_ignores_one(world: World, scene: Scene) -> None:
    path = f"/v1/charges/{scene['pending']['id']}/void"
    response = await world.http.post(
        path, data=b"[[[", headers={"Authorization": f"Bearer {scene['provider']['token']}"}
    )
    assert response.status == 201 and (await response.json())["status"] == "voided"


async def _accepted(world: World, scene: Scene, path: str) -> dict[str, Any]:
    """The route's valid body (plus members it does not know, which are ignored) is accepted."""
    schema = _json_body_schema(path)
    assert schema is not None
    unknown = {
        "unknown_member": {"deep": [1, 2]},
        "id": "forced_id",
        "status": "approved",
        "role": "admin",
        "provider_id": "pr_forced",
        "balance": 10**9,
        "created_at": "1999-01-01T00:00:00Z",
    }
    body = {**{k: v for k, v in unknown.items() if k not in schema["properties"]}, **VALID_BODIES[path](scene)}
    token = scene.token("POST", path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await world.http.post(
        scene.path(path), data=_dumps(body), headers={**headers, "Content-Type": "application/json"}
    )
    answer = await response.json(content_type=None)
    assert 200 <= response.status < 300, (path, response.status, answer)
    assert answer.get("id") != "forced_id" and answer.get("status") != "approved"
    assert answer.get("provider_id") != "pr_forced" and answer.get("created_at") != "1999-01-01T00:00:00Z"
    return answer  # type: ignore[no-any-return]


async def test_a_form_field_named_twice_is_refused(world: World, scene: Scene) -> None:
    credentials = (await scene.with_credentials())["credentials"]
    form = (
        f"grant_type=client_credentials&client_id={credentials['client_id']}"
        f"&client_secret=wrong&client_secret={credentials['client_secret']}"
    )
    status, problem = await _send(world, "POST", "/v1/token", None, form.encode(), "application/x-www-form-urlencoded")
    assert (status, problem["code"]) == (400, "invalid_request")


async def test_known_members_cannot_be_set_from_outside(world: World, scene: Scene) -> None:
    """Mass assignment: members that are the service's to set are ignored when a caller sends them."""
    provider = await _accepted(world, scene, "/v1/providers")
    assert provider["status"] == "pending"
    client = await _accepted(world, scene, "/v1/clients")
    assert client["id"] != "forced_id" and client["created_at"] == "2027-01-15T10:01:00.000Z"
    charge = await _accepted(world, scene, "/v1/charges")
    _, seen = await world.call("GET", f"/v1/charges/{charge['id']}", scene["provider"]["token"], expect=200)
    assert seen["amount"] == 100 and seen["status"] == "captured"


# Headers.


async def test_bad_idempotency_keys_are_refused_before_anything_is_written(world: World, scene: Scene) -> None:
    """With a body that would be accepted: only the key stands between the request and a write."""
    limit = world.service.settings.idempotency_key_max_length
    async with Unchanged(world):
        for path in IDEMPOTENT_ROUTES:
            if path == "/v1/reconciliations":
                data, content_type = _invoice(scene).encode(), "text/csv"
            elif path == "/v1/bank-statements":
                data, content_type = notification([Entry(1, reference=scene["batch"]["reference"])]), "application/xml"
            elif path in VALID_BODIES:
                data, content_type = _dumps(VALID_BODIES[path](scene)), "application/json"
            else:
                data, content_type = b"", "application/json"
            token, target = scene.token("POST", path), scene.path(path)
            for key in ["", "x" * (limit + 1), "x" * 8_000, "\u202e", "kéy", "a\tb", "😀"]:
                status, problem = await _send(
                    world, "POST", target, token, data, content_type, **{"Idempotency-Key": key}
                )
                assert (status, problem["code"], problem["field"]) == (422, "validation_error", "Idempotency-Key"), key
    response = await world.http.post(
        "/v1/charges",
        data=_dumps(VALID_BODIES["/v1/charges"](scene)),
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": "x" * limit,
            "Authorization": f"Bearer {scene['provider']['token']}",
        },
    )
    assert response.status == 201, await response.text()  # the longest key allowed is a key


async def _raw_http(world: World, request: bytes) -> tuple[int, bytes]:
    """Bytes straight onto the socket: what no well-behaved client library would send."""
    server = world.http.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # the server answers and closes
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


async def test_requests_the_http_parser_refuses_are_400_and_write_nothing(world: World, scene: Scene) -> None:
    token = scene["provider"]["token"]
    void = f"POST /v1/charges/{scene['pending']['id']}/void HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
    cases = {
        "NUL in a header": void.encode() + b"Idempotency-Key: a\x00b\r\nContent-Length: 0\r\n\r\n",
        "DEL in a header": void.encode() + b"Idempotency-Key: a\x7fb\r\nContent-Length: 0\r\n\r\n",
        "a header over 8190 bytes": void.encode() + b"X-Padding: " + b"x" * 9_000 + b"\r\nContent-Length: 0\r\n\r\n",
        "a bare LF inside a header": void.encode() + b"Idempotency-Key: a\nb: c\r\nContent-Length: 0\r\n\r\n",
        "a negative length": void.encode() + b"Content-Length: -1\r\n\r\n",
        "two lengths": void.encode() + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
        "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    }
    async with Unchanged(world):
        for name, request in cases.items():
            status, answer = await _raw_http(world, request)
            assert status == 400, (name, answer[:200])
    # The charge those requests named is still pending: nothing reached the handler.
    await world.call("GET", f"/v1/charges/{scene['pending']['id']}", token, expect=200)


async def test_long_and_odd_headers_the_parser_passes_are_refused_by_the_app(world: World, scene: Scene) -> None:
    path = "/v1/charges"
    data = _dumps(VALID_BODIES[path](scene))
    async with Unchanged(world):
        status, problem = await _send(world, "POST", path, None, data, Authorization="Bearer " + "x" * 8_000)
        assert (status, problem["code"]) == (401, "unauthorized")
        status, problem = await _send(
            world, "POST", path, None, data, Authorization="Bearer \u202e" + scene["provider"]["token"]
        )
        assert (status, problem["code"]) == (401, "unauthorized")
    response = await world.http.get("/healthz", headers={"X-Request-Id": "abc\u202edef"})
    assert response.status == 200 and "\u202e" not in response.headers["X-Request-Id"]


# Paths and queries.

ODD_IDS = [
    "..",
    "%2E%2E",
    "..%2F..%2Fetc%2Fpasswd",
    "%2F",
    "%00",
    "%0A",
    "%0D%0ASet-Cookie:%20x=1",
    "%E2%80%AE",
    "%FF",
    "%C3%A4",
    "'%20OR%201=1--",
    "%25",
    "x" * 3_000,
    "%F0%9F%98%80",
    "*",
    "null",
    "-1",
    "1e400",
]


def _with_odd_id(template: str, odd: str) -> URL:
    parameters = [part for part in template.split("/") if part.startswith("{")]
    path = template.replace(parameters[0], odd)
    ids = {
        "{client_id}": "cl_x",
        "{provider_id}": "pr_x",
        "{charge_id}": "ch_x",
        "{settlement_id}": "se_x",
        "{month}": "2027-01",
        "{service_id}": "sv_x",
        "{offer_id}": "of_x",
    }
    for name, value in ids.items():
        path = path.replace(name, value)
    return URL(path, encoded=True)


async def test_odd_path_parameters_are_not_found_or_refused(world: World, scene: Scene) -> None:
    routes = [(method, path) for method, paths in (("GET", GET_ROUTES), ("POST", POST_ROUTES)) for path in paths]
    async with Unchanged(world):
        for method, path in routes:
            if "{" not in path:
                continue
            token = scene.token(method, path)
            data = _dumps(VALID_BODIES[path](scene)) if method == "POST" and path in VALID_BODIES else b""
            for odd in ODD_IDS:
                status, problem = await _send(world, method, _with_odd_id(path, odd), token, data)
                # 403: ".." led to a route of another role; 405: to one of another method (POST
                # /v1/providers/../offers is POST /v1/offers, which only reads). Never a success.
                assert status in (403, 404, 405, 422), (path, odd, problem)
                if "{month}" in path and status == 422:
                    assert problem["field"] == "month"


async def test_bad_page_parameters_are_refused(world: World, scene: Scene) -> None:
    for path in PAGED_ROUTES:
        await _bad_page_parameters(world, scene, path)


async def _bad_page_parameters(world: World, scene: Scene, path: str) -> None:
    token = scene.token("GET", path)
    target = scene.path(path)
    cursors = [
        "garbage",
        "%00",
        "!!!!",
        base64.urlsafe_b64encode(b"c1:" + b"9" * 30).decode(),
        base64.urlsafe_b64encode(b"c1:-5").decode(),
        base64.urlsafe_b64encode(b"c1:abc").decode(),
        base64.urlsafe_b64encode(b"c1:\xc2\xb2").decode(),
        base64.urlsafe_b64encode(b"c2:5").decode(),
        base64.urlsafe_b64encode(b"c1:" + "٣".encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "x" * 4_000,
    ]
    limits = ["-1", "0", "201", str(10**30), "abc", "1.5", "1e2", "%C2%B2", "%D9%A3", "%205", "", "0x10", "+5", "5%00"]
    async with Unchanged(world):
        for limit in limits:
            status, problem = await _send(world, "GET", URL(f"{target}?limit={limit}", encoded=True), token, None, None)
            assert (status, problem["field"]) == (422, "limit"), (limit, problem)
        for cursor in cursors:
            status, problem = await _send(
                world, "GET", URL(f"{target}?cursor={cursor}", encoded=True), token, None, None
            )
            assert (status, problem["field"]) == (422, "cursor"), (cursor, problem)
    response = await world.http.get(f"{target}?limit=200", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200


async def test_bad_export_parameters_are_refused(world: World, scene: Scene) -> None:
    for path in ("/v1/exports/transactions", "/v1/exports/settlements", "/v1/exports/items"):
        await _bad_export_parameters(world, path)


async def _bad_export_parameters(world: World, path: str) -> None:
    cases = {
        "from": [
            "garbage",
            "2027-13-01",
            "2027-01-32",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01",
            "0001-01-01T00:00:00%2B23:59",
            "2027-01-15T10:00:00",
            "2027-01-15T25:00:00Z",
            "%00",
            "%E2%80%AE",
            "%D9%A2%D9%A0%D9%A2%D9%A7-%D9%A0%D9%A1-%D9%A1%D9%A5",
            "x" * 2_000,
        ],
        "to": ["0001-01-01", "9999-12-31T23:59:59-23:59", "2026-01-01"],
        "format": ["exe", "CSV", "", "%00", "csv%0A"],
    }
    async with Unchanged(world):
        for name, values in cases.items():
            for value in values:
                query = f"{name}={value}" if name != "to" else f"from=2027-01-01&to={value}"
                status, problem = await _send(
                    world, "GET", URL(f"{path}?{query}", encoded=True), world.finance, None, None
                )
                assert status == 422 and problem["field"] in ("from", "to", "format"), (name, value, problem)


async def test_bad_status_filters_and_event_ids_are_refused(world: World, scene: Scene) -> None:
    client, provider = scene["client"]["token"], scene["provider"]["token"]
    cases = [
        ("/v1/charges?status=%00", provider, "status"),
        ("/v1/charges?status=CAPTURED", provider, "status"),
        ("/v1/settlements?status=x", provider, "status"),
        ("/v1/me/charges?status=%E2%80%AE", client, "status"),
        ("/v1/me/events?last_event_id=-1", client, "Last-Event-ID"),
        ("/v1/me/events?last_event_id=" + "9" * 40, client, "Last-Event-ID"),
        ("/v1/me/events?last_event_id=%D9%A3", client, "Last-Event-ID"),
    ]
    async with Unchanged(world):
        for path, token, field in cases:
            status, problem = await _send(world, "GET", URL(path, encoded=True), token, None, None)
            assert (status, problem["field"]) == (422, field), (path, problem)
        status, problem = await _send(world, "GET", "/v1/me/events", client, None, None, **{"Last-Event-ID": "1e3"})
        assert status == 422
        for query in ("?last_event_id=", "?last_event_id=x"):  # sent beside a valid header: still checked
            status, problem = await _send(
                world, "GET", f"/v1/me/events{query}", client, None, None, **{"Last-Event-ID": "0"}
            )
            assert (status, problem["field"]) == (422, "Last-Event-ID"), query


async def test_codes_months_and_times_are_what_they_seem(world: World, scene: Scene) -> None:
    """``\\d`` matches any script's digits and ``$`` matches before a final newline: neither makes a month
    or a category code; a time past the range a datetime holds is refused, not an overflow."""
    body = VALID_BODIES["/v1/clients/{client_id}/budgets"](scene)
    target = scene.path("/v1/clients/{client_id}/budgets")
    async with Unchanged(world):
        for month in ["٢٠٢٧-01", "2027-01\n", "２０２７-01", "2027-1", " 2027-01"]:
            status, problem = await _send(world, "POST", target, world.admin, _dumps({**body, "start_month": month}))
            assert (status, problem["field"]) == (422, "start_month"), month
        for code in ["home_care\n", "hom\u0435_care", "home care", "home_care\u202e"]:  # \u0435: a Cyrillic e
            status, problem = await _send(
                world, "POST", "/v1/categories", world.admin, _dumps({"code": code, "name": "x"})
            )
            assert (status, problem["field"]) == (422, "code"), code
        for until in ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2027-01-15T10:00:00Z\n"]:
            status, problem = await _send(
                world, "POST", "/v1/settlements", scene["provider"]["token"], _dumps({"until": until})
            )
            assert (status, problem["field"]) == (422, "until"), until
        for month in ["2027-01%0A", "%D9%A2%D9%A0%D9%A2%D9%A7-01"]:
            url = URL(f"/v1/me/statements/{month}", encoded=True)
            status, problem = await _send(world, "GET", url, scene["client"]["token"], None, None)
            assert (status, problem["field"]) == (422, "month"), month


# Reconciliation documents: their own content types and their own size limit.

UNREADABLE_DOCUMENTS = {
    "empty": b"",
    "binary junk": b"\x00\x01\xff\xfe" * 100,
    "utf-16": "reference;amount;business_id;invoice_number\n1;2;3;4\n".encode("utf-16"),
    "header only": b"reference;amount;business_id;invoice_number\n",
    "no header": b"hello world\n",
    "NUL in a field": b"reference;amount;business_id;invoice_number\n\x00;1,00;2077474-0;A\n",
    "bidi override in a field": "reference;amount;business_id;invoice_number\n1;1,00;2077474-0;A\u202eB\n".encode(),
    "escape in a field": b"reference;amount;business_id;invoice_number\n1;1,00;2077474-0;A\x1b[31m\n",
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]><Finvoice>&b;</Finvoice>',
    "external entity": b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]><Finvoice>&x;</Finvoice>',
    "deep elements": b"<a>" * 30_000 + b"</a>" * 30_000,
    "bidi in a Finvoice field": (
        "<Finvoice><InvoiceDetails><InvoiceNumber>A\u202eB</InvoiceNumber></InvoiceDetails></Finvoice>".encode()
    ),
    "unclosed XML": b"<Finvoice><InvoiceDetails>",
}


def _invoice(scene: Scene) -> str:
    """A CSV of one invoice that matches the scene's batch."""
    batch = scene["batch"]
    euros = f"{batch['amount'] // 100},{batch['amount'] % 100:02d}"
    return f"reference;amount;business_id;invoice_number\n{batch['reference']};{euros};{BUSINESS_ID};A-1\n"


async def test_unreadable_and_unsafe_reconciliation_documents_are_refused(world: World, scene: Scene) -> None:
    async with Unchanged(world):
        for name, document in UNREADABLE_DOCUMENTS.items():
            for content_type in ("text/csv", "application/xml", "text/xml"):
                status, problem = await _send(
                    world, "POST", "/v1/reconciliations", world.finance, document, content_type
                )
                assert status in (400, 422), (name, content_type, problem)
                assert problem["code"] in ("unsafe_document", "unreadable_document"), (name, problem)
    body = _invoice(scene)
    response = await world.http.post(
        "/v1/reconciliations",
        data=body.encode(),
        headers={"Authorization": f"Bearer {world.finance}", "Content-Type": "text/csv"},
    )
    assert response.status == 201 and (await response.json())["summary"]["matched"] == 1


# Decoding a body into its struct, without the HTTP around it.

CHARGE = {"phone": "+358401234567", "amount": 100, "category": "home_care", "identity": {"method": "otp"}}
BUDGET = {
    "start_month": "2027-01",
    "end_month": "2027-12",
    "unused": "expire",
    "lines": [{"category": "a", "monthly_amount": 1}],
}
REFUSED_FIELDS: list[tuple[type[Any], dict[str, Any], str]] = [
    (requests.NewBudget, {**BUDGET, "lines": [{"category": "a", "monthly_amount": True}]}, "lines[0].monthly_amount"),
    (requests.NewBudget, {**BUDGET, "lines": [{"category": "a", "monthly_amount": 1.0}]}, "lines[0].monthly_amount"),
    (requests.NewBudget, {**BUDGET, "lines": [{"category": "a"}]}, "lines[0].monthly_amount"),
    (requests.NewBudget, {**BUDGET, "lines": [{"category": "a", "monthly_amount": None}]}, "lines[0].monthly_amount"),
    (requests.NewBudget, {**BUDGET, "lines": BUDGET["lines"] * 2}, "lines[1].category"),
    (requests.NewBudget, {**BUDGET, "unused": "131052-308T"}, "unused"),
    (requests.NewCharge, {**CHARGE, "identity": {"method": "131052-308T"}}, "identity.method"),
    (requests.NewCharge, {**CHARGE, "identity": {"method": "national_id"}}, "identity.national_id"),
    (requests.NewCharge, {**CHARGE, "identity": {"method": "national_id", "national_id": "x"}}, "identity.national_id"),
    (requests.NewCharge, {**CHARGE, "phone": None}, "phone"),
    (requests.NewCharge, {**CHARGE, "description": "a\ud800"}, "description"),
    (
        requests.NewProvider,
        {"name": "p", "business_id": BUSINESS_ID, "iban": IBAN, "categories": ["a", 1]},
        "categories[1]",
    ),
    (requests.NewCharge, [CHARGE], "body"),
]


@pytest.mark.parametrize(("shape", "body", "field"), REFUSED_FIELDS)
def test_a_refusal_names_the_field_as_sent_and_never_the_value(shape: type[Any], body: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        requests.decode(shape, body)
    assert refused.value.field == field
    assert "131052-308T" not in refused.value.detail


def test_a_null_optional_member_is_absent_and_an_unknown_member_ignored() -> None:
    charge = requests.decode(requests.NewCharge, {**CHARGE, "description": None, "status": "captured"})
    assert (charge.description, charge.method, charge.national_id) == (None, IdentityMethod.OTP, None)
    budget = requests.decode(requests.NewBudget, BUDGET)
    assert budget.lines == (("a", 1),)
