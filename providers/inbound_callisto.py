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

The request is read by providers.callisto_input; the OpenAPI description is
providers.callisto_openapi.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from backoffice.api import DATABASE_ERRORS, as_api_exception
from backoffice.authentication import BasicAuthentication, TokenAuthentication
from cancellations.models import AuditEntry, Cancellation, Order
from cancellations.ownership import NotYourCancellation
from cancellations.services import revoking, updating
from cancellations.states import CancellationStatus

from .callisto_input import (
    CallistoInput,
    FailedValidation,
    find_order,
    parse_input,
    render,
)
from .callisto_openapi import CANCEL_ID, DELETE, ERROR_SHAPES, PROBLEM_CONTENT_TYPE, documented

PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
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
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    503: "Service Unavailable",
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


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token, sent the OAuth2 way (`Authorization: Bearer …`) as Callisto's callers do.
    backoffice's classes: refused credentials count per address, a locked-out Basic is a 429."""

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
    if isinstance(exc, DATABASE_ERRORS):
        exc = as_api_exception(exc)  # a 503 with Retry-After, in this dialect too
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
        response = problem(exc.status_code, str(exc.detail))
        for name, value in api_exception_headers(exc).items():
            response[name] = value
    else:
        return None
    set_rollback()
    return response


def api_exception_headers(exc: exceptions.APIException) -> dict[str, str]:
    """A refused login's challenge; when to try again after a 429 or 503."""
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    return headers


class UntypedDeleteBodyIsJson(DefaultContentNegotiation):
    """A DELETE body without a Content-Type is read as JSON: the page documents only Accept
    for DELETE. Any other body still needs application/json (else 415)."""

    def select_parser(self, request, parsers):
        if request.method == "DELETE" and not request.content_type:
            return parsers[0]
        return super().select_parser(request, parsers)


@documented("callisto_cancel")
class CallistoCancelView(APIView):
    http_method_names = ["put", "delete"]  # also what `Allow` says on every answer
    authentication_classes = [
        BasicAuthentication,  # first: its challenge makes a missing credential a 401
        BearerTokenAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]
    # Parsed by REST_FRAMEWORK's default, backoffice.parsers.JSONParser (depth, size, …).
    renderer_classes = [JSONRenderer]
    content_negotiation_class = UntypedDeleteBodyIsJson
    via = AuditEntry.Via.CALLISTO
    name = gettext_lazy("Callisto cancel")
    error_shapes = ERROR_SHAPES

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
        # Create or update, decided by the service under the order's lock: the one named in
        # the URL is updated; the same Add again (a retry after a lost answer) returns what
        # the first one made (replay); otherwise a new cancellation.
        cancellation, _created = updating.upsert_cancellation(
            cancel_id, order=order, replay=True, canceled_time=parsed.canceled_time, **arguments
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


@documented("callisto_cancel_entity", parameters=[CANCEL_ID])
class CallistoCancelEntityView(CallistoCancelView):
    """The same with a cancellation id in the URL: `/callisto/cancel/{cancel_id}`."""
