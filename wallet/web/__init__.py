"""The three web pages, served from files shipped in the package: no CDN, no build step.

``/`` is the client's page (a phone first), ``/provider`` the point of service, ``/admin`` the
organizer's and finance's. Each page is one HTML file with its script modules and style sheet under
``/static/``. Every answer carries a strict Content-Security-Policy: scripts and styles only from
this origin, nothing inline, no frames, no plugins, and no form posting anywhere (the scripts send
the forms with ``fetch``, so a page whose script failed cannot leak a typed national id into a URL).

These routes are not part of the HTTP API: they are left out of the OpenAPI document, and
``ROUTES`` names them so the document's check can leave out exactly these.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

from aiohttp import web

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidate: a new release is seen at once
}
PAGES: Final = {"/": "client.html", "/provider": "provider.html", "/admin": "admin.html"}
STATIC_PATH: Final = "/static/{name}"
# The pages' sign-in routes (``wallet/web/signin.py``) are browser-facing too.
SIGNIN_ROUTES: Final = frozenset(
    {
        ("GET", "/v1/auth/{audience}/login"),
        ("GET", "/v1/auth/{audience}/callback"),
        ("GET", "/v1/auth/{audience}/jwks"),
        ("GET", "/v1/auth/options"),
        ("GET", "/v1/auth/session"),
        ("POST", "/v1/auth/logout"),
    }
)
ROUTES: Final = frozenset({("GET", path) for path in PAGES} | {("GET", STATIC_PATH)}) | SIGNIN_ROUTES
CONTENT_TYPES: Final = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(js|css|svg)$")


def _load() -> dict[str, bytes]:
    """Every shipped file, read once at start-up: nothing on disk is looked up per request."""
    folder = resources.files(__package__).joinpath("static")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


def _response(name: str, body: bytes) -> web.Response:
    content_type = CONTENT_TYPES[name[name.rindex(".") :]]
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)


def routes(app: web.Application) -> None:
    files = _load()
    missing = [name for name in PAGES.values() if name not in files]
    if missing:
        raise RuntimeError(f"the package lacks its web pages: {missing}")

    def page(name: str) -> web.Response:
        return _response(name, files[name])

    for path, name in PAGES.items():

        async def serve_page(request: web.Request, name: str = name) -> web.Response:
            return page(name)

        app.router.add_get(path, serve_page)

    async def serve_static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not _STATIC_NAME.match(name) or name not in files:
            raise web.HTTPNotFound(text="no such file")
        return _response(name, files[name])

    app.router.add_get(STATIC_PATH, serve_static)
