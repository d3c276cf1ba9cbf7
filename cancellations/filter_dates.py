"""JOC's dateFrom/dateTo values, for the order filter (cancellations.order_filter).

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

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from datetime import time as dt_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

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
ZONE_NAME_MAX = 255  # no IANA name is longer; a longer value is refused unread
_CALENDAR_UNITS = ("d", "w", "M", "y")  # smallest first
_CLOCK_UNITS = ("s", "m", "h")


def date_formats_help() -> str:
    return _(
        "Use an ISO 8601 timestamp like 2024-05-01T08:00:00 (T or a space, optional "
        "milliseconds .123 or ,123, optional offset Z, +01:00, +0100 or +01), a period back "
        "from now like 30s, 15m, 6h, 1d, 1w, 1M, 1y or 1d2h (+1d points forward; an offset "
        "may follow, e.g. 2d+02:00), or 0 for now."
    )


def get_zone(name: str) -> tzinfo:
    """The IANA zone `name`; ValueError when there is no such zone."""
    if not name or len(name) > ZONE_NAME_MAX or "<" in name or ">" in name:
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
