"""The web pages as HTTP serves them: shipped files, strict headers, nothing inline, every text in
three languages, and the two API reads the pages need (a provider's own record, category names
for clients). What the pages do in a browser is tests/test_web_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import World
from wallet.demo import seed
from wallet.settings import Settings
from wallet.web import CONTENT_SECURITY_POLICY, PAGES, ROUTES

STATIC = Path(__file__).parents[1] / "wallet" / "web" / "static"
STRINGS = (STATIC / "strings.js").read_text(encoding="utf-8")


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", sorted(PAGES))
async def test_each_page_is_served_with_a_strict_content_security_policy(http: TestClient, path: str) -> None:
    response = await http.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # no 'unsafe-inline', no eval
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'none'"  # a form whose script failed cannot post a national id anywhere
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    body = await response.text()
    assert '<html lang="fi">' in body  # Finnish first


class _Inline(HTMLParser):
    """Collects what a strict policy would refuse: inline scripts, styles and event handlers, and
    anything loaded from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self.scripts: list[str] = []
        self.ids: list[str] = []
        self.label_targets: list[str] = []
        self.controls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = dict(attributes)
        for name, value in attributes:
            if name.startswith("on") or name == "style":
                self.refused.append(f"<{tag} {name}>")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.refused.append(f"<{tag} {name}={value}>")
        if tag == "style":
            self.refused.append("<style>")
        if tag == "script":
            if not attrs.get("src"):
                self.refused.append("inline <script>")
            else:
                self.scripts.append(attrs["src"] or "")
        if "id" in attrs:
            self.ids.append(attrs["id"] or "")
        if tag == "label" and attrs.get("for"):
            self.label_targets.append(attrs["for"] or "")
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            self.controls.append(attrs.get("id") or f"<{tag} name={attrs.get('name')}> without an id")


@pytest.mark.parametrize("name", sorted(PAGES.values()))
def test_pages_have_nothing_inline_and_every_control_a_label(name: str) -> None:
    parser = _Inline()
    parser.feed((STATIC / name).read_text(encoding="utf-8"))
    assert parser.refused == []
    assert parser.scripts and all(src.startswith("/static/") for src in parser.scripts)
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    unlabelled = [control for control in parser.controls if control not in parser.label_targets]
    assert unlabelled == [], f"controls without a <label for>: {unlabelled}"


async def test_static_files_are_served_and_nothing_else(http: TestClient) -> None:
    for name in (
        "provider.js",
        "client.js",
        "admin.js",
        "admin-finance.js",
        "catalog.js",
        "wallet.css",
        "api.js",
        "favicon.svg",
    ):
        response = await http.get(f"/static/{name}")
        assert response.status == 200, name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (await http.get("/static/provider.js")).content_type == "text/javascript"
    assert (await http.get("/static/wallet.css")).content_type == "text/css"
    for name in ("missing.js", "..%2Fapp.py", "%2e%2e%2f__init__.py", "provider.html", "__init__.py"):
        response = await http.get(f"/static/{name}")
        assert response.status == 404, name
        assert response.content_type == "application/problem+json"


async def test_page_routes_stay_out_of_the_api_document(http: TestClient) -> None:
    document = await (await http.get("/v1/openapi.json")).json()
    assert {path for _, path in ROUTES}.isdisjoint(document["paths"])


def test_the_policy_names_no_other_origin() -> None:
    assert "http" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def _keys_used() -> set[str]:
    keys: set[str] = set()
    for path in STATIC.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r'data-i18n="([a-z_.]+)"', text))
        keys |= set(re.findall(r'data-i18n-attr="[a-z-]+:([a-z_.]+)"', text))
    for path in STATIC.glob("*.js"):
        keys |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"', path.read_text(encoding="utf-8")))
        keys |= set(
            re.findall(
                r'"((?:client|admin|provider|status|problem|common)\.[a-z_]+(?:\.[a-z_]+)*)"',
                path.read_text(encoding="utf-8"),
            )
        )
    return keys


def test_every_text_is_in_finnish_swedish_and_english() -> None:
    entries = dict(re.findall(r'^  "([a-z_.]+)": (\[.*\]),$', STRINGS, flags=re.MULTILINE))
    assert len(entries) > 200
    # A section in a module of its own brings its texts in the same form (i18n.js `addStrings`).
    for path in sorted(STATIC.glob("*.js")):
        if path.name != "strings.js":
            own = re.findall(r'^  "([a-z_.]+)": (\[.*\]),$', path.read_text(encoding="utf-8"), flags=re.MULTILINE)
            assert not {key for key, _ in own} & entries.keys(), path.name
            entries.update(own)
    for key, texts in entries.items():
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', texts)
        assert len(parts) == 3 and all(part.strip() for part in parts), key
        placeholders = [set(re.findall(r"\{[a-z]+\}", part)) for part in parts]
        assert placeholders[0] == placeholders[1] == placeholders[2], key
    missing = sorted(key for key in _keys_used() if key not in entries and not key.endswith("."))
    assert missing == [], f"texts used but not translated: {missing}"


async def test_a_provider_reads_its_own_record_and_no_other(world: World) -> None:
    await world.category()
    own = await world.provider(["home_care"])
    other = await world.provider(["home_care"])
    _, record = await world.call("GET", f"/v1/providers/{own['id']}", own["token"], expect=200)
    assert record["categories"] == ["home_care"] and record["status"] == "approved"
    await world.call("GET", f"/v1/providers/{other['id']}", own["token"], expect=404)
    client = await world.client()
    await world.call("GET", f"/v1/providers/{own['id']}", client["token"], expect=403)


async def test_a_client_reads_the_category_names(world: World) -> None:
    await world.category("home_care", "Kotihoito")
    client = await world.client()
    _, page = await world.call("GET", "/v1/categories", client["token"], expect=200)
    assert page["data"][0]["name"] == "Kotihoito"
    await world.call("GET", "/v1/categories", None, expect=401)


async def test_the_demo_says_where_the_pages_are_and_how_to_sign_in(settings: Settings) -> None:
    text = await seed(settings)
    for page in ("/provider", "/admin"):
        assert f"http://{settings.host}:{settings.port}{page}" in text
    assert f"http://{settings.host}:{settings.port}/ " in text  # the client's page
    assert re.search(r"client id:\s+pc_\S+", text) and re.search(r"client secret:\s+\S{20,}", text)
    assert re.search(r"admin:\s+ey\S+", text) and re.search(r"finance:\s+ey\S+", text)
    assert settings.sms_outbox in text  # where a newcomer reads the SMS codes
