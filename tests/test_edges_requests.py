"""Edges of requests found by an outside test run (issue 21, items 3, 4 and 6).

- A phone number is ASCII digits, spaces, ``+``, ``-`` and parentheses, and nothing else, on every
  route that takes one: what a provider types and what is charged are the same number as a person
  reads it. Anything else is 422 ``validation_error`` naming ``phone``, and writes nothing.
- ``POST /v1/token`` answers as RFC 6749 section 5.2 says (400 ``invalid_request`` or
  ``unsupported_grant_type``, 401 ``invalid_client`` with a Basic challenge), the problem+json
  members beside the OAuth ones, never cached.
- The OpenAPI document lists every status an operation answers, and nothing else (no ``default``).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from tests.conftest import NATIONAL_ID, World
from tests.state import changed_tables, database_state
from wallet.auth.tokens import Role

PROBLEM = "application/problem+json"
PHONE = "+358401234567"

# Each of these phonenumbers reads as +358401234567 (or its national form): a charge to one of
# them was captured on that number.
HOSTILE_PHONES = {
    "right-to-left override": "\u202e0401234567",
    "zero-width space": "040\u200b1234567",
    "byte order mark": "\ufeff0401234567",
    "no-break space": "040\u00a0123\u00a04567",
    "fullwidth digits": "\uff10\uff14\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
    "Arabic-Indic digits": "\u0660\u0664\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
    "Devanagari digits": "\u0966\u096a\u0966\u0967\u0968\u0969\u096a\u096b\u096c\u096d",
    "a tel: URI": "tel:+358401234567",
    "an extension": "+358401234567 ext 1",
    "a tab": "040\t1234567",
    "a dot": "040.123.4567",
    "a letter": "040 123 456O",
    "a final newline": "0401234567\n",
}
# As people write them: still read, and normalised to E.164.
WRITTEN_BY_PEOPLE = ("040 123 4567", "040-1234567", "+358 (0)40 123 4567", "(040) 123 45 67", "+358401234567")


class Unchanged:
    """``async with Unchanged(world):`` fails if the block wrote anything anywhere."""

    def __init__(self, world: World) -> None:
        self.db = world.service.settings.db

    async def __aenter__(self) -> None:
        self.before = database_state(self.db)

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            assert changed_tables(self.before, database_state(self.db)) == []


def _refused_phone(status: int, problem: dict[str, Any], where: Any) -> None:
    assert (status, problem.get("code"), problem.get("field")) == (422, "validation_error", "phone"), (where, problem)


# 3. Phone numbers.


async def test_a_hostile_phone_is_refused_on_every_route_that_takes_one(world: World) -> None:
    client, provider = await world.funded(10_000, phone=PHONE)
    sent = len(world.sms.sent)
    before = await world.wallet(client)
    async with Unchanged(world):
        for name, phone in HOSTILE_PHONES.items():
            charge = {
                "phone": phone,
                "amount": 1_000,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": NATIONAL_ID},
            }
            status, problem = await world.call("POST", "/v1/charges", provider["token"], charge, key=f"k-{name}")
            _refused_phone(status, problem, (name, "charge"))
            otp = {**charge, "identity": {"method": "otp"}}
            status, problem = await world.call("POST", "/v1/charges", provider["token"], otp)
            _refused_phone(status, problem, (name, "otp charge"))
            new_client = {"name": "Eino Esimerkki", "phone": phone}
            status, problem = await world.call("POST", "/v1/clients", world.admin, new_client)
            _refused_phone(status, problem, (name, "client"))
            status, problem = await world.call("POST", "/v1/login", json={"phone": phone})
            _refused_phone(status, problem, (name, "login"))
            status, problem = await world.call("POST", "/v1/login/verify", json={"phone": phone, "code": "123456"})
            _refused_phone(status, problem, (name, "login/verify"))
            mandate = {"phone": phone, "scope": "view"}
            path = f"/v1/clients/{client['id']}/representatives"
            status, problem = await world.call("POST", path, world.admin, mandate)
            _refused_phone(status, problem, (name, "representative"))
    assert await world.wallet(client) == before  # nothing charged, nothing held
    assert len(world.sms.sent) == sent  # no code sent to anyone


async def test_a_phone_as_people_write_it_is_read_and_normalised(world: World) -> None:
    client, provider = await world.funded(10_000, phone=PHONE)
    for index, written in enumerate(WRITTEN_BY_PEOPLE):
        status, charge = await world.call(
            "POST",
            "/v1/charges",
            provider["token"],
            {
                "phone": written,
                "amount": 100,
                "category": "home_care",
                "identity": {"method": "national_id", "national_id": NATIONAL_ID},
            },
            key=f"written-{index}",
        )
        assert status == 201 and charge["status"] == "captured", (written, charge)
    assert (await world.wallet(client))["balance"] == 10_000 - 100 * len(WRITTEN_BY_PEOPLE)
    _, created = await world.call(
        "POST", "/v1/clients", world.admin, {"name": "Eino", "phone": "050 (765) 43-21"}, expect=201
    )
    assert created["phone"] == "+358507654321"
    await world.call("POST", "/v1/login", json={"phone": "040 123 4567"}, expect=202)
    assert world.sms.sent[-1]["to"] == PHONE


def test_the_document_declares_the_phone_characters() -> None:
    from wallet.api import openapi
    from wallet.api.app import create_app
    from wallet.settings import Settings

    document = openapi.document(create_app(Settings(), background_jobs=False).router, Settings())
    phone = document["components"]["schemas"]["NewClient"]["properties"]["phone"]
    assert phone["pattern"] == "^[0-9 +()-]+$"


# 4. OAuth error responses of POST /v1/token.

FORM = "application/x-www-form-urlencoded"
# RFC 6749 appendix A.7 and A.8: error and error_description are %x20-21 / %x23-5B / %x5D-7E.
OAUTH_TEXT = set(map(chr, range(0x20, 0x7F))) - {'"', "\\"}
# The problem's code beside each OAuth error: a code keeps its status across the API.
OAUTH_CODES = {
    "invalid_request": "invalid_request",
    "unsupported_grant_type": "invalid_request",
    "invalid_client": "unauthorized",
    "unauthorized_client": "unauthorized_client",
}


async def _credentials(world: World) -> dict[str, Any]:
    _, provider = await world.funded(1_000)
    path = f"/v1/providers/{provider['id']}/credentials"
    _, credentials = await world.call("POST", path, world.admin, expect=201)
    return {**credentials, "provider": provider}


async def _token_request(
    world: World, body: bytes, content_type: str | None = "application/json", **headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await world.http.post("/v1/token", data=body, headers=headers)
    answer = await response.json(content_type=None)
    return response.status, answer, dict(response.headers)


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _oauth_refusal(status: int, answer: dict[str, Any], headers: dict[str, str], expected: tuple[int, str]) -> None:
    """The RFC 6749 members and the problem+json ones, in one body, never cached."""
    assert (status, answer.get("error")) == expected, answer
    assert headers["Content-Type"].startswith(PROBLEM), headers
    assert answer["status"] == status and answer["type"] and answer["title"] and answer["detail"], answer
    assert answer["code"] == OAUTH_CODES[answer["error"]], answer
    assert answer["error_description"] and set(answer["error_description"]) <= OAUTH_TEXT, answer
    assert headers.get("Cache-Control") == "no-store" and headers.get("Pragma") == "no-cache", headers
    if status == 401:
        assert headers.get("WWW-Authenticate") == 'Basic realm="wallet", charset="UTF-8"', headers
    else:
        assert "WWW-Authenticate" not in headers, headers


def _json(**fields: Any) -> bytes:
    import json

    return json.dumps(fields).encode()


async def test_a_malformed_token_request_is_400_invalid_request(world: World) -> None:
    credentials = await _credentials(world)
    client_id, secret = credentials["client_id"], credentials["client_secret"]
    grant = "client_credentials"
    malformed: dict[str, tuple[bytes, str | None, str | None]] = {
        "an empty object": (b"{}", "application/json", "grant_type"),
        "no grant_type": (_json(client_id=client_id, client_secret=secret), "application/json", "grant_type"),
        "no grant_type (form)": (f"client_id={client_id}&client_secret={secret}".encode(), FORM, "grant_type"),
        "an empty grant_type": (_json(grant_type="", client_id=client_id, client_secret=secret), None, "grant_type"),
        "a grant_type not a string": (_json(grant_type=1, client_id=client_id, client_secret=secret), None, None),
        "no client_id": (_json(grant_type=grant, client_secret=secret), "application/json", "client_id"),
        "no client_secret": (_json(grant_type=grant, client_id=client_id), "application/json", "client_secret"),
        "no client_secret (form)": (f"grant_type={grant}&client_id={client_id}".encode(), FORM, "client_secret"),
        "a secret not a string": (_json(grant_type=grant, client_id=client_id, client_secret=[secret]), None, None),
        "a secret with a control character": (
            _json(grant_type=grant, client_id=client_id, client_secret=secret + "\n"),
            None,
            "client_secret",
        ),
        "a field named twice": (
            f"grant_type={grant}&client_id={client_id}&client_secret=x&client_secret={secret}".encode(),
            FORM,
            None,
        ),
        "not JSON": (b'{"grant_type": ', "application/json", None),
        "a JSON list": (b"[]", "application/json", None),
        "an empty body": (b"", "application/json", None),
        "text/plain": (f"grant_type={grant}&client_id={client_id}&client_secret={secret}".encode(), "text/plain", None),
        "XML": (b"<token/>", "application/xml", None),
        "no content type": (_json(grant_type=grant, client_id=client_id, client_secret=secret), None, None),
    }
    async with Unchanged(world):
        for name, (body, content_type, field) in malformed.items():
            kind = content_type if content_type is not None or name == "no content type" else "application/json"
            status, answer, headers = await _token_request(world, body, kind)
            _oauth_refusal(status, answer, headers, (400, "invalid_request"))
            if field is not None:
                assert answer["field"] == field, (name, answer)
        # Two ways of authenticating in one request (RFC 6749 section 2.3).
        body = _json(grant_type=grant, client_id=client_id, client_secret=secret)
        status, answer, headers = await _token_request(world, body, Authorization=_basic(client_id, secret))
        _oauth_refusal(status, answer, headers, (400, "invalid_request"))
        for other in ("password", "authorization_code", "CLIENT_CREDENTIALS", "urn:ietf:params:oauth:grant-type:jwt"):
            body = _json(grant_type=other, client_id=client_id, client_secret=secret)
            status, answer, headers = await _token_request(world, body)
            _oauth_refusal(status, answer, headers, (400, "unsupported_grant_type"))
            assert answer["field"] == "grant_type", answer


async def test_bad_client_credentials_are_401_invalid_client_with_a_basic_challenge(world: World) -> None:
    credentials = await _credentials(world)
    client_id, secret = credentials["client_id"], credentials["client_secret"]
    grant = "client_credentials"
    async with Unchanged(world):
        for body, content_type, headers in (
            (_json(grant_type=grant, client_id=client_id, client_secret=secret + "x"), "application/json", {}),
            (_json(grant_type=grant, client_id="pc_nobody", client_secret=secret), "application/json", {}),
            (f"grant_type={grant}&client_id={client_id}&client_secret=wrong".encode(), FORM, {}),
            (f"grant_type={grant}".encode(), FORM, {"Authorization": _basic(client_id, "wrong")}),
            (f"grant_type={grant}".encode(), FORM, {"Authorization": "Basic !!not-base64!!"}),
            (_json(grant_type=grant), "application/json", {"Authorization": _basic("pc_nobody", secret)}),
        ):
            status, answer, answered = await _token_request(world, body, content_type, **headers)
            _oauth_refusal(status, answer, answered, (401, "invalid_client"))


async def test_a_suspended_provider_is_400_unauthorized_client(world: World) -> None:
    credentials = await _credentials(world)
    provider_id = credentials["provider"]["id"]
    await world.call("POST", f"/v1/providers/{provider_id}/suspend", world.admin, expect=200)
    body = _json(grant_type="client_credentials", client_id=credentials["client_id"])
    authorization = _basic(credentials["client_id"], credentials["client_secret"])
    async with Unchanged(world):
        status, answer, headers = await _token_request(world, body, Authorization=authorization)
    _oauth_refusal(status, answer, headers, (400, "unauthorized_client"))


async def test_a_token_is_issued_for_good_credentials_and_never_cached(world: World) -> None:
    credentials = await _credentials(world)
    client_id, secret = credentials["client_id"], credentials["client_secret"]
    grant = "client_credentials"
    for body, content_type, headers in (
        (_json(grant_type=grant, client_id=client_id, client_secret=secret), "application/json", {}),
        (f"grant_type={grant}&client_id={client_id}&client_secret={secret}&scope=ignored".encode(), FORM, {}),
        (f"grant_type={grant}".encode(), FORM, {"Authorization": _basic(client_id, secret)}),
        (f"grant_type={grant}&client_id={client_id}".encode(), FORM, {"Authorization": _basic(client_id, secret)}),
    ):
        status, answer, answered = await _token_request(world, body, content_type, **headers)
        assert status == 200 and answer["token_type"] == "Bearer" and answer["access_token"], answer
        assert answered.get("Cache-Control") == "no-store" and answered.get("Pragma") == "no-cache", answered


# 6. Every status an operation answers is documented, and nothing else is.

# What every operation may answer, whatever it is: the HTTP parser's refusals (400, 414, 431),
# a declared body over the limit (413), shutting down (503).
EVERY_OPERATION = {"400", "413", "414", "431", "503"}
ROLE_IDS: dict[Role, dict[str, Any]] = {
    Role.ADMIN: {},
    Role.FINANCE: {},
    Role.PROVIDER: {"provider_id": "pr_nobody"},
    Role.CLIENT: {"client_id": "cl_nobody"},
    Role.REPRESENTATIVE: {"representative_id": "rp_nobody", "client_ids": ("cl_nobody",)},
}


def _document() -> dict[str, Any]:
    from wallet.api import openapi
    from wallet.api.app import create_app
    from wallet.settings import Settings

    return openapi.document(create_app(Settings(), background_jobs=False).router, Settings())


def test_no_operation_declares_a_default_response() -> None:
    """A ``default`` would make every status documented; each operation lists its own instead."""
    for path, item in _document()["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert "default" not in statuses, (method, path)
            assert statuses >= EVERY_OPERATION, (method, path, EVERY_OPERATION - statuses)
            if "x-roles" in operation:
                assert {"401", "403"} <= statuses, (method, path)
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
            if "requestBody" in operation and path != "/v1/token":
                assert {"415", "422"} <= statuses, (method, path)
            for status in ("429", "503"):
                if status in statuses:
                    assert operation["responses"][status]["headers"]["Retry-After"]["required"], (method, path)


async def test_the_refusals_every_operation_may_get_are_documented(world: World) -> None:
    """Through the API, on every operation: a body over the limit, no token, a token of a role the
    operation does not admit; each answer's status is one the operation documents, and matches it."""
    from tests.test_openapi import Contract, fetch_document

    contract = Contract(await fetch_document(world.http))
    settings = world.service.settings
    async with Unchanged(world):
        for path, item in contract.document["paths"].items():
            concrete = path.replace("{month}", "2027-01")
            concrete = "/".join("x_nobody" if part.startswith("{") else part for part in concrete.split("/"))
            for method, operation in item.items():
                limit = settings.reconciliation_max_bytes if path == "/v1/reconciliations" else settings.max_body_bytes
                seen = []
                response = await world.http.request(method.upper(), concrete, data=io.BytesIO(b"x" * (limit + 1)))
                seen.append((response.status, response.content_type, await response.json(content_type=None)))
                roles = operation.get("x-roles")
                if roles:
                    response = await world.http.request(method.upper(), concrete)
                    seen.append((response.status, response.content_type, await response.json(content_type=None)))
                    for role in Role:
                        if role.value in roles:
                            continue
                        token = world.token(role, **ROLE_IDS[role])
                        response = await world.http.request(method.upper(), concrete, headers=world.auth(token))
                        seen.append((response.status, response.content_type, await response.json(content_type=None)))
                        break
                for status, content_type, body in seen:
                    assert status in (401, 403, 413), (method, path, status, body)
                    contract.check(method.upper(), concrete, status, content_type, body)
                # A token of each role it admits, for a party that does not exist, and an empty body.
                for role in Role:
                    if roles is None or role.value not in roles:
                        continue
                    headers = world.auth(world.token(role, **ROLE_IDS[role]), **{"Content-Type": "application/json"})
                    response = await world.http.request(method.upper(), concrete, data=b"{}", headers=headers)
                    if response.content_type == PROBLEM:
                        body = await response.json(content_type=None)
                        contract.check(method.upper(), concrete, response.status, response.content_type, body)
                    else:
                        assert response.status < 300, (method, path, response.status)
                        response.close()
