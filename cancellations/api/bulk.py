"""Bulk cancellation jobs over the API.

    POST /orders/cancel/                      starts one (api/orders_cancel.py, JOC's dialect)
    GET  /bulk-cancellations/                 the jobs, newest first (?status=)
    GET  /bulk-cancellations/{id}/            one job: progress, counters, first failures
    GET  /bulk-cancellations/{id}/results/    its orders and what became of each (?outcome=)

Errors are the API's problem objects. A query parameter these lists don't know is a 400 naming
it (with the close match), since a misspelt filter would silently show every job.
Reading jobs needs view_bulkcancellation or run_bulk_cancellation.
"""

import django_filters
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions
from rest_framework.response import Response

from backoffice.api import NON_FIELD
from backoffice.openapi import ListSchema

from ..models import (
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    TargetOutcome,
)
from .bulk_serializers import (
    BulkCancellationSerializer,
    BulkResultSerializer,
)
from .serializers import MAX_ID
from .views import LIST_ERRORS, NOT_FOUND, READ_ERRORS, JsonApiView

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
JOB_RESPONSE = OpenApiExample("A finished job", response_only=True, value=JOB_EXAMPLE)


# --- views -------------------------------------------------------------------------------------


class RefuseUnknownParameters:
    """Only the query parameters in `query_parameters`, whatever the method (JsonApiView names
    any other in a 400)."""

    query_parameters: tuple[str, ...] = ()

    def known_query_parameters(self, request) -> list[str]:
        return list(self.query_parameters)


class BulkCancellationListView(RefuseUnknownParameters, JsonApiView):
    serializer_class = BulkCancellationSerializer
    permission_classes = [CanSeeBulkCancellations]
    filterset_class = BulkCancellationFilter
    query_parameters = ("status", *JsonApiView.PAGING)
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


class BulkCancellationDetailView(RefuseUnknownParameters, JsonApiView):
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


class BulkCancellationResultsView(RefuseUnknownParameters, JsonApiView):
    serializer_class = BulkResultSerializer
    permission_classes = [CanSeeBulkCancellations]
    filterset_class = BulkResultFilter
    query_parameters = ("outcome", *JsonApiView.PAGING)
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
