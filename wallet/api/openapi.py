"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /v1/openapi.json``.

Built from what the code already declares: the routes and their documentation from
``wallet/api/routes.py``; the request and response schemas from their structs in ``wallet/shapes``
(with the limits their validators use); who may call an operation from its handler's ``@requires``
roles; the limits (page size, Idempotency-Key length) from the running settings; and the statuses
an operation answers from its route (roles, body, parameters, idempotency key, the refusals every
request may get: ``_statuses``) with the route's own ``errors``. There is no ``default`` response:
a status an operation does not list is one it never answers. ``tests/test_openapi.py`` checks real
responses against the schemas, with every object closed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import msgspec
from aiohttp import web

from wallet.api.problems import OAUTH_CODES, STATUS_BY_CODE
from wallet.api.routes import REPLAYED_HEADER, ROUTES, Schema, enum_schema, schema_ref
from wallet.exports import ExportFormat
from wallet.settings import Settings
from wallet.shapes import requests, responses

OPENAPI_VERSION = "3.1.0"
PROBLEM_CONTENT_TYPE = "application/problem+json"
# Codes the HTTP layer itself answers with, beside those of the operation errors.
HTTP_CODES = (
    "invalid_request",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "uri_too_long",
    "headers_too_large",
    "internal_error",
)
PROBLEM_CODES = tuple(sorted(set(STATUS_BY_CODE) | set(HTTP_CODES) | set(OAUTH_CODES)))


SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details, with a stable machine `code`. Other members may "
        "accompany a code: `field` (validation_error), `retry_after_seconds` (rate_limited, "
        "unavailable), `available`, `refundable_amount`, `charge_status`, `attempts_left`, `error` and "
        "`error_description` (`POST /v1/token`, RFC 6749), ...",
        "properties": {
            "type": {"type": "string", "format": "uri-reference", "examples": ["/v1/problems/insufficient_funds"]},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "code": {"type": "string", "enum": list(PROBLEM_CODES)},
            "detail": {"type": "string"},
            "field": {"type": "string", "description": "validation_error: the field refused."},
            "retry_after_seconds": {"type": "integer", "minimum": 1},
        },
        "required": ["type", "title", "status", "code", "detail"],
        "additionalProperties": True,
    },
    "OAuthProblem": {
        "description": "A refusal of `POST /v1/token`: the problem details with RFC 6749's members (section "
        "5.2) beside them, on every refusal of the token request itself.",
        "allOf": [schema_ref("Problem")],
        "properties": {
            "error": {
                "type": "string",
                "enum": ["invalid_request", "unsupported_grant_type", "unauthorized_client", "invalid_client"],
            },
            "error_description": {"type": "string", "pattern": "^[\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]+$"},
        },
    },
    "WalletEvent": {
        "type": "object",
        "description": "One Server-Sent Event of the stream, its fields as named by the SSE format (the schema "
        "describes each event, as before OpenAPI 3.2's itemSchema). The stream opens with `retry`; `data` is a "
        "JSON object: the wallet for `wallet`, the movement and the line after it for the others.",
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "Give as Last-Event-ID to resume."},
            "event": {"type": "string", "enum": ["wallet", "credit", "expiry", "hold", "capture", "void", "refund"]},
            "data": {"type": "string", "contentMediaType": "application/json"},
            "retry": {"type": "integer", "minimum": 0, "description": "Milliseconds before reconnecting."},
        },
    },
}


def _components(shapes: Iterable[Any]) -> dict[str, Schema]:
    """The schemas msgspec generates for ``shapes`` (and the structs and enums they hold), as OpenAPI 3.1
    writes them: a union told apart by a member is ``oneOf``, an enum names its type, a nullable member
    is one schema, and an optional member (default null) is documented as nullable, since the decoder
    reads a null there as absent: a client may send back what an answer showed as null."""
    _, components = msgspec.json.schema_components(shapes, ref_template="#/components/schemas/{name}")
    return {name: _openapi(schema) for name, schema in components.items()}


def _openapi(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _openapi(value) for key, value in schema.items() if key != "title"}
    variants = schema.get("anyOf")
    if variants and "discriminator" in schema:
        schema["oneOf"] = schema.pop("anyOf")
    elif variants and len(variants) == 2 and {"type": "null"} in variants:
        (other,) = (variant for variant in variants if variant != {"type": "null"})
        if isinstance(other.get("type"), str):  # a nullable member: one schema whose type may be null
            rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
            if schema.get("default", 0) is None:  # optional: a null is read as absent
                rest["description"] = (rest.get("description", "") + " Optional; null is read as absent.").strip()
            return {**other, **rest, "type": [other["type"], "null"]}
    if "enum" in schema and "type" not in schema and all(isinstance(value, str) for value in schema["enum"]):
        schema = {"type": "string", **schema}
    return schema


