"""Taking effect: what cancellations do to their orders once their effective time has come (now,
or later for scheduled ones through complete_due_cancellations), and the orders' statuses.

One function, take_effect, does it for any number of cancellations in a fixed number of
statements: the single cancellation (a batch of one), the bulk job's batches and the scheduled
completions all go through it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import F, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.bulk_insert import insert_values
from backoffice.bulk_update import update_rows

from .. import audit as audit_log
from ..errors import CancellationError
from ..models import (
    AuditEntry,
    Cancellation,
    CancellationItem,
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
from .locks import lock_items_of
from .quoting import CancellationQuote, blocking_settlements, settlement_blocked_message

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Via = AuditEntry.Via


@dataclass(frozen=True)
class Acting:
    """Who makes a change and how, as every audit entry of it says."""

    actor: User | None
    via: str
    audit: audit_log.AuditInfo | None = None

    def entry(
        self, action: str, order_id: int, cancellation_id: str | None, data: Any = None
    ) -> dict:
        """audit.entry_values() of one entry, the parts every entry of this change shares
        made once (a bulk job makes three entries per order)."""
        return {
            **self._shared,
            "action": action,
            "order_id": order_id,
            "cancellation_id": cancellation_id,
            "data": audit_log.mask_secrets(data or {}),
            "created_at": timezone.now(),  # each its own time, as entry_values gives it
        }

    @cached_property
    def _shared(self) -> dict:
        return audit_log.entry_values(
            "", order_id=0, cancellation_id=None, actor=self.actor, via=self.via, audit=self.audit
        )


@dataclass
class Taking:
    """One cancellation taking effect on its locked order: what it takes off which of the
    order's items (the order's own item objects, as order.items.all() gives them)."""

    cancellation: Cancellation
    order: Order
    rows: list[tuple[OrderItem, int]]

    @classmethod
    def of_quote(cls, cancellation: Cancellation, order: Order, quote: CancellationQuote) -> Taking:
        """A cancellation taking effect as it was quoted just now, under the same lock."""
        return cls(cancellation, order, [(q.order_item, q.quantity) for q in quote.items])


def derived_order_status(items: Iterable[OrderItem], fallback: str) -> str:
    quantity = sum(item.quantity for item in items)
    cancelled = sum(item.cancelled_quantity for item in items)
    if quantity and cancelled == quantity:
        return OrderStatus.CANCELLED
    if cancelled:
        return OrderStatus.PARTIALLY_CANCELLED
    return fallback


def mark_completed(cancellation: Cancellation, now: datetime) -> None:
    check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
    cancellation.status = CancellationStatus.COMPLETED
    cancellation.completed_time = now


@dataclass
class _Changes:
    """What the takings change, gathered in memory and then written in bulk."""

    fully: dict[int, str] = field(default_factory=dict)  # item → its cancellation
    partly: dict[int, OrderItem] = field(default_factory=dict)
    settlements: dict[int, str] = field(default_factory=dict)  # item → its cancellation
    orders: dict[int, Order] = field(default_factory=dict)

    def take(self, taking: Taking, acting: Acting, now: datetime) -> list[dict]:
        cancellation_id = taking.cancellation.pk
        for item, quantity in taking.rows:
            item.cancelled_quantity += quantity
            if item.open_quantity == 0:
                self.fully[item.pk] = cancellation_id
                self.partly.pop(item.pk, None)
                # Unknown (not annotated by locks.lock_items) counts as "may have some".
                if getattr(item, "has_present_settlements", True):
                    self.settlements[item.pk] = cancellation_id
            else:
                self.partly[item.pk] = item
        order = taking.order
        entries = [acting.entry("cancellation.completed", order.pk, cancellation_id)]
        status = derived_order_status(order.items.all(), order.status)
        if status != order.status:
            check_order_transition(order.status, status)
            data = {"from": order.status, "to": status}
            entries.append(acting.entry("order.status_changed", order.pk, cancellation_id, data))
            order.status, order.updated_at = status, now
            self.orders[order.pk] = order
        return entries

    def write(self, now: datetime) -> None:
        # The items are locked, so "all of it" is what was computed here for each fully
        # cancelled one; a plain UPDATE is cheaper to build than one with each row's value.
        if self.fully:
            OrderItem.objects.filter(pk__in=ids_in(self.fully)).update(
                cancelled_quantity=F("quantity")
            )
        update_rows(OrderItem, list(self.partly.values()), ["cancelled_quantity"])
        _remove_settlements(self.settlements, now)
        write_order_statuses(self.orders.values(), now)


def write_order_statuses(orders: Iterable[Order], now: datetime) -> None:
    """The orders' statuses as they are in memory: one UPDATE per status."""
    by_status: dict[str, list[int]] = defaultdict(list)
    for order in orders:
        by_status[order.status].append(order.pk)
    for status, pks in by_status.items():
        Order.objects.filter(pk__in=ids_in(pks)).update(status=status, updated_at=now)


def take_effect(
    takings: list[Taking], *, acting: Acting, now: datetime
) -> tuple[list[dict], list[tuple[Taking, CancellationError]]]:
    """What effective cancellations do: take the quantities off, remove the settlement items
    of the items they cancel completely, move the orders on. Each is checked in turn against
    what the ones before it left (a settlement item may have been settled, or the quantity
    taken, since it was scheduled); the good ones are then written together, in a fixed
    number of statements. Returns the audit entries to write (cancellation.completed,
    order.status_changed) and the takings refused, each with why."""
    changes, entries = _Changes(), []
    refused: list[tuple[Taking, CancellationError]] = []
    for taking in takings:
        try:
            _check(taking)
        except CancellationError as exc:
            refused.append((taking, exc))
            continue
        entries += changes.take(taking, acting, now)
    changes.write(now)
    return entries, refused


