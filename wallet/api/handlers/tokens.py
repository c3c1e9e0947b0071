"""Tokens: OAuth2 client credentials for providers (``POST /v1/token``), and the SMS-code login
of clients and representatives (``POST /v1/login``, ``/v1/login/verify``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from wallet.api.http import (
    json_response,
    parse_json,
    read_json,
)
from wallet.api.keys import SERVICE, SETTINGS
from wallet.api.problems import NO_STORE, BadRequest, oauth_problem
from wallet.ledger.errors import Forbidden, Unauthorized, ValidationError
from wallet.shapes import requests
from wallet.shapes.requests import decode


async def token(request: web.Request) -> web.Response:
    """OAuth2 client credentials: form or JSON body, or HTTP Basic for the id and secret. Refusals
    as RFC 6749 section 5.2 writes them (``problems.oauth_problem``); a 413 or 503 as on any route."""
    try:
        client_id, client_secret = requests.client_credentials(await _token_fields(request))
        issued = await request.app[SERVICE].token_for_credentials(client_id, client_secret)
    except ValidationError as error:  # a parameter missing or malformed, or another grant type
        return oauth_problem(str(error.extra.get("error", "invalid_request")), error.detail, field=error.field)
    except BadRequest as error:  # a body that cannot be read
        return oauth_problem("invalid_request", error.detail)
    except Unauthorized as error:  # unknown id, wrong secret, malformed Basic credentials
        return oauth_problem("invalid_client", error.detail)
    except Forbidden as error:  # a suspended provider: it authenticated, but may not have a token
        return oauth_problem("unauthorized_client", error.detail)
    return json_response(issued.render(), headers=dict(NO_STORE))


async def _token_fields(request: web.Request) -> dict[str, Any]:
    """The token request's fields from a form or a JSON object, with HTTP Basic's id and secret over them."""
    raw = await request.read()
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8", errors="strict"), strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest("the body is not valid UTF-8") from None
        fields: dict[str, Any] = dict(pairs)
        if len(fields) != len(pairs):  # as for JSON: which of two values counts is ambiguous
            raise BadRequest("the body is ambiguous: a field appears twice")
    elif request.content_type == "application/json":
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise ValidationError("body", "must be a JSON object", error="invalid_request")
        fields = {name: value for name, value in body.items() if value is not None}  # null: absent
    else:  # RFC 6749 section 4.4.2: a form; JSON too. Anything else is a malformed request, 400.
        raise BadRequest("send application/x-www-form-urlencoded or application/json")
    if request.headers.get("Authorization", "").lower().startswith("basic "):
        try:
            decoded = base64.b64decode(request.headers["Authorization"][6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        client_id, _, client_secret = decoded.partition(":")
        # RFC 6749 section 2.3: one way of authenticating per request.
        if fields.get("client_secret") is not None:
            raise ValidationError("client_secret", "send the credentials in HTTP Basic or in the body, not both")
        if fields.get("client_id") not in (None, client_id):
            raise ValidationError("client_id", "is not the client id of the HTTP Basic credentials")
        fields["client_id"], fields["client_secret"] = client_id, client_secret
    return fields


def _sms_login_on(request: web.Request) -> None:
    if not request.app[SETTINGS].sms_login:
        raise Forbidden("sign-in by SMS code is off here: sign in with strong identification on the page")


async def login(request: web.Request) -> web.Response:
    _sms_login_on(request)
    login = decode(requests.LoginRequest, await read_json(request))
    return json_response(await request.app[SERVICE].start_login(login.phone), status=202)


async def login_verify(request: web.Request) -> web.Response:
    _sms_login_on(request)
    verification = decode(requests.LoginVerification, await read_json(request))
    issued = await request.app[SERVICE].verify_login(verification.phone, verification.code, verification.client_id)
    return json_response(issued.render(), headers={"Cache-Control": "no-store"})
