"""The SMS receipt a client's phone gets after each capture, refund and void (issue 22, item 5).

What a stranger reading the lock screen would see, so only what the client needs: what moved and
how much, at which provider, for which service, the own share the client pays the provider directly
(a capture of an itemized charge), and what is now available on that budget line. Never a name, a
national id, a phone number or a code; no six digits in a row (a code looks like that), so amounts
are grouped by thousands as Finnish writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wallet.ledger.catalog import ServiceUnit
from wallet.ledger.errors import InvariantViolation
from wallet.ledger.money import format_euros_grouped

PREFIX = "Henkilökohtainen budjetti"
ITEMS_SHOWN_MAX = 3  # services named in one receipt; the rest are counted
_GROUP = "\u00a0"  # a no-break space between thousands, and before the euro sign
_UNITS = {
    ServiceUnit.HOUR: "h",
    ServiceUnit.VISIT: "krt",
    ServiceUnit.DAY: "pv",
    ServiceUnit.TRIP: "matkaa",
    ServiceUnit.ITEM: "kpl",
    ServiceUnit.MONTH: "kk",
}


class ReceiptKind(StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"


@dataclass(frozen=True)
class ReceiptItem:
    service_name: str  # in Finnish
    unit: str
    quantity_hundredths: int


@dataclass(frozen=True)
class Receipt:
    kind: ReceiptKind
    amount: int  # cents, positive: what moved (a void: what was held and is released)
    provider_name: str
    category_name: str
    available: int  # cents available on the line after the movement
    items: tuple[ReceiptItem, ...] = ()
    own_share: int = 0  # cents the client pays the provider directly (a capture of itemized items)


def euros(cents: int) -> str:
    """``123456789`` → ``"1 234 567,89 €"`` (no-break spaces): the Finnish way."""
    return format_euros_grouped(cents, _GROUP)


def quantity(hundredths: int) -> str:
    """``150`` → ``"1,5"``; ``200`` → ``"2"``: a decimal comma."""
    whole, part = divmod(hundredths, 100)
    return str(whole) if part == 0 else f"{whole},{part:02d}".rstrip("0")


def _services(receipt: Receipt) -> str:
    if not receipt.items:
        return receipt.category_name
    named = [
        f"{item.service_name} {quantity(item.quantity_hundredths)}{_GROUP}{_UNITS.get(ServiceUnit(item.unit), '')}"
        for item in receipt.items[:ITEMS_SHOWN_MAX]
    ]
    more = len(receipt.items) - ITEMS_SHOWN_MAX
    return ", ".join(named) + (f" + {more} muuta" if more > 0 else "")


def text(receipt: Receipt) -> str:
    if receipt.amount <= 0 or receipt.own_share < 0:
        raise InvariantViolation("a receipt for no movement")
    what = {
        ReceiptKind.CAPTURE: f"maksettu {euros(receipt.amount)}",
        ReceiptKind.REFUND: f"palautettu {euros(receipt.amount)}",
        ReceiptKind.VOID: f"varaus {euros(receipt.amount)} peruttu",
    }[receipt.kind]
    parts = [f"{PREFIX}: {what}, {receipt.provider_name}: {_services(receipt)}."]
    if receipt.kind is ReceiptKind.CAPTURE and receipt.own_share > 0:
        parts.append(f"Omavastuu {euros(receipt.own_share)} maksetaan suoraan palveluntuottajalle.")
    parts.append(f"{receipt.category_name}: käytettävissä {euros(receipt.available)}.")
    return " ".join(parts)
