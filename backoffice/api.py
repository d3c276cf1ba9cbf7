"""What every Storno API endpoint shares: paging and the one error shape.

Every error is an RFC 7807 problem object (media type application/problem+json):

    {"type": "urn:storno:problem:invalid-input", "title": "Invalid input", "status": 400,
     "detail": "orderId: No order with this id.",
     "invalidFields": [{"field": "orderId", "message": "No order with this id.", "code": "..."}]}

`invalidFields` uses the API's own field names with dot notation for nested values
(`lineItems.0.quantity`), like Rebilly's 422 bodies. A view may set `invalid_input_status`
(Rebilly's upsert: 422 instead of 400) and `problem_instance` (add RFC 7807's `instance`).
"""

import logging
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import set_rollback

# The one parser of every endpoint, re-exported for the views that name it.
from .parsers import JSONParser as JSONParser
from .parsers import PayloadTooLarge
from .unknown_fields import UNKNOWN_FIELD

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
NON_FIELD = "__all__"
# A service's ValidationError with this code refuses the caller: 403 (cancellations/errors.py).
FORBIDDEN = "forbidden"
# A lost or refused database connection: the request is answered 503, and clients are told when
# to try again. The service's transaction was rolled back, so a retry (with the same
# Idempotency-Key, if it had one) is safe.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SECONDS = 5


class Pagination(LimitOffsetPagination):
    """`limit`/`offset` as Rebilly pages, in the usual count/next/previous/results envelope.
    `page_size`, the name most other APIs use (Akinon's too), is read as `limit`; both are
    capped at max_limit, and a value that is no positive whole number is refused."""

    default_limit = 50
    max_limit = 500
    page_size_query_param = "page_size"

    def get_limit(self, request):
        for name in (self.limit_query_param, self.page_size_query_param):
            raw = request.query_params.get(name)
            if raw is None:
                continue
            if not raw.strip().isdigit() or int(raw) < 1:
                raise exceptions.ValidationError(
                    {name: [_("Use a whole number of at least 1.")]}, code="invalid_parameter"
                )
            return min(int(raw), self.max_limit)
        return self.default_limit

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return [
            *parameters,
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"The same as limit (which wins when both are given); at most "
                f"{self.max_limit}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state of the resource.")
    default_code = "conflict"


class TooManyFields(exceptions.ParseError):
    default_detail = _("The request has too many parameters or fields.")
    default_code = "too_many_fields"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The database can't be reached right now. Try again in a few seconds.")
    default_code = "service_unavailable"
    wait = DATABASE_RETRY_AFTER_SECONDS


_TITLES = {
    400: _("Invalid input"),
    401: _("Not authenticated"),
    403: _("Permission denied"),
    404: _("Not found"),
    405: _("Method not allowed"),
    406: _("Not acceptable"),
    409: _("Conflict"),
    413: _("Request too large"),
    414: _("URI too long"),
    415: _("Unsupported media type"),
    422: _("Validation error"),
    429: _("Too many requests"),
    503: _("Service unavailable"),
}
_TYPES = {400: "invalid-input", 409: "conflict", 422: "invalid-input", 503: "service-unavailable"}
TYPE_PREFIX = "urn:storno:problem:"

# A service error's code that says the input is fine but what it names is not in a state to
# take it: 409, each code with its own stable type (docs/problem-types.md). The quote's
# refusals are cancellations.services.refusals.Refusal; "exists already" is a conflict too.
CONFLICT_TYPES = {
    "duplicate": "conflict",
    "conflict": "conflict",
    "nothing_left": "nothing-left-to-cancel",
    "order_not_cancellable": "order-not-cancellable",
    "in_progress": "order-in-progress",
    "already_cancelled": "item-already-cancelled",
    "already_scheduled": "item-already-scheduled",
    "not_enough_left": "not-enough-left",
    "settlement_blocked": "settlement-item-blocks",
    "not_revocable": "cancellation-not-revocable",
    "not_changeable": "cancellation-not-changeable",
}
# Of those, the ones a dialect may answer as invalid input (Rebilly's PUT lists no 409).
STATE_CONFLICTS = frozenset(CONFLICT_TYPES) - {"duplicate"}


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def flatten_errors(detail, prefix: str = "", rename=None) -> list[dict]:
    """Turn DRF's nested error detail into [{field, message, code}] with dot paths."""
    rename = rename or {}
    found = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            if key in (NON_FIELD, "non_field_errors"):
                name = prefix.rstrip(".")
            elif _is_unknown_field(value):
                name = prefix + key  # named as sent: `placed_at` is not `placedTime`
            else:
                name = prefix + (rename.get(key, key) if prefix else api_field_path(key, rename))
            found += flatten_errors(value, name + "." if name else "", rename)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            for item in detail:
                found.append(_field_error(prefix.rstrip("."), item))
        else:
            for index, item in enumerate(detail):
                if item:
                    found += flatten_errors(item, f"{prefix}{index}.", rename)
    else:
        found.append(_field_error(prefix.rstrip("."), detail))
    return found


