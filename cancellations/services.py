"""Every state change of orders and cancellations. Admin actions, staff forms, the API and
Celery tasks all call these functions; nothing else writes these models.

Each public function runs in one transaction, locks the order it changes, raises
CancellationError naming the offending argument (`reason`, `items.0.quantity`, …), writes the
audit trail and, from the delivery issue on, the outbox rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import (
    Exists,
    F,
    OuterRef,
    Prefetch,
    Subquery,
    Sum,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import Action as DeliveryAction
from providers.outbox import enqueue_deliveries
from reasons.models import CancellationReason

from . import audit as audit_log
from . import ownership
from .errors import CancellationError
from .external_ids import clean_external_ids
from .models import (
    CANCELLATION_ID_RE,
    ZERO,
    AuditEntry,
    CanceledBy,
    Cancellation,
    CancellationItem,
    CancellationLine,
    ChurnTimePolicy,
    LineType,
    Order,
    OrderItem,
    SettlementItem,
)
from .states import (
    CancellationStatus,
    OrderStatus,
    check_cancellation_transition,
    check_order_transition,
    check_requested_status,
)

CENT = Decimal("0.01")
Via = AuditEntry.Via


@dataclass(frozen=True)
class AuditInfo:
    """The caller's note for the audit trail (JOC's auditLog): why, how long, which ticket."""

    comment: str = ""
    time_spent: int | None = None
    ticket_link: str = ""


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
    prorated_credit: Decimal = ZERO
    line_item_subtotal: Decimal = ZERO
    is_scheduled: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def net_amount(self) -> Decimal:
        return self.line_item_subtotal - self.prorated_credit


# --- reading helpers ---------------------------------------------------------------------------


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
    if not item.has_service_period or effective_at >= item.period_end:
        return ZERO
    used_until = max(effective_at, item.period_start)
    unused = Decimal((item.period_end - used_until).total_seconds())
    whole = Decimal((item.period_end - item.period_start).total_seconds())
    credit = item.unit_price_amount * quantity * unused / whole
    return credit.quantize(CENT, rounding=ROUND_HALF_UP)


def reason_errors(reason, description: str) -> dict:
    if reason is None:
        return {"reason": _("Choose a reason.")}
    if not isinstance(reason, CancellationReason):
        return {"reason": _("Unknown reason.")}
    if not reason.is_active:
        return {"reason": _("The reason “%(reason)s” is no longer offered.") % {"reason": reason}}
    if reason.extra_information_needed and not (description or "").strip():
        return {"description": _("This reason needs a description.")}
    return {}


def _effective_time(picked, *, churn_time, churn_time_policy, now, errors) -> datetime:
    """Rebilly's rule: churnTimePolicy beats churnTime; no policy and no time means now."""
    if churn_time_policy == ChurnTimePolicy.NOW:
        return now
    if churn_time_policy == ChurnTimePolicy.AT_NEXT_RENEWAL:
        ends = [item.period_end for item, _qty in picked if item.has_service_period]
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


def open_to_cancel(items, reserved: dict[int, int]) -> list[tuple[OrderItem, int]]:
    """(item, quantity) still open and not promised to a scheduled cancellation."""
    open_items = [(item, item.open_quantity - reserved.get(item.pk, 0)) for item in items]
    return [(item, qty) for item, qty in open_items if qty > 0]


def nothing_left_message() -> str:
    return _("Nothing is left to cancel on this order.")


def canceled_by_errors(canceled_by: str) -> dict[str, str]:
    if canceled_by in CanceledBy.values:
        return {}
    return {"canceled_by": _("Use one of: %(values)s.") % {"values": ", ".join(CanceledBy.values)}}


def _settlement_blocked_message(item: OrderItem, settlement: SettlementItem) -> str:
    return _(
        "%(sku)s can't be cancelled: its settlement item %(settlement)s is already %(state)s."
    ) % {
        "sku": item.sku,
        "settlement": settlement.pk,
        "state": settlement.get_state_display().lower(),
    }


def blocking_settlements(orders) -> dict[int, SettlementItem]:
    """Per order item, a settled or exported settlement item: those can't be removed, so their
    item can't be cancelled."""
    blocked: dict[int, SettlementItem] = {}
    for settlement in SettlementItem.objects.blocking().filter(order_item__order__in=orders):
        blocked.setdefault(settlement.order_item_id, settlement)
    return blocked


