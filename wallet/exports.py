"""Finance exports: the rows of a file and how each format writes them. No I/O of its own.

Formats:

- ``csv``: RFC 4180, ``,``-separated, UTF-8, amounts in integer cents.
- ``jsonl``: one JSON object a line, amounts in integer cents.
- ``csv-fi``: for a Finnish spreadsheet: ``;``-separated, UTF-8 with a BOM (so Excel reads it as
  UTF-8), each amount also in euros with a decimal comma (``amount_eur``), references printed in
  groups (so Excel keeps them as text), and text that would start a formula defused with ``'``.

The exporter reads in pages of a bounded number of rows and writes each page as it comes, so
memory stays bounded whatever the size of the file (``write_export``).

Item rows: each item of an itemized charge captured in the period, as priced, under its capture.

Transaction rows: every ledger transaction is a transfer of ``amount`` (positive cents) from
``from_account`` to ``to_account``, so an account's balance is what the export moves into it
less what it moves out: the totals reconcile with the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from operator import itemgetter
from typing import Any

from wallet.ledger.reference import group_finnish_reference, group_rf_reference

TRANSACTION_COLUMNS = (
    "transaction_id",
    "created_at",
    "type",
    "charge_id",
    "refund_id",
    "client_id",
    "provider_id",
    "business_id",
    "category",
    "month",
    "from_account",
    "to_account",
    "amount",
    "settlement_id",
    "settlement_reference",
)
SETTLEMENT_COLUMNS = (
    "settlement_id",
    "created_at",
    "provider_id",
    "provider_name",
    "business_id",
    "iban",
    "reference",
    "rf_reference",
    "amount",
    "count",
    "period_start",
    "period_end",
    "until",
    "status",
    "updated_at",
    "transaction_id",
)
# One row per item of an itemized charge, under its capture (the capture's transaction and time): the
# items' amounts of a period sum to the itemized charges' captures in the transactions export.
ITEM_COLUMNS = (
    "transaction_id",
    "created_at",
    "charge_id",
    "position",
    "client_id",
    "provider_id",
    "business_id",
    "category",
    "service",
    "unit",
    "service_date",
    "quantity",
    "unit_price",
    "unit_value",
    "amount",
    "own_share",
)
DECIMAL_COLUMNS = frozenset({"quantity"})  # decimal strings ("1.5"): a decimal comma in csv-fi
FINNISH_REFERENCE_COLUMNS = frozenset({"reference", "settlement_reference"})
RF_REFERENCE_COLUMNS = frozenset({"rf_reference"})
BOM = "\ufeff"
# What ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` makes, the encoder built once.
_JSON_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(str, Enum):
    CSV = "csv"
    JSONL = "jsonl"
    CSV_FI = "csv-fi"

    @property
    def content_type(self) -> str:
        return "application/x-ndjson" if self is ExportFormat.JSONL else "text/csv"

    @property
    def extension(self) -> str:
        return "jsonl" if self is ExportFormat.JSONL else "csv"


class ExportKind(str, Enum):
    TRANSACTIONS = "transactions"
    SETTLEMENTS = "settlements"
    ITEMS = "items"

    @property
    def columns(self) -> tuple[str, ...]:
        return {
            ExportKind.TRANSACTIONS: TRANSACTION_COLUMNS,
            ExportKind.SETTLEMENTS: SETTLEMENT_COLUMNS,
            ExportKind.ITEMS: ITEM_COLUMNS,
        }[self]


def euros(amount_cents: int) -> str:
    """``-123456`` → ``"-1234,56"``: decimal comma, no thousands separator (a spreadsheet number)."""
    sign = "-" if amount_cents < 0 else ""
    whole, cents = divmod(abs(amount_cents), 100)
    return f"{sign}{whole},{cents:02d}"


@dataclass(frozen=True)
class Encoder:
    format: ExportFormat
    columns: tuple[str, ...]

    @property
    def _csv_columns(self) -> tuple[str, ...]:
        if self.format is ExportFormat.CSV_FI:
            return tuple(c for name in self.columns for c in ((name, "amount_eur") if name == "amount" else (name,)))
        return self.columns

    def header(self) -> bytes:
        if self.format is ExportFormat.JSONL:
            return b""
        text = self._csv(list(self._csv_columns))
        return ((BOM if self.format is ExportFormat.CSV_FI else "") + text).encode()

    def rows(self, records: Sequence[dict[str, Any]]) -> bytes:
        if self.format is ExportFormat.JSONL:
            lines = (_JSON_LINE.encode({c: r[c] for c in self.columns}) for r in records)
            return "".join(line + "\n" for line in lines).encode()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self._delimiter, lineterminator="\r\n")
        if self.format is ExportFormat.CSV:
            # The columns as they are, None as "" (as the csv module writes None), a page in one call.
            columns = itemgetter(*self.columns) if len(self.columns) > 1 else lambda r: (r[self.columns[0]],)
            writer.writerows(map(columns, records))
        else:
            writer.writerows(map(self._csv_row, records))
        return buffer.getvalue().encode()

    @property
    def _delimiter(self) -> str:
        return ";" if self.format is ExportFormat.CSV_FI else ","

    def _csv(self, row: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self._delimiter, lineterminator="\r\n").writerow(row)
        return buffer.getvalue()

    def _csv_row(self, record: dict[str, Any]) -> list[Any]:
        """A ``csv-fi`` row: euros beside cents, references grouped, formulas defused."""
        row: list[Any] = []
        for column in self.columns:
            value = record[column]
            if value is None:
                row.append("")
            elif column == "amount":
                row += [value, euros(value)]
            elif column in FINNISH_REFERENCE_COLUMNS:
                row.append(group_finnish_reference(value))
            elif column in RF_REFERENCE_COLUMNS:
                row.append(group_rf_reference(value))
            elif column in DECIMAL_COLUMNS:
                row.append(str(value).replace(".", ","))
            elif isinstance(value, str) and value.startswith(_FORMULA_STARTS):
                row.append("'" + value)  # a spreadsheet must not run it as a formula
            else:
                row.append(value)
        return row


def file_name(kind: ExportKind, export_format: ExportFormat, start: str | None, end: str | None) -> str:
    span = "-".join(part[:10] for part in (start or "start", end or "now"))
    return f"{kind.value}-{span}.{export_format.extension}"


async def write_export(
    pages: AsyncIterator[list[dict[str, Any]]], encoder: Encoder, write: Callable[[bytes], Awaitable[object]]
) -> int:
    """Write the header and every page as it comes; return the number of rows written.

    The next page is read while this one is encoded and written: the database reads in a reader
    thread, mostly without the GIL, so on two cores the two halves overlap. One page ahead at
    most: memory stays bounded by two pages."""
    await write(encoder.header())
    count = 0
    reading: asyncio.Future[list[dict[str, Any]] | None] = asyncio.ensure_future(anext(pages, None))
    try:
        while (page := await reading) is not None:
            reading = asyncio.ensure_future(anext(pages, None))
            if page:
                await write(encoder.rows(page))
                count += len(page)
    finally:
        if not reading.done():  # the writing failed (the client went away): stop the reading too
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
        elif not reading.cancelled():
            reading.exception()  # seen: the writing's own error is the one to report
    return count
