"""POST /api/v1/orders/cancel/: JS7 JOC's /orders/cancel for Storno's orders, as a bulk job.

The view reads JOC's body and answers in JOC's shapes through api/joc.py; the job it starts is
read at /bulk-cancellations/ (api/bulk.py). Its docstring maps JOC's fields onto Storno's.
"""

from django.utils import timezone
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from backoffice.openapi import ErrorShape

from .. import bulk
from ..errors import CancellationError
from ..models import AuditEntry
from .bulk import BULK_ERROR_FIELDS, JOB_EXAMPLE, CanRunBulkCancellations, find_job
from .bulk_serializers import (
    BulkCancellationFieldsSerializer,
    BulkCancellationSerializer,
    BulkCancelRequestSerializer,
    BulkPreviewSerializer,
    JocErrorSerializer,
    JocJobSerializer,
    JocPreviewSerializer,
    JocSecuritySerializer,
    bulk_cancellation_url,
)
from .joc import (
    INVALID,
    NO_ORDERS,
    NO_ORDERS_MESSAGE,
    JocError,
    cancellation_error,
    joc_error_response,
    joc_ok,
    read_joc_body,
    security_response,
)
from .views import WRITE_ERRORS, JsonApiView, location

JSON = "application/json"
AUTH_ERRORS = (
    exceptions.NotAuthenticated,
    exceptions.AuthenticationFailed,
    exceptions.PermissionDenied,
)
JOC_OK = {
    "deliveryDate": "2026-05-02T08:00:00.000Z",
    "surveyDate": "2026-05-02T08:00:00.000Z",
    "ok": True,
}


JOC_REQUEST = OpenApiExample(
    "Yesterday's orders of the German shop (JOC style)",
    request_only=True,
    value={
        "controllerId": "storno",
        "folders": [{"folder": "/shop/de", "recursive": True}],
        "states": ["PENDING", "SUSPENDED", "FAILED"],
        "dateFrom": "1d",
        "dateTo": "0d",
        "timeZone": "Europe/Berlin",
        "reasonId": 3,
        "description": "Payment provider outage",
        "canceledBy": "merchant",
        "dryRun": True,
        "auditLog": {
            "comment": "Operational requirement!",
            "timeSpent": 2,
            "ticketLink": "https://tickets.example/OPS-17",
        },
    },
)
ORDER_IDS_REQUEST = OpenApiExample(
    "These orders, effective at the end of the month",
    request_only=True,
    value={
        "controllerId": "storno",
        "orderIds": [4711, "ORD-000815"],
        "reasonId": 3,
        "churnTime": "2026-05-31T23:59:59+02:00",
        "auditLog": {"comment": "Asked by the customers", "timeSpent": 5},
    },
)
PREVIEW_RESPONSE = OpenApiExample(
    "Dry run",
    response_only=True,
    status_codes=["200"],
    value={
        **JOC_OK,
        "dryRun": True,
        "total": 3,
        "toCancel": 2,
        "toSkip": 1,
        "byStatus": {"open": 1, "on_hold": 1, "completed": 1},
        "sample": [
            {
                "id": 4711,
                "number": "ORD-004711",
                "channel": "/shop/de",
                "status": "open",
                "placedTime": "2026-05-01T09:30:00Z",
                "skipReason": None,
            },
            {
                "id": 4702,
                "number": "ORD-004702",
                "channel": "/shop/de/b2b",
                "status": "completed",
                "placedTime": "2026-05-01T07:12:00Z",
                "skipReason": "The order is completed and can't be cancelled.",
            },
        ],
        "missingOrderIds": [],
        "ignored": [
            {"field": "controllerId", "reason": "Storno has one order store."},
            {"field": "states.2", "reason": "No Storno order is ever FAILED."},
        ],
    },
)
QUEUED_RESPONSE = OpenApiExample(
    "The job, queued",
    response_only=True,
    status_codes=["202"],
    value={
        **JOC_OK,
        **JOB_EXAMPLE,
        "ignored": [{"field": "controllerId", "reason": "Storno has one order store."}],
        "status": "queued",
        "total": 0,
        "processed": 0,
        "cancelled": 0,
        "skipped": 0,
        "progressPercent": 0,
        "startedTime": None,
        "finishedTime": None,
        "failures": [],
    },
)


