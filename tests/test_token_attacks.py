"""Attacks on authentication and on the walls between tenants.

Forged, altered, stale and misaddressed tokens are refused with 401; a valid token of the wrong
role with 403; another provider's or another client's objects do not exist for the caller (404,
the same answer as an id that was never issued, so nothing tells that they exist). Every refusal
is problem+json and writes nothing: the whole database is compared before and after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import NATIONAL_ID, World
from tests.state import changed_tables, database_state
from wallet.auth.keys import load_or_create_signing_key
from wallet.auth.tokens import Role, key_id

PROBLEM = "application/problem+json"
MISSING = object()  # a claim or header member left out
CATEGORY = {"code": "forged", "name": "Forged"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_part(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


class Forge:
    """Makes tokens by hand, byte by byte, with the service's real key or any other."""

    def __init__(self, world: World) -> None:
        settings = world.service.settings
        self.key = load_or_create_signing_key(settings.signing_key)
        self.kid = key_id(self.key.public_key())
        self.now = int(world.clock.now().timestamp())
        self.issuer, self.audience = settings.token_issuer, settings.token_audience

    def claims(self, role: str = "admin", **changes: Any) -> dict[str, Any]:
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "forger",
            "role": role,
            "iat": self.now,
            "nbf": self.now,
            "exp": self.now + 600,
            "jti": "f0",
        }
        return _apply(claims, changes)

    def header(self, **changes: Any) -> dict[str, Any]:
        return _apply({"alg": "EdDSA", "typ": "JWT", "kid": self.kid}, changes)

    def token(
        self,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> str:
        signing_input = f"{_json_part(header or self.header())}.{_json_part(claims or self.claims())}"
        signature = (sign or self.key.sign)(signing_input.encode())
        return f"{signing_input}.{b64(signature)}"


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = {**base, **changes}
    return {name: value for name, value in result.items() if value is not MISSING}


def _hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


def _public(forge: Forge, encoding: serialization.Encoding, form: serialization.PublicFormat) -> bytes:
    return forge.key.public_key().public_bytes(encoding, form)


def _tampered(forge: Forge) -> str:
    """A real client token whose payload now says admin; the original signature kept."""
    header, _, signature = forge.token(claims=forge.claims("client", client_id="cl_x")).split(".")
    return f"{header}.{_json_part(forge.claims('admin'))}.{signature}"


def _embedded_jwk(forge: Forge) -> str:
    """The attacker's own key carried in the header (jwk), no kid: the header must not pick the key."""
    stranger = Ed25519PrivateKey.generate()
    raw = stranger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    return forge.token(forge.header(kid=MISSING, jwk=jwk), sign=stranger.sign)


FORGERIES: dict[str, Callable[[Forge], str]] = {
    # The algorithm.
    "alg none, no signature": lambda f: f.token(f.header(alg="none"), sign=lambda _: b""),
    "alg None, no signature": lambda f: f.token(f.header(alg="None"), sign=lambda _: b""),
    "alg none, real signature": lambda f: f.token(f.header(alg="none")),
    "HS256 keyed with the raw public key": lambda f: f.token(
        f.header(alg="HS256"), sign=_hs256(_public(f, serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    ),
    "HS256 keyed with the public key PEM": lambda f: f.token(
        f.header(alg="HS256"),
        sign=_hs256(_public(f, serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
    ),
    "HS256 keyed with the public key OpenSSH": lambda f: f.token(
        f.header(alg="HS256"),
        sign=_hs256(_public(f, serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)),
    ),
    "HS256 keyed with the kid": lambda f: f.token(f.header(alg="HS256"), sign=_hs256(f.kid.encode())),
    "ES256 named over an EdDSA signature": lambda f: f.token(f.header(alg="ES256")),
    # The signature.
    "payload tampered, signature kept": _tampered,
    "signature cut off": lambda f: f.token().rsplit(".", 1)[0] + ".",
    "two parts": lambda f: f.token().rsplit(".", 1)[0],
    "signature of another token": lambda f: ".".join(
        [*f.token().split(".")[:2], f.token(claims=f.claims(sub="other")).split(".")[2]]
    ),
    "another Ed25519 key under the real kid": lambda f: f.token(sign=Ed25519PrivateKey.generate().sign),
    "another Ed25519 key, unknown kid": lambda f: f.token(
        f.header(kid="stranger"), sign=Ed25519PrivateKey.generate().sign
    ),
    "real key, unknown kid": lambda f: f.token(f.header(kid="stranger")),
    "kid that is a list": lambda f: f.token(f.header(kid=[f.kid])),
    "kid that is a number": lambda f: f.token(f.header(kid=7)),
    "attacker's jwk in the header": _embedded_jwk,
    # Time.
    "expired": lambda f: f.token(claims=f.claims(iat=f.now - 7200, nbf=f.now - 7200, exp=f.now - 3600)),
    "not valid before the future": lambda f: f.token(claims=f.claims(nbf=f.now + 3600)),
    "issued in the future": lambda f: f.token(claims=f.claims(iat=f.now + 3600)),
    "exp missing": lambda f: f.token(claims=f.claims(exp=MISSING)),
    "nbf missing": lambda f: f.token(claims=f.claims(nbf=MISSING)),
    "iat missing": lambda f: f.token(claims=f.claims(iat=MISSING)),
    "exp a string": lambda f: f.token(claims=f.claims(exp=str(f.now + 600))),
    "exp true": lambda f: f.token(claims=f.claims(exp=True)),
    "exp NaN": lambda f: f.token(claims=f.claims(exp=float("nan"))),
    "exp Infinity": lambda f: f.token(claims=f.claims(exp=float("inf"))),
    "nbf -Infinity": lambda f: f.token(claims=f.claims(nbf=float("-inf"))),
    # Whom it is for.
    "wrong issuer": lambda f: f.token(claims=f.claims(iss="someone-else")),
    "issuer missing": lambda f: f.token(claims=f.claims(iss=MISSING)),
    "wrong audience": lambda f: f.token(claims=f.claims(aud="another-api")),
    "audience list without ours": lambda f: f.token(claims=f.claims(aud=["another-api"])),
    "audience missing": lambda f: f.token(claims=f.claims(aud=MISSING)),
    "subject missing": lambda f: f.token(claims=f.claims(sub=MISSING)),
    # The role.
    "role missing": lambda f: f.token(claims=f.claims(role=MISSING)),
    "unknown role": lambda f: f.token(claims=f.claims(role="superuser")),
    "role in capitals": lambda f: f.token(claims=f.claims(role="ADMIN")),
    "role a list": lambda f: f.token(claims=f.claims(role=["admin"])),
    "role null": lambda f: f.token(claims=f.claims(role=None)),
    "provider without provider_id": lambda f: f.token(claims=f.claims("provider")),
    "provider with a numeric provider_id": lambda f: f.token(claims=f.claims("provider", provider_id=7)),
    "client without client_id": lambda f: f.token(claims=f.claims("client")),
    # Not a token at all.
    "garbage": lambda f: "not-a-token",
    "three garbage parts": lambda f: "a.b.c",
    "header not JSON": lambda f: f"{b64(b'{nope')}.{_json_part(f.claims())}.{b64(b'x')}",
    "payload not JSON": lambda f: f.token().split(".")[0] + f".{b64(b'[1,')}." + f.token().split(".")[2],
    "payload a JSON list": lambda f: f"{_json_part(f.header())}.{_json_part([1, 2])}.{b64(b'x')}",
    "long junk": lambda f: "x" * 6000,
}


async def _refused(world: World, authorization: str) -> dict[str, Any]:
    response = await world.http.post("/v1/categories", json=CATEGORY, headers={"Authorization": authorization})
    body = await response.json(content_type=None)
    assert response.status == 401, (response.status, body)
    assert response.content_type == PROBLEM
    assert body["code"] == "unauthorized" and body["status"] == 401 and body["type"] and body["title"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


async def test_a_token_forged_by_hand_with_the_real_key_is_accepted(world: World) -> None:
    """The forge makes real tokens: each refusal below is for what it changed, not a slip of the forge."""
    forge = Forge(world)
    await world.call("POST", "/v1/categories", forge.token(), CATEGORY, expect=201)


@pytest.mark.parametrize("forgery", list(FORGERIES.values()), ids=list(FORGERIES))
async def test_forged_and_broken_tokens_are_refused_and_write_nothing(
    world: World, forgery: Callable[[Forge], str]
) -> None:
    forge = Forge(world)
    token = forgery(forge)
    before = database_state(world.service.settings.db)
    body = await _refused(world, f"Bearer {token}")
    assert token not in json.dumps(body)  # the token is not echoed back
    assert changed_tables(before, database_state(world.service.settings.db)) == []
    await world.call("GET", "/v1/categories", world.admin, expect=200)  # the service is fine


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Token abc", "bearer", "Bearer a b"],
    ids=["empty", "scheme only", "scheme and space", "basic", "other scheme", "lowercase scheme only", "two words"],
)
async def test_malformed_authorization_headers_are_refused(world: World, authorization: str) -> None:
    before = database_state(world.service.settings.db)
    await _refused(world, authorization)
    assert changed_tables(before, database_state(world.service.settings.db)) == []


async def test_a_missing_authorization_header_is_refused(world: World) -> None:
    response = await world.http.post("/v1/categories", json=CATEGORY)
    assert response.status == 401 and response.content_type == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_expires_with_the_service_clock(world: World) -> None:
    token = world.service.mint(Role.ADMIN, ttl_seconds=60).access_token
    await world.call("GET", "/v1/categories", token, expect=200)  # now verified and cached
    world.clock.advance(seconds=60 + 31)  # past the expiry and the clock skew allowed
    status, body = await world.call("GET", "/v1/categories", token)
    assert (status, body["code"]) == (401, "unauthorized")


# The walls between providers, and between clients.


async def _two_providers(world: World) -> dict[str, Any]:
    """Provider A with a captured charge, an SMS-pending one and a settled batch; provider B beside it."""
    client, provider_a = await world.funded(20_000)
    provider_b = await world.provider(["home_care"])
    _, captured = await world.charge(provider_a, client, 1_000)
    _, settled = await world.charge(provider_a, client, 700)
    _, batch = await world.call("POST", "/v1/settlements", provider_a["token"], expect=201)
    _, pending = await world.charge(provider_a, client, 500, method="otp")
    code = world.sms.last_code(client["phone"])
    _, b_charge = await world.charge(provider_b, client, 300)
    assert captured["status"] == "captured" and settled["status"] == "captured" and pending["status"] == "pending"
    # A representative with a view mandate for the client, logged in with their own phone.
    representative_phone = "+358501112233"
    _, representation = await world.call(
        "POST",
        f"/v1/clients/{client['id']}/representatives",
        world.admin,
        {"phone": representative_phone, "scope": "view"},
        expect=201,
    )
    await world.call("POST", "/v1/login", json={"phone": representative_phone}, expect=202)
    _, issued = await world.call(
        "POST",
        "/v1/login/verify",
        expect=200,
        json={
            "phone": representative_phone,
            "code": world.sms.last_code(representative_phone),
            "client_id": client["id"],
        },
    )
    return {
        "client": client,
        "a": provider_a,
        "b": provider_b,
        "captured": captured,
        "pending": pending,
        "code": code,
        "batch": batch,
        "b_charge": b_charge,
        "representation": representation,
        "representative_token": issued["access_token"],
    }


async def test_a_provider_cannot_see_or_touch_another_providers_charges(world: World) -> None:
    s = await _two_providers(world)
    b = s["b"]["token"]
    attempts = [
        ("GET", "/v1/charges/{id}", None),
        ("POST", "/v1/charges/{id}/confirm", {"code": s["code"]}),  # even with the right code
        ("POST", "/v1/charges/{id}/void", None),
        ("POST", "/v1/charges/{id}/refunds", {"amount": 100}),
    ]
    before = database_state(world.service.settings.db)
    for method, template, body in attempts:
        for charge in (s["captured"], s["pending"]):
            status, theirs = await world.call(method, template.format(id=charge["id"]), b, body)
            status_unknown, unknown = await world.call(method, template.format(id="ch_neverissued"), b, body)
            assert (status, theirs["code"]) == (404, "not_found"), (method, template, theirs)
            # Nothing tells another provider's charge from one that was never issued.
            assert {k: v for k, v in theirs.items() if k != "instance"} == {
                k: v for k, v in unknown.items() if k != "instance"
            }
            assert status_unknown == 404
    _, listed = await world.call("GET", "/v1/charges?limit=200", b, expect=200)
    assert [c["id"] for c in listed["data"]] == [s["b_charge"]["id"]]
    assert changed_tables(before, database_state(world.service.settings.db)) == []
    # Untouched for its owner: the code still confirms, the capture still refunds.
    await world.call(
        "POST", f"/v1/charges/{s['pending']['id']}/confirm", s["a"]["token"], {"code": s["code"]}, expect=200
    )
    await world.call("POST", f"/v1/charges/{s['captured']['id']}/refunds", s["a"]["token"], {"amount": 100}, expect=201)


async def test_a_provider_cannot_see_or_pay_another_providers_settlements(world: World) -> None:
    s = await _two_providers(world)
    b, batch = s["b"]["token"], s["batch"]
    before = database_state(world.service.settings.db)
    status, theirs = await world.call("GET", f"/v1/settlements/{batch['id']}", b)
    _, unknown = await world.call("GET", "/v1/settlements/se_neverissued", b)
    assert (status, theirs["code"]) == (404, "not_found")
    assert theirs["detail"] == unknown["detail"]
    _, listed = await world.call("GET", f"/v1/settlements?provider_id={s['a']['id']}", b, expect=200)
    assert listed["data"] == []  # the filter does not widen a provider's view
    # Marking paid is finance's: the role is refused before any batch is looked up.
    for settlement_id in (batch["id"], "se_neverissued"):
        status, refused = await world.call("POST", f"/v1/settlements/{settlement_id}/paid", b, {"note": "x"})
        assert (status, refused["code"]) == (403, "forbidden")
        status, refused = await world.call("POST", f"/v1/settlements/{settlement_id}/paid", s["a"]["token"])
        assert (status, refused["code"]) == (403, "forbidden")  # not even the owner
    assert changed_tables(before, database_state(world.service.settings.db)) == []
    await world.call("GET", f"/v1/settlements/{batch['id']}", s["a"]["token"], expect=200)


async def test_a_provider_token_for_a_provider_that_does_not_exist_writes_nothing(world: World) -> None:
    client, _ = await world.funded(5_000)
    ghost = {"token": world.token(Role.PROVIDER, provider_id="pr_ghost")}
    before = database_state(world.service.settings.db)
    status, body = await world.charge(ghost, client, 100)
    assert (status, body["code"]) == (403, "provider_not_approved")
    status, body = await world.call("POST", "/v1/settlements", ghost["token"])
    assert (status, body["code"]) == (404, "not_found")
    _, listed = await world.call("GET", "/v1/charges", ghost["token"], expect=200)
    assert listed["data"] == []
    assert changed_tables(before, database_state(world.service.settings.db)) == []


async def test_a_client_sees_and_answers_only_its_own_wallet(world: World) -> None:
    client_a, provider = await world.funded(10_000)
    client_b = await world.client(national_id=None)
    await world.budget(client_b["id"], {"home_care": 2_000})
    await world.credit()
    status, waiting = await world.charge(provider, client_a, 1_000, method="app")
    assert status == 201 and waiting["status"] == "pending"
    before = database_state(world.service.settings.db)
    wallet_b = await world.wallet(client_b)
    assert wallet_b["client_id"] == client_b["id"] and wallet_b["balance"] == 2_000
    _, charges_b = await world.call("GET", "/v1/me/charges", client_b["token"], expect=200)
    assert charges_b["data"] == []
    _, history_b = await world.call("GET", "/v1/me/transactions", client_b["token"], expect=200)
    assert {t["amount"] for t in history_b["data"]} == {2_000}
    for answer in ("approve", "decline"):
        status, theirs = await world.call("POST", f"/v1/me/charges/{waiting['id']}/{answer}", client_b["token"])
        _, unknown = await world.call("POST", f"/v1/me/charges/ch_neverissued/{answer}", client_b["token"])
        assert (status, theirs["code"]) == (404, "not_found")
        assert theirs["detail"] == unknown["detail"]
    # A client token may name only its own wallet in ?client_id= (representatives name the one they
    # act for): naming another is refused, not quietly answered with the caller's own wallet.
    status, refused = await world.call("GET", f"/v1/me/wallet?client_id={client_a['id']}", client_b["token"])
    assert (status, refused["code"]) == (403, "forbidden")
    _, own = await world.call("GET", f"/v1/me/wallet?client_id={client_b['id']}", client_b["token"], expect=200)
    assert own["client_id"] == client_b["id"]
    assert changed_tables(before, database_state(world.service.settings.db)) == []
    await world.call("POST", f"/v1/me/charges/{waiting['id']}/approve", client_a["token"], expect=200)


async def test_a_client_token_for_a_client_that_does_not_exist_sees_an_empty_wallet(world: World) -> None:
    ghost = world.token(Role.CLIENT, client_id="cl_ghost")
    await world.funded(1_000)
    before = database_state(world.service.settings.db)
    _, body = await world.call("GET", "/v1/me/wallet", ghost, expect=200)
    assert body["balance"] == 0 and body["lines"] == []
    _, charges = await world.call("GET", "/v1/me/charges", ghost, expect=200)
    assert charges["data"] == []
    assert changed_tables(before, database_state(world.service.settings.db)) == []


# Roles: every guarded route, for every role it does not admit.


def _guarded_routes(world: World) -> list[tuple[str, str, tuple[Role, ...]]]:
    found = []
    for route in world.http.app.router.routes():
        roles = getattr(route.handler, "roles", None)
        if roles is not None and route.method != "HEAD" and route.resource is not None:
            found.append((route.method, route.resource.canonical, tuple(roles)))
    return found


async def test_every_guarded_route_refuses_other_roles_and_anonymous_callers(world: World) -> None:
    s = await _two_providers(world)
    tokens = {
        Role.ADMIN: world.admin,
        Role.FINANCE: world.finance,
        Role.PROVIDER: s["a"]["token"],
        Role.CLIENT: s["client"]["token"],
        Role.REPRESENTATIVE: s["representative_token"],
    }
    ids = {
        "client_id": s["client"]["id"],
        "provider_id": s["a"]["id"],
        "charge_id": s["pending"]["id"],
        "settlement_id": s["batch"]["id"],
        "month": "2027-01",
        "representation_id": s["representation"]["id"],
        "budget_id": "bu_any",  # refused before any lookup
        "batch_id": "pb_any",  # refused before any lookup
        "service_id": "sv_any",
        "offer_id": "of_any",
        "decision_id": "de_any",
    }
    routes = _guarded_routes(world)
    assert len(routes) >= 30 and all(roles for _, _, roles in routes)
    before = database_state(world.service.settings.db)
    refused = 0
    for method, template, roles in routes:
        path = template.format(**ids)
        body = {"amount": 100, "code": s["code"], "month": "2027-01", "name": "x", "code_": "x"}
        for role, token in tokens.items():
            if role in roles:
                continue
            status, problem = await world.call(method, path, token, body, key=f"roles-{refused}")
            assert (status, problem["code"]) == (403, "forbidden"), (method, template, role, problem)
            refused += 1
        response = await world.http.request(method, path, json=body)
        assert response.status == 401 and response.content_type == PROBLEM, (method, template)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused >= 60
    assert changed_tables(before, database_state(world.service.settings.db)) == []
    # The pending charge and the open batch are still there for those allowed.
    await world.call("GET", f"/v1/charges/{s['pending']['id']}", s["a"]["token"], expect=200)
    await world.call("POST", f"/v1/settlements/{s['batch']['id']}/paid", world.finance, expect=200)


async def test_a_client_token_cannot_charge_and_a_provider_token_cannot_read_wallets(world: World) -> None:
    """The two commonest confusions, spelt out with real bodies."""
    client, provider = await world.funded(5_000)
    before = database_state(world.service.settings.db)
    body = {
        "phone": client["phone"],
        "amount": 100,
        "category": "home_care",
        "identity": {"method": "national_id", "national_id": NATIONAL_ID},
    }
    status, problem = await world.call("POST", "/v1/charges", client["token"], body)
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem = await world.call("GET", "/v1/me/wallet", provider["token"])
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem = await world.call("POST", "/v1/credit-runs", provider["token"], {"month": "2027-02"})
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem = await world.call("GET", f"/v1/clients/{client['id']}", provider["token"])
    assert (status, problem["code"]) == (403, "forbidden")
    assert changed_tables(before, database_state(world.service.settings.db)) == []
