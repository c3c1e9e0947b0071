"""ISO 20022 bank-to-customer files read into ``wallet.ledger.bank_statements.Statement``:
``camt.054`` debit/credit notifications (``BkToCstmrDbtCdtNtfctn``) and ``camt.053`` account
statements (``BkToCstmrStmt``), any message version (the namespace's version is not relied on:
elements are found by their local names, and the versions read here name them alike).

XML from outside is parsed with defusedxml: a DTD, entity declarations or external references
are refused (``UnsafeDocument``) before anything is built, and nothing is ever fetched.

Fields read: ``GrpHdr/MsgId``; each ``Ntfctn/Id`` or ``Stmt/Id``; per ``Ntry``: ``Amt`` (and its
``Ccy``), ``CdtDbtInd``, ``Sts`` (``BOOK``, or ``Sts/Cd`` from version 08 on), ``BookgDt/Dt`` (or
``DtTm``), ``AcctSvcrRef``; per ``NtryDtls/TxDtls`` (a batch booked as one entry has several):
``Refs/EndToEndId``, ``Refs/AcctSvcrRef``, ``Amt`` or ``AmtDtls/TxAmt/Amt``, ``CdtDbtInd``,
``RmtInf/Strd/CdtrRefInf/Ref``. Each transaction detail is one entry; an entry without details is
one entry of its own.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from wallet.ledger.bank_statements import BankEntry, Direction, Statement, StatementKind
from wallet.ledger.errors import UnreadableDocument, UnsafeDocument
from wallet.validation import has_unsafe_characters

FIELD_MAX_LENGTH = 140  # ISO 20022's Max140Text, the longest of the fields read
_DECIMAL = re.compile(r"^([0-9]{1,12})(?:\.([0-9]{1,2}))?\Z")  # ISO 20022 amounts: a point, at most 2 decimals for EUR
_DATE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})")
_NOT_PROVIDED = "NOTPROVIDED"
_ROOTS = {
    "BkToCstmrDbtCdtNtfctn": (StatementKind.NOTIFICATION, "Ntfctn"),
    "BkToCstmrStmt": (StatementKind.STATEMENT, "Stmt"),
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: Element | None, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name] if element is not None else []


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        found = _children(element, name)
        element = found[0] if found else None
    return element


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    if has_unsafe_characters(value):  # kept and shown to finance: nothing that displays falsely
        raise UnreadableDocument("a field holds control or bidirectional formatting characters")
    return value[:FIELD_MAX_LENGTH] if value else None


def cents(text: str | None) -> int | None:
    """``"1234.5"`` → ``123450``; ``None`` if it is not a positive ISO 20022 amount of at most two decimals."""
    match = _DECIMAL.match(text or "")
    if match is None:
        return None
    whole, decimals = match.groups()
    return int(whole) * 100 + int((decimals or "0").ljust(2, "0"))


def read_statement(data: bytes, entries_max: int) -> Statement:
    try:
        root = safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise UnsafeDocument(
            "XML with a DTD, entities or external references is refused", reason=type(error).__name__
        ) from None
    except (ParseError, ValueError, LookupError) as error:
        raise UnreadableDocument(f"the XML cannot be read: {error}") from None
    message = (
        next((child for child in root if _local(child.tag) in _ROOTS), None) if _local(root.tag) == "Document" else None
    )
    if message is None:
        raise UnreadableDocument("not a camt.054 notification or camt.053 statement (Document/BkToCstmr...)")
    kind, part = _ROOTS[_local(message.tag)]
    message_id = _text(_child(message, "GrpHdr", "MsgId"))
    if message_id is None:
        raise UnreadableDocument("the file has no GrpHdr/MsgId")
    documents = _children(message, part)
    document_ids = tuple(_text(_child(document, "Id")) for document in documents)
    if not documents or any(identifier is None for identifier in document_ids):
        raise UnreadableDocument(f"every {part} needs its Id")
    if len(set(document_ids)) != len(document_ids):
        raise UnreadableDocument(f"the same {part}/Id twice in one file")
    entries: list[BankEntry] = []
    for document in documents:
        for entry in _children(document, "Ntry"):
            for item in _entries(entry, len(entries)):
                if len(entries) >= entries_max:
                    raise UnreadableDocument(f"at most {entries_max} entries in one file")
                entries.append(item)
    accounts = tuple(_text(_child(document, "Acct", "Id", "IBAN")) for document in documents)
    identifiers = tuple(identifier for identifier in document_ids if identifier)
    return Statement(kind, message_id, identifiers, tuple(entries), accounts)


def _direction(element: Element | None, default: Direction | None) -> Direction:
    value = _text(_child(element, "CdtDbtInd"))
    if value is None and default is not None:
        return default
    direction = next((d for d in Direction if d.value == value), None)
    if direction is None:
        raise UnreadableDocument(f"CdtDbtInd is {value!r}, not DBIT or CRDT")
    return direction


def _entries(entry: Element, before: int) -> list[BankEntry]:
    direction = _direction(entry, None)
    status = _child(entry, "Sts")
    booked = (_text(_child(status, "Cd")) or _text(status)) == "BOOK"
    booking = _child(entry, "BookgDt")
    date = _DATE.match(_text(_child(booking, "Dt")) or _text(_child(booking, "DtTm")) or "")
    amount = _child(entry, "Amt")
    entry_reference = _text(_child(entry, "AcctSvcrRef"))
    details = [detail for group in _children(entry, "NtryDtls") for detail in _children(group, "TxDtls")]
    if not details:
        return [
            BankEntry(
                position=before + 1,
                direction=direction,
                amount=cents(_text(amount)),
                currency=amount.get("Ccy") if amount is not None else None,
                booked=booked,
                booking_date=date.group(1) if date else None,
                entry_reference=entry_reference,
                reference=None,
                end_to_end_id=None,
            )
        ]
    items: list[BankEntry] = []
    for index, detail in enumerate(details, start=1):
        own_amount = _child(detail, "Amt")
        if own_amount is None:
            own_amount = _child(detail, "AmtDtls", "TxAmt", "Amt")
        if own_amount is None and len(details) == 1:
            own_amount = amount
        end_to_end = _text(_child(detail, "Refs", "EndToEndId"))
        detail_reference = _text(_child(detail, "Refs", "AcctSvcrRef"))
        if detail_reference is None and entry_reference is not None:
            detail_reference = entry_reference if len(details) == 1 else f"{entry_reference}/{index}"
        items.append(
            BankEntry(
                position=before + len(items) + 1,
                direction=_direction(detail, direction),
                amount=cents(_text(own_amount)),
                currency=own_amount.get("Ccy") if own_amount is not None else None,
                booked=booked,
                booking_date=date.group(1) if date else None,
                entry_reference=detail_reference,
                reference=_text(_child(detail, "RmtInf", "Strd", "CdtrRefInf", "Ref")),
                end_to_end_id=None if end_to_end in (None, _NOT_PROVIDED) else end_to_end,
            )
        )
    return items