def _pick_items(order, items, reserved, blocked, errors) -> list[tuple[OrderItem, int]]:
    order_items = {item.pk: item for item in order.items.all()}
    if blocked is None:
        blocked = blocking_settlements([order])
    if items is None:
        picked = open_to_cancel(order_items.values(), reserved)
        if not picked:
            errors["order"] = nothing_left_message()
        for item, _qty in picked:
            if item.pk in blocked:
                errors["order"] = _settlement_blocked_message(item, blocked[item.pk])
                break
        return picked

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
        available = item.open_quantity - reserved.get(item.pk, 0)
        if not isinstance(pick.quantity, int) or pick.quantity < 1:
            errors[f"items.{index}.quantity"] = _("Cancel at least one.")
        elif pick.quantity > available:
            errors[f"items.{index}.quantity"] = _(
                "Only %(available)s of %(sku)s can still be cancelled."
            ) % {"available": available, "sku": item.sku}
        elif item.pk in blocked:
            errors[f"items.{index}.quantity"] = _settlement_blocked_message(item, blocked[item.pk])
        else:
            picked.append((item, pick.quantity))
    return picked


def _line_errors(lines, currency, errors) -> None:
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        if line.type not in LineType.values:
            errors[f"{prefix}.type"] = _("Use “debit” (a fee) or “credit”.")
        if not isinstance(line.unit_price_amount, Decimal) or line.unit_price_amount < 0:
            errors[f"{prefix}.unit_price_amount"] = _(
                "Give a positive amount; the type sets the sign."
            )
        elif line.unit_price_amount.as_tuple().exponent < -2:
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
    lines: list[ExtraLine] = (),
    churn_time: datetime | None = None,
    churn_time_policy: str = "",
    prorated: bool = False,
    description: str = "",
    now: datetime | None = None,
    excluding: str | None = None,
    reserved: dict[int, int] | None = None,
    blocked: dict[int, SettlementItem] | None = None,
) -> CancellationQuote:
    """Validate a cancellation and compute its money without writing anything. Raises
    CancellationError with every problem found, each under the argument it concerns.

    `reserved` (scheduled_quantities) and `blocked` (blocking_settlements) may be passed in by a
    caller that read them for many orders at once; they are read here otherwise."""
    now = now or timezone.now()
    errors: dict[str, str] = {}
    if order.status not in OrderStatus.cancellable:
        raise CancellationError(
            {
                "order": _("Order %(number)s is %(status)s and can't be cancelled.")
                % {"number": order.number, "status": order.get_status_display().lower()}
            },
            code="not_cancellable",
        )
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
    if errors:
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
        prorated_credit=sum((q.prorated_credit for q in quoted), ZERO),
        line_item_subtotal=subtotal.quantize(CENT),
        is_scheduled=effective_at > now,
    )


# --- writing -----------------------------------------------------------------------------------


def _lock_order(order_or_pk, *, with_items: bool = False) -> Order:
    pk = getattr(order_or_pk, "pk", order_or_pk)
    order = Order.objects.select_for_update().get(pk=pk)
    if with_items:
        _lock_items(order)
    return order


def _lock_items(order: Order) -> list[OrderItem]:
    """Lock the items of a locked order in one query and keep them as `order.items.all()`, so
    the quote, the quantities and the order's new status all work on these rows. Every writer
    of an order's items holds the order's lock first, so this can't deadlock with another.
    Nothing is read when they are locked already.

    Each item comes with its `scheduled_quantity` (what scheduled_quantities() says of it) and
    whether it has settlement items that are present (`has_present_settlements`) or blocking
    (`has_blocking_settlements`). Settlement items are only added or changed under the order's
    lock (cancellations.billing), so these hold until the commit."""
    if not hasattr(order, "_locked_items"):
        locked = _locked_items_queryset().all()  # a copy: the shared one is never evaluated
        prefetch_related_objects([order], Prefetch("items", queryset=locked))
        order._locked_items = list(order.items.all())
    return order._locked_items