class OrdersCancelView(JsonApiView):
    """JS7 JOC's POST /joc/api/orders/cancel for Storno's orders, as a bulk job (api/joc.py).

    JOC's fields (docs/contracts/js7/cancelOrders.resolved.json) on Storno's orders:
      controllerId   required as in JOC; ignored (Storno has one order store)
      orderIds       order numbers (JOC's strings) or Storno order ids (integers, Storno's
                     extension); given, they alone select, the other selecting fields are
                     listed as ignored
      workflowIds    Storno's orders belong to no JS7 workflow: nothing matches (JOC-161; a dry
                     run counts 0); folders given with them are ignored, as in JOC
      folders        Order.channel, recursive by default
      states         JOC's names for Storno's statuses (order_filter.STATE_ALIASES); FAILED,
                     BROKEN and UNKNOWN match no Storno order and are listed as ignored
      dateFrom/To    Order.placed_at, timeZone beating offsets (order_filter.py)
      orderType      ignored: `kill` decides whether orders in progress are cancelled
      kill, deep     also orders in progress; also child orders
      auditLog       kept on the job and on every audit entry and cancellation it writes, and
                     passed on to JS7 by the JS7 adapter
    Storno's extras beside them: reasonId (required), description, churnTime, prorated,
    canceledBy, dryRun.

    Answers: 200 (dryRun) or 202 (job queued, Location) with JOC's ok keys {deliveryDate,
    surveyDate, ok: true} plus Storno's additions: the preview or the job, and `ignored`
    [{field, reason}]. JOC's ok schema forbids additions, so a client validating the answer
    strictly against it would refuse them; only a caller speaking Storno (reasonId) gets
    here. Errors are JOC's 420 {deliveryDate, error: {code, message}}: JOC-420 for input the
    schema or Storno refuses (every field named in the message), JOC-400 for dateFrom not older
    than dateTo, JOC-161 "No orders found." when no order matches; 401/403 in JOC's security
    shape {isAuthenticated, isPermitted, message}.
    """

    serializer_class = BulkCancelRequestSerializer
    permission_classes = [CanRunBulkCancellations]
    throttle_scope = "bulk-cancel"  # a stricter rate of its own (REST_FRAMEWORK's throttles)
    # Invalid input and refusals are JOC's 420s: a 400 or 409 comes only from the
    # Idempotency-Key (backoffice.idempotency documents those); 401/403 in JOC's own shape.
    error_shapes = {
        400: None,
        409: None,
        401: ErrorShape(JocSecuritySerializer, JSON),
        403: ErrorShape(JocSecuritySerializer, JSON),
    }

    @extend_schema(
        operation_id="orders_cancel",
        summary=gettext_lazy("Cancel every order a JOC-style filter selects (a bulk job)"),
        description=gettext_lazy(
            "JS7 JOC's /orders/cancel body (controllerId, orderIds, workflowIds, folders, "
            "states, dateFrom, dateTo, timeZone, orderType, kill, deep, auditLog), validated "
            "against JOC's schema, with Storno's fields beside it (reasonId, description, "
            "churnTime, prorated, canceledBy, dryRun). On Storno's orders: controllerId and "
            "orderType are ignored; workflowIds and the states FAILED, BROKEN and UNKNOWN match "
            "no Storno order; orderIds (order numbers, or Storno's integer ids) alone select "
            "when given; folders are channels, the dates are when an order was placed. The "
            "answer lists every ignored field under ignored. dryRun: true answers 200 with "
            "counts and the newest orders and writes nothing; otherwise the job is queued: "
            "202 with the job and its Location. Both carry JOC's deliveryDate and ok: true. "
            "Errors are HTTP 420 as JOC answers them: JOC-420 for invalid or unknown fields, "
            "JOC-400 when dateFrom is not older than dateTo, JOC-161 'No orders found.' when "
            "nothing matches. Needs the run_bulk_cancellation permission, for a dry run too."
        ),
        request=BulkCancelRequestSerializer,
        parameters=[location(202)],
        responses={
            200: JocPreviewSerializer,
            202: JocJobSerializer,
            (420, JSON): OpenApiResponse(
                JocErrorSerializer,
                description=gettext_lazy("Refused, in JOC's words: JOC-420, JOC-400, JOC-161."),
            ),
            (401, JSON): OpenApiResponse(
                JocSecuritySerializer, description=gettext_lazy("No or wrong credentials.")
            ),
            (403, JSON): OpenApiResponse(
                JocSecuritySerializer,
                description=gettext_lazy("The user lacks run_bulk_cancellation."),
            ),
            **{k: v for k, v in WRITE_ERRORS.items() if k[0] not in (400, 401, 403)},
        },
        examples=[JOC_REQUEST, ORDER_IDS_REQUEST, PREVIEW_RESPONSE, QUEUED_RESPONSE],
    )
    def post(self, request):
        joc_request = read_joc_body(request.data, BulkCancellationFieldsSerializer)
        data, order_filter = joc_request.storno, joc_request.order_filter
        extra = {"ignored": joc_request.ignored}
        try:
            if data["dryRun"]:
                return Response(joc_ok({**self.preview(data, order_filter), **extra}))
            if order_filter is None:
                raise JocError(NO_ORDERS, NO_ORDERS_MESSAGE)
            job = bulk.start_bulk_cancellation(
                order_filter,
                reason=data["reasonId"],
                actor=request.user,
                via=AuditEntry.Via.API,
                description=data["description"],
                churn_time=data["churnTime"],
                prorated=data["prorated"],
                canceled_by=data["canceledBy"],
            )
        except CancellationError as exc:
            raise cancellation_error(exc, BULK_ERROR_FIELDS) from exc
        job = find_job(job.pk)
        body = BulkCancellationSerializer(job, context={"request": request}).data
        return Response(
            joc_ok({**body, **extra}),
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": request.build_absolute_uri(bulk_cancellation_url(job.pk))},
        )

    @staticmethod
    def preview(data, order_filter) -> dict:
        errors = bulk.bulk_cancellation_errors(
            reason=data["reasonId"],
            description=data["description"],
            churn_time=data["churnTime"],
            canceled_by=data["canceledBy"],
            now=timezone.now(),
        )
        if errors:
            raise CancellationError(errors, code="invalid")
        if order_filter is None:
            preview = bulk.BulkPreview(0, 0, 0, {}, [], [])
        else:
            preview = bulk.preview_bulk_cancellation(order_filter)
        return BulkPreviewSerializer(preview).data

    def handle_exception(self, exc):
        """JOC's answers for what DRF raises before post() runs, too."""
        if isinstance(exc, exceptions.ParseError):
            exc = JocError(INVALID, str(exc.detail))
        if isinstance(exc, JocError):
            set_rollback()
            return joc_error_response(exc)
        response = super().handle_exception(exc)
        if isinstance(exc, AUTH_ERRORS) and response.status_code in (401, 403):
            return security_response(
                response.status_code,
                str(exc.detail),
                authenticated=bool(self.request.user and self.request.user.is_authenticated),
                headers={k: v for k, v in response.items() if k == "WWW-Authenticate"},
            )
        return response
