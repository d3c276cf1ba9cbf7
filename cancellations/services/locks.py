"""Locking an order and its items before a change. Every writer of an order's items holds the
order's lock first (lock_order), so two writers can't deadlock."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, TypeAlias, TypedDict, cast

from django.db.models import (
    Exists,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce

from ..models import (
    CancellationItem,
    Order,
    OrderItem,
    SettlementItem,
)
from ..states import (
    CancellationStatus,
)
from .quoting import blocking_settlements


class LockedItemAnnotations(TypedDict):
    """What _locked_items_queryset() adds to each order item."""

    scheduled_quantity: int
    has_present_settlements: bool
    has_blocking_settlements: bool


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    # An order item as lock_items() returns it.
    LockedItem: TypeAlias = WithAnnotations[OrderItem, LockedItemAnnotations]


def lock_order(order_or_pk: Order | int, *, with_items: bool = False) -> Order:
    pk = order_or_pk.pk if isinstance(order_or_pk, Order) else order_or_pk
    order = Order.objects.select_for_update().get(pk=pk)
    if with_items:
        lock_items(order)
    return order


def lock_items(order: Order) -> list[LockedItem]:
    """Lock the items of a locked order in one query and keep them as `order.items.all()`, so
    the quote, the quantities and the order's new status all work on these rows. Every writer
    of an order's items holds the order's lock first, so this can't deadlock with another.
    Nothing is read when they are locked already.

    Each item comes with its `scheduled_quantity` (what scheduled_quantities() says of it) and
    whether it has settlement items that are present (`has_present_settlements`) or blocking
    (`has_blocking_settlements`). Settlement items are only added or changed under the order's
    lock (cancellations.billing), so these hold until the commit."""
    lock_items_of([order])
    # The items were prefetched from _locked_items_queryset(): they carry its annotations.
    return cast("list[LockedItem]", order._locked_items)


def lock_items_of(orders: list[Order]) -> None:
    """lock_items() for many locked orders, in one query."""
    unlocked = [order for order in orders if not hasattr(order, "_locked_items")]
    if not unlocked:
        return
    locked = _locked_items_queryset().all()  # a copy: the shared one is never evaluated
    prefetch_related_objects(unlocked, Prefetch("items", queryset=locked))
    for order in unlocked:
        order._locked_items = list(order.items.all())


@functools.cache
def _locked_items_queryset() -> QuerySet[LockedItem]:
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


def blocked_items(order: Order) -> dict[int, SettlementItem]:
    """blocking_settlements() of an order whose items are locked: read only when one of the
    items has any."""
    if any(item.has_blocking_settlements for item in lock_items(order)):
        return blocking_settlements([order])
    return {}
