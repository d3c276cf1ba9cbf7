"""The JS7 fake's workflow orders (fakes/js7.py): their shape, and which of them a JOC
`/orders/cancel` body selects.

Follows docs/contracts/js7/cancelOrders.resolved.json and the JOC docs it includes:
raw/api/resourceTypes/order/modify.raml (orderIds beat workflowIds, folders and states;
workflowIds beat folders) and raw/api/documentation/common/{dateFrom,dateTo,timeZone}.md:

  * dateFrom/dateTo: an ISO 8601 timestamp (T or a space, optional milliseconds, optional
    offset Z, +01:00, +0100, +01), `0` for now, or a period relative to now (`1d`, `-1d`,
    `1d2h`, optionally followed by an offset like `2d+02:00`). Without an offset the time is
    read in timeZone, else UTC; timeZone beats any offset ("it beats the time offset").
  * a relative value with a d, w, M or y part starts from midnight of today in the effective
    zone ("relative d/w/M/y round to midnight"). An unsigned or `-` part counts back from now,
    a `+` part forward: the docs' own example is dateFrom `1d`, dateTo `0`, which only makes
    sense if `1d` lies behind `0` (JOC's history views read relative values into the past).
    A dateTo whose smallest unit is d, w, M or y means the end of that period, as JOC's log
    views add one such unit, so dateFrom `1d` dateTo `1d` is all of yesterday.
  * dateFrom must be older than dateTo, else JOC-400.

The dates are compared with an order's `scheduledFor` (GUESSES.md: JOC's docs don't name the
field). No Django: the fake runs on its own.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from datetime import time as dt_time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.contracts import schema

DEFAULT_WORKFLOW = "/storno/orders"
CANCEL_SCHEMA = "js7/cancelOrders.resolved.json"
# JOC's order states, as its schema lists them.
STATES = tuple(schema(CANCEL_SCHEMA)["properties"]["states"]["items"]["enum"])
RUNNING_STATES = {"RUNNING", "INPROGRESS", "PROMPTING"}
ENDED_STATES = {"CANCELLED", "FINISHED"}  # no longer on the controller's live set

_OFFSET = r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?"
_NOW_RE = re.compile(r"^[+-]?0" + _OFFSET + r"$")
_RELATIVE_RE = re.compile(r"^(?P<parts>(?:[+-]?[0-9]+[smhdwMy])+)" + _OFFSET + r"$")
_RELATIVE_PART_RE = re.compile(r"([+-]?)([0-9]+)([smhdwMy])")
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T| )(\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,3}))?" + _OFFSET + r"$"
)
_OFFSET_RE = re.compile(r"^([+-])(\d{2})(?::?(\d{2}))?$")


def stamp(moment: datetime | None = None) -> str:
    """JOC's timestamps: UTC ISO 8601 with milliseconds."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def workflow_order(
    order_id: str,
    *,
    state: str = "PENDING",
    workflow_path: str = DEFAULT_WORKFLOW,
    version_id: str = "",
    scheduled_for: datetime | str | None = None,
    refuse: str = "",
) -> dict:
    """A workflow order as the fake keeps it; scheduled_for defaults to now (an order added
    without a start time starts at once)."""
    if state not in STATES:
        raise ValueError(f"Unknown JS7 order state {state!r}; use one of {', '.join(STATES)}.")
    if isinstance(scheduled_for, str):
        scheduled_for = datetime.fromisoformat(scheduled_for.replace("Z", "+00:00"))
    if scheduled_for is not None and scheduled_for.tzinfo is None:
        raise ValueError("scheduledFor needs an offset.")
    order = {
        "orderId": order_id,
        "state": state,
        "workflowPath": workflow_path,
        "scheduledFor": stamp(scheduled_for),
    }
    if version_id:
        order["versionId"] = version_id
    if refuse:
        order["refuse"] = refuse
    return order


def as_workflow_order(item: str | dict, *, now: datetime) -> dict:
    """An order id (PENDING, scheduled for `now`) or a dict with workflow_order()'s camelCase
    keys, as a workflow order."""
    if isinstance(item, str):
        return workflow_order(item, scheduled_for=now)
    return workflow_order(
        item["orderId"],
        state=item.get("state", "PENDING"),
        workflow_path=item.get("workflowPath", DEFAULT_WORKFLOW),
        version_id=item.get("versionId", ""),
        scheduled_for=item.get("scheduledFor") or now,
        refuse=item.get("refuse", ""),
    )


class BadRequest(ValueError):
    """A body the schema allows but JOC refuses (JOC-400)."""


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadRequest(f"Unknown time zone '{name}'.") from exc


def _offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign, hours, minutes = _OFFSET_RE.match(text).groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-delta if sign == "-" else delta)


def resolve_date(value: str, *, time_zone: str | None, now: datetime, is_to: bool) -> datetime:
    """A dateFrom/dateTo value as an aware UTC datetime; BadRequest when it names none."""
    zone = _zone(time_zone)
    try:
        if match := _NOW_RE.match(value):
            return now.astimezone(UTC)
        if match := _ISO_RE.match(value):
            *parts, fraction, offset = match.groups()
            year, month, day, hour, minute, second = (int(part) for part in parts)
            millis = int((fraction or "0").ljust(3, "0"))
            zone = zone or _offset(offset) or UTC
            moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=zone)
            return moment.astimezone(UTC)
        if match := _RELATIVE_RE.match(value):
            zone = zone or _offset(match["offset"]) or UTC
            return _relative(match["parts"], zone=zone, now=now, is_to=is_to)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"'{value}' is not a valid date.") from exc
    raise BadRequest(f"'{value}' is not a valid date.")


