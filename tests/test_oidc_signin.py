"""Sign-in through a real OpenID Provider (``oidc-provider`` on Node, started per test), the test
acting as the browser over real HTTP: clients, representatives, admin and finance staff each land
where they should; sessions, CSRF and sign-out; and the attacks on the flow are refused."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from yarl import URL

from tests.conftest import NATIONAL_ID, OTHER_NATIONAL_ID, World
from tests.oidc_provider import Browser, OpenIdProvider, authorization_parameters, free_port, rsa_key, write_pem
from wallet.api.keys import SIGNIN
from wallet.clock import FakeClock
from wallet.settings import Settings
from wallet.web.signin import STATE_COOKIE

NOBODYS_NATIONAL_ID = "010190-123M"
STAFF_SECRET = "staff-client-secret-for-tests-only"
BROKER = "wallet-broker"
STAFF = "wallet-staff"


@pytest.fixture
def clock() -> FakeClock:
    # ID tokens carry the provider's real time: the service's clock starts at it.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def app_port() -> int:
    return free_port()


@pytest.fixture
def client_key() -> RSAKey:
    key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()  # as the wallet names the key it loads from PEM: its thumbprint
    return key


@pytest.fixture
def encrypted() -> bool:
    """Whether the broker encrypts its ID tokens to us (a test parametrizes it to True)."""
    return False


@pytest.fixture
def acr_values() -> str:
    """The level of assurance asked of the broker (a test parametrizes it)."""
    return ""


@pytest.fixture
def encryption_key() -> RSAKey:
    key = RSAKey.generate_key(2048, {"use": "enc"}, private=True)
    key.ensure_kid()
    return key


@pytest.fixture
def provider(
    tmp_path: Path, app_port: int, client_key: RSAKey, encrypted: bool, encryption_key: RSAKey
) -> Iterator[OpenIdProvider]:
    wallet = f"http://127.0.0.1:{app_port}"
    broker_keys = [client_key.as_dict(private=False)]
    encryption: dict[str, Any] = {}
    if encrypted:
        broker_keys.append({**encryption_key.as_dict(private=False), "use": "enc", "alg": "RSA-OAEP-256"})
        encryption = {"id_token_encrypted_response_alg": "RSA-OAEP-256", "id_token_encrypted_response_enc": "A256GCM"}
    provider = OpenIdProvider(
        tmp_path,
        clients=[
            {
                "client_id": BROKER,
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "RS256",
                "jwks": {"keys": broker_keys},
                "redirect_uris": [f"{wallet}/v1/auth/client/callback"],
                "post_logout_redirect_uris": [f"{wallet}/"],
                **encryption,
            },
            {
                "client_id": STAFF,
                "client_secret": STAFF_SECRET,
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": [f"{wallet}/v1/auth/staff/callback"],
                "post_logout_redirect_uris": [f"{wallet}/admin"],
            },
        ],
        accounts={
            "aino": {"sub": "aino", "hetu": NATIONAL_ID, "given_name": "Aino", "family_name": "Asiakas"},
            "rauha": {"sub": "rauha", "hetu": OTHER_NATIONAL_ID, "given_name": "Rauha", "family_name": "Edustaja"},
            "nobody": {"sub": "nobody", "hetu": NOBODYS_NATIONAL_ID, "given_name": "Ei", "family_name": "Kukaan"},
            "pekka": {"sub": "pekka", "groups": ["wallet-admin"], "given_name": "Pekka", "family_name": "Pääkäyttäjä"},
            "fiona": {"sub": "fiona", "groups": ["wallet-finance"], "given_name": "Fiona", "family_name": "Talous"},
            "ulla": {"sub": "ulla", "groups": ["library"], "given_name": "Ulla", "family_name": "Ulkopuolinen"},
        },
    )
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture
def settings(
    settings: Settings,
    provider: OpenIdProvider,
    app_port: int,
    tmp_path: Path,
    client_key: RSAKey,
    encrypted: bool,
    encryption_key: RSAKey,
    acr_values: str,
) -> Settings:
    return replace(
        settings,
        public_url=f"http://127.0.0.1:{app_port}",
        oidc_client_issuer=provider.issuer,
        oidc_client_client_id=BROKER,
        oidc_client_private_key=write_pem(client_key, tmp_path / "oidc" / "broker.pem"),
        oidc_client_scopes="openid profile hetu",
        oidc_staff_issuer=provider.issuer,
        oidc_staff_client_id=STAFF,
        oidc_staff_client_secret=STAFF_SECRET,
        oidc_staff_scopes="openid profile groups",
        oidc_client_encryption_key=write_pem(encryption_key, tmp_path / "oidc" / "enc.pem") if encrypted else "",
        oidc_client_acr_values=acr_values,
    )


@pytest.fixture
async def http(aiohttp_client: Any, app: web.Application, app_port: int) -> TestClient:
    return await aiohttp_client(app, server_kwargs={"port": app_port})


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    browser = Browser()
    yield browser
    await browser.close()


@pytest.fixture
async def other_browser() -> AsyncIterator[Browser]:
    browser = Browser()
    yield browser
    await browser.close()


async def funded(world: World, amount: int, national_id: str | None) -> dict[str, Any]:
    """A client with ``amount`` on a line this month (the service's clock runs at the real time here)."""
    month = world.service.current_month()
    await world.category()
    owner = await world.client(national_id=national_id)
    await world.budget(owner["id"], {"home_care": amount}, start=month, end=month)
    await world.credit(month)
    return owner


def base(app_port: int) -> str:
    return f"http://127.0.0.1:{app_port}"


async def call(browser: Browser, method: str, url: str, csrf: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with browser.session.request(method, url, json=body, headers=headers, allow_redirects=False) as answer:
        text = await answer.text()
        return answer.status, (json.loads(text) if text and answer.content_type.endswith("json") else text)


async def signed_in(browser: Browser, wallet: str, audience: str, login: str) -> dict[str, Any]:
    result = await browser.sign_in(wallet, audience, login)
    assert result.status == 302, (result.status, result.body[:300])
    assert result.url == ("/admin" if audience == "staff" else "/")
    status, session = await call(browser, "GET", f"{wallet}/v1/auth/session")
    assert status == 200, session
    return dict(session)


# People landing where they should.


async def test_a_client_signs_in_to_their_own_wallet(world: World, browser: Browser, app_port: int) -> None:
    owner = await funded(world, 10_000, NATIONAL_ID)
    wallet = base(app_port)
    result = await browser.sign_in(wallet, "client", "aino")
    assert result.status == 302 and result.url == "/"
    cookie = result.set_cookie
    assert "wallet_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here; https:// in WALLET_PUBLIC_URL adds it
    status, session = await call(browser, "GET", f"{wallet}/v1/auth/session")
    assert status == 200
    assert session["role"] == "client" and session["client_id"] == owner["id"]
    assert session["name"] == "Aino Asiakas"
    status, body = await call(browser, "GET", f"{wallet}/v1/me/wallet")
    assert status == 200 and body["balance"] == 10_000
    # The session's secret is kept only as a keyed hash.
    secret = browser.cookie("wallet_session")
    assert secret and secret not in world.dump()


@pytest.mark.parametrize("encrypted", [True])
async def test_a_client_signs_in_with_an_id_token_encrypted_to_the_wallet(
    world: World, browser: Browser, provider: OpenIdProvider, app_port: int
) -> None:
    owner = await funded(world, 2_500, NATIONAL_ID)
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "client", "aino")
    assert session["client_id"] == owner["id"]
    # Our JWKS publishes the keys the broker needs: the assertion-signing key and the encryption key.
    status, jwks = await call(browser, "GET", f"{wallet}/v1/auth/client/jwks")
    assert status == 200 and {key["use"] for key in jwks["keys"]} == {"sig", "enc"}
    assert all("d" not in key for key in jwks["keys"])  # public halves only
    # A signed but unencrypted ID token is refused where encryption is configured.
    assert await _with_id_token(browser, provider, wallet, lambda nonce: _forge(provider, nonce)) == 400


async def test_a_representative_signs_in_to_the_client_they_hold_a_mandate_for(
    world: World, browser: Browser, app_port: int
) -> None:
    owner = await funded(world, 7_000, None)
    body = {"name": "Rauha Edustaja", "phone": "+358401234567", "national_id": OTHER_NATIONAL_ID, "scope": "view"}
    await world.call("POST", f"/v1/clients/{owner['id']}/representatives", world.admin, body, expect=201)
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "client", "rauha")
    assert session["role"] == "representative"
    assert session["client_ids"] == [owner["id"]] and session["client_id"] == owner["id"]
    status, shown = await call(browser, "GET", f"{wallet}/v1/me/wallet")
    assert status == 200 and shown["balance"] == 7_000


