"""Reading a bulk cancellation's filter: `parse_order_filter(data)` takes JOC's camelCase dict,
as an API body gives it, and returns a frozen OrderFilter (cancellations.order_filter) or
raises CancellationError naming the offending field (`dateFrom`, `folders.0.folder`,
`auditLog.timeSpent`…). Unknown keys are refused (see order_filter)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone as dj_timezone
from django.utils.translation import gettext as _

from .audit import AuditInfo
from .errors import CancellationError
from .filter_dates import date_formats_help, get_zone, resolve_date
from .order_filter import (
    AUDIT_KEYS,
    AUDIT_TEXT_MAX,
    FOLDER_KEYS,
    FOLDER_RE,
    KNOWN_KEYS,
    MAX_ORDER_REFS,
    ORDER_NUMBER_MAX,
    STATE_ALIASES,
    STORNO_STATES,
    TIME_SPENT_MAX,
    DateBound,
    FolderFilter,
    OrderFilter,
)


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
        folder = _parse_folder(item, f"folders.{index}", errors)
        if folder is not None:
            folders.append(folder)
    return tuple(folders)


def _parse_folder(item, key: str, errors) -> FolderFilter | None:
    if isinstance(item, str):  # liberal: a bare path means that folder, recursively
        item = {"folder": item}
    if not isinstance(item, Mapping):
        errors[key] = _('Use an object like {"folder": "/shop/de", "recursive": true}.')
        return None
    for extra in item:
        if extra not in FOLDER_KEYS:
            errors[f"{key}.{extra}"] = _("Unknown field. Known: folder, recursive.")
    folder = item.get("folder")
    if not isinstance(folder, str) or not folder.strip():
        errors[f"{key}.folder"] = _("Enter an absolute folder path like /shop/de.")
        return None
    folder = folder.strip()
    if len(folder) > 1:
        folder = folder.rstrip("/") or "/"
    if len(folder) > AUDIT_TEXT_MAX or not FOLDER_RE.match(folder):
        errors[f"{key}.folder"] = _(
            "Use an absolute folder path like /shop/de "
            '(at most 255 characters, none of \\ < > ? : " | *).'
        )
        return None
    recursive = item.get("recursive", True)
    if recursive is None:
        recursive = True
    if not isinstance(recursive, bool):
        errors[f"{key}.recursive"] = _("Must be true or false.")
        return None
    return FolderFilter(folder=folder, recursive=recursive)


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
