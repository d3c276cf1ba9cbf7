"""Input and output shapes of the cancellations API, in camelCase written out field by field.

Input serializers only parse and bound values (types, lengths, ranges); every business rule
lives in cancellations/services/. Output serializers render what the selectors fetched.
"""

from datetime import UTC

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from backoffice.unknown_fields import RefuseUnknownFields

from ..models import (
    MONEY,
    CanceledBy,
    ChurnTimePolicy,
    LineType,
)

# Largest id and count the databases store (bigint / integer): bigger input is refused here
# instead of overflowing in a query.
MAX_ID = 2**63 - 1
MAX_QUANTITY = 2**31 - 1


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset on input (a naive time is refused, not guessed); UTC on output,
    whatever zone the staff user's session shows."""

    default_error_messages = {
        "naive": _("Give the time with its offset, e.g. 2026-05-01T12:00:00+02:00."),
    }

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = parse_datetime(value) if len(value) <= 64 else None
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


class ModelIdField(serializers.IntegerField):
    """An integer id (or a numeric string) turned into the model instance it names.

    read_later: the value is an unsaved instance with only its pk, for a service that reads
    the row anyway (under its lock): the caller turns the service's DoesNotExist into
    missing(), and the serializer asks only when another field is invalid too."""

    default_error_messages = {"does_not_exist": _("No {model} with id {pk_value}.")}

    def __init__(self, queryset, *, read_later: bool = False, **kwargs):
        self.queryset = queryset
        self.read_later = read_later
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)

    def missing(self, pk) -> list[serializers.ErrorDetail]:
        """What self.fail("does_not_exist") says: this field's error for an id nothing has."""
        model = self.queryset.model._meta.verbose_name
        message = self.error_messages["does_not_exist"].format(model=model, pk_value=pk)
        return [serializers.ErrorDetail(message, code="does_not_exist")]

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)

    def run_validation(self, data=empty):
        pk = super().run_validation(data)  # an int within the database's range, or None
        if pk is None:
            return None
        if self.read_later:
            return self.queryset.model(pk=pk)
        found = self.queryset.filter(pk=pk).first()
        if found is None:
            raise serializers.ValidationError(self.missing(pk))
        return found

    def to_representation(self, value):
        return getattr(value, "pk", value)


class StrictIntegerField(serializers.IntegerField):
    """An integer that refuses true/false (DRF would read them as 1/0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def quantity_field(**kwargs):
    return StrictIntegerField(min_value=1, max_value=MAX_QUANTITY, **kwargs)


def money_field(**kwargs):
    return serializers.DecimalField(
        max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"], **kwargs
    )


class MoneySerializer(serializers.Serializer):
    amount = money_field()
    currency = serializers.CharField()


# Problem objects are documented once for every API, in backoffice.api.
# --- orders --------------------------------------------------------------------------------------


class AuditLogSerializer(serializers.Serializer):
    """JOC's auditLog: why, how long it took, which ticket."""

    comment = serializers.CharField(max_length=255, allow_blank=True, default="")
    timeSpent = StrictIntegerField(
        min_value=0, max_value=MAX_QUANTITY, allow_null=True, default=None
    )
    ticketLink = serializers.CharField(max_length=255, allow_blank=True, default="")


class LineItemSerializer(RefuseUnknownFields):
    type = serializers.ChoiceField(choices=LineType.choices)
    unitPriceAmount = money_field(min_value=0)
    unitPriceCurrency = serializers.CharField(max_length=3)
    quantity = quantity_field()
    description = serializers.CharField(max_length=1000, allow_blank=True, default="")
    periodStartTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    periodEndTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    # Rebilly's read-only fields of a line item, accepted from a client echoing one back.
    createdTime = serializers.JSONField(read_only=True)
    updatedTime = serializers.JSONField(read_only=True)


class AuditLogInputSerializer(RefuseUnknownFields, AuditLogSerializer):
    """The auditLog a client sends: its three fields and nothing else."""


class ItemPickInputSerializer(RefuseUnknownFields):
    itemId = StrictIntegerField(min_value=1, max_value=MAX_ID)
    quantity = quantity_field()


class CancellationPlanInput(RefuseUnknownFields):
    """What POST and the Rebilly-shaped PUT (api/rebilly.py) both take. Any other field is
    refused. Rebilly's read-only fields (docs/contracts/rebilly/OrderCancellation.resolved.json)
    count as known and are ignored: a client may echo a cancellation back, and Storno computes
    them. Storno's own read-only ones (`status` on POST, proratedCredit…) are refused: `status`
    silently ignored would confirm what a client meant as a draft."""

    id = serializers.JSONField(read_only=True)
    canceledTime = serializers.JSONField(read_only=True)
    createdTime = serializers.JSONField(read_only=True)
    updatedTime = serializers.JSONField(read_only=True)
    proratedInvoiceId = serializers.JSONField(read_only=True)
    appliedInvoiceId = serializers.JSONField(read_only=True)
    lineItemSubtotal = serializers.JSONField(read_only=True)
    _links = serializers.JSONField(read_only=True)

    description = serializers.CharField(max_length=255, allow_blank=True, default="")
    canceledBy = serializers.ChoiceField(choices=CanceledBy.choices, default=CanceledBy.MERCHANT)
    churnTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    churnTimePolicy = serializers.ChoiceField(
        choices=ChurnTimePolicy.choices,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text=_("Beats churnTime. null: use churnTime (now when that is absent too)."),
    )
    prorated = serializers.BooleanField(default=False)
    # ListField, not many=True: a null list is allowed, a null entry in it is not.
    lineItems = serializers.ListField(
        child=LineItemSerializer(), required=False, allow_null=True, default=list
    )
    items = serializers.ListField(
        child=ItemPickInputSerializer(),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Items and quantities for a partial cancellation; absent or null: all."),
    )
    externalUserId = serializers.CharField(max_length=64, allow_blank=True, default="")
    auditLog = AuditLogInputSerializer(required=False, allow_null=True, default=None)
    dryRun = serializers.BooleanField(default=False)  # api/dry_run.py: plan only, write nothing


