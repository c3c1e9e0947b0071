"""A real OpenID Provider for the tests: ``oidc-provider`` (npm, OpenID certified) run by Node from
``tests/oidc/`` (``make test`` installs it with ``npm ci``), configured with the clients, people
and keys a test names, on a free port; and a browser's part in a sign-in, over real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from joserfc.jwk import ECKey, RSAKey

HERE = Path(__file__).parent / "oidc"
START_TIMEOUT_SECONDS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rsa_key(kid: str, use: str = "sig") -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": kid, "use": use, "alg": "RS256" if use == "sig" else "RSA-OAEP-256"})


def write_pem(key: RSAKey | ECKey, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.as_pem(private=True))
    return str(path)


@dataclass
class OpenIdProvider:
    """One ``node provider.mjs`` process; ``restart`` brings it back with other keys on the same port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    keys: list[RSAKey] = field(default_factory=lambda: [rsa_key("provider-1")])
    clients: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    id_token_ttl_seconds: int = 3600
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)  # what it wrote after it started (errors)
    _drainer: threading.Thread | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        node = shutil.which("node")
        assert node, "the tests need Node (nodejs) for their OpenID Provider"
        assert (HERE / "node_modules" / "oidc-provider").is_dir(), "run `make test` (it runs `npm ci` in tests/oidc)"
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": [key.as_dict(private=True) for key in self.keys]},
            "clients": self.clients,
            "accounts": self.accounts,
            "id_token_ttl_seconds": self.id_token_ttl_seconds,
        }
        path = self.workdir / f"provider-{self.port}.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [node, str(HERE / "provider.mjs"), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=HERE,
        )
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:  # warnings (a development setup), then one line once it listens
            if line.startswith("listening"):
                # Whatever it writes later is read and kept, so that a full pipe never stalls it.
                self._drainer = threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True)
                self._drainer.start()
                return
            seen.append(line)
        self.stop()
        raise RuntimeError(f"the OpenID Provider did not start: {''.join(seen)}")

    def _drain(self, stream: Any) -> None:
        try:
            for line in stream:
                self.output.append(line)
        except (ValueError, OSError):  # closed by stop(): nothing more to read
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self._drainer is not None:
            self._drainer.join(timeout=5)  # the pipe ends with the process
            self._drainer = None
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    async def next_id_token(self, id_token: str) -> None:
        """The next token response carries ``id_token`` instead of the one the provider made."""
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.issuer}/__test/next-id-token", json={"id_token": id_token}) as answer:
                assert answer.status == 204


class _Forms(HTMLParser):
    """The forms of a page: action, method and their inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.forms.append({"action": named.get("action"), "id": named.get("id"), "inputs": {}})
        elif tag == "input" and self.forms and named.get("name"):
            self.forms[-1]["inputs"][named["name"]] = named.get("value") or ""


def forms(page: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


@dataclass
class BrowserResult:
    """Where a sign-in ended: the last answer from the wallet, and the URL and query it came to."""

    status: int
    url: str
    query: dict[str, str]
    body: str
    set_cookie: str


class Browser:
    """A browser's part, over real HTTP: one cookie jar for the wallet and the provider; redirects
    followed one by one; the provider's login form submitted."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, url: str) -> aiohttp.ClientResponse:
        response = await self.session.get(url, allow_redirects=False)
        await response.read()
        return response

    async def to_provider(self, wallet: str, audience: str) -> str:
        """Begin a sign-in at the wallet: the provider's authorization URL it redirects to."""
        answer = await self.get(f"{wallet}/v1/auth/{audience}/login")
        assert answer.status == 302, (answer.status, await answer.text())
        return answer.headers["Location"]

    async def sign_in_at_provider(self, authorization_url: str, login: str) -> str:
        """Follow the provider until it redirects back out of itself: that callback URL."""
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorization_url))
        url = authorization_url
        for _ in range(12):
            answer = await self.get(url)
            if answer.status in (302, 303):
                url = urljoin(url, answer.headers["Location"])
                if not url.startswith(origin):
                    return url
                continue
            page = await answer.text()
            assert answer.status == 200, (answer.status, page[:500])
            form = next((f for f in forms(page) if "login" in f["inputs"] or f["inputs"].get("prompt")), None)
            assert form is not None, page[:500]
            data = dict(form["inputs"])
            if "login" in data:
                data.update(login=login, password="any")
            posted = await self.session.post(urljoin(url, form["action"]), data=data, allow_redirects=False)
            await posted.read()
            assert posted.status in (302, 303), (posted.status, await posted.text())
            url = urljoin(url, posted.headers["Location"])
            if not url.startswith(origin):
                return url
        raise AssertionError("the provider never redirected back")

    async def finish(self, callback_url: str) -> BrowserResult:
        answer = await self.get(callback_url)
        location = answer.headers.get("Location", "")
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        return BrowserResult(answer.status, location, query, await answer.text(), answer.headers.get("Set-Cookie", ""))

    async def sign_in(self, wallet: str, audience: str, login: str) -> BrowserResult:
        authorization_url = await self.to_provider(wallet, audience)
        return await self.finish(await self.sign_in_at_provider(authorization_url, login))

    async def confirm_logout(self, logout_url: str) -> str:
        """At the provider's end-session page, say yes; where it sends the browser after."""
        answer = await self.get(logout_url)
        page = await answer.text()
        assert answer.status == 200, (answer.status, page[:300])
        form = next(f for f in forms(page) if "xsrf" in f["inputs"])
        data = {**form["inputs"], "logout": "yes"}
        posted = await self.session.post(urljoin(logout_url, form["action"]), data=data, allow_redirects=False)
        await posted.read()
        assert posted.status in (302, 303), posted.status
        return str(posted.headers["Location"])

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


def authorization_parameters(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


CODE = re.compile(r"[?&]code=([^&]+)")
