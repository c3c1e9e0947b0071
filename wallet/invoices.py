"""Received invoices read from Finvoice 3.0 XML or CSV, into ``wallet.ledger.reconciliation.Invoice``.

XML from outside is parsed with defusedxml and any DTD is refused (``UnsafeDocument``): with no
DTD there can be no entity expansion (billion laughs) and no external entity (XXE). Finvoice 3.0
is described by an XML schema and needs no DTD.

Finvoice fields read, per ``Finvoice`` element (the root, or each one inside a wrapper):

- ``InvoiceDetails/InvoiceNumber``
- ``SellerPartyDetails/SellerPartyIdentifier``: the seller's Y-tunnus
- ``EpiDetails/EpiPaymentInstructionDetails/EpiRemittanceInfoIdentifier`` with its
  ``IdentificationSchemeName``: ``SPY`` (Finnish reference) or ``ISO`` (RF reference)
- ``EpiDetails/EpiPaymentInstructionDetails/EpiInstructedAmount``: the amount to pay, decimal
  comma, currency in ``AmountCurrencyIdentifier``

CSV: a header row naming ``reference``, ``amount`` (euros, decimal comma or point), ``business_id``
and ``invoice_number`` (in any order, any case); ``;`` or ``,`` separated; UTF-8, a BOM allowed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from wallet.ledger.errors import UnreadableDocument, UnsafeDocument
from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.ledger.reconciliation import Invoice, Scheme
from wallet.validation import has_unsafe_characters

FIELD_MAX_LENGTH = 70  # Finvoice's longest of these fields is 70 characters
_EUROS = re.compile(r"^([+-]?)([0-9]{1,9})(?:[.,]([0-9]{1,2}))?\Z")
CSV_COLUMNS = ("reference", "amount", "business_id", "invoice_number")


def parse_euros(text: str | None) -> int | None:
    """``"1234,50"`` → ``123450``; ``None`` if it is not an amount of euros with at most two decimals."""
    if text is None:
        return None
    match = _EUROS.match(text.strip().replace("\u00a0", "").replace(" ", ""))
    if match is None:
        return None
    sign, whole, decimals = match.groups()
    cents = int(whole) * 100 + int((decimals or "0").ljust(2, "0"))
    if cents > MAX_AMOUNT_CENTS:
        return None
    return -cents if sign == "-" else cents


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if has_unsafe_characters(value):  # kept and shown to finance: nothing that displays falsely
        raise UnreadableDocument("a field holds control or bidirectional formatting characters")
    return value[:FIELD_MAX_LENGTH] if value else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if _local(child.tag) == name), None)
    return element


def read_finvoice(data: bytes, invoices_max: int) -> tuple[Invoice, ...]:
    try:
        root = safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise UnsafeDocument(
            "XML with a DTD, entities or external references is refused", reason=type(error).__name__
        ) from None
    except (ParseError, ValueError) as error:
        raise UnreadableDocument(f"the XML cannot be read: {error}") from None
    messages = [root] if _local(root.tag) == "Finvoice" else list(_finvoices(root))
    if not messages:
        raise UnreadableDocument("no Finvoice element in the document")
    if len(messages) > invoices_max:
        raise UnreadableDocument(f"at most {invoices_max} invoices in one document")
    return tuple(_finvoice(position, message) for position, message in enumerate(messages, start=1))


def _finvoices(root: Element) -> Iterator[Element]:
    for element in root.iter():
        if _local(element.tag) == "Finvoice":
            yield element


def _finvoice(position: int, message: Element) -> Invoice:
    instruction = _child(message, "EpiDetails", "EpiPaymentInstructionDetails")
    reference = _child(instruction, "EpiRemittanceInfoIdentifier")
    amount = _child(instruction, "EpiInstructedAmount")
    scheme_name = reference.get("IdentificationSchemeName") if reference is not None else None
    scheme = next((s for s in Scheme if s.value == (scheme_name or "").strip().upper()), None)
    number = _child(message, "InvoiceDetails", "InvoiceNumber")
    seller = _child(message, "SellerPartyDetails", "SellerPartyIdentifier")
    return Invoice(
        position=position,
        invoice_number=_text(number.text if number is not None else None),
        reference=_text(reference.text if reference is not None else None),
        scheme=scheme,
        amount=parse_euros(amount.text if amount is not None else None),
        currency=_text(amount.get("AmountCurrencyIdentifier") if amount is not None else None),
        business_id=_text(seller.text if seller is not None else None),
    )


def read_csv(data: bytes, invoices_max: int) -> tuple[Invoice, ...]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableDocument("the CSV is not UTF-8") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise UnreadableDocument("the CSV is empty") from None
    except csv.Error as error:
        raise UnreadableDocument(f"the CSV cannot be read: {error}") from None
    missing = [column for column in CSV_COLUMNS if column not in header]
    if missing:
        raise UnreadableDocument(f"the CSV header lacks {', '.join(missing)}", columns=list(CSV_COLUMNS))
    where = {column: header.index(column) for column in CSV_COLUMNS}
    invoices: list[Invoice] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(invoices) >= invoices_max:
                raise UnreadableDocument(f"at most {invoices_max} invoices in one document")
            cell = {column: (row[index] if index < len(row) else None) for column, index in where.items()}
            invoices.append(
                Invoice(
                    position=len(invoices) + 1,
                    invoice_number=_text(cell["invoice_number"]),
                    reference=_text(cell["reference"]),
                    scheme=None,
                    amount=parse_euros(cell["amount"]),
                    currency=None,
                    business_id=_text(cell["business_id"]),
                )
            )
    except csv.Error as error:
        raise UnreadableDocument(f"the CSV cannot be read: {error}") from None
    if not invoices:
        raise UnreadableDocument("the CSV has no invoices")
    return tuple(invoices)