async def test_a_person_with_neither_wallet_nor_mandate_gets_a_page_that_reveals_nothing(
    world: World, browser: Browser, other_browser: Browser, app_port: int
) -> None:
    owner = await funded(world, 1_000, None)
    # rauha's mandate is revoked: now she, too, may open nothing.
    body = {"name": "Rauha Edustaja", "phone": "+358401234567", "national_id": OTHER_NATIONAL_ID, "scope": "view"}
    _, mandate = await world.call("POST", f"/v1/clients/{owner['id']}/representatives", world.admin, body, expect=201)
    await world.call(
        "POST", f"/v1/clients/{owner['id']}/representatives/{mandate['id']}/revoke", world.admin, expect=200
    )
    wallet = base(app_port)
    nobody = await browser.sign_in(wallet, "client", "nobody")
    revoked = await other_browser.sign_in(wallet, "client", "rauha")
    for result in (nobody, revoked):
        assert result.status == 403
        assert "wallet_session" not in result.set_cookie
    assert nobody.body == revoked.body  # the same page for every reason
    assert "Ei käyttöoikeutta" in nobody.body
    assert (await call(browser, "GET", f"{wallet}/v1/me/wallet"))[0] == 401


async def test_an_admin_signs_in_and_their_actions_are_theirs_in_the_audit_log(
    world: World, browser: Browser, app_port: int
) -> None:
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "staff", "pekka")
    assert session["role"] == "admin" and session["name"] == "Pekka Pääkäyttäjä"
    csrf = session["csrf_token"]
    status, body = await call(
        browser, "POST", f"{wallet}/v1/categories", csrf, {"code": "transport", "name": "Kuljetus"}
    )
    assert status == 201, body
    actors = [
        row["actor"] for row in world.records("SELECT actor, action FROM audit_log WHERE action LIKE ?", "category%")
    ]
    assert actors == ["admin:pekka (Pekka Pääkäyttäjä)"]