@functools.cache
def _locked_items_queryset():
    # Built once per process: building its three subqueries takes longer than running them.
    scheduled = (
        CancellationItem.objects.filter(
            order_item=OuterRef("pk"), cancellation__status=CancellationStatus.CONFIRMED
        )
        .order_by()
        .values("order_item")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    settlements = SettlementItem.objects.filter(order_item=OuterRef("pk"))
    return (
        OrderItem.objects.select_for_update(of=("self",))
        .annotate(
            scheduled_quantity=Coalesce(Subquery(scheduled), 0),
            has_present_settlements=Exists(settlements.present()),
            has_blocking_settlements=Exists(settlements.blocking()),
        )
        .order_by("id")
    )


def _blocked_items(order: Order) -> dict[int, SettlementItem]:
    """blocking_settlements() of an order whose items are locked: read only when one of the
    items has any."""
    if any(item.has_blocking_settlements for item in _lock_items(order)):
        return blocking_settlements([order])
    return {}


def _derived_order_status(items, fallback: str) -> str:
    quantity = sum(item.quantity for item in items)
    cancelled = sum(item.cancelled_quantity for item in items)
    if quantity and cancelled == quantity:
        return OrderStatus.CANCELLED
    if cancelled:
        return OrderStatus.PARTIALLY_CANCELLED
    return fallback


def _set_order_status(order, status, *, trail, actor, via, cancellation=None, audit=None) -> None:
    if status == order.status:
        return
    check_order_transition(order.status, status)
    before, order.status = order.status, status
    order.save(update_fields=["status", "updated_at"])
    trail.add(
        "order.status_changed",
        order=order,
        cancellation=cancellation,
        actor=actor,
        via=via,
        data={"from": before, "to": status},
        audit=audit,
    )


def _mark_completed(cancellation: Cancellation, now: datetime) -> None:
    check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
    cancellation.status = CancellationStatus.COMPLETED
    cancellation.completed_time = now


def _complete(cancellation: Cancellation, order: Order, *, trail, actor, via, now) -> None:
    """Make a saved, confirmed cancellation effective (its time has come)."""
    check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
    _take_effect(cancellation, order, trail=trail, actor=actor, via=via, now=now)
    _mark_completed(cancellation, now)
    cancellation.save(update_fields=["status", "completed_time", "updated_time"])


def _take_effect(
    cancellation: Cancellation,
    order: Order,
    *,
    trail,
    actor,
    via,
    now,
    audit=None,
    cancelled: list[tuple[int, int]] | None = None,
) -> None:
    """What an effective cancellation does: take the quantities off, remove the settlement
    items of the items it cancels completely, move the order on.

    `cancelled` (order item id, quantity per row) may come from a caller that has it from
    this transaction; it is read otherwise."""
    items = {item.pk: item for item in _lock_items(order)}
    if cancelled is None:
        cancelled = list(cancellation.items.values_list("order_item_id", "quantity"))
    # A settlement item may have been settled since the cancellation was scheduled.
    if any(items[item_id].has_blocking_settlements for item_id, _quantity in cancelled):
        blocked = blocking_settlements([order])
        item_id = min(item_id for item_id, _quantity in cancelled if item_id in blocked)
        raise CancellationError(
            {"items": _settlement_blocked_message(items[item_id], blocked[item_id])},
            code="conflict",
        )
    partly_cancelled, fully_cancelled = [], []
    for item_id, quantity in cancelled:
        item = items[item_id]
        if quantity > item.open_quantity:
            raise CancellationError(
                {
                    "items": _("%(sku)s no longer has %(quantity)s to cancel.")
                    % {"sku": item.sku, "quantity": quantity}
                },
                code="conflict",
            )
        item.cancelled_quantity += quantity
        if item.open_quantity == 0:
            fully_cancelled.append(item.pk)
        else:
            partly_cancelled.append(item)
    # The items are locked, so "all of it" is what was computed here for each fully cancelled
    # one; a plain UPDATE is cheaper to build than bulk_update's CASE.
    if fully_cancelled:
        OrderItem.objects.filter(pk__in=fully_cancelled).update(cancelled_quantity=F("quantity"))
    OrderItem.objects.bulk_update(partly_cancelled, ["cancelled_quantity"])
    # A service item that is gone takes its settlement items with it (logically: marked
    # removed by this cancellation, so a revoke can put them back).
    if any(items[item_id].has_present_settlements for item_id in fully_cancelled):
        SettlementItem.objects.present().filter(order_item__in=fully_cancelled).update(
            removed_at=now, removed_by_cancellation=cancellation
        )
    trail.add(
        "cancellation.completed",
        order=order,
        cancellation=cancellation,
        actor=actor,
        via=via,
        audit=audit,
    )
    _set_order_status(
        order,
        _derived_order_status(items.values(), order.status),
        trail=trail,
        actor=actor,
        via=via,
        cancellation=cancellation,
        audit=audit,
    )


def new_cancellation(
    order: Order,
    quote: CancellationQuote,
    *,
    reason,
    description: str,
    canceled_by: str,
    churn_time_policy: str,
    actor,
    external_user_id: str,
    audit,
    now: datetime,
    request_fingerprint: str = "",
    kill_running: bool = False,
    bulk_cancellation=None,
    canceled_time: datetime | None = None,
) -> Cancellation:
    """The (unsaved) confirmed cancellation for a quote; one constructor for the single and
    the bulk path. canceled_time: when it was asked for, if not now (see cancel_order)."""
    cancellation = Cancellation(
        order=order,
        reason=reason,
        description=description.strip(),
        canceled_by=canceled_by,
        status=CancellationStatus.CONFIRMED,
        canceled_time=now if canceled_time is None else min(canceled_time, now),
        churn_time_policy=churn_time_policy or "",
        order_status_before=order.status,
        created_by=actor if actor is not None and actor.pk else None,
        external_user_id=external_user_id,
        audit_comment=audit.comment,
        audit_time_spent=audit.time_spent,
        audit_ticket_link=audit.ticket_link,
        request_fingerprint=request_fingerprint,
        kill_running=kill_running,
        bulk_cancellation=bulk_cancellation,
    )
    _apply_quote(cancellation, quote)
    return cancellation


def _apply_quote(cancellation: Cancellation, quote: CancellationQuote) -> None:
    cancellation.is_whole_order = quote.is_whole_order
    cancellation.churn_time = quote.effective_at
    cancellation.prorated = quote.prorated
    cancellation.currency = quote.currency
    cancellation.prorated_credit_amount = quote.prorated_credit
    cancellation.line_item_subtotal_amount = quote.line_item_subtotal


def cancellation_item_rows(cancellation: Cancellation, quote: CancellationQuote):
    return [
        CancellationItem(
            cancellation=cancellation,
            order_item=q.order_item,
            quantity=q.quantity,
            prorated_credit_amount=q.prorated_credit,
        )
        for q in quote.items
    ]


def _write_plan(
    cancellation: Cancellation, quote: CancellationQuote
) -> tuple[list[CancellationItem], list[CancellationLine]]:
    _apply_quote(cancellation, quote)
    cancellation.save()
    items = CancellationItem.objects.bulk_create(cancellation_item_rows(cancellation, quote))
    lines = CancellationLine.objects.bulk_create(
        CancellationLine(
            cancellation=cancellation,
            type=line.type,
            description=line.description,
            unit_price_amount=line.unit_price_amount,
            unit_price_currency=line.unit_price_currency,
            quantity=line.quantity,
            period_start=line.period_start,
            period_end=line.period_end,
        )
        for line in quote.lines
    )
    return items, lines


def _keep_written(cancellation: Cancellation, items, lines, deliveries) -> None:
    """Keep the rows just written as the cancellation's prefetched items, lines and deliveries
    (what selectors.cancellation_list() reads), in the order that reads them."""
    cancellation._prefetched_objects_cache = {}
    for name, rows in (
        ("items", items),
        ("lines", lines),
        ("deliveries", sorted(deliveries, key=lambda row: (row.provider, row.action))),
    ):
        queryset = getattr(cancellation, name).all()
        queryset._result_cache = list(rows)
        queryset._prefetch_done = True
        cancellation._prefetched_objects_cache[name] = queryset


def plan_summary(cancellation: Cancellation, quote: CancellationQuote) -> dict:
    return {
        "reason": cancellation.reason_id,
        "wholeOrder": quote.is_whole_order,
        "items": [{"itemId": q.order_item.pk, "quantity": q.quantity} for q in quote.items],
        "lines": len(quote.lines),
        "effectiveAt": quote.effective_at.isoformat(),
        "proratedCredit": str(quote.prorated_credit),
        "lineItemSubtotal": str(quote.line_item_subtotal),
        "currency": quote.currency,
    }


def _check_cancellation_id(cancellation_id: str | None) -> None:
    if cancellation_id is None:
        return
    if not CANCELLATION_ID_RE.fullmatch(cancellation_id) or len(cancellation_id) > 50:
        raise CancellationError(
            {"id": _("Use at most 50 letters, digits and @ ~ - . _.")}, code="invalid"
        )
    if Cancellation.objects.filter(pk=cancellation_id).exists():
        raise CancellationError(
            {"id": _("A cancellation with this id exists already.")}, code="duplicate"
        )


MAX_MINUTES = 2**31 - 1
# How far ahead of our clock a caller's clock may be (a given canceled_time).
CLOCK_SKEW = timedelta(minutes=5)


def _check_request_fields(canceled_by: str, *, audit=None, external_user_id: str = "") -> None:
    """Who asked and the audit note: checked here, not only by each interface, so no caller
    can get a value past the service that the database would refuse."""
    errors = canceled_by_errors(canceled_by)
    texts = {"external_user_id": (external_user_id, 64)}
    if audit is not None:
        texts["audit.comment"] = (audit.comment, 255)
        texts["audit.ticket_link"] = (audit.ticket_link, 255)
        minutes = audit.time_spent
        if minutes is not None and (
            not isinstance(minutes, int)
            or isinstance(minutes, bool)
            or not 0 <= minutes <= MAX_MINUTES
        ):
            errors["audit.time_spent"] = _("Give whole minutes, 0 or more.")
    for name, (text, limit) in texts.items():
        if len(text or "") > limit:
            errors[name] = _("Use at most %(limit)s characters.") % {"limit": limit}
        elif "\x00" in (text or ""):
            errors[name] = _("Must not contain NUL characters.")
    if errors:
        raise CancellationError(errors, code="invalid")


def cancel_order(
    order: Order,
    *,
    reason: CancellationReason | None,
    actor,
    via: str,
    items: list[ItemPick] | None = None,
    lines: list[ExtraLine] = (),
    churn_time: datetime | None = None,
    churn_time_policy: str = "",
    prorated: bool = False,
    description: str = "",
    canceled_by: str = CanceledBy.MERCHANT,
    external_user_id: str = "",
    audit: AuditInfo = AuditInfo(),
    cancellation_id: str | None = None,
    request_fingerprint: str = "",
    kill_running: bool = False,
    bulk_cancellation=None,
    canceled_time: datetime | None = None,
    draft: bool = False,
) -> Cancellation:
    """Cancel the whole order (items=None) or some quantities of its items, now or later.

    canceled_time: when the cancellation was entered, if that was before now (e.g. Callisto's
    CancelTimestamp); a few minutes ahead of our clock count as now, later is refused.

    Effective at once when the effective time has come (status completed), otherwise scheduled
    (status confirmed) for complete_due_cancellations to apply. A draft (Rebilly's "so that the
    cancellation and charge can be previewed") only stores the plan, quoted as of now: no item,
    order or provider hears of it until update_cancellation confirms it.

    The returned cancellation carries its items, lines and deliveries as written (prefetched),
    so a caller can show it without reading it back."""
    _check_request_fields(canceled_by, audit=audit, external_user_id=external_user_id)
    if canceled_time is not None and canceled_time > timezone.now() + CLOCK_SKEW:
        raise CancellationError(
            {"canceled_time": _("When it was entered can't be in the future.")}, code="invalid"
        )
    try:
        with transaction.atomic():
            order = _lock_order(order, with_items=True)
            _check_cancellation_id(cancellation_id)
            now = timezone.now()
            quote = quote_cancellation(
                order,
                reason=reason,
                items=items,
                lines=lines,
                churn_time=churn_time,
                churn_time_policy=churn_time_policy,
                prorated=prorated,
                description=description,
                now=now,
                reserved={
                    item.pk: item.scheduled_quantity
                    for item in order.items.all()
                    if item.scheduled_quantity
                },
                blocked=_blocked_items(order),
            )
            cancellation = new_cancellation(
                order,
                quote,
                reason=reason,
                description=description,
                canceled_by=canceled_by,
                churn_time_policy=churn_time_policy,
                actor=actor,
                external_user_id=external_user_id,
                audit=audit,
                now=now,
                request_fingerprint=request_fingerprint,
                kill_running=kill_running,
                bulk_cancellation=bulk_cancellation,
                canceled_time=canceled_time,
            )
            if cancellation_id:
                cancellation.id = cancellation_id
            effective_now = not quote.is_scheduled and not draft
            if draft:
                cancellation.status = CancellationStatus.DRAFT
            elif effective_now:
                # Effective at once: written as completed in the first place.
                _mark_completed(cancellation, now)
            written = _write_plan(cancellation, quote)
            trail = audit_log.Trail()
            trail.add(
                "cancellation.created",
                order=order,
                cancellation=cancellation,
                actor=actor,
                via=via,
                data={**plan_summary(cancellation, quote), **({"draft": True} if draft else {})},
                audit=audit,
            )
            if effective_now:
                _take_effect(
                    cancellation,
                    order,
                    trail=trail,
                    actor=actor,
                    via=via,
                    now=now,
                    audit=audit,
                    cancelled=[(q.order_item.pk, q.quantity) for q in quote.items],
                )
            trail.write()
            deliveries = [] if draft else enqueue_deliveries(cancellation, DeliveryAction.ADD)
            _keep_written(cancellation, *written, deliveries)
    except IntegrityError as exc:
        # Two requests racing for one client-chosen id: the loser gets the same answer as if
        # it had come second.
        raise CancellationError(
            {"id": _("A cancellation with this id exists already.")}, code="duplicate"
        ) from exc
    return cancellation


def _plan_signature(*, reason_id, items, lines, churn_time, churn_time_policy, prorated) -> dict:
    return {
        "reason": reason_id,
        "items": None if items is None else sorted((p.order_item_id, p.quantity) for p in items),
        "lines": [
            (
                line.type,
                str(line.unit_price_amount),
                line.unit_price_currency,
                line.quantity,
                line.description,
            )
            for line in lines
        ],
        "churn_time": churn_time.isoformat() if churn_time and not churn_time_policy else None,
        "churn_time_policy": churn_time_policy or "",
        "prorated": bool(prorated),
    }


def _stored_signature(cancellation: Cancellation) -> dict:
    items = None
    if not cancellation.is_whole_order:
        items = [ItemPick(row.order_item_id, row.quantity) for row in cancellation.items.all()]
    lines = [
        ExtraLine(
            line.type,
            line.unit_price_amount,
            line.unit_price_currency,
            line.quantity,
            line.description,
        )
        for line in cancellation.lines.all()
    ]
    return _plan_signature(
        reason_id=cancellation.reason_id,
        items=items,
        lines=lines,
        churn_time=cancellation.churn_time,
        churn_time_policy=cancellation.churn_time_policy,
        prorated=cancellation.prorated,
    )


def update_cancellation(
    cancellation: Cancellation,
    *,
    order: Order,
    reason: CancellationReason | None,
    actor,
    via: str,
    items: list[ItemPick] | None = None,
    lines: list[ExtraLine] = (),
    churn_time: datetime | None = None,
    churn_time_policy: str = "",
    prorated: bool = False,
    description: str = "",
    canceled_by: str = CanceledBy.MERCHANT,
    external_user_id: str = "",
    audit: AuditInfo = AuditInfo(),
    request_fingerprint: str = "",
    draft: bool = False,
) -> tuple[Cancellation, bool]:
    """The update half of an upsert. Returns (cancellation, changed).

    A scheduled cancellation may be re-planned entirely. Once effective, only the description,
    who asked and the audit note may change: anything else needs a revoke and a new
    cancellation, so that what the providers were told stays true.

    A draft stays a draft (re-planned, nothing else changes) with draft=True; without, it is
    confirmed: quoted again as of now and from then on like any new cancellation (effective
    at once or scheduled, providers told). Nothing else can become a draft again."""
    ownership.check_may_act_on(actor, cancellation)
    _check_request_fields(canceled_by, audit=audit, external_user_id=external_user_id)
    with transaction.atomic():
        locked_order = _lock_order(cancellation.order_id)
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        if request_fingerprint and request_fingerprint == cancellation.request_fingerprint:
            return cancellation, False
        if order.pk != cancellation.order_id:
            raise CancellationError(
                {"order": _("A cancellation can't move to another order.")}, code="invalid"
            )
        if cancellation.status == CancellationStatus.REVOKED:
            raise CancellationError(
                {"status": _("A revoked cancellation can't be changed.")}, code="invalid"
            )
        was_draft = cancellation.status == CancellationStatus.DRAFT
        if draft and not was_draft:
            check_cancellation_transition(cancellation.status, CancellationStatus.DRAFT)
        confirming = was_draft and not draft
        errors = reason_errors(reason, description)
        if errors:
            raise CancellationError(errors, code="invalid")

        before = _stored_signature(cancellation)
        wanted = _plan_signature(
            reason_id=reason.pk,
            items=items,
            lines=lines,
            churn_time=churn_time,
            churn_time_policy=churn_time_policy,
            prorated=prorated,
        )
        if cancellation.status == CancellationStatus.COMPLETED:
            # Once effective, "no time given" means "leave the time as it was".
            if churn_time is None:
                wanted["churn_time"] = before["churn_time"]
            if not churn_time_policy:
                wanted["churn_time_policy"] = before["churn_time_policy"]
        plan_changed = before != wanted
        if plan_changed and cancellation.status == CancellationStatus.COMPLETED:
            changed = sorted(k for k in wanted if wanted[k] != before[k])
            raise CancellationError(
                {
                    name: _("Can't change once effective; revoke it and cancel again.")
                    for name in changed
                },
                code="invalid",
            )
        now = timezone.now()
        # A draft being confirmed is quoted again: its quote was as of when it was stored.
        replan = plan_changed or confirming
        if replan:
            _lock_items(locked_order)
            quote = quote_cancellation(
                locked_order,
                reason=reason,
                items=items,
                lines=lines,
                churn_time=churn_time,
                churn_time_policy=churn_time_policy,
                prorated=prorated,
                description=description,
                now=now,
                excluding=cancellation.pk,
                blocked=_blocked_items(locked_order),
            )
            cancellation.items.all().delete()
            cancellation.lines.all().delete()
        cancellation.reason = reason
        cancellation.description = description.strip()
        cancellation.canceled_by = canceled_by
        cancellation.churn_time_policy = churn_time_policy or ""
        cancellation.external_user_id = external_user_id
        cancellation.audit_comment = audit.comment
        cancellation.audit_time_spent = audit.time_spent
        cancellation.audit_ticket_link = audit.ticket_link
        cancellation.request_fingerprint = request_fingerprint
        if confirming:
            check_cancellation_transition(cancellation.status, CancellationStatus.CONFIRMED)
            cancellation.status = CancellationStatus.CONFIRMED
            cancellation.canceled_time = now
            cancellation.order_status_before = locked_order.status
        effective_now = replan and not draft and not quote.is_scheduled
        if effective_now:
            _mark_completed(cancellation, now)
        if replan:
            _write_plan(cancellation, quote)
        else:
            cancellation.save()
        trail = audit_log.Trail()
        trail.add(
            "cancellation.confirmed" if confirming else "cancellation.updated",
            order=locked_order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={"replanned": plan_changed},
            audit=audit,
        )
        if effective_now:
            _take_effect(
                cancellation,
                locked_order,
                trail=trail,
                actor=actor,
                via=via,
                now=now,
                audit=audit,
                cancelled=[(q.order_item.pk, q.quantity) for q in quote.items],
            )
        trail.write()
        # Any accepted change may alter what providers were told (plan, description, who):
        # providers that take updates hear it again. A draft is told to no one.
        if not draft:
            enqueue_deliveries(cancellation, DeliveryAction.ADD)
    return cancellation, True


def revoke_cancellation(
    cancellation: Cancellation, *, actor, via: str, comment: str = ""
) -> Cancellation:
    """Undo a cancellation: give the items back and restore the order's status."""
    ownership.check_may_act_on(actor, cancellation)
    if len(comment or "") > 255:
        raise CancellationError({"comment": _("Use at most 255 characters.")}, code="invalid")
    with transaction.atomic():
        order = _lock_order(cancellation.order_id)
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        if cancellation.status not in CancellationStatus.active:
            raise CancellationError(
                {
                    "status": _("This cancellation is %(status)s and can't be undone.")
                    % {"status": cancellation.get_status_display().lower()}
                },
                code="not_revocable",
            )
        check_cancellation_transition(cancellation.status, CancellationStatus.REVOKED)
        was_effective = cancellation.status == CancellationStatus.COMPLETED
        if was_effective:
            items = {item.pk: item for item in _lock_items(order)}
            changed = []
            for item_id, quantity in cancellation.items.values_list("order_item_id", "quantity"):
                items[item_id].cancelled_quantity -= quantity
                changed.append(items[item_id])
            OrderItem.objects.bulk_update(changed, ["cancelled_quantity"])
            cancellation.removed_settlement_items.update(
                removed_at=None, removed_by_cancellation=None
            )
        cancellation.status = CancellationStatus.REVOKED
        cancellation.revoked_time = timezone.now()
        cancellation.revoked_by = actor if actor is not None and actor.pk else None
        cancellation.revoke_comment = comment
        cancellation.save()
        trail = audit_log.Trail()
        trail.add(
            "cancellation.revoked",
            order=order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={"wasEffective": was_effective},
            comment=comment,
        )
        if was_effective:
            restored = cancellation.order_status_before
            if restored in (OrderStatus.CANCELLED, OrderStatus.PARTIALLY_CANCELLED):
                restored = OrderStatus.OPEN
            _set_order_status(
                order,
                _derived_order_status(items.values(), restored),
                trail=trail,
                actor=actor,
                via=via,
                cancellation=cancellation,
            )
        trail.write()
        enqueue_deliveries(cancellation, DeliveryAction.REVOKE)
    return cancellation


def upsert_cancellation(
    existing: Cancellation | None,
    *,
    cancellation_id: str,
    order: Order,
    status: str,
    actor,
    via: str,
    **plan,
) -> tuple[Cancellation, bool]:
    """Rebilly's PUT /order-cancellations/{id} with the `status` the client asked for; returns
    (cancellation, created). `plan` is cancel_order's and update_cancellation's plan arguments
    (reason, items, lines, churn_time…, audit).

    draft: store (or re-plan) a plan that changes nothing; confirmed: take effect (a draft is
    confirmed); revoked: revoke_cancellation, the plan is not applied; completed: only a
    cancellation that is completed already (states.check_requested_status)."""
    if existing is not None:
        ownership.check_may_act_on(actor, existing)  # before "nothing to do": not theirs at all
    check_requested_status(existing.status if existing else None, status)
    if status == CancellationStatus.REVOKED:
        if order.pk != existing.order_id:
            raise CancellationError(
                {"order": _("A cancellation can't move to another order.")}, code="invalid"
            )
        if existing.status == CancellationStatus.REVOKED:
            return existing, False  # the same request again
        audit = plan.get("audit") or AuditInfo()
        return revoke_cancellation(existing, actor=actor, via=via, comment=audit.comment), False
    draft = status == CancellationStatus.DRAFT
    if existing is None:
        created = cancel_order(
            order, cancellation_id=cancellation_id, draft=draft, actor=actor, via=via, **plan
        )
        return created, True
    updated, _changed = update_cancellation(
        existing, order=order, draft=draft, actor=actor, via=via, **plan
    )
    return updated, False


def complete_due_cancellations(*, now: datetime | None = None, limit: int = 500) -> int:
    """Make scheduled cancellations whose time has come effective; returns how many.

    One short transaction per cancellation, so one that can't be applied doesn't hold up
    the rest (it stays confirmed and is logged in the audit trail)."""
    now = now or timezone.now()
    due = list(
        Cancellation.objects.filter(status=CancellationStatus.CONFIRMED, churn_time__lte=now)
        .order_by("churn_time")
        .values_list("pk", flat=True)[:limit]
    )
    completed = 0
    for pk in due:
        try:
            with transaction.atomic():
                cancellation = Cancellation.objects.select_related("order").get(pk=pk)
                order = _lock_order(cancellation.order_id)
                cancellation = Cancellation.objects.select_for_update().get(pk=pk)
                if cancellation.status != CancellationStatus.CONFIRMED:
                    continue
                trail = audit_log.Trail()
                _complete(cancellation, order, trail=trail, actor=None, via=Via.TASK, now=now)
                trail.write()
                completed += 1
        except CancellationError as exc:
            with transaction.atomic():
                audit_log.record(
                    "cancellation.completion_failed",
                    order=cancellation.order,
                    cancellation=cancellation,
                    actor=None,
                    via=Via.TASK,
                    data={"error": exc.messages},
                )
    return completed


# --- orders ------------------------------------------------------------------------------------


def _cleaned_external_ids(external_ids, errors: dict) -> dict:
    """The validated provider references; problems go into `errors` under their key."""
    try:
        return clean_external_ids(external_ids)
    except ValidationError as exc:
        errors.update({key: messages[0] for key, messages in exc.message_dict.items()})
        return {}


def _check_billing_item_ids(items, errors: dict) -> None:
    """A billing item id names one service item in the engine: once per order, and not one
    another order's item has already."""
    given = [(index, item.billing_item_id) for index, item in enumerate(items)]
    given = [(index, ref) for index, ref in given if ref]
    taken = set(
        OrderItem.objects.filter(billing_item_id__in=[ref for _i, ref in given]).values_list(
            "billing_item_id", flat=True
        )
    )
    seen = set()
    for index, ref in given:
        if ref in taken or ref in seen:
            errors[f"items.{index}.billing_item_id"] = _(
                "Another order item has this billing item id already."
            )
        seen.add(ref)


@dataclass(frozen=True)
class NewOrderItem:
    sku: str
    quantity: int
    unit_price_amount: Decimal
    description: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    billing_item_id: str = ""  # the billing engine's itemId for it, if it is billed there


def create_order(
    *,
    number: str,
    customer_name: str,
    channel: str,
    currency: str,
    items: list[NewOrderItem],
    actor,
    via: str,
    customer_email: str = "",
    placed_at: datetime | None = None,
    status: str = OrderStatus.OPEN,
    parent: Order | None = None,
    external_ids: dict | None = None,
) -> Order:
    """Take in an order from another system. A number seen before is refused."""
    errors = {}
    if status not in {
        OrderStatus.OPEN,
        OrderStatus.IN_PROGRESS,
        OrderStatus.ON_HOLD,
        OrderStatus.COMPLETED,
    }:
        errors["status"] = _("New orders are open, in progress, on hold or completed.")
    if not items:
        errors["items"] = _("An order needs at least one item.")
    for index, item in enumerate(items):
        if item.period_start and item.period_end and item.period_end <= item.period_start:
            errors[f"items.{index}.period_end"] = _("The period must end after it starts.")
    _check_billing_item_ids(items, errors)
    external_ids = _cleaned_external_ids(external_ids, errors)
    if errors:
        raise CancellationError(errors, code="invalid")
    try:
        with transaction.atomic():
            if Order.objects.filter(number=number).exists():
                raise IntegrityError
            order = Order.objects.create(
                number=number,
                customer_name=customer_name,
                customer_email=customer_email,
                channel=channel,
                currency=currency,
                placed_at=placed_at or timezone.now(),
                status=status,
                parent=parent,
                external_ids=external_ids,
            )
            OrderItem.objects.bulk_create(
                OrderItem(
                    order=order,
                    sku=item.sku,
                    description=item.description,
                    quantity=item.quantity,
                    unit_price_amount=item.unit_price_amount,
                    unit_price_currency=currency,
                    period_start=item.period_start,
                    period_end=item.period_end,
                    billing_item_id=item.billing_item_id,
                )
                for item in items
            )
            audit_log.record(
                "order.created",
                order=order,
                actor=actor,
                via=via,
                data={"number": number, "items": len(items)},
            )
    except IntegrityError as exc:
        _check_billing_item_ids(items, errors)  # a concurrent order took one of them
        raise CancellationError(
            errors
            or {
                "number": _("An order with number %(number)s exists already.") % {"number": number}
            },
            code="duplicate",
        ) from exc
    return order


def update_order_details(
    order: Order,
    *,
    actor,
    via: str,
    customer_name: str,
    customer_email: str = "",
    external_ids: dict | None = None,
) -> Order:
    """Correct an order's customer details or provider references (the admin's order form).
    Status, items and money only change through cancellations."""
    errors = {}
    customer_name = (customer_name or "").strip()
    if not customer_name:
        errors["customer_name"] = _("Enter the customer's name.")
    external_ids = _cleaned_external_ids(external_ids, errors)
    if errors:
        raise CancellationError(errors, code="invalid")
    wanted = {
        "customer_name": customer_name,
        "customer_email": (customer_email or "").strip(),
        "external_ids": external_ids,
    }
    with transaction.atomic():
        order = _lock_order(order)
        changed = sorted(name for name, value in wanted.items() if getattr(order, name) != value)
        if changed:
            for name in changed:
                setattr(order, name, wanted[name])
            order.save(update_fields=[*changed, "updated_at"])
            audit_log.record(
                "order.updated", order=order, actor=actor, via=via, data={"changed": changed}
            )
    return order


def request_fingerprint(payload) -> str:
    """A stable hash of a request body, for telling a repeated PUT from a changed one."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
