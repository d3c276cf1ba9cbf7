"""The money of a quote in the words of the preview page: per item what the customer had, from
when it stops being charged and what is credited, each with a short why; then the extra lines
and what it comes to. Read from the quote only: the quote (services/quoting.py) decides."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import ZERO, LineType
from .services.quoting import CancellationQuote, QuotedItem

DAY_SECONDS = 86400


@dataclass(frozen=True)
class ItemMoney:
    quoted: QuotedItem
    value: Decimal  # quantity x unit price: what the customer had of it
    stops_charging_at: datetime | None  # None: nothing recurring to stop
    credit: Decimal
    why: str


@dataclass(frozen=True)
class LineMoney:
    description: str
    signed_amount: Decimal  # + a fee charged, - a credit
    why: str


@dataclass(frozen=True)
class MoneyExplained:
    items: list[ItemMoney]
    lines: list[LineMoney]
    cancelled_value: Decimal
    credit: Decimal
    net: Decimal
    net_says: str


def _days(seconds: float) -> int:
    return max(round(seconds / DAY_SECONDS), 0)


def _item_money(quoted: QuotedItem, quote: CancellationQuote) -> ItemMoney:
    item, when = quoted.order_item, quote.effective_at
    value = item.unit_price_amount * quoted.quantity
    start, end = item.period_start, item.period_end
    if start is None or end is None:
        why = _("No service period: a one-off item, nothing recurring to stop or credit.")
        return ItemMoney(quoted, value, None, ZERO, why)
    if when >= end:
        why = _("Its service period ended before this takes effect: nothing to credit.")
        return ItemMoney(quoted, value, None, ZERO, why)
    unused = _days((end - max(when, start)).total_seconds())
    total = _days((end - start).total_seconds())
    if not quote.prorated:
        why = _("Not prorated: the unused part of the service period is not credited.")
    else:
        why = ngettext(
            "Unused %(unused)s of %(total)s day of the service period, credited.",
            "Unused %(unused)s of %(total)s days of the service period, credited.",
            total,
        ) % {"unused": unused, "total": total}
    return ItemMoney(quoted, value, max(when, start), quoted.prorated_credit, why)


def _line_money(line) -> LineMoney:
    amount = line.unit_price_amount * line.quantity
    if line.type == LineType.DEBIT:
        return LineMoney(line.description, amount, _("A fee you added: charged."))
    return LineMoney(line.description, -amount, _("A credit you added: paid back."))


def explain(quote: CancellationQuote) -> MoneyExplained:
    items = [_item_money(quoted, quote) for quoted in quote.items]
    net = quote.net_amount
    if net > 0:
        net_says = _("The customer is charged this.")
    elif net < 0:
        net_says = _("The customer is credited this.")
    else:
        net_says = _("Nothing is charged or credited.")
    return MoneyExplained(
        items=items,
        lines=[_line_money(line) for line in quote.lines],
        cancelled_value=sum((money.value for money in items), ZERO),
        credit=quote.prorated_credit,
        net=net,
        net_says=net_says,
    )
