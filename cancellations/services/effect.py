"""Taking effect: what a cancellation does to its order once its effective time has come (now,
or later for a scheduled one through complete_due_cancellations), and the order's status."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import (
    F,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import audit as audit_log
from ..errors import CancellationError
from ..models import (
    AuditEntry,
    Cancellation,
    Order,
    OrderItem,
    SettlementItem,
)
from ..states import (
    CancellationStatus,
    OrderStatus,
    check_cancellation_transition,
    check_order_transition,
)
from .locks import lock_items, lock_order
from .quoting import blocking_settlements, settlement_blocked_message

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Via = AuditEntry.Via


def derived_order_status(items: Iterable[OrderItem], fallback: str) -> str:
    quantity = sum(item.quantity for item in items)
    cancelled = sum(item.cancelled_quantity for item in items)
    if quantity and cancelled == quantity:
        return OrderStatus.CANCELLED
    if cancelled:
        return OrderStatus.PARTIALLY_CANCELLED
    return fallback


def set_order_status(
    order: Order,
    status: str,
    *,
    trail: audit_log.Trail,
    actor: User | None,
    via: str,
    cancellation: Cancellation | None = None,
    audit: audit_log.AuditInfo | None = None,
) -> None:
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


def mark_completed(cancellation: Cancellation, now: datetime) -> None:
    check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
    cancellation.status = CancellationStatus.COMPLETED
    cancellation.completed_time = now


def _complete(
    cancellation: Cancellation,
    order: Order,
    *,
    trail: audit_log.Trail,
    actor: User | None,
    via: str,
    now: datetime,
) -> None:
    """Make a saved, confirmed cancellation effective (its time has come)."""
    check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
    take_effect(cancellation, order, trail=trail, actor=actor, via=via, now=now)
    mark_completed(cancellation, now)
    cancellation.save(update_fields=["status", "completed_time", "updated_time"])


def take_effect(
    cancellation: Cancellation,
    order: Order,
    *,
    trail: audit_log.Trail,
    actor: User | None,
    via: str,
    now: datetime,
    audit: audit_log.AuditInfo | None = None,
    cancelled: list[tuple[int, int]] | None = None,
) -> None:
    """What an effective cancellation does: take the quantities off, remove the settlement
    items of the items it cancels completely, move the order on.

    `cancelled` (order item id, quantity per row) may come from a caller that has it from
    this transaction; it is read otherwise."""
    items = {item.pk: item for item in lock_items(order)}
    if cancelled is None:
        cancelled = list(cancellation.items.values_list("order_item_id", "quantity"))
    # A settlement item may have been settled since the cancellation was scheduled.
    if any(items[item_id].has_blocking_settlements for item_id, _quantity in cancelled):
        blocked = blocking_settlements([order])
        item_id = min(item_id for item_id, _quantity in cancelled if item_id in blocked)
        raise CancellationError(
            {"items": settlement_blocked_message(items[item_id], blocked[item_id])},
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
    set_order_status(
        order,
        derived_order_status(items.values(), order.status),
        trail=trail,
        actor=actor,
        via=via,
        cancellation=cancellation,
        audit=audit,
    )


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
                order = lock_order(cancellation.order_id)
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
