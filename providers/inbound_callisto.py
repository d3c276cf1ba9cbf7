"""Storno speaking Callisto's dialect, for Salesforce flows written for Callisto.

Contract: docs/contracts/seeds/000_75d496570d9fe2c2.txt, docs/contracts/callisto/NOTES.md and
its fields as JSON Schema, docs/contracts/callisto/cancel.schema.json (the fields accepted here).

    PUT    /callisto/cancel[/{cancel_id}]   Action "Add" (default): cancel the order → 200 + JSON
    DELETE /callisto/cancel[/{cancel_id}]   Action "Delete": revoke its cancellation → 204

Fields (PascalCase, as Callisto's callers send them): Id (the order's Callisto id), CancelDate
(today or earlier: now; a later day: 00:00 of that day), CancelTimestamp (`Y-m-d H:i:s`, when
the cancellation was entered: kept as its canceled time), CancelReason (a reason's Callisto
mapping or its subject), UserId (the Salesforce user id), Action. Dates and times without a
zone are Callisto's, in CALLISTO_TIME_ZONE (Europe/Berlin by default). Any other field is
refused. Errors are Laminas API Tools problem objects (application/problem+json); a failed
validation is 422 {type, title, status, detail: "Failed Validation", validation_messages:
{Field: {rule: msg}}}. Every answer carries `Allow: PUT, DELETE`. A DELETE needs no
Content-Type (the page documents only Accept for it): its body is read as JSON. Like every
other entry point it only parses and calls cancellations.services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import (
    BasicAuthentication,
    SessionAuthentication,
    TokenAuthentication,
)
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from backoffice.unknown_fields import unknown_fields
from cancellations.external_ids import CALLISTO
from cancellations.models import AuditEntry, Cancellation, Order
from cancellations.ownership import NotYourCancellation
from cancellations.services import revoking, updating, writing
from cancellations.states import CancellationStatus
from reasons.models import CancellationReason, ReasonMapping
from reasons.services import mapped_reason

from .callisto import callisto_date, callisto_time_zone, callisto_timestamp
from .contracts import schema

# Exactly the fields of the seed's table.
KNOWN_FIELDS = tuple(schema("callisto/cancel.schema.json")["properties"])
PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
ADD, DELETE = "Add", "Delete"
ADD_PERMISSION = "cancellations.cancel_order"
DELETE_PERMISSION = "cancellations.revoke_cancellation"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}
# The services' argument names in Callisto's words.
FIELD_NAMES = {
    "order": "Id",
    "items": "Id",
    "reason": "CancelReason",
    "description": "CancelReason",
    "churn_time": "CancelDate",
    "churn_time_policy": "CancelDate",
    "canceled_time": "CancelTimestamp",
    "external_user_id": "UserId",
    "id": "cancel_id",
    "status": "Action",
    "comment": "Action",
}


class FailedValidation(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "Failed Validation"

    def __init__(self, messages: dict, status_code: int = 422):
        super().__init__("Failed Validation")
        self.messages = messages
        self.status_code = status_code


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token, sent the OAuth2 way (`Authorization: Bearer …`) as Callisto's callers do."""

    keyword = "Bearer"


def problem_body(status_code: int, detail: str, **extra) -> dict:
    return {
        "type": PROBLEM_TYPE,
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        **extra,
    }


def problem(status_code: int, detail: str, **extra) -> Response:
    body = problem_body(status_code, detail, **extra)
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def validation_messages(error: DjangoValidationError) -> dict:
    """A service's CancellationError as {CallistoField: {code: message}}."""
    messages: dict[str, dict[str, str]] = {}
    items = error.error_dict.items() if hasattr(error, "error_dict") else [("", error.error_list)]
    for field, errors in items:
        name = FIELD_NAMES.get(field.split(".")[0], field or "Id")
        for item in errors:
            for text in item.messages:
                messages.setdefault(name, {})[item.code or "invalid"] = text
    return messages


