"""Which orders a bulk cancellation takes: JOC's `/orders/cancel` filter (seed 003), for
Storno's own orders.

`parse_order_filter(data)` reads a dict in JOC's camelCase, as an API body gives it, and returns
a frozen `OrderFilter` or raises CancellationError naming the offending field (`dateFrom`,
`folders.0.folder`, `auditLog.timeSpent`…). The filter then selects orders
(`OrderFilter.queryset`) and tells which of them are cancelled and which are skipped, and why
(`OrderFilter.partition`). Everything that depends on the clock takes an injectable `now`.

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

Dates (`parse_date_bound`) take every format of JOC's dateFrom/dateTo schema pattern:

  * ISO 8601 `YYYY-MM-DDThh:mm:ss` with `T` or a space, optional milliseconds (`.5`, `,123`)
    and an optional offset `Z`, `+01:00`, `+0100` or `+01`. Without an offset the time is read
    in `timeZone` (UTC when absent); with `timeZone` the offset is ignored ("it beats the time
    offset", JOC docs on timeZone).
  * `0` (also `+0`, `-0`): now.
  * A period relative to now: a number and a unit, s m h d w M(onth) y, combinable (`1d2h`),
    each part optionally signed, optionally followed by an offset (`2d+02:00`).

Which way does a relative value point? JOC resolves these strings in
`JobSchedulerDate.getInstantFromDateStr` (sos-berlin/sos-components), which adds the signed
amounts to now, so for the order views (scheduled orders lie ahead) `1d` is tomorrow. JOC's
history views, whose records lie in the past like Storno's `placed_at`, first pass the string
through `JobSchedulerDate.setRelativeDateIntoPast`, so there an unsigned `1d` means one day
back. Storno filters placed orders, so it reads values the history way: an unsigned or `-`
part counts back from now, an explicit `+` part counts forward.

Rounding, as the JOC docs say and JobSchedulerDate does: when a relative value has a d, w, M or
y part it starts from midnight of today in the effective zone (timeZone, else the value's
offset, else UTC); calendar parts are added in that zone, then h/m/s parts as elapsed time.
For dateTo a value whose smallest unit is d, w, M or y means the END of the period it names
(JOC's log and history views add one such unit to dateTo), so `dateFrom=1d&dateTo=1d` is all
of yesterday and `dateTo=0d` the end of today. Weeks, months and years are not snapped to
Monday or the 1st, only to midnight.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from datetime import time as dt_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q, QuerySet
from django.db.models.functions import Left
from django.db.models.lookups import Exact
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext as _

from .audit import AuditInfo
from .errors import CancellationError
from .models import Order
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

# JOC's dateFrom/dateTo schema pattern, split into its parts.
_OFFSET = r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?"
_NOW_RE = re.compile(r"^[+-]?0" + _OFFSET + r"$")
_RELATIVE_RE = re.compile(r"^(?P<parts>(?:[+-]?[0-9]+[smhdwMy])+)" + _OFFSET + r"$")
_RELATIVE_PART_RE = re.compile(r"([+-]?)([0-9]+)([smhdwMy])")
_ISO_RE = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?:T| )"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:[,.](?P<fraction>\d{1,3}))?"
    + _OFFSET
    + r"$"
)
_OFFSET_RE = re.compile(r"^(?P<sign>[+-])(?P<hours>\d{2})(?::?(?P<minutes>\d{2}))?$")
# JOC's folder pattern (common/folder-schema.json): an absolute path, "/" included.
_FOLDER_RE = re.compile(r'^(/|(/[^/\\<>?:"|*]+)+)$')
_CALENDAR_UNITS = ("d", "w", "M", "y")  # smallest first
_CLOCK_UNITS = ("s", "m", "h")


def date_formats_help() -> str:
    return _(
        "Use an ISO 8601 timestamp like 2024-05-01T08:00:00 (T or a space, optional "
        "milliseconds .123 or ,123, optional offset Z, +01:00, +0100 or +01), a period back "
        "from now like 30s, 15m, 6h, 1d, 1w, 1M, 1y or 1d2h (+1d points forward; an offset "
        "may follow, e.g. 2d+02:00), or 0 for now."
    )


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
        """Why this filter leaves the order alone, or "" when it is cancelled."""
        if order.status not in OrderStatus.cancellable:
            return _("The order is %(status)s and can't be cancelled.") % {
                "status": order.get_status_display().lower()
            }
        if order.status == OrderStatus.IN_PROGRESS and not self.kill:
            return _("The order is in progress; set kill to cancel it anyway.")
        return ""

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


# --- parsing -----------------------------------------------------------------------------------


def parse_order_filter(data: Mapping | None, *, now: datetime | None = None) -> OrderFilter:
    """Read a JOC-style filter; raise CancellationError naming every bad field at once."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise CancellationError({"filter": _("Send the filter as an object.")}, code="invalid")
    errors: dict[str, str] = {}
    for key in data:
        if key not in KNOWN_KEYS:
            errors[str(key)] = _("Unknown filter field. Known: %(keys)s.") % {
                "keys": ", ".join(KNOWN_KEYS)
            }

    order_ids, order_numbers = _parse_order_refs(data.get("orderIds"), errors)
    folders = _parse_folders(data.get("folders"), errors)
    states = _parse_states(data.get("states"), errors)
    time_zone = _parse_time_zone(data.get("timeZone"), errors)
    deep = _parse_bool(data, "deep", errors)
    kill = _parse_bool(data, "kill", errors)
    audit = _parse_audit_log(data.get("auditLog"), errors)

    now = now or dj_timezone.now()
    bounds = {}
    for key, is_to in (("dateFrom", False), ("dateTo", True)):
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            errors[key] = _("Must be a string. %(formats)s") % {"formats": date_formats_help()}
            continue
        value = value.strip()
        try:
            # A bad timeZone is reported on its own; the dates are then checked in UTC.
            bounds[key] = (
                DateBound(value),
                resolve_date(
                    value,
                    time_zone=time_zone if "timeZone" not in errors else None,
                    now=now,
                    is_to=is_to,
                ),
            )
        except ValueError as exc:
            errors[key] = str(exc)
    if "dateFrom" in bounds and "dateTo" in bounds and bounds["dateFrom"][1] >= bounds["dateTo"][1]:
        errors["dateFrom"] = _("'dateFrom' must be older than 'dateTo'.")

    if errors:
        raise CancellationError(errors, code="invalid")
    return OrderFilter(
        order_ids=order_ids,
        order_numbers=order_numbers,
        folders=folders,
        states=states,
        date_from=bounds["dateFrom"][0] if "dateFrom" in bounds else None,
        date_to=bounds["dateTo"][0] if "dateTo" in bounds else None,
        time_zone=time_zone,
        deep=deep,
        kill=kill,
        audit=audit,
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_order_refs(value, errors) -> tuple[tuple[int, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, list | tuple):
        errors["orderIds"] = _("Must be a list of order ids (numbers) or order numbers (text).")
        return (), ()
    if len(value) > MAX_ORDER_REFS:
        errors["orderIds"] = _("At most %(max)s orders at once.") % {"max": MAX_ORDER_REFS}
        return (), ()
    ids: dict[int, None] = {}  # dicts keep the caller's order and drop repeats
    numbers: dict[str, None] = {}
    for index, ref in enumerate(value):
        key = f"orderIds.{index}"
        if _is_int(ref):
            if ref < 1:
                errors[key] = _("Order ids are positive whole numbers.")
            else:
                ids[ref] = None
        elif isinstance(ref, str):
            number = ref.strip()
            if not number:
                errors[key] = _("An order number can't be empty.")
            elif len(number) > ORDER_NUMBER_MAX:
                errors[key] = _("Order numbers have at most %(max)s characters.") % {
                    "max": ORDER_NUMBER_MAX
                }
            else:
                numbers[number] = None
        else:
            errors[key] = _("Use an order id (a number) or an order number (text).")
    return tuple(ids), tuple(numbers)


def _parse_folders(value, errors) -> tuple[FolderFilter, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors["folders"] = _('Must be a list like [{"folder": "/shop/de", "recursive": true}].')
        return ()
    folders = []
    for index, item in enumerate(value):
        key = f"folders.{index}"
        if isinstance(item, str):  # liberal: a bare path means that folder, recursively
            item = {"folder": item}
        if not isinstance(item, Mapping):
            errors[key] = _('Use an object like {"folder": "/shop/de", "recursive": true}.')
            continue
        for extra in item:
            if extra not in FOLDER_KEYS:
                errors[f"{key}.{extra}"] = _("Unknown field. Known: folder, recursive.")
        folder = item.get("folder")
        if not isinstance(folder, str) or not folder.strip():
            errors[f"{key}.folder"] = _("Enter an absolute folder path like /shop/de.")
            continue
        folder = folder.strip()
        if len(folder) > 1:
            folder = folder.rstrip("/") or "/"
        if len(folder) > AUDIT_TEXT_MAX or not _FOLDER_RE.match(folder):
            errors[f"{key}.folder"] = _(
                "Use an absolute folder path like /shop/de "
                '(at most 255 characters, none of \\ < > ? : " | *).'
            )
            continue
        recursive = item.get("recursive", True)
        if recursive is None:
            recursive = True
        if not isinstance(recursive, bool):
            errors[f"{key}.recursive"] = _("Must be true or false.")
            continue
        folders.append(FolderFilter(folder=folder, recursive=recursive))
    return tuple(folders)


def parse_state(value) -> str | None:
    """A Storno order status from a Storno or JOC state name (any case); None if unknown."""
    if not isinstance(value, str):
        return None
    name = value.strip()
    if name.upper() in STATE_ALIASES:
        return STATE_ALIASES[name.upper()]
    if name.lower() in STORNO_STATES:
        return name.lower()
    return None


def _parse_states(value, errors) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors["states"] = _("Must be a list of order statuses.")
        return ()
    states: dict[str, None] = {}
    for index, item in enumerate(value):
        state = parse_state(item)
        if state is None:
            errors[f"states.{index}"] = _(
                "Unknown order status. Use one of %(storno)s, or JOC's %(joc)s."
            ) % {"storno": ", ".join(STORNO_STATES), "joc": ", ".join(STATE_ALIASES)}
        else:
            states[state] = None
    return tuple(states)


def _parse_time_zone(value, errors) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors["timeZone"] = _("Must be a time zone name like Europe/Berlin.")
        return None
    name = value.strip()
    try:
        get_zone(name)
    except ValueError:
        errors["timeZone"] = _(
            "Unknown time zone %(name)s. Use an IANA name like Europe/Berlin or UTC."
        ) % {"name": name[:64]}
        return None
    return name


def _parse_bool(data, key, errors) -> bool:
    value = data.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        errors[key] = _("Must be true or false.")
        return False
    return value


def _parse_audit_log(value, errors) -> AuditInfo:
    if value is None:
        return AuditInfo()
    if not isinstance(value, Mapping):
        errors["auditLog"] = _('Must be an object like {"comment": "…", "timeSpent": 5}.')
        return AuditInfo()
    for extra in value:
        if extra not in AUDIT_KEYS:
            errors[f"auditLog.{extra}"] = _("Unknown field. Known: %(keys)s.") % {
                "keys": ", ".join(AUDIT_KEYS)
            }
    texts = {}
    for key in ("comment", "ticketLink"):
        text = value.get(key)
        if text is None:
            texts[key] = ""
        elif not isinstance(text, str):
            errors[f"auditLog.{key}"] = _("Must be text.")
        elif len(text.strip()) > AUDIT_TEXT_MAX:
            errors[f"auditLog.{key}"] = _("At most %(max)s characters.") % {"max": AUDIT_TEXT_MAX}
        else:
            texts[key] = text.strip()
    time_spent = value.get("timeSpent")
    if time_spent is not None and (
        not _is_int(time_spent) or not 0 <= time_spent <= TIME_SPENT_MAX
    ):
        errors["auditLog.timeSpent"] = _("Minutes spent: a whole number, 0 or more.")
        time_spent = None
    return AuditInfo(
        comment=texts.get("comment", ""),
        time_spent=time_spent,
        ticket_link=texts.get("ticketLink", ""),
    )


# --- dates -------------------------------------------------------------------------------------


def get_zone(name: str) -> tzinfo:
    """The IANA zone `name`; ValueError when there is no such zone."""
    if not name or len(name) > AUDIT_TEXT_MAX or "<" in name or ">" in name:
        raise ValueError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # ValueError: path-like keys
        raise ValueError(name) from exc


def _fixed_offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    match = _OFFSET_RE.match(text)
    hours, minutes = int(match["hours"]), int(match["minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match["sign"] == "-" else delta)


def resolve_date(value: str, *, time_zone: str | None, now: datetime, is_to: bool) -> datetime:
    """One dateFrom (is_to=False) or dateTo (is_to=True) value as an aware UTC datetime.
    Raises ValueError whose text explains the accepted formats."""
    invalid = _("%(value)s is not a valid date. %(formats)s") % {
        "value": repr(value)[:80],
        "formats": date_formats_help(),
    }
    if not isinstance(value, str):
        raise ValueError(invalid)
    value = value.strip()
    zone = get_zone(time_zone) if time_zone else None
    try:
        if match := _NOW_RE.match(value):
            _fixed_offset(match["offset"])  # still refuse an impossible offset
            return now.astimezone(UTC)
        if match := _ISO_RE.match(value):
            zone = zone or _fixed_offset(match["offset"]) or UTC
            fraction = (match["fraction"] or "").ljust(3, "0")
            local = datetime(
                int(match["year"]),
                int(match["month"]),
                int(match["day"]),
                int(match["hour"]),
                int(match["minute"]),
                int(match["second"]),
                int(fraction or 0) * 1000,
                tzinfo=zone,
            )
            return local.astimezone(UTC)
        if match := _RELATIVE_RE.match(value):
            zone = zone or _fixed_offset(match["offset"]) or UTC
            return _resolve_relative(match["parts"], zone=zone, now=now, is_to=is_to)
    except (ValueError, OverflowError) as exc:
        raise ValueError(invalid) from exc
    raise ValueError(invalid)


def _resolve_relative(parts: str, *, zone: tzinfo, now: datetime, is_to: bool) -> datetime:
    amounts: dict[str, int] = {}
    for sign, number, unit in _RELATIVE_PART_RE.findall(parts):
        # Unsigned and "-" count back (placed_at lies in the past); "+" counts forward.
        amounts[unit] = amounts.get(unit, 0) + (int(number) if sign == "+" else -int(number))
    now = now.astimezone(UTC)
    calendar_units = [unit for unit in _CALENDAR_UNITS if unit in amounts]
    has_clock_units = any(unit in amounts for unit in _CLOCK_UNITS)
    if calendar_units:
        if is_to and not has_clock_units:
            # dateTo names the end of the period: one more of its smallest unit.
            amounts[calendar_units[0]] += 1
        day = now.astimezone(zone).date()
        day = _add_months(day, 12 * amounts.get("y", 0) + amounts.get("M", 0))
        day += timedelta(days=7 * amounts.get("w", 0) + amounts.get("d", 0))
        start = datetime.combine(day, dt_time(0), tzinfo=zone).astimezone(UTC)
    else:
        start = now
    return start + timedelta(
        hours=amounts.get("h", 0), minutes=amounts.get("m", 0), seconds=amounts.get("s", 0)
    )


def _add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the month's last day (Mar 31 - 1M = Feb 28)."""
    if not months:
        return day
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    month = month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
