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
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class BadRequest(errors.OperationError):
    """A request that cannot be read at all (not JSON, not UTF-8): 400."""

    code = "invalid_request"


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
