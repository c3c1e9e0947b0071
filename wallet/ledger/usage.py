"""The organizer's view of use: per client and service line, what the month gave, what was used,
what is held and what is left; per provider, what it charged. And the surplus early warning: the
clients who, late in the month, have used little of it (as UK councils watch direct payments for
surpluses building up), so that a case worker can ask whether the plan still fits.

Pure arithmetic on integer cents; the figures come from the ledger through the storage port.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wallet.ledger.catalog import format_quantity


@dataclass(frozen=True)
class LineFigures:
    """One wallet line (client, category) in one month."""

    client_id: str
    category: str
    monthly_amount: int  # the budget line for the month; 0 when no budget covers it
    credited: int  # the month's credit
    used: int  # captures less refunds booked in the month
    held: int  # by charges pending at the month's close (or now, for the current month)
    balance: int  # at the close

    @property
    def left(self) -> int:
        """What the client can still spend on the line: its available amount at the close."""
        return self.balance - self.held

    def shows(self) -> bool:
        """A line that neither had a budget, moved nor holds money has nothing to report."""
        return any((self.monthly_amount, self.credited, self.used, self.held, self.balance))


@dataclass(frozen=True)
class LowUseRule:
    """Late in the month (from ``from_day``, or once the month is over), a client who has used
    less than ``percent`` % of the month's budget (all lines together) is flagged."""

    from_day: int
    percent: int

    def evaluated(self, complete: bool, day_of_month: int) -> bool:
        return complete or day_of_month >= self.from_day

    def is_low(self, monthly_amount: int, used: int) -> bool:
        return monthly_amount > 0 and used * 100 < self.percent * monthly_amount


def used_percent(monthly_amount: int, used: int) -> int | None:
    """Whole percent used, rounded down; None without a budget."""
    if monthly_amount <= 0:
        return None
    return (used * 100) // monthly_amount


_FIGURES = ("monthly_amount", "credited", "used", "held", "left")


def _line(line: LineFigures) -> dict[str, Any]:
    return {
        "category": line.category,
        "monthly_amount": line.monthly_amount,
        "credited": line.credited,
        "used": line.used,
        "held": line.held,
        "left": line.left,
    }


def client_rows(
    lines: Iterable[LineFigures], names: dict[str, str], rule: LowUseRule, evaluated: bool
) -> list[dict[str, Any]]:
    """One row per client with a line to show, its lines by category; in the order of ``names``."""
    by_client: dict[str, list[LineFigures]] = {}
    for line in lines:
        if line.shows():
            by_client.setdefault(line.client_id, []).append(line)
    rows = []
    for client_id, name in names.items():
        client_lines = sorted(by_client.get(client_id, ()), key=lambda line: line.category)
        if not client_lines:
            continue
        rendered = [_line(line) for line in client_lines]
        totals = {figure: sum(line[figure] for line in rendered) for figure in _FIGURES}
        rows.append(
            {
                "client_id": client_id,
                "name": name,
                **totals,
                "used_percent": used_percent(totals["monthly_amount"], totals["used"]),
                "low_use": evaluated and rule.is_low(totals["monthly_amount"], totals["used"]),
                "lines": rendered,
            }
        )
    return rows


def totals(rows: list[dict[str, Any]], providers: list[dict[str, Any]]) -> dict[str, int]:
    summed = {figure: sum(row[figure] for row in rows) for figure in _FIGURES}
    return {
        **summed,
        "charged": sum(provider["charged"] for provider in providers),
        "clients": len(rows),
        "low_use_clients": sum(1 for row in rows if row["low_use"]),
    }


def provider_rows(figures: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per provider: captured and refunded (both positive) in the month, and the net charged."""
    rows = []
    for figure in figures:
        captured, refunded = int(figure["captured"]), int(figure["refunded"])
        rows.append(
            {
                "provider_id": figure["provider_id"],
                "provider_name": figure["provider_name"],
                "captured": captured,
                "refunded": refunded,
                "charged": captured - refunded,
                "captures": int(figure["captures"]),
                "refunds": int(figure["refunds"]),
            }
        )
    return sorted(rows, key=lambda row: (row["provider_name"], row["provider_id"]))


def bought(rows: Iterable[dict[str, Any]], key: str | None = None) -> dict[str | None, list[dict[str, Any]]]:
    """What was bought, per service (``service``, ``unit``, ``quantity``, ``amount``, ``own_share``,
    ``count`` of items), summed over the rows of each value of ``key`` (``client_id``,
    ``provider_id``; None: all rows together, under None). Quantities are summed in hundredths."""
    sums: dict[str | None, dict[tuple[str, str], list[int]]] = {}
    for row in rows:
        owner = None if key is None else str(row[key])
        entry = sums.setdefault(owner, {}).setdefault((row["service"], row["unit"]), [0, 0, 0, 0])
        for index, figure in enumerate(("quantity_hundredths", "amount", "own_share", "count")):
            entry[index] += int(row[figure])
    return {
        owner: [
            {
                "service": service,
                "unit": unit,
                "quantity": format_quantity(quantity),
                "amount": amount,
                "own_share": own_share,
                "count": count,
            }
            for (service, unit), (quantity, amount, own_share, count) in sorted(services.items())
        ]
        for owner, services in sums.items()
    }
