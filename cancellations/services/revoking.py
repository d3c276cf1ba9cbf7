"""Revoking cancellations: the items come back, the orders' statuses are restored and the
providers are told (a REVOKE outbox row per ADD). revoke_cancellation is a batch of one of
revoke_locked, which revokes any number in a fixed number of statements."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.bulk_update import update_rows
from providers.outbox import enqueue_revokes

from .. import ownership
from ..audit import AuditInfo
from ..errors import CancellationError
from ..models import (
    AuditEntry,
    Cancellation,
    CancellationItem,
    OrderItem,
    SettlementItem,
)
from ..states import (
    CancellationStatus,
    OrderStatus,
    check_cancellation_transition,
    check_order_transition,
)
from .effect import Acting, derived_order_status, write_order_statuses
from .locks import lock_items_of, lock_order

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from ..models import Order


def revoke_cancellation(
    cancellation: Cancellation, *, actor: User | None, via: str, comment: str = ""
) -> Cancellation:
    """Undo a cancellation: give the items back and restore the order's status."""
    ownership.check_may_act_on(actor, cancellation)
    if len(comment or "") > 255:
        raise CancellationError({"comment": _("Use at most 255 characters.")}, code="invalid")
    with transaction.atomic():
        order = lock_order(cancellation.order_id)
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        cancellation.order = order
        revoke_locked(
            [cancellation],
            acting=Acting(actor, via, AuditInfo(comment=comment or "")),
            now=timezone.now(),
        )
    return cancellation


def revoke_locked(cancellations: list[Cancellation], *, acting: Acting, now: datetime) -> None:
    """Revoke these cancellations, locked and with their orders locked (cancellation.order),
    in the caller's transaction; the first that can't be undone is the caller's error.
    acting.audit.comment is the revoke's comment."""
    for cancellation in cancellations:
        _check_revocable(cancellation)
    effective = [c for c in cancellations if c.status == CancellationStatus.COMPLETED]
    taken = _taken_items(effective)
    entries: list[dict] = []
    moved: dict[int, Order] = {}
    for cancellation in cancellations:
        was_effective = cancellation.status == CancellationStatus.COMPLETED
        _mark_revoked(cancellation, acting, now)
        data = {"wasEffective": was_effective}
        entries.append(
            acting.entry("cancellation.revoked", cancellation.order_id, cancellation.pk, data)
        )
        if was_effective:
            order = _give_back(cancellation, taken[cancellation.pk], acting, entries, now)
            if order is not None:
                moved[order.pk] = order
    update_rows(
        OrderItem,
        list({item.pk: item for rows in taken.values() for item, _q in rows}.values()),
        ["cancelled_quantity"],
    )
    SettlementItem.objects.filter(removed_by_cancellation__in=effective).update(
        removed_at=None, removed_by_cancellation=None
    )
    comment = acting.audit.comment if acting.audit else ""
    Cancellation.objects.filter(pk__in=[c.pk for c in cancellations]).update(
        status=CancellationStatus.REVOKED,
        revoked_time=now,
        revoked_by=_revoker(acting),
        revoke_comment=comment,
        updated_time=now,
    )
    write_order_statuses(moved.values(), now)
    AuditEntry.objects.bulk_create(AuditEntry(**row) for row in entries)
    enqueue_revokes(cancellations)


def _check_revocable(cancellation: Cancellation) -> None:
    if cancellation.status not in CancellationStatus.active:
        raise CancellationError(
            {
                "status": _("This cancellation is %(status)s and can't be undone.")
                % {"status": cancellation.get_status_display().lower()}
            },
            code="not_revocable",
        )
    check_cancellation_transition(cancellation.status, CancellationStatus.REVOKED)


def _taken_items(effective: list[Cancellation]) -> dict[str, list[tuple[OrderItem, int]]]:
    """What each effective cancellation took off which of its order's (locked) items."""
    taken: dict[str, list[tuple[OrderItem, int]]] = defaultdict(list)
    if not effective:
        return taken
    orders = list({c.order_id: c.order for c in effective}.values())
    lock_items_of(orders)
    items = {item.pk: item for order in orders for item in order.items.all()}
    rows = CancellationItem.objects.filter(cancellation__in=effective).values_list(
        "cancellation_id", "order_item_id", "quantity"
    )
    for cancellation_id, item_id, quantity in rows:
        taken[cancellation_id].append((items[item_id], quantity))
    return taken


def _mark_revoked(cancellation: Cancellation, acting: Acting, now: datetime) -> None:
    cancellation.status = CancellationStatus.REVOKED
    cancellation.revoked_time = now
    cancellation.revoked_by = _revoker(acting)
    cancellation.revoke_comment = acting.audit.comment if acting.audit else ""
    cancellation.updated_time = now


def _revoker(acting: Acting) -> User | None:
    actor = acting.actor
    return actor if actor is not None and actor.pk else None


def _give_back(
    cancellation: Cancellation,
    taken: list[tuple[OrderItem, int]],
    acting: Acting,
    entries: list[dict],
    now: datetime,
) -> Order | None:
    """Give the items back (in memory) and restore the order's status; returns the order if
    its status changed (its audit entry added to `entries`)."""
    for item, quantity in taken:
        item.cancelled_quantity -= quantity
    order = cancellation.order
    restored = cancellation.order_status_before
    if restored in (OrderStatus.CANCELLED, OrderStatus.PARTIALLY_CANCELLED):
        restored = OrderStatus.OPEN
    status = derived_order_status(order.items.all(), restored)
    if status == order.status:
        return None
    check_order_transition(order.status, status)
    data = {"from": order.status, "to": status}
    entries.append(acting.entry("order.status_changed", order.pk, cancellation.pk, data))
    order.status, order.updated_at = status, now
    return order
