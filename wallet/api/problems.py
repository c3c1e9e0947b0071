"""RFC 9457 problem details: every error leaves as ``application/problem+json`` with a ``code``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from wallet.ledger import errors

PROBLEM_CONTENT_TYPE = "application/problem+json"

STATUS_BY_CODE: dict[str, int] = {
    errors.ValidationError.code: 422,
    errors.NotFound.code: 404,
    errors.Conflict.code: 409,
    errors.InsufficientFunds.code: 402,
    errors.IdentityCheckFailed.code: 422,
    errors.CategoryNotAllowed.code: 422,
    errors.ProviderNotApproved.code: 403,
    errors.RefundExceedsCapture.code: 422,
    errors.NothingToSettle.code: 422,
    errors.UnreadableDocument.code: 422,
    errors.UnsafeDocument.code: 400,
    errors.IdempotencyKeyReuse.code: 422,
    errors.RateLimited.code: 429,
    errors.Unauthorized.code: 401,
    errors.Forbidden.code: 403,
    errors.Unavailable.code: 503,
}

TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Insufficient funds",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    414: "URI too long",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal server error",
    503: "Service unavailable",
}


class BadRequest(errors.OperationError):
    """A request that cannot be read at all (not JSON, not UTF-8): 400."""

    code = "invalid_request"


# OAuth 2.0 (RFC 6749 section 5.2): the refusals of POST /v1/token, by the RFC's ``error``, with
# their status and the service's ``code`` (a code keeps its status across the API: 400 is
# invalid_request, 401 unauthorized).
OAUTH_REALM = "wallet"
OAUTH_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request"),
    "unsupported_grant_type": (400, "invalid_request"),
    "unauthorized_client": (400, "unauthorized_client"),
    "invalid_client": (401, "unauthorized"),
}
OAUTH_CODES = ("unauthorized_client",)  # the codes only POST /v1/token answers
# RFC 6749 section 5.1: a token response, and so its refusals, is never stored by a cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# RFC 6749 appendix A.8: error_description is %x20-21 / %x23-5B / %x5D-7E.
_OAUTH_TEXT = frozenset(map(chr, range(0x20, 0x7F))) - {'"', "\\"}


def oauth_problem(error: str, detail: str, **extra: Any) -> web.Response:
    """A refusal of ``POST /v1/token`` as RFC 6749 section 5.2 writes it (``error``,
    ``error_description``, its status) in a problem+json body, with the problem's own members.

    ``invalid_client`` is 401 with a Basic challenge whether the client sent its credentials in
    HTTP Basic (where the RFC requires it) or in the body (where it allows it): every 401 names a
    scheme (RFC 9110 section 15.5.2), and Basic is the one this endpoint takes."""
    status, code = OAUTH_ERRORS[error]
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{OAUTH_REALM}", charset="UTF-8"'
    description = "".join(character if character in _OAUTH_TEXT else "?" for character in detail)
    return problem(status, code, detail, headers, error=error, error_description=description, **extra)


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body = {
        "type": f"/v1/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def from_operation_error(error: errors.OperationError) -> web.Response:
    status = 400 if isinstance(error, BadRequest) else STATUS_BY_CODE.get(error.code, 400)
    headers: dict[str, str] = {}
    if isinstance(error, (errors.RateLimited, errors.Unavailable)):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if error.replayed:
        headers["Idempotent-Replayed"] = "true"
    if isinstance(error, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="wallet"'
    extra = {
        key: value for key, value in error.extra.items() if key not in ("type", "title", "status", "code", "detail")
    }
    return problem(status, error.code, error.detail, headers, **extra)
