"""What the token routes answer: a token, or a login begun."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from wallet.validation import (
    Moment,
)


class Token(Struct):
    access_token: Annotated[str, Meta(description="A JWT (EdDSA).")]
    token_type: Literal["Bearer"]
    expires_in: Annotated[int, Meta(ge=1, description="Seconds.")]


class LoginStarted(Struct):
    """The same answer whether or not the phone has a wallet."""

    status: Literal["code_sent"]
    expires_at: Moment