SCHEMAS.update(_components([*responses.RESPONSES, *requests.REQUESTS]))


# Parameters.


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _parameters(settings: Settings) -> dict[str, Schema]:
    return {
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Send one with every money-moving request: a retry with the same key answers "
            "the first response (with `Idempotent-Replayed: true`); the same key with another body is "
            "422 `idempotency_key_reuse`. Keys are kept for "
            f"{settings.idempotency_retention_hours} hours, per caller.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": settings.idempotency_key_max_length,
                "pattern": "^[\\x20-\\x7E]+$",
            },
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "description": f"Page size (default {settings.page_size_default}).",
            "schema": {"type": "integer", "minimum": 1, "maximum": settings.page_size_max},
        },
        "Cursor": {
            "name": "cursor",
            "in": "query",
            "description": "`next_cursor` of the page before.",
            "schema": {"type": "string"},
        },
        "DeskQuery": {
            "name": "query",
            "in": "query",
            "description": "What to look for: a part of a name, a phone number, a national identity number (clients) "
            "or a business id (providers).",
            "schema": {"type": "string", "maxLength": settings.desk_query_max_length},
        },
        "ClientId": _path("client_id", "A client's id."),
        "BudgetId": _path("budget_id", "A budget's id."),
        "RepresentationId": _path("representation_id", "A mandate's id."),
        "ActingFor": {
            "name": "client_id",
            "in": "query",
            "description": "A representative: the client to act for, one of the token's `client_ids` (default: "
            "the token's `client_id`). Its mandate is checked on every request. A client may name only itself.",
            "schema": {"type": "string"},
        },
        "ProviderId": _path("provider_id", "A provider's id."),
        "ServiceId": _path("service_id", "A service's id."),
        "OfferId": _path("offer_id", "An offer's id."),
        "ChargeId": _path("charge_id", "A charge's id."),
        "SettlementId": _path("settlement_id", "A settlement batch's id."),
        "PaymentBatchId": _path("batch_id", "A payment batch's id."),
        "ExportFrom": {
            "name": "from",
            "in": "query",
            "description": f"Inclusive: a day (YYYY-MM-DD, in {settings.timezone}) or an RFC 3339 time.",
            "schema": {"type": "string"},
        },
        "ExportTo": {
            "name": "to",
            "in": "query",
            "description": "Exclusive: a day or an RFC 3339 time. Default: now.",
            "schema": {"type": "string"},
        },
        "ExportFormat": {
            "name": "format",
            "in": "query",
            "description": "csv (RFC 4180, cents), jsonl, or csv-fi (for a Finnish spreadsheet).",
            "schema": {**enum_schema(ExportFormat), "default": ExportFormat.CSV.value},
        },
    }


def _param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


