"""Token requests: OAuth2 client credentials (a provider), and the SMS-code login of a client or
representative."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from wallet import validation
from wallet.ledger.errors import ValidationError
from wallet.validation import (
    Id,
    OtpCode,
    Phone,
)

OAUTH_FIELD_MAX_LENGTH = 256
CLIENT_CREDENTIALS: Literal["client_credentials"] = "client_credentials"
OAuthField = Annotated[str, Meta(min_length=1, max_length=OAUTH_FIELD_MAX_LENGTH, pattern=r"^[\x20-\x7E]+$")]


class TokenRequest(Struct):
    """OAuth2 client credentials. The id and secret may come in HTTP Basic instead (then no secret here)."""

    # Read by the token handler from a form or JSON, with HTTP Basic merged in (api/handlers/tokens.py).
    grant_type: Literal["client_credentials"]
    client_id: OAuthField | None = None
    client_secret: OAuthField | None = None


class LoginRequest(Struct):
    phone: Phone

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)


class LoginVerification(Struct):
    phone: Phone
    code: OtpCode
    client_id: (
        Annotated[
            Id,
            Meta(
                description="Whom to act for: the phone's own client, or a client the phone's representative has "
                "an active mandate for (403 otherwise, and the code stays unspent). Without it: the phone's own "
                "client; else a representative token, with its only client chosen if it has one."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.phone = validation.phone(self.phone)
        self.code = validation.otp_code(self.code)
        self.client_id = validation.optional_id(self.client_id, "client_id")


def client_credentials(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The client id and secret of a token request's fields, refused with RFC 6749's error names:
    ``invalid_request`` for a parameter missing or malformed (grant_type is required, section
    4.4.2), ``unsupported_grant_type`` for a grant type other than client_credentials."""
    grant_type = fields.get("grant_type")
    if not isinstance(grant_type, str) or not grant_type:
        detail = "is required" if grant_type in (None, "") else "must be a string"
        raise ValidationError("grant_type", detail, error="invalid_request")
    if grant_type != CLIENT_CREDENTIALS:
        raise ValidationError("grant_type", "must be client_credentials", error="unsupported_grant_type")
    return _credential(fields, "client_id"), _credential(fields, "client_secret")


def _credential(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise ValidationError(name, "is required", error="invalid_request")
    if not isinstance(value, str) or len(value) > OAUTH_FIELD_MAX_LENGTH:
        raise ValidationError(
            name, f"must be a string of at most {OAUTH_FIELD_MAX_LENGTH} characters", error="invalid_request"
        )
    if not (value.isascii() and value.isprintable()):  # RFC 6749 VSCHAR; a lone surrogate cannot even be hashed
        raise ValidationError(name, "must be printable ASCII", error="invalid_request")
    return value
