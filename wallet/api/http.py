"""What every handler shares in reading requests and writing responses: JSON bodies, idempotency keys,
writes' answers, pages, principals."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import wraps
from typing import Any

import orjson
from aiohttp import web

from wallet.api.keys import PRINCIPAL, SERVICE, SETTINGS, SIGNIN
from wallet.api.problems import BadRequest
from wallet.auth.tokens import Principal, Role
from wallet.jsontext import encoder_once
from wallet.ledger.errors import Forbidden, Unauthorized, ValidationError
from wallet.shapes.requests import Shape, decode
from wallet.storage.port import ACTOR, Idempotency, Page, Written

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON_CONTENT_TYPES = ("application/json",)
IDEMPOTENCY_HEADER = "Idempotency-Key"
_CURSOR_PREFIX = "c1:"
# The lists paged by a wallet event's ``seq`` (a client's history and charges): a cursor from
# before schema 3 is refused, not misread.
EVENT_CURSOR_PREFIX = "e1:"
_LIMIT_MAX_DIGITS = 9  # more digits than any page size setting: no parsing of a 10**30 limit
_CURSOR_MAX = 2**63 - 1  # a position is an SQLite integer


# The encoders json.dumps would build on every call with these arguments, built once.
_RESPONSE_JSON = encoder_once(json.JSONEncoder(separators=(",", ":"), ensure_ascii=False))
_CANONICAL_JSON = encoder_once(json.JSONEncoder(sort_keys=True, separators=(",", ":")))


# What orjson writes otherwise than json.dumps is left to the json module: a datetime or a
# dataclass (which json then refuses), an integer past 64 bits, a key that is not a string.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def response_json(body: Any) -> bytes:
    """``json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()``, written by orjson
    (the same bytes for what a response holds; no floats, where the two differ). What orjson
    refuses goes to the json module (tests/test_response_json.py)."""
    try:
        return orjson.dumps(body, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _RESPONSE_JSON(body).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=response_json(body),
        content_type="application/json",
        headers=headers,
    )


def written_response(written: Written, status: int) -> web.Response:
    """A write's answer; a replay of a repeated Idempotency-Key says so."""
    headers = {"Idempotent-Replayed": "true"} if written.replayed else None
    return json_response(written.value, status, headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object that names a member twice is refused: parsers differ on which one wins (the first,
    the last), so a proxy and this service could read two different requests from the same bytes."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateKey(f"the member {name!r} appears twice in one object")
            seen.add(name)
    return result


# Built once: json.loads(..., parse_constant=, object_pairs_hook=) would build a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
_UNPARSED = object()


async def read_body(request: web.Request) -> bytes:
    if request.content_type not in JSON_CONTENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    return await request.read()  # client_max_size bounds it: 413 past the limit


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    if not text.strip():
        raise BadRequest("the body is empty; send a JSON object")
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except _DuplicateKey as error:
        raise BadRequest(f"the body is ambiguous: {error}") from None
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise BadRequest(f"the body is not valid JSON: {error}") from None


async def read_json(request: web.Request) -> Any:
    return parse_json(await read_body(request))


async def optional_body(request: web.Request) -> bytes:
    """A JSON body, or none at all: a POST whose fields are all optional may come empty."""
    if not request.body_exists:
        return b""
    raw = await request.read()
    if raw.strip() and request.content_type not in JSON_CONTENT_TYPES:
        raise web.HTTPUnsupportedMediaType(text="send application/json")
    return raw


async def optional_command(request: web.Request, shape: type[Shape]) -> tuple[Shape, bytes]:
    """The body as ``shape``, an empty body as all its defaults; and the raw bytes, for the key."""
    raw = await optional_body(request)
    return decode(shape, parse_json(raw) if raw.strip() else {}), raw


def idempotency(
    request: web.Request, principal: Principal, raw_body: bytes, parsed_body: Any = _UNPARSED
) -> Idempotency | None:
    """The request's idempotency key and fingerprint; ``parsed_body``, when given, is what
    ``parse_json(raw_body)`` returned (the same value ``_canonical`` would parse again)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    limit = request.app[SETTINGS].idempotency_key_max_length
    if not key or len(key) > limit or not key.isascii() or not key.isprintable():
        raise ValidationError(IDEMPOTENCY_HEADER, f"must be 1 to {limit} printable ASCII characters")
    body = _canonical(raw_body) if parsed_body is _UNPARSED else _CANONICAL_JSON(parsed_body).encode()
    # One hash over method NUL path NUL body: the digest the same bytes fed piece by piece give.
    digest = hashlib.sha256(b"%s\x00%s\x00%s" % (request.method.encode(), request.path.encode(), body))
    return Idempotency(principal.scope, key, digest.hexdigest())


def _canonical(raw_body: bytes) -> bytes:
    """The same JSON written with other spacing or key order is the same request."""
    if not raw_body.strip():
        return b""
    try:
        return _CANONICAL_JSON(json.loads(raw_body)).encode()
    except (ValueError, RecursionError):
        return raw_body


def _page_limit(request: web.Request) -> int:
    settings = request.app[SETTINGS]
    raw_limit = request.query.get("limit")
    limit = settings.page_size_default
    if raw_limit is not None:
        # isdigit() alone admits "²" and "٣", which int() refuses or reads: ASCII digits only.
        valid = raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= _LIMIT_MAX_DIGITS
        if not valid or not 1 <= int(raw_limit) <= settings.page_size_max:
            raise ValidationError("limit", f"must be an integer from 1 to {settings.page_size_max}")
        limit = int(raw_limit)
    return limit


def page_params(request: web.Request, prefix: str = _CURSOR_PREFIX) -> tuple[int, int | None]:
    limit = _page_limit(request)
    cursor = request.query.get("cursor")
    before = None
    if cursor:
        try:
            decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            position = decoded[len(prefix) :]
            digits = position.isascii() and position.isdigit() and len(position) <= len(str(_CURSOR_MAX))
            if not decoded.startswith(prefix) or not digits or int(position) > _CURSOR_MAX:
                raise ValueError(cursor)  # beyond SQLite's integers (an OverflowError there): not one of ours
            before = int(position)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("cursor", "is not a cursor this service gave out") from None
    return limit, before


def render_page(page: Page, prefix: str = _CURSOR_PREFIX) -> dict[str, Any]:
    cursor = None
    if page.next_cursor is not None:
        cursor = base64.urlsafe_b64encode(f"{prefix}{page.next_cursor}".encode()).decode().rstrip("=")
    return {"data": page.data, "next_cursor": cursor}


OFFER_CURSOR_PREFIX = "o1:"


def position_params(request: web.Request, prefix: str, parts: int) -> tuple[int, tuple[int, ...] | None]:
    """``page_params`` for a list in an order of several keys: its cursor holds ``parts`` integers
    (the last row's sort keys), each within the bounds of one position."""
    limit = _page_limit(request)
    cursor = request.query.get("cursor")
    if not cursor:
        return limit, None
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        numbers = decoded[len(prefix) :].split(".")
        valid = decoded.startswith(prefix) and len(numbers) == parts
        valid = valid and all(n.isascii() and n.isdigit() and len(n) <= len(str(_CURSOR_MAX)) for n in numbers)
        if not valid or any(int(n) > _CURSOR_MAX for n in numbers):
            raise ValueError(cursor)
        return limit, tuple(int(n) for n in numbers)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this service gave out") from None


def render_positioned(data: list[Any], position: tuple[int, ...] | None, prefix: str) -> dict[str, Any]:
    cursor = None
    if position is not None:
        text = prefix + ".".join(str(part) for part in position)
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return {"data": data, "next_cursor": cursor}


SESSION_COOKIE = "wallet_session"
CSRF_HEADER = "X-CSRF-Token"


async def authenticate_request(request: web.Request) -> Principal:
    """A bearer token, as API clients send it (unchanged); else a page's session cookie, where a
    request that changes something must also carry the session's CSRF token."""
    if "Authorization" not in request.headers and SIGNIN in request.app:
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            return await request.app[SIGNIN].authenticate(secret, request.method, request.headers.get(CSRF_HEADER))
    return authenticate(request)


def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    return request.app[SERVICE].authenticate(token.strip())


CLIENT_ID_PARAMETER = "client_id"


def _choose_client(request: web.Request, principal: Principal) -> Principal:
    """``?client_id=`` chooses whose wallet a request is about. A representative may choose any client
    its token was issued for (the default: the one chosen at login); the mandate itself is checked
    by the service. A client may only name itself."""
    if principal.role is not Role.REPRESENTATIVE and principal.role is not Role.CLIENT:
        return principal  # the others act for nobody's wallet: the parameter means nothing to them
    # Most requests have no query string at all: then no parameter either, without parsing one.
    chosen = request.query.get(CLIENT_ID_PARAMETER) if request.query_string else None
    if principal.role is Role.REPRESENTATIVE:
        if chosen is None:
            return principal
        if chosen not in principal.client_ids:
            raise Forbidden("this token does not act for that client", field=CLIENT_ID_PARAMETER)
        return replace(principal, client_id=chosen)
    if principal.role is Role.CLIENT and chosen is not None and chosen != principal.client_id:
        raise Forbidden("a client token acts for its own wallet only", field=CLIENT_ID_PARAMETER)
    return principal


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    """Authenticate the caller and admit only ``roles``."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await authenticate_request(request)
            if principal.role not in roles:
                raise Forbidden(f"this needs the role {' or '.join(role.value for role in roles)}")
            principal = _choose_client(request, principal)
            request[PRINCIPAL] = principal
            ACTOR.set(principal.actor)  # carried into the writer with each unit: the audit's "who"
            return await handler(request)

        guarded.roles = roles  # type: ignore[attr-defined]
        return guarded

    return decorate
