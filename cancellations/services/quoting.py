"""The quote: what a cancellation would cancel and what it would cost, computed without
writing anything. The preview pages, the writers (writing, updating), the bulk job and the
billing engine's checks all ask it, so one place decides what can be cancelled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Sum,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from reasons.models import CancellationReason

from ..errors import CancellationError
from ..models import (
    ZERO,
    CanceledBy,
    Cancellation,
    CancellationItem,
    ChurnTimePolicy,
    LineType,
    Order,
    OrderItem,
    SettlementItem,
)
from ..states import (
    CancellationStatus,
)
from .refusals import item_refusals, nothing_left, order_refusal, settlement_blocked

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ItemPick:
    order_item_id: int
    quantity: int


@dataclass(frozen=True)
class ExtraLine:
    type: str
    unit_price_amount: Decimal
    unit_price_currency: str
    quantity: int
    description: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None


@dataclass
class QuotedItem:
    order_item: OrderItem
    quantity: int
    prorated_credit: Decimal


@dataclass
class CancellationQuote:
    """What a cancellation would do, computed without writing anything."""

    order: Order
    is_whole_order: bool
    effective_at: datetime
    items: list[QuotedItem]
    lines: list[ExtraLine]
    prorated: bool
    currency: str
    reason: CancellationReason  # as checked: active, described if it needs to be
    prorated_credit: Decimal = ZERO
    line_item_subtotal: Decimal = ZERO
    is_scheduled: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def net_amount(self) -> Decimal:
        return self.line_item_subtotal - self.prorated_credit


def scheduled_quantities(order: Order, *, excluding: str | None = None) -> dict[int, int]:
    """Quantities per order item already promised to scheduled (not yet effective) cancellations."""
    rows = CancellationItem.objects.filter(
        cancellation__order=order, cancellation__status=CancellationStatus.CONFIRMED
    )
    if excluding:
        rows = rows.exclude(cancellation_id=excluding)
    return {
        row["order_item_id"]: row["total"]
        for row in rows.values("order_item_id").annotate(total=Sum("quantity"))
    }


def prorated_credit_for(item: OrderItem, quantity: int, effective_at: datetime) -> Decimal:
    """Credit for the unused part of the item's service period, to the cent."""
    start, end = item.period_start, item.period_end
    if start is None or end is None or effective_at >= end:
        return ZERO  # no service period (has_service_period), or it is over
    used_until = max(effective_at, start)
    unused = Decimal((end - used_until).total_seconds())
    whole = Decimal((end - start).total_seconds())
    credit = item.unit_price_amount * quantity * unused / whole
    return credit.quantize(CENT, rounding=ROUND_HALF_UP)


def reason_errors(reason: object, description: str) -> dict[str, str]:
    if reason is None:
        return {"reason": _("Choose a reason.")}
    if not isinstance(reason, CancellationReason):
        return {"reason": _("Unknown reason.")}
    if not reason.is_active:
        return {"reason": _("The reason “%(reason)s” is no longer offered.") % {"reason": reason}}
    if reason.extra_information_needed and not (description or "").strip():
        return {"description": _("This reason needs a description.")}
    return {}


def _effective_time(
    picked: list[tuple[OrderItem, int]],
    *,
    churn_time: datetime | None,
    churn_time_policy: str,
    now: datetime,
    errors: dict[str, Any],
) -> datetime:
    """Rebilly's rule: churnTimePolicy beats churnTime; no policy and no time means now."""
    if churn_time_policy == ChurnTimePolicy.NOW:
        return now
    if churn_time_policy == ChurnTimePolicy.AT_NEXT_RENEWAL:
        ends = [
            item.period_end
            for item, _qty in picked
            if item.period_start is not None and item.period_end is not None  # a service period
        ]
        if not ends:
            errors["churn_time_policy"] = _(
                "None of the cancelled items has a service period to run out."
            )
            return now
        return max(max(ends), now)
    if churn_time_policy:
        errors["churn_time_policy"] = _("Use “now”, “at-next-renewal” or leave it empty.")
        return now
    if churn_time is None:
        return now
    error = churn_time_error(churn_time, now)
    if error:
        errors["churn_time"] = error
        return now
    return churn_time


