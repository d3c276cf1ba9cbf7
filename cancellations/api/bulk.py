"""Bulk cancellations over the API: JOC's `POST /orders/cancel` for Storno's orders, and the jobs.

    POST /orders/cancel/                      dryRun: 200 with counts and a sample, writes nothing;
                                              else 202 with the queued job and its Location
    GET  /bulk-cancellations/                 the jobs, newest first (?status=)
    GET  /bulk-cancellations/{id}/            one job: progress, counters, first failures
    GET  /bulk-cancellations/{id}/results/    its orders and what became of each (?outcome=)

The body is JOC's filter (cancellations.order_filter parses it) with the cancellation's fields
beside it; any other key is refused, since a misspelt filter key would widen the selection.
Every error is the API's problem object (400). A filter that selects no order is a 400 on
`__all__` with the code `no_match`; a dry run answers it with total 0 instead.

Starting needs run_bulk_cancellation (a dry run too: it shows which orders a job would take).
Reading jobs needs view_bulkcancellation or run_bulk_cancellation.
"""

import django_filters
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response

from backoffice.api import NON_FIELD, PROBLEM_CONTENT_TYPE, django_validation_detail
from backoffice.openapi import ListSchema, problem

from .. import bulk
from ..errors import CancellationError
from ..models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    TargetOutcome,
)
from ..order_filter import KNOWN_KEYS as FILTER_KEYS
from ..order_filter import parse_order_filter
from .bulk_serializers import (
    BulkCancellationFieldsSerializer,
    BulkCancellationSerializer,
    BulkCancelRequestSerializer,
    BulkPreviewSerializer,
    BulkResultSerializer,
    bulk_cancellation_url,
)
from .serializers import MAX_ID
from .views import LIST_ERRORS, NOT_FOUND, READ_ERRORS, WRITE_ERRORS, JsonApiView, location

RUN_PERMISSION = "cancellations.run_bulk_cancellation"
VIEW_PERMISSION = "cancellations.view_bulkcancellation"
FAILURES_SHOWN = 100

# Service argument → API field. The filter's fields come named as the body names them.
BULK_ERROR_FIELDS = {
    "reason": "reasonId",
    "churn_time": "churnTime",
    "canceled_by": "canceledBy",
    "filter": NON_FIELD,  # the body is the filter
}


# --- reads -------------------------------------------------------------------------------------


def bulk_cancellation_list() -> QuerySet[BulkCancellation]:
    """Jobs with what their rendering needs: the creator and the first failures (one query for
    a whole page: a sliced prefetch)."""
    # "failed" sorts before "skipped": the failures that need someone come first.
    failures = (
        BulkCancellationTarget.objects.filter(
            outcome__in=[TargetOutcome.FAILED, TargetOutcome.SKIPPED]
        )
        .select_related("order")
        .order_by("outcome", "order_id")
    )
    return BulkCancellation.objects.select_related("created_by").prefetch_related(
        Prefetch("targets", queryset=failures[:FAILURES_SHOWN], to_attr="failure_list")
    )


def bulk_cancellation_results(job: BulkCancellation) -> QuerySet[BulkCancellationTarget]:
    return job.targets.select_related("order").order_by("order_id")


def find_job(job_id: int, jobs: QuerySet[BulkCancellation] | None = None) -> BulkCancellation:
    """The job with this id from `jobs` (rendered ones by default), or a 404."""
    jobs = bulk_cancellation_list() if jobs is None else jobs
    # An id beyond what the database stores can't exist: don't let it overflow the query.
    job = jobs.filter(pk=job_id).first() if job_id <= MAX_ID else None
    if job is None:
        raise Http404
    return job


# --- permissions and filters -------------------------------------------------------------------


class CanRunBulkCancellations(permissions.BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(RUN_PERMISSION))


class CanSeeBulkCancellations(permissions.BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm(VIEW_PERMISSION) or user.has_perm(RUN_PERMISSION))
        )


class BulkCancellationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=BulkCancellationStatus.choices,
        help_text=gettext_lazy("Repeat for several: ?status=queued&status=running"),
    )

    class Meta:
        model = BulkCancellation
        fields = []


class BulkResultFilter(django_filters.FilterSet):
    outcome = django_filters.MultipleChoiceFilter(
        choices=TargetOutcome.choices,
        help_text=gettext_lazy("Repeat for several: ?outcome=failed&outcome=skipped"),
    )

    class Meta:
        model = BulkCancellationTarget
        fields = []


# --- documentation -----------------------------------------------------------------------------


JOC_REQUEST = OpenApiExample(
    "Yesterday's orders of the German shop (JOC style)",
    request_only=True,
    value={
        "folders": [{"folder": "/shop/de", "recursive": True}],
        "states": ["PENDING", "SUSPENDED"],
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
    },
)
JOB_EXAMPLE = {
    "id": 12,
    "status": "finished",
    "filter": {
        "folders": [{"folder": "/shop/de", "recursive": True}],
        "dateFrom": "1d",
        "dateTo": "0d",
        "timeZone": "Europe/Berlin",
        "deep": False,
        "kill": False,
        "auditLog": {"comment": "Operational requirement!", "timeSpent": 2},
    },
    "reasonId": 3,
    "description": "Payment provider outage",
    "churnTime": None,
    "prorated": False,
    "canceledBy": "merchant",
    "total": 3,
    "processed": 3,
    "cancelled": 2,
    "skipped": 1,
    "failed": 0,
    "progressPercent": 100,
    "missingOrderIds": [],
    "createdTime": "2026-05-02T08:00:00Z",
    "startedTime": "2026-05-02T08:00:01Z",
    "finishedTime": "2026-05-02T08:00:02Z",
    "createdBy": "ops-bot",
    "failures": [
        {
            "orderId": 4702,
            "orderNumber": "ORD-004702",
            "outcome": "skipped",
            "message": "The order is completed and can't be cancelled.",
        }
    ],
    "_links": [
        {"rel": "self", "href": "https://storno.example/api/v1/bulk-cancellations/12/"},
        {"rel": "results", "href": "https://storno.example/api/v1/bulk-cancellations/12/results/"},
    ],
}
QUEUED_RESPONSE = OpenApiExample(
    "The job, queued",
    response_only=True,
    status_codes=["202"],
    value={
        **JOB_EXAMPLE,
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
JOB_RESPONSE = OpenApiExample("A finished job", response_only=True, value=JOB_EXAMPLE)


# --- views -------------------------------------------------------------------------------------


class OrdersCancelView(JsonApiView):
    serializer_class = BulkCancelRequestSerializer
    permission_classes = [CanRunBulkCancellations]
    throttle_scope = "bulk-cancel"  # a stricter rate of its own (REST_FRAMEWORK's throttles)
    error_field_names = BULK_ERROR_FIELDS

    @extend_schema(
        operation_id="orders_cancel",
        summary=gettext_lazy("Cancel every order a JOC-style filter selects (a bulk job)"),
        description=gettext_lazy(
            "The body is JS7 JOC's /orders/cancel filter (orderIds, folders, states, dateFrom, "
            "dateTo, timeZone, deep, kill, auditLog) with the cancellation's fields beside it. "
            'A real job needs at least one filter key (the folder "/" means every order); a '
            "dry run without one previews every order. dryRun: true answers 200 "
            "with counts and the newest orders and writes nothing. Otherwise the job is "
            "queued: 202 with the job and its Location; poll it there. Unknown keys are a "
            "400. A filter that selects no order is a 400 with the code no_match. Needs the "
            "run_bulk_cancellation permission, for a dry run too."
        ),
        request=BulkCancelRequestSerializer,
        parameters=[location(202)],
        responses={
            200: BulkPreviewSerializer,
            202: BulkCancellationSerializer,
            **WRITE_ERRORS,
            (403, PROBLEM_CONTENT_TYPE): problem(
                gettext_lazy("The user lacks run_bulk_cancellation.")
            ),
        },
        examples=[JOC_REQUEST, ORDER_IDS_REQUEST, PREVIEW_RESPONSE, QUEUED_RESPONSE],
    )
    def post(self, request):
        data, order_filter = self.parse(request.data)
        if data["dryRun"]:
            errors = bulk.bulk_cancellation_errors(
                reason=data["reasonId"],
                description=data["description"],
                churn_time=data["churnTime"],
                canceled_by=data["canceledBy"],
                now=timezone.now(),
            )
            if errors:
                raise CancellationError(errors, code="invalid")
            preview = bulk.preview_bulk_cancellation(order_filter)
            return Response(BulkPreviewSerializer(preview).data)
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
        job = find_job(job.pk)
        return Response(
            BulkCancellationSerializer(job, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": request.build_absolute_uri(bulk_cancellation_url(job.pk))},
        )

    def parse(self, body):
        """The body's cancellation fields and its filter, or one 400 naming every bad field."""
        fields = BulkCancellationFieldsSerializer(data=body)
        if not fields.is_valid():
            if not isinstance(body, dict):
                raise exceptions.ValidationError(fields.errors)
            errors = dict(fields.errors)
        else:
            errors = {}
        unknown = [key for key in body if key not in FILTER_KEYS and key not in fields.fields]
        for key in unknown:
            errors[key] = [
                exceptions.ErrorDetail(
                    _("Unknown field. Known: %(keys)s.")
                    % {"keys": ", ".join([*FILTER_KEYS, *fields.fields])},
                    code="invalid",
                )
            ]
        order_filter = None
        try:
            order_filter = parse_order_filter(
                {key: value for key, value in body.items() if key in FILTER_KEYS}
            )
        except CancellationError as exc:
            errors.update(django_validation_detail(exc))
        if errors:
            # An unknown key is named as sent: not renamed as if it were a service argument.
            self.error_field_names = {**BULK_ERROR_FIELDS, **{key: key for key in unknown}}
            raise exceptions.ValidationError(errors)
        return fields.validated_data, order_filter


class BulkCancellationListView(JsonApiView):
    serializer_class = BulkCancellationSerializer
    permission_classes = [CanSeeBulkCancellations]
    filterset_class = BulkCancellationFilter
    schema = ListSchema()

    def get_queryset(self):
        return bulk_cancellation_list()

    @extend_schema(
        operation_id="bulk_cancellations_list",
        summary=gettext_lazy("List bulk cancellation jobs, newest first"),
        responses={200: BulkCancellationSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        data = BulkCancellationSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)


class BulkCancellationDetailView(JsonApiView):
    serializer_class = BulkCancellationSerializer
    permission_classes = [CanSeeBulkCancellations]

    def get_queryset(self):
        return bulk_cancellation_list()

    @extend_schema(
        operation_id="bulk_cancellations_retrieve",
        summary=gettext_lazy("One bulk cancellation job: progress, counters, first failures"),
        responses={200: BulkCancellationSerializer, **READ_ERRORS, **NOT_FOUND},
        examples=[JOB_RESPONSE],
    )
    def get(self, request, id):
        job = find_job(id)
        return Response(BulkCancellationSerializer(job, context={"request": request}).data)


class BulkCancellationResultsView(JsonApiView):
    serializer_class = BulkResultSerializer
    permission_classes = [CanSeeBulkCancellations]
    filterset_class = BulkResultFilter
    schema = ListSchema()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no job
            return BulkCancellationTarget.objects.none()
        return bulk_cancellation_results(self.job)

    @extend_schema(
        operation_id="bulk_cancellations_results",
        summary=gettext_lazy("A job's orders and what became of each"),
        description=gettext_lazy(
            "In order id order. For a cancelled order, cancellationId (and message) is the "
            "cancellation the job made; for the others message says why."
        ),
        responses={200: BulkResultSerializer(many=True), **LIST_ERRORS, **NOT_FOUND},
    )
    def get(self, request, id):
        self.job = find_job(id, BulkCancellation.objects.only("pk"))
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(BulkResultSerializer(page, many=True).data)