def callisto_exception_handler(exc, context):
    """Every error as a Laminas problem object; unknown exceptions still reach Django."""
    headers = {}
    if isinstance(exc, FailedValidation):
        response = problem(
            exc.status_code, _("Failed Validation"), validation_messages=exc.messages
        )
    elif isinstance(exc, NotYourCancellation):
        response = problem(403, " ".join(exc.messages))
    elif isinstance(exc, DjangoValidationError):
        codes = {e.code for errors in getattr(exc, "error_dict", {}).values() for e in errors}
        status_code = 409 if codes == {"duplicate"} else 422
        response = problem(
            status_code, _("Failed Validation"), validation_messages=validation_messages(exc)
        )
    elif isinstance(exc, Http404):
        response = problem(404, str(exc) or _("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        response = problem(403, _("You do not have permission to perform this action."))
    elif isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        response = problem(exc.status_code, str(exc.detail))
    else:
        return None
    for name, value in headers.items():
        response[name] = value
    set_rollback()
    return response


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
    if not text.isdigit() or int(text) < 1 or len(text) > 18:
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


# --- OpenAPI description (the parsing above is by hand: Callisto's errors have their own shape) --


class CallistoCancelInput(serializers.Serializer):
    Id = serializers.IntegerField(help_text=gettext_lazy("The order's id in Callisto."))
    CancelDate = serializers.CharField(
        help_text=gettext_lazy(
            "Y-m-d in CALLISTO_TIME_ZONE. Today or earlier: effective now; a later day: "
            "scheduled for 00:00 of that day."
        )
    )
    CancelTimestamp = serializers.CharField(
        help_text=gettext_lazy(
            "When it was entered, Y-m-d H:i:s in CALLISTO_TIME_ZONE: the cancellation's "
            "canceled time."
        )
    )
    CancelReason = serializers.CharField(
        help_text=gettext_lazy("A reason's Callisto mapping or its subject.")
    )
    UserId = serializers.CharField(help_text=gettext_lazy("The Salesforce user id."))
    Action = serializers.ChoiceField(
        choices=[ADD, DELETE],
        required=False,
        help_text=gettext_lazy("Add (default for PUT) cancels; Delete removes the cancellation."),
    )


class CallistoCancelOutput(serializers.Serializer):
    CancelId = serializers.CharField()
    Id = serializers.IntegerField()
    CancelDate = serializers.DateField()
    CancelTimestamp = serializers.CharField()
    CancelReason = serializers.CharField()
    UserId = serializers.CharField()
    Action = serializers.CharField()
    Status = serializers.ChoiceField(choices=CancellationStatus.choices)
    EffectiveAt = serializers.DateTimeField()


class LaminasProblem(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    validation_messages = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()),
        required=False,
        help_text=gettext_lazy("422 only: {Field: {rule: message}}."),
    )


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


def _problem(description):
    return OpenApiResponse(LaminasProblem, description=description)


ERRORS = {
    (400, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The body is not valid JSON.")),
    (401, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("No or wrong credentials.")),
    (403, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The user lacks the permission.")),
    (404, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("No order with this Callisto id.")),
    (406, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The Accept header rules out JSON.")),
    (415, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The body is not application/json.")),
    (422, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("Failed Validation.")),
}


def _documented(prefix: str, parameters=()):
    return extend_schema_view(
        put=extend_schema(
            operation_id=f"{prefix}_put",
            tags=["callisto"],
            summary=gettext_lazy("Cancel an order (Action Add) — Callisto's dialect"),
            parameters=list(parameters),
            request=CallistoCancelInput,
            responses={200: CallistoCancelOutput, 204: None, **ERRORS},
        ),
        delete=extend_schema(
            operation_id=f"{prefix}_delete",
            tags=["callisto"],
            summary=gettext_lazy("Remove an order's cancellation — Callisto's dialect"),
            parameters=list(parameters),
            request=CallistoCancelInput,
            responses={204: None, **ERRORS},
        ),
    )


CANCEL_ID = OpenApiParameter(
    "cancel_id",
    str,
    OpenApiParameter.PATH,
    description=gettext_lazy("A Storno cancellation id (≤ 50 of letters, digits, @ ~ - . _)."),
)


class UntypedDeleteBodyIsJson(DefaultContentNegotiation):
    """A DELETE body without a Content-Type is read as JSON: the page documents only Accept
    for DELETE. Any other body still needs application/json (else 415)."""

    def select_parser(self, request, parsers):
        if request.method == "DELETE" and not request.content_type:
            return parsers[0]
        return super().select_parser(request, parsers)


@_documented("callisto_cancel")
class CallistoCancelView(APIView):
    http_method_names = ["put", "delete"]  # also what `Allow` says on every answer
    authentication_classes = [
        BasicAuthentication,  # first: its challenge makes a missing credential a 401
        BearerTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = UntypedDeleteBodyIsJson
    via = AuditEntry.Via.CALLISTO
    name = gettext_lazy("Callisto cancel")

    def get_exception_handler(self):
        return callisto_exception_handler

    def _data(self, request) -> dict:
        data = request.data  # raises 415 / 400 for a body that isn't JSON
        if not isinstance(data, dict):
            raise exceptions.ParseError(_("Send a JSON object."))
        return data

    def _require(self, request, permission: str) -> None:
        if not request.user.has_perm(permission):
            raise exceptions.PermissionDenied()

    def put(self, request, cancel_id: str | None = None):
        parsed = parse_input(self._data(request), method="PUT", cancel_id=cancel_id)
        if parsed.action == DELETE:
            return self._delete(request, parsed, cancel_id)
        self._require(request, ADD_PERMISSION)
        order = find_order(parsed.callisto_id)
        arguments = {
            "reason": parsed.reason,
            "actor": request.user,
            "via": self.via,
            "churn_time": parsed.churn_time,
            "external_user_id": parsed.user_id,
            "request_fingerprint": parsed.fingerprint,
        }
        existing = Cancellation.objects.filter(pk=cancel_id).first() if cancel_id else None
        if existing is not None:
            cancellation, _changed = updating.update_cancellation(
                existing, order=order, **arguments
            )
        else:
            # The same Add again (a retry after a lost answer) returns what the first one made.
            cancellation = order.cancellations.filter(
                status__in=CancellationStatus.active, request_fingerprint=parsed.fingerprint
            ).first()
            if cancellation is None:
                cancellation = writing.cancel_order(
                    order,
                    cancellation_id=cancel_id,
                    canceled_time=parsed.canceled_time,
                    **arguments,
                )
        return Response(render(cancellation, parsed.callisto_id))

    def delete(self, request, cancel_id: str | None = None):
        parsed = parse_input(self._data(request), method="DELETE", cancel_id=cancel_id)
        return self._delete(request, parsed, cancel_id)

    def _delete(self, request, parsed: CallistoInput, cancel_id: str | None):
        self._require(request, DELETE_PERMISSION)
        order = find_order(parsed.callisto_id) if parsed.callisto_id else None
        cancellation = self._cancellation_to_revoke(order, cancel_id)
        if cancellation is not None:
            revoking.revoke_cancellation(cancellation, actor=request.user, via=self.via)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _cancellation_to_revoke(self, order: Order | None, cancel_id: str | None):
        """The cancellation named in the URL, else the order's one active cancellation.
        None when it is revoked already: removing it twice is not an error."""
        if cancel_id:
            cancellation = Cancellation.objects.filter(pk=cancel_id).first()
            if cancellation is None or (order is not None and cancellation.order_id != order.pk):
                raise Http404(_("No cancellation %(id)s for this order.") % {"id": cancel_id})
            return None if cancellation.status == CancellationStatus.REVOKED else cancellation
        active = list(order.cancellations.filter(status__in=CancellationStatus.active)[:2])
        if len(active) > 1:
            raise FailedValidation(
                {
                    "Id": {
                        "ambiguous": _("The order has several cancellations: name one in the URL.")
                    }
                }
            )
        if active:
            return active[0]
        if order.cancellations.filter(status=CancellationStatus.REVOKED).exists():
            return None
        raise Http404(_("Order %(number)s has no cancellation.") % {"number": order.number})


@_documented("callisto_cancel_entity", parameters=[CANCEL_ID])
class CallistoCancelEntityView(CallistoCancelView):
    """The same with a cancellation id in the URL: `/callisto/cancel/{cancel_id}`."""
