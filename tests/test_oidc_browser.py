"""Sign-in on the pages in headless Chromium against the real ``wallet serve`` and the real OpenID
Provider (``oidc-provider`` on Node): a client identifies at the broker and sees their wallet, then
signs out here and at the provider; an admin signs in to /admin through the staff provider and finds
a client at the desk. The pasted-token form is off (the default)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.oidc_provider import OpenIdProvider, free_port, write_pem
from tests.processes import NATIONAL_ID, Server, WalletFiles, seed
from tests.test_web_browser import AXE, CHROMIUM, DESKTOP_VIEWPORT, euros

playwright_api = pytest.importorskip("playwright.sync_api", reason="install the test extra: pip install -e '.[test]'")
from playwright.sync_api import Browser, Page, expect, sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MONTHLY = 30_000
STAFF_SECRET = "staff-client-secret-for-browser-tests"


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def broker_key() -> RSAKey:
    key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return key


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, port: int, broker_key: RSAKey) -> Iterator[OpenIdProvider]:
    wallet = f"http://127.0.0.1:{port}"
    running = OpenIdProvider(
        tmp_path_factory.mktemp("provider"),
        clients=[
            {
                "client_id": "wallet-broker",
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "RS256",
                "jwks": {"keys": [broker_key.as_dict(private=False)]},
                "redirect_uris": [f"{wallet}/v1/auth/client/callback"],
                "post_logout_redirect_uris": [f"{wallet}/"],
            },
            {
                "client_id": "wallet-staff",
                "client_secret": STAFF_SECRET,
                "redirect_uris": [f"{wallet}/v1/auth/staff/callback"],
                "post_logout_redirect_uris": [f"{wallet}/admin"],
            },
        ],
        accounts={
            "aino": {"sub": "aino", "hetu": NATIONAL_ID, "given_name": "Aino", "family_name": "Asiakas"},
            "pekka": {"sub": "pekka", "groups": ["wallet-admin"], "given_name": "Pekka", "family_name": "Pääkäyttäjä"},
        },
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WalletFiles:
    return WalletFiles(tmp_path_factory.mktemp("oidc-web"))


@pytest.fixture(scope="module")
def server(files: WalletFiles, provider: OpenIdProvider, port: int, broker_key: RSAKey) -> Iterator[Server]:
    env = {
        "WALLET_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WALLET_OIDC_CLIENT_ISSUER": provider.issuer,
        "WALLET_OIDC_CLIENT_CLIENT_ID": "wallet-broker",
        "WALLET_OIDC_CLIENT_PRIVATE_KEY": write_pem(broker_key, Path(files.root) / "broker.pem"),
        "WALLET_OIDC_CLIENT_SCOPES": "openid profile hetu",
        "WALLET_OIDC_STAFF_ISSUER": provider.issuer,
        "WALLET_OIDC_STAFF_CLIENT_ID": "wallet-staff",
        "WALLET_OIDC_STAFF_CLIENT_SECRET": STAFF_SECRET,
        "WALLET_OIDC_STAFF_SCOPES": "openid profile groups",
    }
    running = Server(files, port=port, env=env).start()
    yield running
    assert running.stop() == 0, running.log_tail()


@pytest.fixture(scope="module")
def seeded(files: WalletFiles, server: Server) -> Any:
    return seed(files, server, MONTHLY)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` (as .ci/run does)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, base_url=server.base_url)
    context.set_default_timeout(10_000)
    problems: list[str] = []
    context.on("weberror", lambda error: problems.append(f"page error: {error.error}"))
    context.on(
        "console",
        lambda message: problems.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield context.new_page()
    context.close()
    assert problems == [], problems


def no_serious_violations(page: Page) -> None:
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def sign_in_at_provider(page: Page, login: str) -> None:
    """The provider's own development login form: any password."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()


def test_a_client_identifies_at_the_broker_sees_the_wallet_and_signs_out(
    page: Page, seeded: Any, provider: OpenIdProvider, server: Server
) -> None:
    page.goto("/")
    link = page.get_by_role("link", name="Tunnistaudu")
    expect(link).to_be_visible()
    no_serious_violations(page)
    link.click()
    page.wait_for_url(f"{provider.issuer}/**")
    sign_in_at_provider(page, "aino")
    page.wait_for_url(f"{server.base_url}/")
    line = page.locator("li.line", has=page.get_by_role("heading", name="Kotihoito"))
    expect(line.locator("[data-role=available]")).to_have_text(euros(MONTHLY))
    # The session is an HttpOnly cookie: nothing in the page's storage, nothing script can read.
    assert page.evaluate("sessionStorage.getItem('wallet.client')") is None
    assert "wallet_session" not in page.evaluate("document.cookie")
    page.get_by_role("button", name="Kirjaudu ulos").click()
    page.wait_for_url(f"{provider.issuer}/**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{server.base_url}/**")
    expect(page.get_by_role("link", name="Tunnistaudu")).to_be_visible()
    # Signed out here too: the wallet is not shown on a reload.
    page.reload()
    expect(page.get_by_role("link", name="Tunnistaudu")).to_be_visible()
    expect(page.locator("#wallet")).to_be_hidden()


def test_an_admin_signs_in_through_the_staff_provider_and_finds_a_client(
    page: Page, seeded: Any, provider: OpenIdProvider, server: Server
) -> None:
    page.goto("/admin")
    expect(page.locator("#signin-form")).to_be_hidden()  # the pasted-token form is a development setting
    page.get_by_role("link", name="Kirjaudu organisaation tunnuksilla").click()
    page.wait_for_url(f"{provider.issuer}/**")
    sign_in_at_provider(page, "pekka")
    page.wait_for_url(f"{server.base_url}/admin")
    expect(page.locator("#roles")).to_have_text("järjestäjä")
    no_serious_violations(page)
    # The desk: a client found by national id, opened in the client view.
    page.get_by_label("Nimi, puhelinnumero, henkilötunnus tai Y-tunnus").fill(NATIONAL_ID)
    page.get_by_role("button", name="Hae", exact=True).click()
    row = page.locator("#desk-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Aino Asiakas")
    row.get_by_role("button", name="Avaa Aino Asiakas").click()
    expect(page.locator("#client-view-id")).to_have_value(seeded.client_id)
    # A state-changing request from the page carries the session's CSRF token: a category is created.
    page.get_by_label("Tunnus (esim. home_care)").fill("transport")
    page.get_by_label("Nimi (esim. Kotihoito)").fill("Kuljetus")
    page.get_by_role("button", name="Lisää palvelu", exact=True).click()
    expect(page.locator("#category-message")).to_have_text("Palvelu Kuljetus lisätty.")