# Errors about a name the client chose (an unknown field, a query parameter) name it as sent.
NAMED_AS_SENT = {UNKNOWN_FIELD, "invalid_parameter"}


def _is_unknown_field(errors) -> bool:
    return (
        isinstance(errors, list)
        and bool(errors)
        and all(getattr(error, "code", None) in NAMED_AS_SENT for error in errors)
    )


def api_field_path(key: str, rename) -> str:
    """A service's dotted key in the API's words, segment by segment:
    `lines.0.unit_price_currency` → `lineItems.0.unitPriceCurrency` with {"lines": "lineItems"}."""
    if key in rename:
        return rename[key]
    return ".".join(rename.get(part, camel_case(part)) for part in key.split("."))


def _field_error(field: str, message) -> dict:
    code = getattr(message, "code", None) or "invalid"
    return {"field": field or NON_FIELD, "message": str(message), "code": code}


def django_validation_detail(error: DjangoValidationError):
    """A Django ValidationError as DRF-style detail, keeping the codes."""
    # ValidationError({field: "text"}, code=...) keeps its code only in args: hand it down to
    # the messages that have none.
    outer_code = error.args[1] if len(error.args) > 1 else None
    if hasattr(error, "error_dict"):
        return {
            field: [
                exceptions.ErrorDetail(m, code=e.code or outer_code)
                for e in errs
                for m in e.messages
            ]
            for field, errs in error.error_dict.items()
        }
    return [
        exceptions.ErrorDetail(m, code=e.code or outer_code)
        for e in error.error_list
        for m in e.messages
    ]


def problem_body(status_code: int, detail: str, invalid_fields=None, type_=None) -> dict:
    type_ = type_ or _TYPES.get(status_code, f"http-{status_code}")
    body = {
        "type": TYPE_PREFIX + type_,
        "title": str(_TITLES.get(status_code, _("Error"))),
        "status": status_code,
        "detail": detail,
    }
    if invalid_fields is not None:
        body["invalidFields"] = invalid_fields
    return body


def problem_response(
    status_code: int, detail: str, invalid_fields=None, headers=None, type_=None
) -> Response:
    body = problem_body(status_code, detail, invalid_fields, type_)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def parse_error_response(exc: exceptions.ParseError, headers) -> Response:
    """400 naming the body as a whole, or the value backoffice.parsers found wrong, as sent."""
    field = getattr(exc, "field", None) or NON_FIELD
    message = getattr(exc, "message", None) or str(exc.detail)
    invalid = [{"field": field, "message": message, "code": "parse_error"}]
    return problem_response(exc.status_code, str(exc.detail), invalid, headers)


def as_api_exception(exc):
    """Django's own errors (and a lost database) as the DRF exceptions that answer them."""
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(django_validation_detail(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return TooManyFields()
    if isinstance(exc, DATABASE_ERRORS):
        logger.warning("Database unavailable, answering 503: %s", exc, exc_info=exc)
        return DatabaseUnavailable()
    return exc


def validation_error_response(exc: exceptions.ValidationError, view, headers) -> Response:
    invalid = flatten_errors(exc.detail, rename=getattr(view, "error_field_names", None) or {})
    summary = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] != NON_FIELD else e["message"]
        for e in invalid
    )
    if invalid and all(e["code"] == FORBIDDEN for e in invalid):
        # A service refused the caller, not the input (cancellations/ownership.py).
        return problem_response(status.HTTP_403_FORBIDDEN, summary, None, headers)
    # A dialect answering invalid input otherwise (Rebilly's upsert: 422) says so.
    invalid_status = getattr(view, "invalid_input_status", exc.status_code)
    conflict = conflict_type(invalid, view)
    if conflict:
        return problem_response(status.HTTP_409_CONFLICT, summary, invalid, headers, conflict)
    return problem_response(invalid_status, summary, invalid, headers)


def conflict_type(invalid: list[dict], view) -> str | None:
    """The type of a 409 when nothing but the state is wrong (every code a conflict; the
    first field's names it), else None. A view with `state_conflicts_are_invalid_input`
    answers the state conflicts as invalid input: its dialect has no 409 for them."""
    codes = [e["code"] for e in invalid]
    if not codes or not all(code in CONFLICT_TYPES for code in codes):
        return None
    if getattr(view, "state_conflicts_are_invalid_input", False) and any(
        code in STATE_CONFLICTS for code in codes
    ):
        return None
    return CONFLICT_TYPES[codes[0]]


def problem_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every known error becomes a problem object, never a 500."""
    view = context.get("view")
    exc = as_api_exception(exc)
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ParseError):
        response = parse_error_response(exc, headers)
    elif isinstance(exc, exceptions.ValidationError):
        response = validation_error_response(exc, view, headers)
    else:
        response = problem_response(exc.status_code, str(exc.detail), None, headers)
    request = context.get("request")
    if getattr(view, "problem_instance", False) and request is not None:
        response.data["instance"] = request.path  # RFC 7807's instance, which Rebilly sends
    set_rollback()
    return response


_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()
