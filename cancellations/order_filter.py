"""Which orders a bulk cancellation takes: JOC's `/orders/cancel` filter (seed 003), for
Storno's own orders.

`parse_order_filter(data)` (cancellations.filter_parsing) reads a dict in JOC's camelCase, as
an API body gives it, and returns a frozen `OrderFilter` or raises CancellationError naming the
offending field (`dateFrom`, `folders.0.folder`, `auditLog.timeSpent`…). The filter then
selects orders (`OrderFilter.queryset`) and tells which of them are cancelled and which are
skipped, and why (`OrderFilter.partition`). Everything that depends on the clock takes an
injectable `now`.

    orderIds   explicit orders: integers are Storno order ids, strings are order numbers.
               Given, they win: folders, states and the dates are not applied (as in JOC,
               where orderIds makes workflowIds/folders/states and the dates not apply).
    folders    [{"folder": "/shop/de", "recursive": true}] against Order.channel. Recursive
               (the default) = that folder and every folder below it; not recursive = exactly
               that folder. "/" recursive = every channel.
    states     Storno order statuses (see STATE_ALIASES for JOC's names).
    dateFrom   Order.placed_at >= dateFrom (inclusive).
    dateTo     Order.placed_at <  dateTo (exclusive). dateFrom must be older than dateTo.
    timeZone   IANA name; beats any offset in dateFrom/dateTo; UTC when absent.
    deep       also the child orders (Order.parent), at any depth.
    kill       also orders in progress, which are otherwise skipped.
    auditLog   {comment ≤ 255, timeSpent minutes ≥ 0, ticketLink ≤ 255}.

Unknown keys are refused rather than ignored: a filter that silently drops, say, a misspelt
`folder` or JOC's `workflowIds` would cancel more orders than the caller meant.

Dates (dateFrom, dateTo, timeZone): cancellations.filter_dates.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.db.models.lookups import Exact
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext as _

from .audit import AuditInfo
from .filter_dates import resolve_date
from .models import Order
from .services import refusals
from .states import OrderStatus

MAX_ORDER_REFS = 1000
MAX_CHILD_DEPTH = 32  # deeper trees than this are a data error, not a real order structure
AUDIT_TEXT_MAX = 255
ORDER_NUMBER_MAX = Order._meta.get_field("number").max_length
TIME_SPENT_MAX = 2**31 - 1

KNOWN_KEYS = (
    "orderIds",
    "folders",
    "states",
    "dateFrom",
    "dateTo",
    "timeZone",
    "deep",
    "kill",
    "auditLog",
)
AUDIT_KEYS = ("comment", "timeSpent", "ticketLink")
FOLDER_KEYS = ("folder", "recursive")

STORNO_STATES = tuple(value for value, _label in OrderStatus.choices)

# JOC's order states (OrderStateText) in Storno's words:
#   PLANNED, PENDING, SCHEDULED  - not started yet                 -> open
#   INPROGRESS, RUNNING          - being worked on                 -> in_progress
#   SUSPENDED, BLOCKED, WAITING, - halted, waiting for something   -> on_hold
#   PROMPTING                      (PROMPTING waits for a person)
#   FINISHED                     - done                            -> completed
#   CANCELLED                    - cancelled                       -> cancelled
# FAILED, BROKEN and UNKNOWN have no Storno counterpart and are refused; Storno's
# partially_cancelled has no JOC name.
STATE_ALIASES = {
    "PLANNED": OrderStatus.OPEN,
    "PENDING": OrderStatus.OPEN,
    "SCHEDULED": OrderStatus.OPEN,
    "INPROGRESS": OrderStatus.IN_PROGRESS,
    "RUNNING": OrderStatus.IN_PROGRESS,
    "SUSPENDED": OrderStatus.ON_HOLD,
    "BLOCKED": OrderStatus.ON_HOLD,
    "WAITING": OrderStatus.ON_HOLD,
    "PROMPTING": OrderStatus.ON_HOLD,
    "FINISHED": OrderStatus.COMPLETED,
    "CANCELLED": OrderStatus.CANCELLED,
}

# JOC's folder pattern (common/folder-schema.json): an absolute path, "/" included.
FOLDER_RE = re.compile(r'^(/|(/[^/\\<>?:"|*]+)+)$')


# --- the parsed filter -------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderFilter:
    folder: str
    recursive: bool = True

    def q(self) -> Q:
        if self.folder == "/":
            # Every channel lies below "/", none is "/" itself. (Q() would vanish in an OR.)
            return ~Q(pk__in=[]) if self.recursive else Q(pk__in=[])
        if not self.recursive:
            return Q(channel=self.folder)
        prefix = self.folder + "/"
        # startswith is case-insensitive on SQLite (LIKE); Left(...) = prefix makes it exact.
        below = Q(channel__startswith=prefix) & Q(Exact(Left("channel", len(prefix)), prefix))
        return Q(channel=self.folder) | below


@dataclass(frozen=True)
class DateBound:
    """A dateFrom/dateTo value as given; resolved against a `now` when the filter is used."""

    value: str

    def resolve(self, *, time_zone: str | None, now: datetime, is_to: bool) -> datetime:
        return resolve_date(self.value, time_zone=time_zone, now=now, is_to=is_to)


@dataclass(frozen=True)
class OrderFilter:
    order_ids: tuple[int, ...] = ()
    order_numbers: tuple[str, ...] = ()
    folders: tuple[FolderFilter, ...] = ()
    states: tuple[str, ...] = ()
    date_from: DateBound | None = None
    date_to: DateBound | None = None
    time_zone: str | None = None
    deep: bool = False
    kill: bool = False
    audit: AuditInfo = field(default_factory=AuditInfo)

    @property
    def by_order_refs(self) -> bool:
        """True when explicit orderIds were given: then nothing else selects."""
        return bool(self.order_ids or self.order_numbers)

    @property
    def narrows(self) -> bool:
        """False for an empty filter, which takes every order. A bulk job refuses that: to
        mean every order, say so with the folder "/"."""
        return bool(
            self.by_order_refs or self.folders or self.states or self.date_from or self.date_to
        )

    def bounds(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """(dateFrom, dateTo) as aware UTC datetimes, resolved against `now`."""
        now = now or dj_timezone.now()
        start = end = None
        if self.date_from:
            start = self.date_from.resolve(time_zone=self.time_zone, now=now, is_to=False)
        if self.date_to:
            end = self.date_to.resolve(time_zone=self.time_zone, now=now, is_to=True)
        return start, end

    def q(self, now: datetime | None = None) -> Q:
        """The condition on Order for the directly matching orders (children not included)."""
        if self.by_order_refs:
            return Q(pk__in=self.order_ids) | Q(number__in=self.order_numbers)
        condition = Q()
        # "/" recursive takes every channel: then the folders don't narrow anything.
        if self.folders and not any(f.folder == "/" and f.recursive for f in self.folders):
            folders = Q(pk__in=[])
            for folder in self.folders:
                folders |= folder.q()
            condition &= folders
        if self.states:
            condition &= Q(status__in=self.states)
        start, end = self.bounds(now)
        if start is not None:
            condition &= Q(placed_at__gte=start)
        if end is not None:
            condition &= Q(placed_at__lt=end)
        return condition

    def queryset(self, base: QuerySet | None = None, now: datetime | None = None) -> QuerySet:
        """The matching orders of `base` (all orders by default), plus, with deep, all their
        descendants in `base`. Matching stays a subquery; only descendant ids are read."""
        base = Order.objects.all() if base is None else base
        matched = base.filter(self.q(now))
        if not self.deep:
            return matched
        frontier = matched.values("pk")
        descendants: set[int] = set()
        for _level in range(MAX_CHILD_DEPTH):
            children = set(
                base.filter(parent__in=frontier)
                .exclude(pk__in=matched.values("pk"))
                .values_list("pk", flat=True)
            )
            children -= descendants  # a parent loop in bad data must not spin
            if not children:
                break
            descendants |= children
            frontier = sorted(children)
        if not descendants:
            return matched
        return base.filter(Q(pk__in=matched.values("pk")) | Q(pk__in=sorted(descendants)))

    def partition(self, orders: Iterable[Order]) -> tuple[list[Order], list[tuple[Order, str]]]:
        """Split orders into those to cancel and (order, why not) for those skipped."""
        to_cancel: list[Order] = []
        skipped: list[tuple[Order, str]] = []
        for order in orders:
            reason = self.skip_reason(order)
            if reason:
                skipped.append((order, reason))
            else:
                to_cancel.append(order)
        return to_cancel, skipped

    def skip_reason(self, order: Order) -> str:
        """Why this filter leaves the order alone, or "" when it is cancelled: the quote's
        refusal of the order (services.refusals), worded for a bulk job's result."""
        refused = self.skip_refusal(order)
        return skip_text(refused) if refused else ""

    def skip_refusal(self, order: Order) -> refusals.Refused | None:
        """The quote's refusal of the order that makes this filter leave it alone, or None."""
        return refusals.order_refusal(order, kill=self.kill)

    def takes_status(self, status: str) -> bool:
        """Whether an order on this status is cancelled (not skipped) by this filter."""
        return refusals.status_refusal(status, kill=self.kill) is None

    def missing_order_refs(self, found: Iterable[Order]) -> list[int | str]:
        """The requested orderIds (ids and numbers) that matched no order."""
        found = list(found)
        ids = {order.pk for order in found}
        numbers = {order.number for order in found}
        return [pk for pk in self.order_ids if pk not in ids] + [
            number for number in self.order_numbers if number not in numbers
        ]

    def to_dict(self) -> dict:
        """The filter in the camelCase it was parsed from (parse_order_filter reads it back)."""
        data: dict = {}
        if self.by_order_refs:
            data["orderIds"] = [*self.order_ids, *self.order_numbers]
        if self.folders:
            data["folders"] = [{"folder": f.folder, "recursive": f.recursive} for f in self.folders]
        if self.states:
            data["states"] = list(self.states)
        if self.date_from:
            data["dateFrom"] = self.date_from.value
        if self.date_to:
            data["dateTo"] = self.date_to.value
        if self.time_zone:
            data["timeZone"] = self.time_zone
        data["deep"] = self.deep
        data["kill"] = self.kill
        audit = {}
        if self.audit.comment:
            audit["comment"] = self.audit.comment
        if self.audit.time_spent is not None:
            audit["timeSpent"] = self.audit.time_spent
        if self.audit.ticket_link:
            audit["ticketLink"] = self.audit.ticket_link
        if audit:
            data["auditLog"] = audit
        return data


def skip_text(refused: refusals.Refused) -> str:
    """A refusal of the whole order as a bulk job's result says it (JOC's skip reasons)."""
    if refused.code == refusals.Refusal.IN_PROGRESS:
        return _("The order is in progress; set kill to cancel it anyway.")
    if refused.code == refusals.Refusal.NOTHING_LEFT and "number" in refused.params:
        return _("The order is already cancelled.")
    if "status" in refused.params:
        return _("The order is %(status)s and can't be cancelled.") % refused.params
    return refused.message
