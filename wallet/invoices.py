"""Received invoices read from Finvoice XML (3.0 and 2.01) or CSV, into ``wallet.ledger.reconciliation.Invoice``.

XML from outside is parsed with defusedxml and any DTD is refused (``UnsafeDocument``): with no
DTD there can be no entity expansion (billion laughs) and no external entity (XXE), and nothing
is ever fetched. Finvoice is described by an XML schema and needs no DTD.

An XML upload is one of:

- a bare ``Finvoice`` document;
- a document whose root wraps ``Finvoice`` elements;
- a bank e-invoicing channel file: XML documents one after another, each invoice preceded by its
  SOAP transmission frame (``Envelope`` with an ebXML ``MessageHeader`` naming sender and
  receiver). Each document is read in the encoding it declares (ISO-8859-15 is common); one with
  no declaration of its own takes the encoding declared before it. How the file is cut into
  documents: ``xml_documents``.

Finvoice fields read, per ``Finvoice`` element:

- ``InvoiceDetails/InvoiceNumber``
- ``SellerPartyDetails/SellerPartyIdentifier``: the seller's Y-tunnus
- ``EpiDetails/EpiPaymentInstructionDetails/EpiRemittanceInfoIdentifier`` with its
  ``IdentificationSchemeName``: ``SPY`` (Finnish reference) or ``ISO`` (RF reference)
- ``EpiDetails/EpiPaymentInstructionDetails/EpiInstructedAmount``: the amount to pay, decimal
  comma, currency in ``AmountCurrencyIdentifier``. It is less than the invoice total when the
  invoice was partly prepaid or credit notes are netted; payment and match go by it.
- ``InvoiceDetails/InvoiceTotalVatIncludedAmount``: the total, reported beside it
- the ``Version`` attribute

From the frame: ``Header/MessageHeader/From/PartyId`` of the ``From`` whose ``Role`` is
``Sender`` (the first ``From`` otherwise).

CSV: a header row naming ``reference``, ``amount`` (euros, decimal comma or point), ``business_id``
and ``invoice_number`` (in any order, any case); ``;`` or ``,`` separated; UTF-8, a BOM allowed.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pyexpat import errors as expat_errors
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from wallet.ledger.errors import UnreadableDocument, UnsafeDocument
from wallet.ledger.money import MAX_AMOUNT_CENTS
from wallet.ledger.reconciliation import Invoice, Scheme
from wallet.validation import has_unsafe_characters

FIELD_MAX_LENGTH = 70  # Finvoice's longest of these fields is 70 characters
FEED_BYTES = 65_536  # what the boundary search hands expat at a time: no copy of the whole rest per document
DOCUMENTS_PER_INVOICE_MAX = 2  # a frame and its invoice
_JUNK_AFTER_ROOT = expat_errors.codes[expat_errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]
_XML_SPACE = b" \t\r\n"
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


def _safe_parser(target: object) -> safe_xml.DefusedXMLParser:
    return safe_xml.DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)


class _Depth:
    """A parser target that builds nothing: it only knows whether the root element has closed."""

    def __init__(self) -> None:
        self.depth = 0
        self.root_closed = False

    def start(self, tag: str, attributes: object) -> None:
        self.depth += 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.root_closed = self.depth == 0

    def close(self) -> None:
        return None


def _declaration(encoding: str) -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>'.encode("ascii")


def xml_documents(data: bytes, documents_max: int) -> list[Element]:
    """Each XML document in ``data``, in order, parsed behind defusedxml.

    A bank channel file is XML documents one after another, which no XML parser reads as one
    document ("junk after document element"). Cutting it with a regular expression at each
    ``<?xml`` would be fooled by the same text in a comment or CDATA section, and would miss
    documents that carry no declaration. Instead expat itself finds each boundary: the rest of the
    file is fed to a (defused, tree-less) parser until expat reports junk after the document
    element (or, at a byte order mark, an invalid token), whose byte index is where the root
    element has closed and the next document begins (comments, processing instructions and white
    space after a root belong to the document before). That piece is then parsed alone, with its own declaration; a piece without one is
    given the encoding the document before it declared. A malformed document, or text between
    documents, is malformed XML; a DTD anywhere is refused before anything is built.
    """
    documents: list[Element] = []
    start = len(data) - len(data.lstrip(_XML_SPACE))
    encoding: str | None = None
    while start < len(data):
        if len(documents) >= documents_max:
            raise UnreadableDocument(f"at most {documents_max} XML documents in one file")
        bom = data.startswith(codecs.BOM_UTF8, start)  # some channels start each document with one
        own_declaration = data.startswith(b"<?xml", start + (len(codecs.BOM_UTF8) if bom else 0))
        prefix = b"" if own_declaration or bom or encoding is None else _declaration(encoding)
        declared: list[str] = []
        end = _document_end(data, start, prefix, declared, len(documents) + 1)
        if end <= start:  # expat always consumes a root before junk after it; never loop in place
            raise UnreadableDocument(f"XML document {len(documents) + 1} of the file is empty")
        if own_declaration:
            encoding = declared[0] if declared else None
        documents.append(_parse(prefix + data[start:end], len(documents) + 1))
        start = end
    if not documents:
        raise UnreadableDocument("the file holds no XML document")
    return documents


def _document_end(data: bytes, start: int, prefix: bytes, declared: list[str], number: int) -> int:
    """Where the XML document that begins at ``start`` (read after ``prefix``) ends in ``data``."""
    target = _Depth()
    finder = _safe_parser(target)
    expat = finder.parser
    expat.XmlDeclHandler = lambda version, encoding, standalone: declared.append(encoding) if encoding else None
    try:
        finder.feed(prefix)
        for position in range(start, len(data), FEED_BYTES):
            finder.feed(data[position : position + FEED_BYTES])
        finder.close()
    except DefusedXmlException as error:
        raise _unsafe(error) from None
    except ParseError as error:
        end = start + int(expat.ErrorByteIndex) - len(prefix)
        # After the root: the next document, or (expat calls a byte order mark an invalid token) its mark.
        if error.code == _JUNK_AFTER_ROOT or (target.root_closed and data.startswith(codecs.BOM_UTF8, end)):
            return end
        raise UnreadableDocument(f"XML document {number} of the file cannot be read: {error}") from None
    except (ValueError, LookupError) as error:  # an encoding expat and Python do not know
        raise UnreadableDocument(f"XML document {number} of the file cannot be read: {error}") from None
    return len(data)


def _parse(document: bytes, number: int) -> Element:
    try:
        return safe_xml.fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)  # type: ignore[no-any-return]
    except DefusedXmlException as error:
        raise _unsafe(error) from None
    except (ParseError, ValueError, LookupError) as error:
        raise UnreadableDocument(f"XML document {number} of the file cannot be read: {error}") from None


def _unsafe(error: DefusedXmlException) -> UnsafeDocument:
    return UnsafeDocument("XML with a DTD, entities or external references is refused", reason=type(error).__name__)


def read_finvoice(data: bytes, invoices_max: int) -> tuple[Invoice, ...]:
    """The invoices of a bare Finvoice, a wrapper of them, or a bank channel file of framed ones."""
    messages: list[tuple[Element, Frame | None]] = []
    frame: Frame | None = None
    for number, root in enumerate(xml_documents(data, invoices_max * DOCUMENTS_PER_INVOICE_MAX), start=1):
        name = _local(root.tag)
        if name == "Envelope":
            if frame is not None:
                raise UnreadableDocument(f"XML document {number}: a transmission frame where its invoice should be")
            frame = _frame(root, number)
        elif name == "Finvoice":
            messages.append((root, frame))
            frame = None
        else:
            if frame is not None:
                raise UnreadableDocument(f"XML document {number}: a {name} where the framed Finvoice should be")
            inside = list(_finvoices(root))
            if not inside:
                raise UnreadableDocument(f"no Finvoice element in XML document {number}")
            messages += [(message, None) for message in inside]
        if len(messages) > invoices_max:
            raise UnreadableDocument(f"at most {invoices_max} invoices in one document")
    if frame is not None:
        raise UnreadableDocument("the file ends with a transmission frame and no invoice after it")
    return tuple(_finvoice(position, message, frame) for position, (message, frame) in enumerate(messages, start=1))


@dataclass(frozen=True)
class Frame:
    """What the SOAP transmission frame before an invoice says about it."""

    sender: str | None


def _frame(envelope: Element, number: int) -> Frame:
    header = _child(envelope, "Header", "MessageHeader")
    if header is None:
        raise UnreadableDocument(f"XML document {number}: a SOAP envelope without an ebXML MessageHeader")
    senders = [element for element in header if _local(element.tag) == "From"]
    named = [element for element in senders if (_text_of(_child(element, "Role")) or "").lower() == "sender"]
    chosen = (named or senders)[0] if senders else None
    return Frame(sender=_text(_text_of(_child(chosen, "PartyId"))))


def _text_of(element: Element | None) -> str | None:
    return element.text if element is not None else None


def _finvoices(root: Element) -> Iterator[Element]:
    for element in root.iter():
        if _local(element.tag) == "Finvoice":
            yield element


def _finvoice(position: int, message: Element, frame: Frame | None) -> Invoice:
    instruction = _child(message, "EpiDetails", "EpiPaymentInstructionDetails")
    reference = _child(instruction, "EpiRemittanceInfoIdentifier")
    amount = _child(instruction, "EpiInstructedAmount")
    scheme_name = reference.get("IdentificationSchemeName") if reference is not None else None
    scheme = next((s for s in Scheme if s.value == (scheme_name or "").strip().upper()), None)
    number = _child(message, "InvoiceDetails", "InvoiceNumber")
    seller = _child(message, "SellerPartyDetails", "SellerPartyIdentifier")
    total = _child(message, "InvoiceDetails", "InvoiceTotalVatIncludedAmount")
    return Invoice(
        position=position,
        invoice_number=_text(number.text if number is not None else None),
        reference=_text(reference.text if reference is not None else None),
        scheme=scheme,
        amount=parse_euros(amount.text if amount is not None else None),
        currency=_text(amount.get("AmountCurrencyIdentifier") if amount is not None else None),
        business_id=_text(seller.text if seller is not None else None),
        sender=frame.sender if frame is not None else None,
        invoice_total=parse_euros(_text_of(total)),
        version=_text(message.get("Version")),
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