# Refusals any operation may answer, whatever it is: aiohttp's HTTP parser answers a request it
# cannot read (400), a request line or a header field over its limit (414, 431) before any route is
# matched (middlewares.ProblemRequestHandler); ``frame`` answers a declared body over the route's
# limit (413, also where no body is read) and 503 while shutting down (middlewares.frame).
EVERY_OPERATION: dict[int, tuple[str, ...]] = {
    400: ("invalid_request",),
    413: ("payload_too_large",),
    414: ("uri_too_long",),
    431: ("headers_too_large",),
    503: ("unavailable",),
}
# The headers a problem of a status always carries (problems.from_operation_error).
PROBLEM_HEADERS: dict[int, dict[str, Schema]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: Bearer (Basic for `POST /v1/token`).",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before trying again (on another node while shutting down).",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


def _statuses(operation: Schema, guarded: bool, path: str) -> dict[int, list[str]]:
    """Every problem status the operation answers, with the codes it carries: derived from what the
    code knows of the route (its roles, its body, its parameters, its idempotency key), then the
    route's own ``errors``. Nothing else: the document has no ``default`` response, so a status
    it does not list is a status the service must not answer (``status_code_conformance`` in
    tests/test_fuzz.py)."""
    codes: dict[int, list[str]] = {}

    def add(status: int, *more: str) -> None:
        if status in operation["not_answered"]:
            return
        codes.setdefault(status, [])
        codes[status] += [code for code in more if code not in codes[status]]

    for status, common in EVERY_OPERATION.items():
        add(status, *common)
    if operation["body"] is not None:
        add(400, "invalid_request")  # not JSON, not UTF-8, a member named twice
        add(415, "unsupported_media_type")
        add(422, "validation_error")
    if operation["parameters"]:
        add(422, "validation_error")
    if "{" in path:
        add(404, "not_found")
    if operation["idempotent"]:
        add(422, "validation_error", "idempotency_key_reuse")  # a malformed key, a key reused
    if guarded:
        add(401, "unauthorized")  # no token, or one not valid
        add(403, "forbidden")  # a role the route does not admit, or a wallet not the caller's
    for status, more in operation["errors"].items():
        add(status, *more)
    return codes


def _responses(operation: Schema, guarded: bool, path: str) -> dict[str, Schema]:
    responses: dict[str, Schema] = {}
    for status, response in sorted(operation["responses"].items()):
        response = copy.deepcopy(response)
        if operation["idempotent"]:
            response["headers"] = copy.deepcopy(REPLAYED_HEADER)
        responses[str(status)] = response
    for status, problem_codes in sorted(_statuses(operation, guarded, path).items()):
        responses[str(status)] = {
            "description": ", ".join(f"`{code}`" for code in problem_codes),
            "content": {
                PROBLEM_CONTENT_TYPE: {
                    "schema": {
                        "allOf": [schema_ref(operation["problem"])],
                        "properties": {"code": {"enum": problem_codes}, "status": {"const": status}},
                    }
                }
            },
        }
        if status in PROBLEM_HEADERS:
            responses[str(status)]["headers"] = copy.deepcopy(PROBLEM_HEADERS[status])
    return responses


def _route_roles(router: web.UrlDispatcher) -> dict[tuple[str, str], tuple[str, ...] | None]:
    """Each route's roles from its handler's ``@requires``; None for an open route."""
    found: dict[tuple[str, str], tuple[str, ...] | None] = {}
    for route in router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        roles = getattr(route.handler, "roles", None)
        found[(route.method, route.resource.canonical)] = (
            tuple(str(getattr(role, "value", role)) for role in roles) if roles is not None else None
        )
    return found


def document(router: web.UrlDispatcher, settings: Settings) -> Schema:
    """The whole document for the routes this app serves and the settings it runs with."""
    roles_by_route = _route_roles(router)
    paths: dict[str, dict[str, Schema]] = {}
    for (method, path), operation in ROUTES.items():
        roles = roles_by_route.get((method, path))
        guarded = roles is not None
        entry: Schema = {
            "tags": [operation["tag"]],
            "summary": operation["summary"],
            "operationId": _operation_id(router, method, path),
        }
        text = operation["description"] or ""
        if guarded:
            text = f"Roles: {', '.join(roles or ())}.\n\n{text}".strip()
        if text:
            entry["description"] = text
        parameters = [_param(p) if isinstance(p, str) else p for p in operation["parameters"]]
        if operation["idempotent"]:
            parameters.append(_param("IdempotencyKey"))
        if parameters:
            entry["parameters"] = parameters
        if operation["body"] is not None:
            entry["requestBody"] = operation["body"]
        entry["responses"] = _responses(operation, guarded, path)
        if guarded:
            entry["security"] = [{"bearer": []}]
            entry["x-roles"] = list(roles or ())
        elif path == "/v1/token":
            entry["security"] = [{}, {"clientBasic": []}]
        else:
            entry["security"] = []
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Personal-budget wallet API",
            "version": _version(),
            "summary": "Payments for Finnish social-care personal budgets (henkilökohtainen budjetti).",
            "description": "JSON; amounts are integer cents (EUR) in `amount`-named fields; times RFC 3339 UTC; "
            "ids opaque strings. Errors are RFC 9457 `application/problem+json` with a stable `code`. "
            "Lists take `?limit=&cursor=` and answer `{data, next_cursor}`. Every money-moving POST takes "
            "an `Idempotency-Key` header. Request bodies: members a schema does not name are ignored; a "
            "member named twice in one object is refused (400 `invalid_request`); a body declared larger "
            "than the limit is 413 on every route.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": name}
            for name in (
                "Operations",
                "Tokens",
                "Organizer",
                "Catalog",
                "Providers",
                "Settlements",
                "Finance",
                "Clients",
            )
        ],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "parameters": _parameters(settings),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An EdDSA JWT with a `role` claim: admin, finance, provider (with "
                    "`provider_id`), client (with `client_id`) or representative (with `representative_id`, "
                    "`client_ids` and optionally `client_id`). Providers get one from `POST /v1/token`, "
                    "clients and representatives from `POST /v1/login/verify`; the organizer's from `wallet token`.",
                },
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "`POST /v1/token` only: the provider's client id and secret.",
                },
            },
        },
    }


def _operation_id(router: web.UrlDispatcher, method: str, path: str) -> str:
    for route in router.routes():
        if route.method == method and route.resource is not None and route.resource.canonical == path:
            return str(getattr(route.handler, "__name__", "")) or _fallback_id(method, path)
    return _fallback_id(method, path)


def _fallback_id(method: str, path: str) -> str:
    words = [part.strip("{}").replace("-", "_").replace(".", "_") for part in path.split("/") if part]
    return "_".join([method.lower(), *words])


def _version() -> str:
    try:
        return metadata.version("personal-budget-wallet")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"
