"""A budget decision as a PDF: who decided what, on which plan, with its calculation, the period,
the rule for unused money and how to ask for a review (oikaisuvaatimus / begäran om omprövning)."""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from wallet.documents.pdf import HEADING, build, day_name, euros, month_name, paragraph, table
from wallet.ledger.catalog import format_quantity
from wallet.ledger.plans import DEFAULT_WEEKS_PER_YEAR, ROUNDING_MONTH_INDEX, Calculation, Per, months_from

TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Päätös henkilökohtaisesta budjetista",
        "number": "Päätöksen numero",
        "date": "Päätöksen päivämäärä",
        "decided_by": "Päätöksen tekijä",
        "client": "Asiakas",
        "period": "Budjettikausi",
        "grant": "Asiakkaalle myönnetään henkilökohtainen budjetti alla olevan laskelman mukaisesti.",
        "change": "Budjettia muutetaan kuukaudesta {month} alkaen alla olevan laskelman mukaisesti. Aiemmat"
        " päätökset ovat voimassa sitä edeltäviltä kuukausilta.",
        "plan": "Asiakassuunnitelman palvelut",
        "service": "Palvelu",
        "quantity": "Määrä",
        "unit_price": "Yksikköhinta",
        "yearly": "Vuodessa",
        "calculation": "Laskelma",
        "line": "Palvelualue",
        "monthly": "Kuukaudessa",
        "first_month": "Budjettivuoden 1. kuukausi",
        "total": "Budjetti yhteensä vuodessa",
        "rounding": "Kuukausierät ovat vuosisumma jaettuna kahdellatoista; jakojäännöksen sentit maksetaan"
        " budjettivuoden ensimmäisenä kuukautena ({months}). Kaksitoista kuukausierää on yhteensä täsmälleen"
        " vuosisumma.",
        "payment": "Budjetti maksetaan lompakkoon kuukausi kerrallaan kunkin kuukauden alussa.",
        "unused": "Käyttämättä jäänyt raha",
        "expire": "Kuukauden käyttämättä jäänyt raha ei siirry seuraavalle kuukaudelle.",
        "carry_over": "Käyttämättä jäänyt raha siirtyy seuraavalle kuukaudelle budjettikauden loppuun asti.",
        "review": "Oikaisuvaatimusohje",
        "note": "Huomautus",
        "catalog": "palveluluettelon hinta",
        "given": "sovittu hinta",
        Per.DAY: "päivässä",
        Per.WEEK: "viikossa, {weeks} viikkoa vuodessa",
        Per.MONTH: "kuukaudessa",
        Per.YEAR: "vuodessa",
    },
    "sv": {
        "title": "Beslut om personlig budget",
        "number": "Beslutets nummer",
        "date": "Beslutsdatum",
        "decided_by": "Beslutsfattare",
        "client": "Klient",
        "period": "Budgetperiod",
        "grant": "Klienten beviljas en personlig budget enligt kalkylen nedan.",
        "change": "Budgeten ändras från och med månaden {month} enligt kalkylen nedan. Tidigare beslut gäller"
        " för månaderna före den.",
        "plan": "Tjänsterna i klientplanen",
        "service": "Tjänst",
        "quantity": "Mängd",
        "unit_price": "Enhetspris",
        "yearly": "Per år",
        "calculation": "Kalkyl",
        "line": "Tjänsteområde",
        "monthly": "Per månad",
        "first_month": "Budgetårets 1:a månad",
        "total": "Budgeten sammanlagt per år",
        "rounding": "Månadsbeloppen är årsbeloppet delat med tolv; de cent som blir över betalas budgetårets"
        " första månad ({months}). Tolv månadsbelopp blir sammanlagt exakt årsbeloppet.",
        "payment": "Budgeten betalas till plånboken en månad i taget i början av varje månad.",
        "unused": "Oanvända pengar",
        "expire": "Pengar som inte använts under månaden överförs inte till följande månad.",
        "carry_over": "Oanvända pengar överförs till följande månad fram till budgetperiodens slut.",
        "review": "Anvisning om begäran om omprövning",
        "note": "Anmärkning",
        "catalog": "pris enligt tjänsteförteckningen",
        "given": "överenskommet pris",
        Per.DAY: "per dag",
        Per.WEEK: "per vecka, {weeks} veckor per år",
        Per.MONTH: "per månad",
        Per.YEAR: "per år",
    },
}


@dataclass(frozen=True)
class DecisionDocument:
    language: str  # fi | sv
    organizer: str
    number: str
    day: str  # YYYY-MM-DD
    decided_by: str
    client_name: str
    kind: str  # grant | change
    start_month: str
    end_month: str
    from_month: str
    unused: str  # expire | carry_over
    calculation: Calculation
    category_names: dict[str, str]
    review_instructions: str


def render_decision(decision: DecisionDocument) -> bytes:
    texts = TEXTS[decision.language]
    calculation = decision.calculation
    story: list[Flowable] = [
        paragraph(decision.organizer),
        Spacer(1, 3 * mm),
        table(
            ["", ""],
            [
                [texts["number"], decision.number],
                [texts["date"], day_name(decision.day)],
                [texts["decided_by"], decision.decided_by],
                [texts["client"], decision.client_name],
                [texts["period"], f"{month_name(decision.start_month)} – {month_name(decision.end_month)}"],
            ],
            [55, 115],
            numeric_from=2,
        ),
        Spacer(1, 4 * mm),
        paragraph(
            texts["grant"]
            if decision.kind == "grant"
            else texts["change"].format(month=month_name(decision.from_month))
        ),
    ]
    if calculation.items:
        rows = []
        for item, yearly in calculation.items:
            per = texts[item.per].format(weeks=item.weeks_per_year or DEFAULT_WEEKS_PER_YEAR)
            source = texts["catalog"] if item.from_catalog else texts["given"]
            name = f"{item.name} ({item.service})" if item.name else item.service
            if item.note:
                name += f"\n{texts['note']}: {item.note}"
            rows.append(
                [
                    name,
                    f"{format_quantity(item.quantity_hundredths)} {per}",
                    f"{euros(item.unit_price)}\n{source}",
                    euros(yearly),
                ]
            )
        story += [
            paragraph(texts["plan"], HEADING),
            table(
                [texts["service"], texts["quantity"], texts["unit_price"], texts["yearly"]], rows, [60, 45, 35, 30], 2
            ),
        ]
    first_months = [m for m in months_from(decision.start_month, decision.end_month)][ROUNDING_MONTH_INDEX::12]
    line_rows = [
        [
            decision.category_names.get(line.category, line.category),
            euros(line.yearly_amount),
            euros(line.monthly_amounts[ROUNDING_MONTH_INDEX]),
            euros(line.monthly_amounts[ROUNDING_MONTH_INDEX + 1]),
        ]
        for line in calculation.lines
    ]
    story += [
        paragraph(texts["calculation"], HEADING),
        table(
            [texts["line"], texts["yearly"], texts["first_month"], texts["monthly"]],
            line_rows,
            [60, 35, 40, 35],
            1,
        ),
        Spacer(1, 3 * mm),
        paragraph(f"{texts['total']}: {euros(calculation.yearly_amount)}", HEADING),
        paragraph(texts["rounding"].format(months=", ".join(month_name(m) for m in first_months))),
        paragraph(texts["payment"]),
        paragraph(texts["unused"], HEADING),
        paragraph(texts[decision.unused]),
        paragraph(texts["review"], HEADING),
        paragraph(decision.review_instructions),
    ]
    return build(f"{texts['title']} {decision.number}", story, decision.organizer)
