"""The ISO 20022 customer credit-transfer initiation, ``pain.001.001.09``, of a payment batch, as the
Finnish banks' ISO 20022 payment guides describe it: one payment information block (SEPA credit
transfers from the organizer's account, charges shared ``SLEV``), one transfer per settlement with
its end-to-end id and its reference as a structured creditor reference (``SCOR``). Amounts are
written from integer cents; the group header's and the block's count and control sum are summed
from the same transfers. Written with the standard library's ElementTree: nothing here is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, tostring

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
NAME_MAX_LENGTH = 70  # what the banks' guides take of Max140Text names


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str  # Max35Text
    amount: int  # cents, positive
    creditor_name: str
    creditor_iban: str
    reference: str  # the Finnish reference


@dataclass(frozen=True)
class PaymentFile:
    message_id: str  # Max35Text, also the payment information id
    created_at: str  # ISO date-time
    execution_date: str  # YYYY-MM-DD
    payer_name: str
    payer_iban: str
    payer_bic: str
    transfers: Sequence[Transfer]


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _text(parent: Element, tag: str, text: str, **attributes: str) -> Element:
    element = SubElement(parent, tag, attributes)
    element.text = text
    return element


def pain_001(payment: PaymentFile) -> bytes:
    count = str(len(payment.transfers))
    control_sum = euros(sum(transfer.amount for transfer in payment.transfers))
    document = Element("Document", {"xmlns": NAMESPACE})
    initiation = SubElement(document, "CstmrCdtTrfInitn")
    header = SubElement(initiation, "GrpHdr")
    _text(header, "MsgId", payment.message_id)
    _text(header, "CreDtTm", payment.created_at)
    _text(header, "NbOfTxs", count)
    _text(header, "CtrlSum", control_sum)
    _text(SubElement(header, "InitgPty"), "Nm", payment.payer_name[:NAME_MAX_LENGTH])
    block = SubElement(initiation, "PmtInf")
    _text(block, "PmtInfId", payment.message_id)
    _text(block, "PmtMtd", "TRF")
    _text(block, "NbOfTxs", count)
    _text(block, "CtrlSum", control_sum)
    _text(SubElement(SubElement(block, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _text(SubElement(block, "ReqdExctnDt"), "Dt", payment.execution_date)
    _text(SubElement(block, "Dbtr"), "Nm", payment.payer_name[:NAME_MAX_LENGTH])
    _text(SubElement(SubElement(block, "DbtrAcct"), "Id"), "IBAN", payment.payer_iban)
    _text(SubElement(SubElement(block, "DbtrAgt"), "FinInstnId"), "BICFI", payment.payer_bic)
    _text(block, "ChrgBr", "SLEV")
    for transfer in payment.transfers:
        item = SubElement(block, "CdtTrfTxInf")
        _text(SubElement(item, "PmtId"), "EndToEndId", transfer.end_to_end_id)
        _text(SubElement(item, "Amt"), "InstdAmt", euros(transfer.amount), Ccy="EUR")
        _text(SubElement(item, "Cdtr"), "Nm", transfer.creditor_name[:NAME_MAX_LENGTH])
        _text(SubElement(SubElement(item, "CdtrAcct"), "Id"), "IBAN", transfer.creditor_iban)
        reference = SubElement(SubElement(SubElement(item, "RmtInf"), "Strd"), "CdtrRefInf")
        _text(SubElement(SubElement(reference, "Tp"), "CdOrPrtry"), "Cd", "SCOR")
        _text(reference, "Ref", transfer.reference)
    body: bytes = tostring(document, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