class CancellationItemSerializer(serializers.Serializer):
    itemId = serializers.IntegerField(source="order_item_id")
    sku = serializers.CharField(source="order_item.sku")
    quantity = serializers.IntegerField()
    proratedCreditAmount = money_field(source="prorated_credit_amount")


class CancellationLineSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=LineType.choices)
    unitPriceAmount = money_field(source="unit_price_amount")
    unitPriceCurrency = serializers.CharField(source="unit_price_currency")
    quantity = serializers.IntegerField()
    description = serializers.CharField()
    periodStartTime = UtcDateTimeField(source="period_start", allow_null=True)
    periodEndTime = UtcDateTimeField(source="period_end", allow_null=True)


class LinkSerializer(serializers.Serializer):
    rel = serializers.CharField()
    href = serializers.URLField()


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class DeliverySerializer(serializers.Serializer):
    """Where the cancellation stands at one provider (the outbox row)."""

    provider = serializers.CharField()
    action = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    lastStatusCode = serializers.IntegerField(source="last_status_code", allow_null=True)
    lastError = serializers.CharField(source="last_error")
    lastErrorCode = serializers.CharField(
        source="message_code",
        allow_null=True,
        help_text=_("What Storno said, as a stable code; null for a provider's own words."),
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["lastErrorCode"] = data["lastErrorCode"] or None
        return data

    nextAttemptTime = UtcDateTimeField(source="next_attempt_at")
    deliveredTime = UtcDateTimeField(source="delivered_at", allow_null=True)
    references = serializers.JSONField()


class CancellationSerializer(serializers.Serializer):
    id = serializers.CharField()
    orderId = serializers.IntegerField(source="order_id")
    reasonId = serializers.IntegerField(source="reason_id")
    reason = serializers.CharField(source="reason.subject")
    description = serializers.CharField()
    canceledBy = serializers.ChoiceField(source="canceled_by", choices=CanceledBy.choices)
    status = serializers.CharField()
    canceledTime = UtcDateTimeField(source="canceled_time")
    churnTime = UtcDateTimeField(source="churn_time")
    churnTimePolicy = serializers.SerializerMethodField()
    completedTime = UtcDateTimeField(source="completed_time", allow_null=True)
    prorated = serializers.BooleanField()
    proratedCredit = serializers.SerializerMethodField()
    lineItemSubtotal = serializers.SerializerMethodField()
    proratedInvoiceId = serializers.SerializerMethodField()
    appliedInvoiceId = serializers.SerializerMethodField()
    items = CancellationItemSerializer(many=True)
    lineItems = CancellationLineSerializer(source="lines", many=True)
    externalUserId = serializers.CharField(source="external_user_id")
    auditLog = serializers.SerializerMethodField()
    createdTime = UtcDateTimeField(source="created_time")
    updatedTime = UtcDateTimeField(source="updated_time")
    revokedTime = UtcDateTimeField(source="revoked_time", allow_null=True)
    deliveries = DeliverySerializer(many=True, read_only=True)
    _links = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=ChurnTimePolicy.choices, allow_null=True))
    def get_churnTimePolicy(self, cancellation):
        return cancellation.churn_time_policy or None

    @extend_schema_field(MoneySerializer)
    def get_proratedCredit(self, cancellation):
        return {"amount": cancellation.prorated_credit_amount, "currency": cancellation.currency}

    @extend_schema_field(MoneySerializer)
    def get_lineItemSubtotal(self, cancellation):
        return {
            "amount": cancellation.line_item_subtotal_amount,
            "currency": cancellation.currency,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_proratedInvoiceId(self, cancellation) -> str | None:
        return cancellation.prorated_invoice_id or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_appliedInvoiceId(self, cancellation) -> str | None:
        return cancellation.applied_invoice_id or None

    @extend_schema_field(AuditLogSerializer)
    def get_auditLog(self, cancellation):
        return {
            "comment": cancellation.audit_comment,
            "timeSpent": cancellation.audit_time_spent,
            "ticketLink": cancellation.audit_ticket_link,
        }

    @extend_schema_field(LinkSerializer(many=True))
    def get__links(self, cancellation):
        request = self.context.get("request")
        return [
            {"rel": "self", "href": _absolute(request, cancellation_url(cancellation.pk))},
            {"rel": "order", "href": _absolute(request, order_url(cancellation.order_id))},
        ]


def cancellation_url(pk: str) -> str:
    return reverse("cancellations-api:cancellation-detail", args=[pk])


def order_url(pk: int) -> str:
    return reverse("cancellations-api:order-detail", args=[pk])