async def test_finance_staff_sign_in_as_finance_and_others_get_403(
    world: World, browser: Browser, other_browser: Browser, app_port: int
) -> None:
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "staff", "fiona")
    assert session["role"] == "finance"
    status, _ = await call(browser, "GET", f"{wallet}/v1/exports/settlements?from=2026-01-01&to=2026-12-31&format=csv")
    assert status == 200
    status, body = await call(
        browser, "POST", f"{wallet}/v1/categories", session["csrf_token"], {"code": "x", "name": "X"}
    )
    assert status == 403 and body["code"] == "forbidden"  # an admin's action
    outsider = await other_browser.sign_in(wallet, "staff", "ulla")
    assert outsider.status == 403 and "wallet_session" not in outsider.set_cookie


# Sessions.


async def test_a_state_changing_request_without_the_csrf_token_is_refused(
    world: World, browser: Browser, app_port: int
) -> None:
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "staff", "pekka")
    for csrf in (None, "0" * 64):
        status, body = await call(browser, "POST", f"{wallet}/v1/categories", csrf, {"code": "c1", "name": "C"})
        assert status == 403 and body["code"] == "forbidden", body
    assert world.sql("SELECT COUNT(*) FROM categories WHERE code = 'c1'")[0][0] == 0
    status, _ = await call(
        browser, "POST", f"{wallet}/v1/categories", session["csrf_token"], {"code": "c1", "name": "C"}
    )
    assert status == 201


