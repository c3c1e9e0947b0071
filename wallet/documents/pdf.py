"""What every document shares: the page, the styles, the tables and how an amount is written."""

from __future__ import annotations

import io
from collections.abc import Sequence
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from wallet.ledger.money import format_euros_grouped

_STYLES = getSampleStyleSheet()
TITLE = ParagraphStyle("title", parent=_STYLES["Heading1"], fontName="Helvetica-Bold", fontSize=16)
HEADING = ParagraphStyle("heading", parent=_STYLES["Heading2"], fontName="Helvetica-Bold", fontSize=12)
BODY = ParagraphStyle("body", parent=_STYLES["Normal"], fontName="Helvetica", fontSize=10, leading=13)


def euros(amount_cents: int) -> str:
    """``17937000`` → ``"179 370,00 €"``: thousands apart, a decimal comma, as Finnish and Swedish write."""
    return format_euros_grouped(amount_cents, " ")


def month_name(month: str) -> str:
    """``2027-01`` → ``1/2027``."""
    return f"{int(month[5:7])}/{month[:4]}"


def day_name(day: str) -> str:
    """``2026-12-07`` → ``7.12.2026``."""
    return f"{int(day[8:10])}.{int(day[5:7])}.{day[:4]}"


def paragraph(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """Text as it is: escaped, so that a name with ``<`` or ``&`` is printed, not read as markup."""
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], numeric_from: int) -> Table:
    """A table with a bold header row; the columns from ``numeric_from`` on aligned right."""
    data = [[paragraph(cell) if index < numeric_from else cell for index, cell in enumerate(row)] for row in rows]
    result = Table([list(header), *data], colWidths=[width * mm for width in widths], repeatRows=1)
    result.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTNAME", (0, 1), (-1, -1), "Helvetica"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEBELOW", (0, -1), (-1, -1), 0.5, colors.grey),
            ]
        )
    )
    return result


def build(title: str, story: Sequence[Flowable], author: str) -> bytes:
    """The document's bytes: A4, its title and author in its metadata."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        author=author,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
    )
    document.build([paragraph(title, TITLE), Spacer(1, 4 * mm), *story])
    return buffer.getvalue()
