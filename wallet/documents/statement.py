"""A wallet's monthly statement (saldotiliote / kontoutdrag) as a PDF: the same figures as the
statement's JSON (``wallet.ledger.statements``), and each charge and refund behind them with its
provider and services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from wallet.documents.pdf import HEADING, build, euros, month_name, paragraph, table

TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Tiliote",
        "client": "Asiakas",
        "period": "Ajanjakso",
        "as_of": "Tilanne",
        "incomplete": "Kuukausi on kesken: luvut tähänastiset.",
        "summary": "Yhteenveto",
        "opening": "Alkusaldo",
        "credits": "Budjetin maksut",
        "charges": "Veloitukset",
        "refunds": "Hyvitykset",
        "expiry": "Vanhentunut käyttämätön raha",
        "closing": "Loppusaldo",
        "held": "Varattu avoimille veloituksille",
        "lines": "Palvelualueittain",
        "line": "Palvelualue",
        "rows": "Veloitukset ja hyvitykset",
        "date": "Päivä",
        "provider": "Palveluntuottaja",
        "service": "Palvelu",
        "amount": "Summa",
        "refund": "hyvitys",
        "none": "Ei veloituksia eikä hyvityksiä.",
        "truncated": "Luettelossa on {shown} ensimmäistä; yhteissummat sisältävät kaikki.",
        "rows_total": "Veloitukset yhteensä {charges}, hyvitykset yhteensä {refunds}.",
    },
    "sv": {
        "title": "Kontoutdrag",
        "client": "Klient",
        "period": "Period",
        "as_of": "Läge",
        "incomplete": "Månaden pågår: siffrorna hittills.",
        "summary": "Sammandrag",
        "opening": "Ingående saldo",
        "credits": "Budgetens insättningar",
        "charges": "Debiteringar",
        "refunds": "Återbetalningar",
        "expiry": "Oanvända pengar som förfallit",
        "closing": "Utgående saldo",
        "held": "Reserverat för öppna debiteringar",
        "lines": "Per tjänsteområde",
        "line": "Tjänsteområde",
        "rows": "Debiteringar och återbetalningar",
        "date": "Dag",
        "provider": "Tjänsteproducent",
        "service": "Tjänst",
        "amount": "Belopp",
        "refund": "återbetalning",
        "none": "Inga debiteringar eller återbetalningar.",
        "truncated": "Listan visar de {shown} första; summorna omfattar alla.",
        "rows_total": "Debiteringar sammanlagt {charges}, återbetalningar sammanlagt {refunds}.",
    },
}


@dataclass(frozen=True)
class StatementDocument:
    language: str
    organizer: str
    client_name: str
    statement: dict[str, Any]  # as ``GET /v1/me/statements/{month}`` answers it
    rows: list[dict[str, Any]]  # each charge and refund (``statement_rows``)
    truncated: bool
    category_names: dict[str, str]
    local_days: dict[str, str]  # a row's created_at → its day (D.M.YYYY) in the organizer's time zone


def render_statement(document: StatementDocument) -> bytes:
    texts = TEXTS[document.language]
    statement = document.statement
    names = document.category_names
    month = month_name(statement["month"])
    story: list[Flowable] = [
        paragraph(document.organizer),
        paragraph(f"{texts['client']}: {document.client_name}"),
        paragraph(f"{texts['period']}: {month} ({statement['time_zone']})"),
    ]
    if not statement["complete"]:
        story.append(paragraph(texts["incomplete"]))
    summary = [
        [texts["opening"], euros(statement["opening_balance"])],
        [texts["credits"], euros(statement["credits"]["amount"])],
        [texts["charges"], euros(-statement["charges"]["amount"])],
        [texts["refunds"], euros(statement["refunds"]["amount"])],
        [texts["expiry"], euros(-statement["expiry"]["amount"])],
        [texts["closing"], euros(statement["closing_balance"])],
        [texts["held"], euros(statement["held_at_close"])],
    ]
    story += [Spacer(1, 3 * mm), paragraph(texts["summary"], HEADING), table(["", ""], summary, [110, 50], 1)]
    lines = [
        [
            names.get(line["category"], line["category"]),
            euros(line["opening_balance"]),
            euros(line["credits"]),
            euros(-line["charges"]),
            euros(line["refunds"]),
            euros(-line["expiry"]),
            euros(line["closing_balance"]),
        ]
        for line in statement["lines"]
    ]
    header = [texts["line"], texts["opening"], texts["credits"], texts["charges"], texts["refunds"], texts["expiry"]]
    story += [
        paragraph(texts["lines"], HEADING),
        table([*header, texts["closing"]], lines, [34, 22, 22, 22, 22, 22, 22], 1),
        paragraph(texts["rows"], HEADING),
    ]
    if not document.rows:
        story.append(paragraph(texts["none"]))
    else:
        rows = []
        charges = refunds = 0
        for row in document.rows:
            services = ", ".join(f"{item['service']} × {item['quantity']}" for item in row["items"])
            what = services or names.get(row["category"], row["category"])
            if row["description"]:
                what += f" – {row['description']}"
            if row["type"] == "refund":
                what += f" ({texts['refund']})"
                refunds += row["amount"]
            else:
                charges -= row["amount"]
            provider = row["provider_name"] or ""
            rows.append([document.local_days[row["created_at"]], provider, what, euros(row["amount"])])
        story.append(
            table([texts["date"], texts["provider"], texts["service"], texts["amount"]], rows, [22, 45, 75, 28], 3)
        )
        if document.truncated:
            story.append(paragraph(texts["truncated"].format(shown=len(document.rows))))
        else:
            story.append(paragraph(texts["rows_total"].format(charges=euros(charges), refunds=euros(refunds))))
    return build(f"{texts['title']} {month}", story, document.organizer)