async def test_a_cookie_from_another_session_does_not_carry_this_sessions_rights(
    world: World, browser: Browser, other_browser: Browser, app_port: int
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    client_session = await signed_in(browser, wallet, "client", "aino")
    staff_session = await signed_in(other_browser, wallet, "staff", "pekka")
    # The client's cookie with the admin's CSRF token: neither the admin's rights nor a valid token.
    status, body = await call(
        browser, "POST", f"{wallet}/v1/categories", staff_session["csrf_token"], {"code": "z", "name": "Z"}
    )
    assert status == 403 and body["code"] == "forbidden"
    # A cookie nobody was given.
    forged = Browser()
    try:
        forged.session.cookie_jar.update_cookies({"wallet_session": "x" * 43}, URL(wallet))
        assert (await call(forged, "GET", f"{wallet}/v1/auth/session"))[0] == 401
        assert (await call(forged, "GET", f"{wallet}/v1/me/wallet"))[0] == 401
    finally:
        await forged.close()
    assert client_session["csrf_token"] != staff_session["csrf_token"]


async def test_sessions_end_after_their_idle_and_absolute_lifetimes(
    world: World, browser: Browser, clock: FakeClock, app_port: int, settings: Settings
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    await signed_in(browser, wallet, "client", "aino")
    for _ in range(3):  # used within the idle lifetime: still on, past the idle lifetime in all
        clock.advance(seconds=settings.session_idle_seconds - 60)
        assert (await call(browser, "GET", f"{wallet}/v1/me/wallet"))[0] == 200
    clock.advance(seconds=settings.session_idle_seconds)
    assert (await call(browser, "GET", f"{wallet}/v1/me/wallet"))[0] == 401
    await signed_in(browser, wallet, "client", "aino")
    clock.advance(seconds=settings.session_absolute_seconds)
    assert (await call(browser, "GET", f"{wallet}/v1/me/wallet"))[0] == 401


async def test_ended_sessions_are_forgotten_by_the_background_purge(
    world: World, browser: Browser, other_browser: Browser, clock: FakeClock, app_port: int, settings: Settings
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    first = await signed_in(browser, wallet, "client", "aino")
    await signed_in(other_browser, wallet, "staff", "pekka")
    await call(browser, "POST", f"{wallet}/v1/auth/logout", first["csrf_token"])
    signin = world.http.app[SIGNIN]
    assert await signin.purge_ended() == 1  # the signed-out one; the admin's is in use
    assert world.sql("SELECT COUNT(*) FROM web_sessions")[0][0] == 1
    clock.advance(seconds=settings.session_idle_seconds)
    assert await signin.purge_ended() == 1
    assert world.sql("SELECT COUNT(*) FROM web_sessions")[0][0] == 0


async def test_sign_out_ends_the_session_here_and_at_the_provider(
    world: World, browser: Browser, app_port: int
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    session = await signed_in(browser, wallet, "client", "aino")
    secret = browser.cookie("wallet_session")
    assert (await call(browser, "POST", f"{wallet}/v1/auth/logout"))[0] == 403  # no CSRF token
    status, body = await call(browser, "POST", f"{wallet}/v1/auth/logout", session["csrf_token"])
    assert status == 200 and body["logout_url"].startswith(f"{world.service.settings.oidc_client_issuer}/session/end")
    after = await browser.confirm_logout(body["logout_url"])
    assert after.startswith(f"{wallet}/")
    # The old cookie, sent again, opens nothing.
    browser.session.cookie_jar.update_cookies({"wallet_session": secret}, URL(wallet))
    assert (await call(browser, "GET", f"{wallet}/v1/me/wallet"))[0] == 401
    # ... and the provider asks the person to sign in again (its session ended too).
    authorization = await browser.to_provider(wallet, "client")
    answer = await browser.get(authorization)
    page = await (await browser.get(str(URL(authorization).join(URL(answer.headers["Location"]))))).text()
    assert 'name="login"' in page


async def test_bearer_tokens_work_as_before_and_sms_sign_in_can_be_turned_off(world: World) -> None:
    owner = await funded(world, 1_000, NATIONAL_ID)
    assert (await world.wallet(owner))["balance"] == 1_000
    await world.call("POST", "/v1/login", json={"phone": owner["phone"]}, expect=202)


async def test_with_sms_sign_in_off_the_sms_login_is_refused(
    aiohttp_client: Any, settings: Settings, clock: FakeClock, sms: Any
) -> None:
    from wallet.api.app import create_app

    app = create_app(replace(settings, sms_login=False), clock=clock, sms=sms, background_jobs=False)
    client = await aiohttp_client(app)
    answer = await client.post("/v1/login", json={"phone": "+358401234567"})
    assert answer.status == 403 and (await answer.json())["code"] == "forbidden"
    assert sms.sent == []


# Attacks on the flow.


def _forge(provider: OpenIdProvider, nonce: str, key: RSAKey | None = None, **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": BROKER, "sub": "aino", "iat": now, "exp": now + 300, "nonce": nonce}
    claims.update({"hetu": NATIONAL_ID, "given_name": "Aino", "family_name": "Asiakas"})
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    signer = key or provider.keys[0]
    return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def _with_id_token(browser: Browser, provider: OpenIdProvider, wallet: str, forge: Any) -> int:
    authorization = await browser.to_provider(wallet, "client")
    nonce = authorization_parameters(authorization)["nonce"]
    callback = await browser.sign_in_at_provider(authorization, "aino")
    await provider.next_id_token(forge(nonce))
    result = await browser.finish(callback)
    assert ("wallet_session" in result.set_cookie) == (result.status == 302)
    return result.status


async def test_forged_id_tokens_are_refused_and_a_good_one_accepted(
    world: World, browser: Browser, provider: OpenIdProvider, app_port: int
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    stranger = rsa_key("provider-1")  # the provider's kid, another key: not in its JWKS
    unknown = rsa_key("not-published")
    attacks = {
        "wrong nonce": lambda nonce: _forge(provider, "another-nonce"),
        "other issuer": lambda nonce: _forge(provider, nonce, iss="http://127.0.0.1:1"),
        "other audience": lambda nonce: _forge(provider, nonce, aud="someone-else"),
        "expired": lambda nonce: _forge(provider, nonce, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "no expiry": lambda nonce: _forge(provider, nonce, exp=None),
        "alg none": lambda nonce: _unsigned({"iss": provider.issuer, "aud": BROKER, "sub": "aino", "nonce": nonce}),
        "key not in JWKS, known kid": lambda nonce: _forge(provider, nonce, key=stranger),
        "key not in JWKS, unknown kid": lambda nonce: _forge(provider, nonce, key=unknown),
    }
    for name, forge in attacks.items():
        assert await _with_id_token(browser, provider, wallet, forge) == 400, name
    # The harness itself lets a good token through: the refusals above are the checks'.
    assert await _with_id_token(browser, provider, wallet, lambda nonce: _forge(provider, nonce)) == 302


LOA_HIGH = "http://ftn.ficora.fi/2017/loa3"
LOA_SUBSTANTIAL = "http://ftn.ficora.fi/2017/loa2"


@pytest.mark.parametrize("acr_values", [LOA_HIGH])
async def test_an_id_token_below_the_asked_level_of_assurance_is_refused(
    world: World, browser: Browser, provider: OpenIdProvider, app_port: int
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    authorization = await browser.to_provider(wallet, "client")
    assert authorization_parameters(authorization)["acr_values"] == LOA_HIGH
    for acr, expected in ((LOA_SUBSTANTIAL, 400), (None, 400), (LOA_HIGH, 302)):
        assert (
            await _with_id_token(browser, provider, wallet, lambda nonce: _forge(provider, nonce, acr=acr)) == expected
        )


async def test_a_wrong_or_missing_state_is_refused(http: TestClient, browser: Browser, app_port: int) -> None:
    wallet = base(app_port)
    mutations = {
        "wrong": lambda url: url.update_query(state="not-the-state"),
        "missing": lambda url: url.with_query({k: v for k, v in url.query.items() if k != "state"}),
    }
    for name, mutate in mutations.items():
        authorization = await browser.to_provider(wallet, "client")
        callback = URL(await browser.sign_in_at_provider(authorization, "aino"))
        assert browser.cookie(STATE_COOKIE), name  # the browser holds its state: the state itself is refused
        result = await browser.finish(str(mutate(callback)))
        assert result.status == 400 and "wallet_session" not in result.set_cookie, name


async def test_a_callback_without_the_browsers_state_cookie_is_refused(
    http: TestClient, browser: Browser, other_browser: Browser, app_port: int
) -> None:
    # Login CSRF: an attacker's own callback URL, opened in the victim's browser, makes no session.
    wallet = base(app_port)
    authorization = await browser.to_provider(wallet, "client")
    callback = await browser.sign_in_at_provider(authorization, "aino")
    result = await other_browser.finish(callback)
    assert result.status == 400 and "wallet_session" not in result.set_cookie


async def test_a_replayed_authorization_code_is_refused(world: World, browser: Browser, app_port: int) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    authorization = await browser.to_provider(wallet, "client")
    sealed = browser.cookie(STATE_COOKIE)
    callback = await browser.sign_in_at_provider(authorization, "aino")
    assert (await browser.finish(callback)).status == 302
    # The same callback again, even with the state cookie put back: the provider refuses the used code.
    browser.session.cookie_jar.update_cookies({STATE_COOKIE: sealed}, URL(callback))
    replayed = await browser.finish(callback)
    assert replayed.status == 400 and "wallet_session" not in replayed.set_cookie


async def test_a_key_rotated_at_the_provider_is_accepted_after_the_keys_are_fetched_again(
    world: World, browser: Browser, provider: OpenIdProvider, clock: FakeClock, app_port: int, settings: Settings
) -> None:
    await funded(world, 1_000, NATIONAL_ID)
    wallet = base(app_port)
    assert (await browser.sign_in(wallet, "client", "aino")).status == 302  # the keys are cached now
    provider.keys = [rsa_key("provider-2")]
    provider.restart()
    clock.advance(seconds=settings.oidc_keys_refresh_min_seconds + 1)
    fresh = Browser()
    try:
        assert (await fresh.sign_in(wallet, "client", "aino")).status == 302
    finally:
        await fresh.close()