def churn_time_error(churn_time: datetime, now: datetime) -> str:
    """What is wrong with an explicit effective time, or ""."""
    if timezone.is_naive(churn_time):
        return _("Give the time with its time zone or offset.")
    if churn_time < now:
        return _("The effective time can't be in the past.")
    return ""


def canceled_by_errors(canceled_by: str) -> dict[str, str]:
    if canceled_by in CanceledBy.values:
        return {}
    return {"canceled_by": _("Use one of: %(values)s.") % {"values": ", ".join(CanceledBy.values)}}


def settlement_blocked_message(item: OrderItem, settlement: SettlementItem) -> str:
    return settlement_blocked(item, settlement).message


def blocking_settlements(orders: Iterable[Order]) -> dict[int, SettlementItem]:
    """Per order item, a settled or exported settlement item: those can't be removed, so their
    item can't be cancelled."""
    blocked: dict[int, SettlementItem] = {}
    for settlement in SettlementItem.objects.blocking().filter(order_item__order__in=orders):
        blocked.setdefault(settlement.order_item_id, settlement)
    return blocked


def _pick_whole_order(
    order_items: Iterable[OrderItem],
    reserved: dict[int, int],
    blocked: dict[int, SettlementItem],
    errors: dict[str, Any],
) -> list[tuple[OrderItem, int]]:
    """Whatever is open and unscheduled of every item; refused when that is nothing, or when
    an item it would take has a blocking settlement item."""
    picked = []
    for item in order_items:
        if not item_refusals(item, wanted=None, reserved=reserved.get(item.pk, 0)):
            picked.append((item, item.open_quantity - reserved.get(item.pk, 0)))
    if not picked:
        errors["order"] = nothing_left().error()
    for item, _qty in picked:
        if item.pk in blocked:
            errors["order"] = settlement_blocked(item, blocked[item.pk]).error()
            break
    return picked


def _pick_one(
    index: int,
    pick: ItemPick,
    item: OrderItem,
    reserved: dict[int, int],
    blocked: dict[int, SettlementItem],
    errors: dict[str, Any],
) -> bool:
    """Whether this much of the item can be cancelled; if not, errors say why."""
    if not isinstance(pick.quantity, int) or pick.quantity < 1:
        errors[f"items.{index}.quantity"] = _("Cancel at least one.")
        return False
    if pick.quantity > item.quantity:  # more than was ordered: the input is wrong, not the state
        errors[f"items.{index}.quantity"] = _(
            "Only %(available)s of %(sku)s can still be cancelled."
        ) % {"available": max(item.open_quantity - reserved.get(item.pk, 0), 0), "sku": item.sku}
        return False
    blocking = [blocked[item.pk]] if item.pk in blocked else []
    refused = item_refusals(
        item, wanted=pick.quantity, reserved=reserved.get(item.pk, 0), blocking=blocking
    )
    if refused:
        errors[f"items.{index}.quantity"] = refused[0].error()
    return not refused


def _pick_items(
    order: Order,
    items: list[ItemPick] | None,
    reserved: dict[int, int],
    blocked: dict[int, SettlementItem] | None,
    errors: dict[str, Any],
) -> list[tuple[OrderItem, int]]:
    order_items = {item.pk: item for item in order.items.all()}
    if blocked is None:
        blocked = blocking_settlements([order])
    if items is None:
        return _pick_whole_order(order_items.values(), reserved, blocked, errors)
    if not items:
        errors["items"] = _("Pick at least one item, or cancel the whole order.")
        return []
    picked, seen = [], set()
    for index, pick in enumerate(items):
        item = order_items.get(pick.order_item_id)
        if item is None:
            errors[f"items.{index}.item_id"] = _("This order has no item %(id)s.") % {
                "id": pick.order_item_id
            }
            continue
        if item.pk in seen:
            errors[f"items.{index}.item_id"] = _("Item %(sku)s is listed twice.") % {
                "sku": item.sku
            }
            continue
        seen.add(item.pk)
        if _pick_one(index, pick, item, reserved, blocked, errors):
            picked.append((item, pick.quantity))
    return picked


def _decimal_places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0  # a str: NaN or infinite