def take_effect_of_all(takings: list[Taking], *, acting: Acting, now: datetime) -> list[dict]:
    """take_effect for cancellations that must all take effect (those being written now): the
    first refusal is the caller's error, and the caller's transaction undoes the rest."""
    entries, refused = take_effect(takings, acting=acting, now=now)
    if refused:
        raise refused[0][1]
    return entries


def _check(taking: Taking) -> None:
    rows = taking.rows
    if any(getattr(item, "has_blocking_settlements", False) for item, _quantity in rows):
        blocked = blocking_settlements([taking.order])
        item = min((item for item, _quantity in rows if item.pk in blocked), key=lambda i: i.pk)
        raise CancellationError(
            {"items": settlement_blocked_message(item, blocked[item.pk])}, code="conflict"
        )
    for item, quantity in rows:
        if quantity > item.open_quantity:
            raise CancellationError(
                {
                    "items": _("%(sku)s no longer has %(quantity)s to cancel.")
                    % {"sku": item.sku, "quantity": quantity}
                },
                code="conflict",
            )


def _remove_settlements(cancelling: dict[int, str], now: datetime) -> None:
    """A service item that is gone takes its present settlement items with it (logically:
    marked removed by its own cancellation, so a revoke can put them back). One UPDATE."""
    if not cancelling:
        return
    meta = SettlementItem._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    params: list[Any] = [meta.get_field("removed_at").get_db_prep_save(now, connection)]
    if connection.vendor == "postgresql":
        # Two array parameters: a list of a thousand placeholders costs psycopg and the
        # planner more than the update itself.
        item_type = meta.get_field("order_item").target_field.db_type(connection)
        pairs = (
            f"(SELECT * FROM unnest(%s::{item_type}[], %s::text[]) "  # noqa: S608 - a type
            "AS u(order_item_id, cancellation_id))"
        )
        params += [list(cancelling), list(cancelling.values())]
    else:
        values = ", ".join(["(%s, %s)"] * len(cancelling))
        pairs = (
            "(SELECT column1 AS order_item_id, column2 AS cancellation_id "  # noqa: S608
            f"FROM (VALUES {values}))"
        )
        params += [value for pair in cancelling.items() for value in pair]
    sql = (
        f"UPDATE {table} SET {quote('removed_at')} = %s, "  # noqa: S608 - names from the model
        f"{quote('removed_by_cancellation_id')} = v.cancellation_id "
        f"FROM {pairs} AS v "
        f"WHERE {table}.{quote('order_item_id')} = v.order_item_id "
        f"AND {table}.{quote('removed_at')} IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def ids_in(ids: Iterable[Any]) -> Any:
    """The right side of an `__in` lookup for many ids: on PostgreSQL one array parameter, as
    building, quoting and parsing a list of a thousand placeholders takes longer than the
    query runs."""
    ids = list(ids)
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s)", [ids])
    return ids


# -- scheduled cancellations whose time has come ---------------------------------------------


def complete_due_cancellations(*, now: datetime | None = None, limit: int = 500) -> int:
    """Make scheduled cancellations whose time has come effective; returns how many.

    Up to `limit` at a time, in one transaction and a fixed number of statements. One that
    can't be applied doesn't hold up the rest: it stays confirmed and the audit trail says why
    (cancellation.completion_failed)."""
    now = now or timezone.now()
    due = list(
        Cancellation.objects.filter(status=CancellationStatus.CONFIRMED, churn_time__lte=now)
        .order_by("churn_time")
        .values_list("pk", flat=True)[:limit]
    )
    if not due:
        return 0
    with transaction.atomic():
        takings = _lock_due(due)
        acting = Acting(None, Via.TASK)
        entries, refused = take_effect(takings, acting=acting, now=now)
        failed = {taking.cancellation.pk for taking, _exc in refused}
        done = [taking.cancellation.pk for taking in takings]
        done = [pk for pk in done if pk not in failed]
        Cancellation.objects.filter(pk__in=done).update(
            status=CancellationStatus.COMPLETED, completed_time=now, updated_time=now
        )
        entries += [
            acting.entry(
                "cancellation.completion_failed",
                taking.order.pk,
                taking.cancellation.pk,
                {"error": exc.messages},
            )
            for taking, exc in refused
        ]
        insert_values(AuditEntry, entries)
    return len(done)


def _lock_due(due: list[str]) -> list[Taking]:
    """The due cancellations still confirmed, as takings, with their orders and the orders'
    items locked (orders first, as every writer locks them)."""
    orders = {
        order.pk: order
        for order in Order.objects.select_for_update()
        .filter(pk__in=Subquery(Cancellation.objects.filter(pk__in=due).values("order_id")))
        .order_by("pk")
    }
    lock_items_of(list(orders.values()))
    cancellations = list(
        Cancellation.objects.select_for_update()
        .filter(pk__in=due, status=CancellationStatus.CONFIRMED)
        .order_by("churn_time", "pk")
    )
    rows = defaultdict(list)
    for cancellation_id, item_id, quantity in CancellationItem.objects.filter(
        cancellation__in=[cancellation.pk for cancellation in cancellations]
    ).values_list("cancellation_id", "order_item_id", "quantity"):
        rows[cancellation_id].append((item_id, quantity))
    takings = []
    for cancellation in cancellations:
        order = orders[cancellation.order_id]
        cancellation.order = order
        check_cancellation_transition(cancellation.status, CancellationStatus.COMPLETED)
        items = {item.pk: item for item in order.items.all()}
        taken = [(items[item_id], quantity) for item_id, quantity in rows[cancellation.pk]]
        takings.append(Taking(cancellation, order, taken))
    return takings
