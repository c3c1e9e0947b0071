"""The field types the shapes share beyond ``wallet.validation``'s: amounts, counts, cursors."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.validation import Phone

Amount = Annotated[int, Meta(ge=1, le=MAX_AMOUNT_CENTS, description="Integer cents (EUR), positive.")]
Cents = Annotated[int, Meta(description="Integer cents (EUR).")]
Count = Annotated[int, Meta(ge=0)]
Positive = Annotated[int, Meta(ge=1)]
E164 = Annotated[Phone, Meta(description="E.164.")]
NextCursor = Annotated[str | None, Meta(description="Give as `cursor` for the next page; null on the last page.")]
TimeZone = Annotated[str, Meta(examples=["Europe/Helsinki"])]
