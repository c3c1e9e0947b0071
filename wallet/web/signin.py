"""The sign-in routes of the pages (``wallet/service/signin.py`` does the work):

- ``GET /v1/auth/{audience}/login`` → 302 to the identity provider, with the sealed sign-in state
  in a cookie (``SameSite=Lax``: it must come back on the provider's redirect, a cross-site
  navigation, and only to the callback's path);
- ``GET /v1/auth/{audience}/callback`` → the session cookie (``HttpOnly``, ``SameSite=Strict``,
  ``Secure`` over TLS) and 302 to the page; a refusal is a plain page saying sign-in failed, a
  person with no access a page saying only that (403);
- ``GET /v1/auth/options`` → which sign-ins the pages offer;
- ``GET /v1/auth/session`` → who is signed in, and the CSRF token for the page's requests;
- ``POST /v1/auth/logout`` (cookie and CSRF token) → the session ended here, the cookie cleared,
  and ``logout_url``: the provider's end-session URL to send the browser on to;
- ``GET /v1/auth/{audience}/jwks`` → our public keys (``private_key_jwt``, ID-token encryption).

Browser-facing like the pages, these are left out of the OpenAPI document (``wallet.web.SIGNIN_ROUTES``).
"""

from __future__ import annotations

import html
from typing import Final

import structlog
from aiohttp import web

from wallet.api.http import CSRF_HEADER, SESSION_COOKIE, json_response
from wallet.api.keys import SIGNIN
from wallet.auth.oidc import AUDIENCES, SignInRefused
from wallet.ledger.errors import NotFound, Unauthorized
from wallet.service.signin import NoAccess

log = structlog.get_logger(__name__)

STATE_COOKIE: Final = "wallet_signin"
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_NO_STORE: Final = {"Cache-Control": "no-store"}


def _audience(request: web.Request) -> str:
    audience = request.match_info["audience"]
    if audience not in AUDIENCES:
        raise NotFound("no such sign-in: client or staff")
    return audience


def _page(status: int, title: str, text: str, back: str) -> web.Response:
    body = (
        '<!doctype html><html lang="fi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="/static/wallet.css"><title>{html.escape(title)}</title></head>'
        f"<body><main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        f'<p><a href="{html.escape(back)}">Takaisin – Tillbaka – Back</a></p></main></body></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)


async def login(request: web.Request) -> web.Response:
    audience = _audience(request)
    signin = request.app[SIGNIN]
    try:
        url, sealed = await signin.begin(audience)
    except SignInRefused as error:
        log.warning("sign_in_unavailable", audience=audience, reason=str(error))
        return _page(
            503, "Tunnistautuminen ei ole nyt käytettävissä", "Sign-in is not available now; try again later.", "/"
        )
    response = web.HTTPFound(url, headers=_NO_STORE)
    response.set_cookie(
        STATE_COOKIE,
        sealed,
        path=f"/v1/auth/{audience}/callback",
        max_age=signin.settings.oidc_login_ttl_seconds,
        httponly=True,
        secure=signin.secure,
        samesite="Lax",
    )
    raise response


async def callback(request: web.Request) -> web.Response:
    audience = _audience(request)
    signin = request.app[SIGNIN]
    back = "/admin" if audience == "staff" else "/"
    try:
        signed_in = await signin.finish(audience, dict(request.query), request.cookies.get(STATE_COOKIE))
    except SignInRefused as error:
        log.warning("sign_in_refused", audience=audience, reason=str(error))
        response = _page(400, "Tunnistautuminen epäonnistui", "Sign-in failed. Please try again.", back)
    except NoAccess:
        log.info("sign_in_no_access", audience=audience)
        if audience == "staff":
            text = "You signed in, but you have no role in this service. Ask your administrator."
        else:
            text = "You signed in, but there is nothing in this service you may open. Ask your case worker."
        response = _page(403, "Ei käyttöoikeutta", text, back)
    else:
        redirect = web.HTTPFound(signed_in.landing, headers=_NO_STORE)
        redirect.set_cookie(
            SESSION_COOKIE,
            signed_in.secret,
            path="/",
            max_age=signin.settings.session_absolute_seconds,
            httponly=True,
            secure=signin.secure,
            samesite="Strict",
        )
        redirect.del_cookie(STATE_COOKIE, path=f"/v1/auth/{audience}/callback")
        raise redirect
    response.del_cookie(STATE_COOKIE, path=f"/v1/auth/{audience}/callback")
    return response


def _secret(request: web.Request) -> str:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise Unauthorized("no session; sign in")
    return secret


async def session(request: web.Request) -> web.Response:
    signin = request.app[SIGNIN]
    secret = _secret(request)
    principal, row = await signin.session(secret)
    body = {
        "audience": row["audience"],
        "role": principal.role.value,
        "name": principal.name,
        "client_id": principal.client_id,
        "representative_id": principal.representative_id,
        "client_ids": list(principal.client_ids),
        "expires_at": row["expires_at"],
        "csrf_token": signin.csrf_token(secret),
        "csrf_header": CSRF_HEADER,
    }
    return json_response(body, headers=_NO_STORE)


async def logout(request: web.Request) -> web.Response:
    signin = request.app[SIGNIN]
    secret = _secret(request)
    await signin.authenticate(secret, request.method, request.headers.get(CSRF_HEADER))
    url = await signin.end(secret)
    response = json_response({"signed_out": True, "logout_url": url}, headers=_NO_STORE)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def options(request: web.Request) -> web.Response:
    """What the pages offer: which sign-ins are configured, the SMS sign-in, the token form."""
    signin = request.app[SIGNIN]
    settings = signin.settings
    body = {
        "client_signin": "client" in signin.parties,
        "staff_signin": "staff" in signin.parties,
        "sms_login": settings.sms_login,
        "admin_token_form": settings.admin_token_form,
    }
    return json_response(body)


async def jwks(request: web.Request) -> web.Response:
    party = request.app[SIGNIN].party(_audience(request))
    return json_response(party.config.public_jwks())


def routes(app: web.Application) -> None:
    app.router.add_get("/v1/auth/options", options)
    app.router.add_get("/v1/auth/session", session)
    app.router.add_post("/v1/auth/logout", logout)
    app.router.add_get("/v1/auth/{audience}/login", login)
    app.router.add_get("/v1/auth/{audience}/callback", callback)
    app.router.add_get("/v1/auth/{audience}/jwks", jwks)
