"""Shapes of the bulk cancellation API (api/bulk.py), camelCase like the rest of Storno's API.

The request body of `POST /orders/cancel/` is JOC's /orders/cancel body (seed 003,
docs/contracts/js7/cancelOrders.resolved.json) with the cancellation's own fields beside it.
Only the cancellation fields are parsed here; JOC's keys are checked against JOC's schema and
mapped in api/joc.py, and JocOrderFilterSerializer only documents them. The Joc* answer
serializers document JOC's shapes (ok, error420, security401_403).
"""

from django.urls import reverse
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reasons.models import CancellationReason

from ..filter_dates import date_formats_help
from ..models import BulkCancellationStatus, CanceledBy, TargetOutcome
from ..order_filter import MAX_ORDER_REFS, STATE_ALIASES
from ..states import OrderStatus
from .joc import JOC_STATES
from .serializers import AuditLogSerializer, LinkSerializer, ModelIdField, UtcDateTimeField

_date_help = lazy(date_formats_help, str)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class OrderRefField(serializers.Field):
    """An order id (integer) or an order number (text), as orderIds takes them."""

    def to_representation(self, value):
        return value


# --- request -----------------------------------------------------------------------------------


class FolderSerializer(serializers.Serializer):
    folder = serializers.CharField(help_text=_("An absolute channel folder like /shop/de."))
    recursive = serializers.BooleanField(
        default=True, help_text=_("Also every folder below it (the default).")
    )


class WorkflowIdSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=255)
    versionId = serializers.CharField(max_length=255, required=False)


class JocOrderFilterSerializer(serializers.Serializer):
    """Which orders: JOC's /orders/cancel body. Documentation only (api/joc.py reads it)."""

    controllerId = serializers.CharField(
        max_length=100,
        help_text=_("Required as in JOC, and ignored: Storno has one order store."),
    )
    orderIds = serializers.ListField(
        child=OrderRefField(),
        required=False,
        max_length=MAX_ORDER_REFS,
        help_text=_(
            "Order numbers (text, as JOC sends ids) or Storno order ids (numbers). Given, "
            "they alone select: workflowIds, folders, states and the dates don't apply."
        ),
    )
    workflowIds = WorkflowIdSerializer(
        many=True,
        required=False,
        help_text=_("Accepted as JOC defines it; Storno's orders belong to no JS7 workflow."),
    )
    folders = FolderSerializer(
        many=True,
        required=False,
        help_text=_("Orders whose channel is one of these folders (a bare path is recursive)."),
    )
    states = serializers.ListField(
        child=serializers.ChoiceField(choices=JOC_STATES),
        required=False,
        help_text=lazy(
            lambda: (
                _("JOC's order states; %(mapped)s select Storno's statuses, the others none.")
                % {"mapped": ", ".join(STATE_ALIASES)}
            ),
            str,
        )(),
    )
    dateFrom = serializers.CharField(
        required=False, help_text=_date_help(), label=_("Placed at or after")
    )
    dateTo = serializers.CharField(required=False, help_text=_date_help(), label=_("Placed before"))
    timeZone = serializers.CharField(
        required=False,
        help_text=_("IANA time zone of dateFrom and dateTo; beats their offsets. Default UTC."),
    )
    orderType = serializers.ChoiceField(
        choices=["FreshOnly", "FreshOrStarted"],
        required=False,
        help_text=_(
            "Accepted as JOC defines it, and ignored: kill decides about orders in progress."
        ),
    )
    deep = serializers.BooleanField(default=False, help_text=_("Also every child order."))
    kill = serializers.BooleanField(
        default=False,
        help_text=_("Also orders in progress (their running workflows are killed)."),
    )
    auditLog = AuditLogSerializer(
        required=False,
        help_text=_("Kept on the job and on every audit entry it writes."),
    )


class BulkCancellationFieldsSerializer(serializers.Serializer):
    """The cancellation's fields and the request's switches: parsed here."""

    reasonId = ModelIdField(
        CancellationReason.objects.all(), help_text=_("A cancellation reason's id.")
    )
    description = serializers.CharField(max_length=255, allow_blank=True, default="")
    churnTime = UtcDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("When the cancellations take effect, with an offset; absent: now."),
    )
    prorated = serializers.BooleanField(default=False)
    canceledBy = serializers.ChoiceField(choices=CanceledBy.choices, default=CanceledBy.MERCHANT)
    dryRun = serializers.BooleanField(
        default=False,
        help_text=_("true: only count what the filter selects (200); nothing is written."),
    )


class BulkCancelRequestSerializer(JocOrderFilterSerializer, BulkCancellationFieldsSerializer):
    """The whole body of POST /orders/cancel/ (documentation). Unknown keys are refused."""


# --- responses ---------------------------------------------------------------------------------


class IgnoredFieldSerializer(serializers.Serializer):
    field = serializers.CharField(help_text=_("The field as sent, e.g. orderType or states.1."))
    reason = serializers.CharField()


class JocOkSerializer(serializers.Serializer):
    """JOC's ok answer (ok.resolved.json) and Storno's list of what it did not apply."""

    deliveryDate = serializers.CharField(help_text=_("UTC, ISO 8601."))
    surveyDate = serializers.CharField(help_text=_("UTC, ISO 8601."))
    ok = serializers.BooleanField()
    ignored = IgnoredFieldSerializer(
        many=True, help_text=_("The fields Storno accepted but did not apply, and why.")
    )


class JocErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("JOC-420, JOC-400 or JOC-161."))
    message = serializers.CharField()


class JocErrorSerializer(serializers.Serializer):
    """JOC's HTTP 420 answer (error420.resolved.json)."""

    deliveryDate = serializers.CharField()
    error = JocErrorDetailSerializer()


class JocSecuritySerializer(serializers.Serializer):
    """JOC's 401/403 answer (security401_403.resolved.json)."""

    isAuthenticated = serializers.BooleanField()
    isPermitted = serializers.BooleanField()
    message = serializers.CharField()


class PreviewOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    placedTime = UtcDateTimeField(source="placed_at")
    skipReason = serializers.CharField(
        allow_null=True, help_text=_("Why the job would leave it alone; null: it is cancelled.")
    )


class BulkPreviewSerializer(serializers.Serializer):
    """What a dry run answers: bulk.BulkPreview."""

    dryRun = serializers.SerializerMethodField()
    total = serializers.IntegerField(help_text=_("Orders the filter selects."))
    toCancel = serializers.IntegerField(
        source="to_cancel", help_text=_("Of those, in a status the job cancels.")
    )
    toSkip = serializers.IntegerField(source="to_skip")
    byStatus = serializers.DictField(
        source="by_status",
        child=serializers.IntegerField(),
        help_text=_("Selected orders per order status."),
    )
    sample = serializers.SerializerMethodField(help_text=_("The newest selected orders."))
    missingOrderIds = serializers.ListField(
        source="missing_order_refs",
        child=OrderRefField(),
        help_text=_("The orderIds that match no order."),
    )

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_dryRun(self, preview) -> bool:
        return True

    @extend_schema_field(PreviewOrderSerializer(many=True))
    def get_sample(self, preview):
        return [
            {**PreviewOrderSerializer(order).to_representation(order), "skipReason": why or None}
            for order, why in preview.sample
        ]


class BulkFailureSerializer(serializers.Serializer):
    orderId = serializers.IntegerField(source="order_id")
    orderNumber = serializers.CharField(source="order.number")
    outcome = serializers.ChoiceField(choices=TargetOutcome.choices)
    message = serializers.CharField()
    messageCode = serializers.CharField(
        source="message_code",
        allow_null=True,
        help_text=_(
            "Why, as a stable code (a refusal such as in_progress, order_not_cancellable, "
            "nothing_left); null when the message is the only word on it."
        ),
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["messageCode"] = data["messageCode"] or None
        return data


class BulkResultSerializer(BulkFailureSerializer):
    processedTime = UtcDateTimeField(source="processed_at", allow_null=True)
    cancellationId = serializers.SerializerMethodField(
        help_text=_("The cancellation the job made; null unless the outcome is cancelled.")
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cancellationId(self, target) -> str | None:
        # A cancelled target's message is its cancellation's id (bulk_batch, _settle_targets).
        return target.message if target.outcome == TargetOutcome.CANCELLED else None


class BulkCancellationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BulkCancellationStatus.choices)
    filter = serializers.SerializerMethodField()
    reasonId = serializers.IntegerField(source="reason_id")
    description = serializers.CharField()
    churnTime = UtcDateTimeField(source="churn_time", allow_null=True)
    prorated = serializers.BooleanField()
    canceledBy = serializers.ChoiceField(source="canceled_by", choices=CanceledBy.choices)
    total = serializers.IntegerField(help_text=_("Orders the job took; 0 until it has started."))
    processed = serializers.IntegerField()
    cancelled = serializers.IntegerField(source="cancelled_count")
    skipped = serializers.IntegerField(source="skipped_count")
    failed = serializers.IntegerField(source="failed_count")
    progressPercent = serializers.IntegerField(source="progress_percent")
    missingOrderIds = serializers.ListField(source="missing_order_refs", child=OrderRefField())
    createdTime = UtcDateTimeField(source="created_at")
    startedTime = UtcDateTimeField(source="started_at", allow_null=True)
    finishedTime = UtcDateTimeField(source="finished_at", allow_null=True)
    createdBy = serializers.CharField(
        source="created_by.username", allow_null=True, help_text=_("The user's name.")
    )
    failures = BulkFailureSerializer(
        source="failure_list",
        many=True,
        help_text=_("The first 100 failed, then skipped orders; all of them under results."),
    )
    _links = serializers.SerializerMethodField()

    @extend_schema_field(JocOrderFilterSerializer)
    def get_filter(self, job) -> dict:
        return job.filter

    @extend_schema_field(LinkSerializer(many=True))
    def get__links(self, job):
        request = self.context.get("request")

        def absolute(path):
            return request.build_absolute_uri(path) if request is not None else path

        return [
            {"rel": "self", "href": absolute(bulk_cancellation_url(job.pk))},
            {"rel": "results", "href": absolute(bulk_results_url(job.pk))},
        ]


def bulk_cancellation_url(pk: int) -> str:
    return reverse("cancellations-api:bulk-cancellation-detail", args=[pk])


def bulk_results_url(pk: int) -> str:
    return reverse("cancellations-api:bulk-cancellation-results", args=[pk])


class JocPreviewSerializer(JocOkSerializer, BulkPreviewSerializer):
    """A dry run's answer (documentation)."""


class JocJobSerializer(JocOkSerializer, BulkCancellationSerializer):
    """A queued job's answer (documentation)."""
