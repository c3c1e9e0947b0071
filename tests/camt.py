"""camt.054 notifications and camt.053 statements as Finnish banks send them, for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

NAMESPACES = {
    "camt.054": "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02",
    "camt.053": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
}
PAYER_IBAN = "FI4819503000000010"


@dataclass(frozen=True)
class Entry:
    amount_cents: int
    reference: str | None = None
    end_to_end_id: str | None = None
    direction: str = "DBIT"
    booking_date: str = "2027-01-18"
    entry_reference: str = "20270118/0001"
    status: str = "BOOK"


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _entry(entry: Entry) -> str:
    remittance = (
        "<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
        f"<Ref>{escape(entry.reference)}</Ref></CdtrRefInf></Strd></RmtInf>"
        if entry.reference
        else ""
    )
    return f"""
      <Ntry>
        <Amt Ccy="EUR">{euros(entry.amount_cents)}</Amt>
        <CdtDbtInd>{entry.direction}</CdtDbtInd>
        <Sts>{entry.status}</Sts>
        <BookgDt><Dt>{entry.booking_date}</Dt></BookgDt>
        <ValDt><Dt>{entry.booking_date}</Dt></ValDt>
        <AcctSvcrRef>{escape(entry.entry_reference)}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{escape(entry.end_to_end_id or "NOTPROVIDED")}</EndToEndId></Refs>
          <AmtDtls><TxAmt><Amt Ccy="EUR">{euros(entry.amount_cents)}</Amt></TxAmt></AmtDtls>
          <RltdPties><Cdtr><Nm>Hoiva Oy</Nm></Cdtr></RltdPties>
          {remittance}
        </TxDtls></NtryDtls>
      </Ntry>"""


def notification(
    entries: list[Entry], identifier: str = "NTF-20270118-1", kind: str = "camt.054", account: str = PAYER_IBAN
) -> bytes:
    """One camt.054 notification (or, with ``kind="camt.053"``, one statement) of ``entries``."""
    root, part = ("BkToCstmrDbtCdtNtfctn", "Ntfctn") if kind == "camt.054" else ("BkToCstmrStmt", "Stmt")
    body = "".join(_entry(entry) for entry in entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{NAMESPACES[kind]}">
  <{root}>
    <GrpHdr><MsgId>MSG-{escape(identifier)}</MsgId><CreDtTm>2027-01-18T20:00:00+02:00</CreDtTm></GrpHdr>
    <{part}>
      <Id>{escape(identifier)}</Id>
      <CreDtTm>2027-01-18T20:00:00+02:00</CreDtTm>
      <Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>{body}
    </{part}>
  </{root}>
</Document>
""".encode()
