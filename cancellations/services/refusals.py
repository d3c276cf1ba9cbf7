"""Why something can't be cancelled: the quote's refusals, one small vocabulary with codes.

quote_cancellation raises these (the code is the CancellationError's code for that field);
everything else that must know beforehand asks the same functions instead of deciding again:
the billing engine's messages (cancellations.billing), the bulk filter's skip reasons
(order_filter), the bulk job, the staff pages. Each caller may word a refusal in its own
dialect (AEB's messages, JOC's skip reasons); which refusal it is, is decided here.

    order_not_cancellable  the order is completed (or on another status no cancellation takes)
    nothing_left           the order is cancelled, or nothing of it is open and unscheduled
    in_progress            the order is being worked on, and the caller didn't say kill
    already_cancelled      the item's whole quantity is cancelled already
    already_scheduled      (some of) the item's open quantity is promised to a scheduled one
    not_enough_left        more of the item was asked for than is still open
    settlement_blocked     the item has a settled or exported settlement item
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Order, OrderItem, SettlementItem
from ..states import OrderStatus


class Refusal(models.TextChoices):
    ORDER_NOT_CANCELLABLE = "order_not_cancellable", gettext_lazy("order can't be cancelled")
    NOTHING_LEFT = "nothing_left", gettext_lazy("nothing left to cancel")
    IN_PROGRESS = "in_progress", gettext_lazy("order in progress")
    ALREADY_CANCELLED = "already_cancelled", gettext_lazy("item already cancelled")
    ALREADY_SCHEDULED = "already_scheduled", gettext_lazy("item already scheduled")
    NOT_ENOUGH_LEFT = "not_enough_left", gettext_lazy("not enough left of the item")
    SETTLEMENT_BLOCKED = "settlement_blocked", gettext_lazy("settlement item blocks it")


# Refusals of the order as a whole: a bulk job skips such an order rather than failing it.
ORDER_REFUSALS = frozenset(
    {Refusal.ORDER_NOT_CANCELLABLE, Refusal.NOTHING_LEFT, Refusal.IN_PROGRESS}
)


@dataclass(frozen=True)
class Refused:
    """One refusal: its code, the quote's message (in the active language) and the facts it
    names, for a caller that words it otherwise."""

    code: Refusal
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    template: str = ""  # the message before its params went in, when it has any

    def error(self) -> ValidationError:
        """As a CancellationError's message under a field, keeping the code and the params
        (a bulk job stores them, cancellations.target_messages)."""
        if not self.template:
            return ValidationError(self.message, code=self.code.value)
        return ValidationError(self.template, code=self.code.value, params=self.stored_params())

    def stored_params(self) -> dict[str, Any]:
        """The params as they can be stored (JSON): the facts, not the objects."""
        return {name: value for name, value in self.params.items() if name != "instance"}


def _refused(code: Refusal, template: str, params: dict[str, Any]) -> Refused:
    return Refused(code, template % params, params, template)


def status_refusal(status: str, *, kill: bool = True) -> Refusal | None:
    """Whether an order on this status can be cancelled at all: None when it can. `kill`:
    orders in progress too (the bulk filter's flag; every single cancellation may)."""
    if status == OrderStatus.CANCELLED:
        return Refusal.NOTHING_LEFT
    if status not in OrderStatus.cancellable:
        return Refusal.ORDER_NOT_CANCELLABLE
    if status == OrderStatus.IN_PROGRESS and not kill:
        return Refusal.IN_PROGRESS
    return None


def order_refusal(order: Order, *, kill: bool = True) -> Refused | None:
    """Why no cancellation can take this order now (by its status), or None."""
    code = status_refusal(order.status, kill=kill)
    if code is None:
        return None
    params = {
        "number": order.number,
        "status": order.get_status_display().lower(),
        "order_status": order.status,
    }
    if code == Refusal.IN_PROGRESS:
        text = _("Order %(number)s is in progress; set kill to cancel it anyway.")
    elif code == Refusal.NOTHING_LEFT:
        text = _("Order %(number)s is already cancelled.")
    else:
        text = _("Order %(number)s is %(status)s and can't be cancelled.")
    return _refused(code, text, params)


def nothing_left() -> Refused:
    return Refused(Refusal.NOTHING_LEFT, _("Nothing is left to cancel on this order."))


def settlement_blocked(item: OrderItem, settlement: SettlementItem) -> Refused:
    params = {
        "sku": item.sku,
        "settlement": settlement.pk,
        "state": settlement.get_state_display().lower(),
        "settlement_state": settlement.state,
    }
    text = _("%(sku)s can't be cancelled: its settlement item %(settlement)s is already %(state)s.")
    return _refused(Refusal.SETTLEMENT_BLOCKED, text, {**params, "instance": settlement})


def item_refusals(
    item: OrderItem,
    *,
    wanted: int | None,
    reserved: int,
    blocking: Sequence[SettlementItem] = (),
) -> list[Refused]:
    """Why `wanted` of the item (None: whatever is still open) can't be cancelled now; empty
    when it can. `reserved`: how much of it scheduled cancellations hold; `blocking`: its
    settled or exported settlement items. An item cancelled already is refused for that alone."""
    available = item.open_quantity - reserved
    params = {"sku": item.sku, "available": max(available, 0), "scheduled": reserved}
    too_many = _("Only %(available)s of %(sku)s can still be cancelled.")
    if item.open_quantity <= 0:
        return [_refused(Refusal.ALREADY_CANCELLED, too_many, params)]
    found = []
    if available <= 0 or (wanted is not None and wanted > available):
        code = Refusal.ALREADY_SCHEDULED if reserved else Refusal.NOT_ENOUGH_LEFT
        found.append(_refused(code, too_many, params))
    return found + [settlement_blocked(item, settlement) for settlement in blocking]


def whole_item_refusals(
    item: OrderItem, *, order: Order, reserved: int, blocking: Sequence[SettlementItem] = ()
) -> list[Refused]:
    """Why the item can't be cancelled completely (all of it still open) now, the order's own
    refusal included; empty when it can. What the billing engine asks of a service item."""
    own = item_refusals(item, wanted=item.open_quantity, reserved=reserved, blocking=blocking)
    if own and own[0].code == Refusal.ALREADY_CANCELLED:
        return own
    refused = order_refusal(order)
    return ([refused] if refused else []) + own


def refusals(
    order: Order,
    *,
    reserved: Mapping[int, int],
    blocking: Mapping[int, Sequence[SettlementItem]],
    items: Iterable[OrderItem] | None = None,
) -> dict[int, list[Refused]]:
    """{order item id: why it can't be cancelled completely} for the order's items (or the
    given ones) that can't; the pages and the billing engine show these before anyone tries.
    `reserved` as quoting.scheduled_quantities, `blocking` every blocking settlement item per
    order item."""
    found = {}
    for item in order.items.all() if items is None else items:
        why = whole_item_refusals(
            item, order=order, reserved=reserved.get(item.pk, 0), blocking=blocking.get(item.pk, ())
        )
        if why:
            found[item.pk] = why
    return found


def whole_order_refusal(order: Order, *, reserved: Mapping[int, int]) -> Refused | None:
    """Why the order can't be cancelled (more) right now, or None: its status, or nothing left
    when every item is cancelled or promised to scheduled cancellations already (what a whole
    order cancellation would answer). order.items must be loaded; `reserved` as
    quoting.scheduled_quantities."""
    refused = order_refusal(order)
    if refused:
        return refused
    for item in order.items.all():
        if not item_refusals(item, wanted=None, reserved=reserved.get(item.pk, 0)):
            return None
    return nothing_left()


def _item_name(item: OrderItem) -> str:
    """An item as staff see it on the order page: its SKU and description, never its id."""
    if item.description:
        return _("%(sku)s (%(description)s)") % {"sku": item.sku, "description": item.description}
    return item.sku


def _day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT")


def for_staff(item: OrderItem, refused: Refused) -> str:
    """A refusal of the item in staff words (the staff pages and the admin); the billing
    engine's API words it in AEB's dialect instead (cancellations.billing.refusal_message)."""
    name = {"item": _item_name(item)}
    if refused.code == Refusal.ALREADY_CANCELLED:
        return _("%(item)s is already cancelled.") % name
    if refused.code == Refusal.ALREADY_SCHEDULED:
        return _("%(item)s already has a scheduled cancellation.") % name
    if refused.code == Refusal.SETTLEMENT_BLOCKED:
        settlement = refused.params["instance"]
        return _(
            "%(item)s can't be cancelled: its billed period %(start)s – %(end)s is already "
            "%(state)s."
        ) % {
            **name,
            "start": _day(settlement.period_start),
            "end": _day(settlement.period_end),
            "state": settlement.get_state_display().lower(),
        }
    return refused.message
