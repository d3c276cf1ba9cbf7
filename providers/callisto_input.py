"""Reading a Callisto request (providers.inbound_callisto): its fields parsed and checked the
dialect's way, the order and reason it names, and the cancellation rendered back in its words.
Contract: docs/contracts/callisto/cancel.schema.json and NOTES.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.db.models import Prefetch, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, status

from backoffice.unknown_fields import unknown_fields
from cancellations.external_ids import CALLISTO
from cancellations.models import Cancellation, Order
from cancellations.services import updating
from reasons.models import CancellationReason, ReasonMapping
from reasons.services import mapped_reason

from .callisto import callisto_date, callisto_time_zone, callisto_timestamp
from .callisto_openapi import ADD, DELETE
from .contracts import schema

# Exactly the fields of the seed's table.
KNOWN_FIELDS = tuple(schema("callisto/cancel.schema.json")["properties"])


class FailedValidation(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "Failed Validation"

    def __init__(self, messages: dict, status_code: int = 422):
        super().__init__("Failed Validation")
        self.messages = messages
        self.status_code = status_code


@dataclass
class CallistoInput:
    action: str
    callisto_id: str | None
    churn_time: datetime | None = None
    canceled_time: datetime | None = None
    reason: CancellationReason | None = None
    user_id: str = ""
    fingerprint: str = ""


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _required():
    return {"isEmpty": _("Value is required and can't be empty")}


def _parse_id(value, errors) -> str | None:
    if _is_empty(value):
        errors["Id"] = _required()
        return None
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    # ASCII digits, and the length before int(): "²" and 100,000 digits are not ids (int() of
    # either raised ValueError, a 500).
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        errors["Id"] = {"notDigits": _("The input must contain only digits")}
        return None
    return str(int(text))


def parse_moment(value):
    """A date (`Y-m-d`) or a date-time (`Y-m-d H:i:s`, ISO 8601); without a zone it is
    Callisto's (CALLISTO_TIME_ZONE)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=callisto_time_zone())


def effective_time(moment, now: datetime) -> datetime | None:
    """Today or earlier means now (None); a later day means 00:00 of that day in Callisto's
    zone."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC) if moment > now else None
    zone = callisto_time_zone()
    if moment > now.astimezone(zone).date():
        return datetime.combine(moment, time.min, tzinfo=zone).astimezone(UTC)
    return None


def find_reason(text: str) -> CancellationReason | None:
    """The reason whose Callisto mapping, else whose subject (in any language), is `text`,
    ignoring case. Mappings win over subjects and active reasons over retired ones.

    Compared in Python with casefold(): SQLite's case-insensitive match is ASCII-only, and the
    subjects are German and Turkish. The catalog is small (two queries)."""
    wanted = text.strip().casefold()
    reasons = CancellationReason.objects.prefetch_related(
        Prefetch("mappings", queryset=ReasonMapping.objects.filter(provider_kind=CALLISTO))
    ).order_by("-is_active", "ordering", "id")
    by_subject = None
    for reason in reasons:
        if any(m.value.strip().casefold() == wanted for m in reason.mappings.all()):
            return reason
        subjects = (reason.subject, reason.subject_de, reason.subject_en, reason.subject_tr)
        if by_subject is None and any(s and s.strip().casefold() == wanted for s in subjects):
            by_subject = reason
    return by_subject


def parse_input(data: dict, *, method: str, cancel_id: str | None) -> CallistoInput:
    errors: dict[str, dict[str, str]] = {
        name: {"unknownField": message}
        for name, message in unknown_fields(data, KNOWN_FIELDS).items()
    }
    default_action = DELETE if method == "DELETE" else ADD
    raw_action = data.get("Action")
    action = default_action if _is_empty(raw_action) else str(raw_action).strip().capitalize()
    if action not in (ADD, DELETE) or (method == "DELETE" and action != DELETE):
        allowed = "Delete" if method == "DELETE" else "Add, Delete"
        errors["Action"] = {
            "notInArray": _("Use one of: %(allowed)s.") % {"allowed": allowed},
        }

    callisto_id = None
    if action == DELETE and cancel_id and _is_empty(data.get("Id")):
        pass  # the cancellation is named in the URL
    else:
        callisto_id = _parse_id(data.get("Id"), errors)

    user_id = data.get("UserId")
    if not _is_empty(user_id) and (not isinstance(user_id, str | int) or len(str(user_id)) > 64):
        errors["UserId"] = {"stringLengthTooLong": _("Use a Salesforce user id (≤ 64 characters).")}
    user_id = "" if _is_empty(user_id) else str(user_id).strip()

    parsed = CallistoInput(action=action, callisto_id=callisto_id, user_id=user_id)
    if action == ADD and "Action" not in errors:
        _parse_add_fields(data, parsed, errors)
    if errors:
        raise FailedValidation(errors)
    parsed.fingerprint = updating.request_fingerprint(
        {
            "dialect": "callisto",
            "Id": callisto_id,
            "cancelId": cancel_id,
            **{k: data.get(k) for k in ("CancelDate", "CancelTimestamp", "CancelReason", "UserId")},
        }
    )
    return parsed


def _parse_add_fields(data: dict, parsed: CallistoInput, errors: dict) -> None:
    if not parsed.user_id and "UserId" not in errors:
        errors["UserId"] = _required()

    raw_date = data.get("CancelDate")
    moment = parse_moment(raw_date)
    if _is_empty(raw_date):
        errors["CancelDate"] = _required()
    elif moment is None:
        errors["CancelDate"] = {
            "dateInvalidDate": _("Give a date as Y-m-d (or a date and time as Y-m-d H:i:s).")
        }
    else:
        parsed.churn_time = effective_time(moment, timezone.now())

    raw_stamp = data.get("CancelTimestamp")
    stamp = parse_moment(raw_stamp)
    if _is_empty(raw_stamp):
        errors["CancelTimestamp"] = _required()
    elif not isinstance(stamp, datetime):
        errors["CancelTimestamp"] = {
            "dateFalseFormat": _("The input does not fit the date format 'Y-m-d H:i:s'")
        }
    else:
        parsed.canceled_time = stamp.astimezone(UTC)

    raw_reason = data.get("CancelReason")
    if _is_empty(raw_reason):
        errors["CancelReason"] = _required()
    elif not isinstance(raw_reason, str) or len(raw_reason) > 255:
        errors["CancelReason"] = {"stringInvalid": _("Give the reason as text (≤ 255 characters).")}
    else:
        parsed.reason = find_reason(raw_reason.strip())
        if parsed.reason is None:
            errors["CancelReason"] = {
                "notInArray": _("Unknown cancellation reason “%(reason)s”.")
                % {"reason": raw_reason.strip()}
            }


def find_order(callisto_id: str) -> Order:
    order = (
        Order.objects.filter(
            Q(external_ids__callisto=callisto_id) | Q(external_ids__callisto=int(callisto_id))
        )
        .order_by("-placed_at", "-id")
        .first()
    )
    if order is None:
        raise Http404(_("No order with Callisto id %(id)s.") % {"id": callisto_id})
    return order


def render(cancellation: Cancellation, callisto_id: str) -> dict:
    return {
        "CancelId": cancellation.pk,
        "Id": int(callisto_id),
        "CancelDate": callisto_date(cancellation.churn_time),
        "CancelTimestamp": callisto_timestamp(cancellation.canceled_time),
        "CancelReason": mapped_reason(cancellation.reason, CALLISTO),
        "UserId": cancellation.external_user_id,
        "Action": ADD,
        "Status": cancellation.status,
        "EffectiveAt": cancellation.churn_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