def _line_errors(lines: Sequence[ExtraLine], currency: str, errors: dict[str, str]) -> None:
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        if line.type not in LineType.values:
            errors[f"{prefix}.type"] = _("Use “debit” (a fee) or “credit”.")
        amount = line.unit_price_amount
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
            errors[f"{prefix}.unit_price_amount"] = _(
                "Give a positive amount; the type sets the sign."
            )
        elif _decimal_places(amount) > 2:
            errors[f"{prefix}.unit_price_amount"] = _("Use at most two decimal places.")
        if line.unit_price_currency != currency:
            errors[f"{prefix}.unit_price_currency"] = _(
                "Lines are billed in the order's currency, %(currency)s."
            ) % {"currency": currency}
        if not isinstance(line.quantity, int) or line.quantity < 1:
            errors[f"{prefix}.quantity"] = _("Use a whole number of at least 1.")
        if line.period_start and line.period_end and line.period_end <= line.period_start:
            errors[f"{prefix}.period_end"] = _("The period must end after it starts.")


def quote_cancellation(
    order: Order,
    *,
    reason: CancellationReason | None,
    items: list[ItemPick] | None = None,
    lines: Sequence[ExtraLine] = (),
    churn_time: datetime | None = None,
    churn_time_policy: str = "",
    prorated: bool = False,
    description: str = "",
    now: datetime | None = None,
    excluding: str | None = None,
    reserved: dict[int, int] | None = None,
    blocked: dict[int, SettlementItem] | None = None,
    kill: bool = True,
) -> CancellationQuote:
    """Validate a cancellation and compute its money without writing anything. Raises
    CancellationError with every problem found, each under the argument it concerns.

    `reserved` (scheduled_quantities) and `blocked` (blocking_settlements) may be passed in by a
    caller that read them for many orders at once; they are read here otherwise. `kill`:
    False refuses an order in progress (a bulk job's filter without kill).

    What can't be cancelled is refused with a refusals.Refusal code under its field (`order`,
    `items.N.quantity`); invalid input with the code "invalid"."""
    now = now or timezone.now()
    errors: dict[str, Any] = {}
    refused = order_refusal(order, kill=kill)
    if refused:
        raise CancellationError({"order": refused.error()})
    errors.update(reason_errors(reason, description))
    if len(description or "") > 255:
        errors["description"] = _("Use at most 255 characters.")
    if reserved is None:
        reserved = scheduled_quantities(order, excluding=excluding)
    picked = _pick_items(order, items, reserved, blocked, errors)
    effective_at = _effective_time(
        picked, churn_time=churn_time, churn_time_policy=churn_time_policy, now=now, errors=errors
    )
    lines = list(lines)
    _line_errors(lines, order.currency, errors)
    if errors or not isinstance(reason, CancellationReason):  # reason_errors() said why
        raise CancellationError(errors, code="invalid")

    quoted = [
        QuotedItem(item, qty, prorated_credit_for(item, qty, effective_at) if prorated else ZERO)
        for item, qty in picked
    ]
    subtotal = sum(
        (
            (line.unit_price_amount * line.quantity) * (1 if line.type == LineType.DEBIT else -1)
            for line in lines
        ),
        ZERO,
    )
    # The totals are stored in MONEY fields; refuse sums that would not fit instead of failing
    # in the database (or, on SQLite, storing a row that can't be read back).
    money = Cancellation._meta.get_field("line_item_subtotal_amount")
    money_limit = Decimal(10) ** (money.max_digits - money.decimal_places)
    if abs(subtotal) >= money_limit:
        raise CancellationError({"lines": _("The lines add up to too much.")}, code="invalid")
    if sum((q.prorated_credit for q in quoted), ZERO) >= money_limit:
        raise CancellationError(
            {"prorated": _("The prorated credit is too large.")}, code="invalid"
        )
    return CancellationQuote(
        order=order,
        is_whole_order=items is None,
        effective_at=effective_at,
        items=quoted,
        lines=lines,
        prorated=prorated,
        currency=order.currency,
        reason=reason,
        prorated_credit=sum((q.prorated_credit for q in quoted), ZERO),
        line_item_subtotal=subtotal.quantize(CENT),
        is_scheduled=effective_at > now,
    )