def _relative(parts: str, *, zone: tzinfo, now: datetime, is_to: bool) -> datetime:
    amounts: dict[str, int] = {}
    for sign, number, unit in _RELATIVE_PART_RE.findall(parts):
        amounts[unit] = amounts.get(unit, 0) + (int(number) if sign == "+" else -int(number))
    start = now.astimezone(UTC)
    calendar_units = [unit for unit in "dwMy" if unit in amounts]  # smallest first
    if calendar_units:
        if is_to and not any(unit in amounts for unit in "hms"):
            amounts[calendar_units[0]] += 1  # the end of the period named
        months = 12 * amounts.get("y", 0) + amounts.get("M", 0)
        day = _add_months(now.astimezone(zone).date(), months)
        day += timedelta(days=7 * amounts.get("w", 0) + amounts.get("d", 0))
        start = datetime.combine(day, dt_time(0), tzinfo=zone).astimezone(UTC)
    return start + timedelta(
        hours=amounts.get("h", 0), minutes=amounts.get("m", 0), seconds=amounts.get("s", 0)
    )


def _add_months(day: date, months: int) -> date:
    year, index = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    return date(year, index + 1, min(day.day, calendar.monthrange(year, index + 1)[1]))


def date_bounds(body: dict, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(dateFrom, dateTo) of a body; BadRequest JOC-400 when dateFrom is not older."""
    zone = body.get("timeZone")
    start = end = None
    if "dateFrom" in body:
        start = resolve_date(body["dateFrom"], time_zone=zone, now=now, is_to=False)
    if "dateTo" in body:
        end = resolve_date(body["dateTo"], time_zone=zone, now=now, is_to=True)
    if start is not None and end is not None and start >= end:
        raise BadRequest("'dateFrom' must be older than 'dateTo'")
    return start, end


def in_folder(path: str, folder: str, recursive: bool) -> bool:
    """Whether the workflow at `path` lies in `folder` (or below it, when recursive)."""
    parent = path.rsplit("/", 1)[0] or "/"
    folder = folder.rstrip("/") or "/"
    if recursive:
        return folder == "/" or parent == folder or parent.startswith(folder + "/")
    return parent == folder


def targets(
    orders: dict[str, dict], body: dict, bounds: tuple[datetime | None, datetime | None]
) -> list[dict]:
    """The live orders a valid cancel body selects (bounds: date_bounds(body)), with their
    children when `deep`."""
    live = {oid: o for oid, o in orders.items() if o["state"] not in ENDED_STATES}
    if body.get("orderIds"):
        # "If this parameter is specified then workflowIds, folders and states are ignored."
        chosen = [live[oid] for oid in body["orderIds"] if oid in live]
    else:
        chosen = _filtered(list(live.values()), body, bounds)
    if body.get("deep"):
        chosen_ids = {o["orderId"] for o in chosen}
        prefixes = tuple(oid + "|" for oid in chosen_ids)
        chosen += [
            order
            for oid, order in live.items()
            if oid not in chosen_ids and prefixes and oid.startswith(prefixes)
        ]
    return chosen


def _filtered(chosen: list[dict], body: dict, bounds) -> list[dict]:
    if body.get("workflowIds"):  # beats folders
        wanted = [(w["path"], w.get("versionId")) for w in body["workflowIds"]]
        chosen = [o for o in chosen if _of_workflow(o, wanted)]
    elif body.get("folders"):
        chosen = [
            o
            for o in chosen
            if any(
                in_folder(o["workflowPath"], f["folder"], f.get("recursive", True))
                for f in body["folders"]
            )
        ]
    if body.get("states"):
        chosen = [o for o in chosen if o["state"] in body["states"]]
    start, end = bounds
    if start is not None:
        chosen = [o for o in chosen if _scheduled(o) >= start]
    if end is not None:
        chosen = [o for o in chosen if _scheduled(o) < end]
    return chosen


def cancel_orders(chosen: list[dict], *, kill: bool, account: str) -> tuple[list[str], list[dict]]:
    """Cancel the chosen orders (those seeded with `refuse` stay): (cancelled ids, refused)."""
    cancelled = []
    for order in chosen:
        if not order.get("refuse"):
            order.update(
                state="CANCELLED",
                cancelledBy=account,
                killed=kill and order["state"] in RUNNING_STATES,
            )
            cancelled.append(order["orderId"])
    return cancelled, [order for order in chosen if order.get("refuse")]


def refusals(refused: list[dict]) -> dict:
    """JOC's 419 body (errors419.resolved.json): one error per order it could not cancel."""
    errors = [
        {
            "code": "JOC-419",
            "message": f"{order['orderId']}: {order['refuse']}",
            "path": order["workflowPath"],
            "surveyDate": stamp(),
        }
        for order in refused
    ]
    return {"deliveryDate": stamp(), "errors": errors}


def _of_workflow(order: dict, wanted: list[tuple[str, str | None]]) -> bool:
    # A path may be given with or without its folders (JOC accepts the workflow's name).
    path, name = order["workflowPath"], order["workflowPath"].rsplit("/", 1)[-1]
    return any(
        p in (path, name) and (version is None or version == order.get("versionId"))
        for p, version in wanted
    )


def _scheduled(order: dict) -> datetime:
    return datetime.fromisoformat(order["scheduledFor"].replace("Z", "+00:00"))
