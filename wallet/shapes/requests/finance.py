"""Finance's requests: a settlement marked paid, a payment batch, and the exports' query string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from msgspec import Meta, Struct

from wallet import validation
from wallet.exports import ExportFormat
from wallet.ledger.errors import ValidationError
from wallet.shapes.requests.decoding import optional_text
from wallet.validation import (
    Description,
)


class SettlementPayment(Struct):
    note: Description | None = None

    def __post_init__(self) -> None:
        self.note = optional_text(self.note, "note", validation.DESCRIPTION_MAX_LENGTH)


SettlementId = Annotated[str, Meta(pattern="^se_[0-9a-z]{1,64}$", description="A settlement's id.")]


class NewPaymentBatch(Struct):
    settlement_ids: (
        Annotated[
            list[SettlementId],
            Meta(min_length=1, max_length=1000, description="Default: every invoiced settlement in no batch."),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.settlement_ids is not None and len(set(self.settlement_ids)) != len(self.settlement_ids):
            raise ValidationError("settlement_ids", "names a settlement twice")


# The exports' query string.


@dataclass(frozen=True)
class ExportQuery:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive
    format: ExportFormat


def export_query(query: Mapping[str, str], zone: ZoneInfo) -> ExportQuery:
    """``?from=&to=&format=``: a day (in the organizer's time zone) or an RFC 3339 time each."""
    start = query.get("from") or None
    end = query.get("to") or None
    export_format = validation.one_of(query.get("format", "csv"), "format", tuple(f.value for f in ExportFormat))
    parsed = ExportQuery(
        None if start is None else validation.moment_or_day(start, "from", zone),
        None if end is None else validation.moment_or_day(end, "to", zone),
        ExportFormat(export_format),
    )
    if parsed.start is not None and parsed.end is not None and parsed.end <= parsed.start:
        raise ValidationError("to", "must be after from")
    return parsed
