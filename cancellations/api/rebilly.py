"""The Rebilly dialect of PUT /api/v1/order-cancellations/{id}: the body Rebilly's upsert takes
and the resource it answers (docs/contracts/rebilly/OrderCancellation.resolved.json and
order-cancellations.paths.resolved.json, summarised in docs/contracts/SPECS.md).

In: every field Rebilly's OrderCancellation defines (its read-only ones are ignored), Storno's
own extras (reasonId, items, auditLog, externalUserId) and nothing else.
- `orderId` is a string, as at Rebilly, looked up as the order's Rebilly id
  (externalIds.rebilly), its number and Storno's id (selectors.orders_by_reference). When these
  name different orders the request is refused naming orderId. A JSON number is Storno's id
  and nothing else: the way out of an ambiguity, and what clients sent before.
- `reason` is Rebilly's code, turned into a reason through the reason mappings (provider
  Rebilly). `reasonId` beats it; both given must agree; neither means Rebilly's default "other".
- `status` draft | confirmed | completed | revoked: services.upsert_cancellation.
- `canceledBy` defaults to Rebilly's default, customer.

Out: Rebilly's OrderCancellation — orderId the string the request named the order by, reason
Rebilly's code, canceledTime null for a draft, `_links` only `self`, a line item's periods left
out when it has none — plus Storno's extras (reasonId, items, deliveries…).
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reasons.models import REBILLY_DEFAULT_REASON, REBILLY_REASONS, CancellationReason, ProviderKind
from reasons.services import mapped_reason, reason_mapped_from

from .. import selectors
from ..models import CanceledBy, Order
from ..states import CancellationStatus
from .serializers import (
    MAX_ID,
    CancellationLineSerializer,
    CancellationPlanInput,
    CancellationSerializer,
    LinkSerializer,
    ModelIdField,
    UtcDateTimeField,
    cancellation_url,
)

REBILLY = ProviderKind.REBILLY
ORDER_REFERENCE_MAX_LENGTH = 50  # Rebilly's orderId


def rebilly_reason_code(reason: CancellationReason) -> str:
    """What Storno tells Rebilly for this reason (as providers/rebilly.py sends it)."""
    code = mapped_reason(reason, REBILLY)
    return code if code in REBILLY_REASONS else REBILLY_DEFAULT_REASON


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": ORDER_REFERENCE_MAX_LENGTH},
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        ],
        "description": str(
            _(
                "The order's Rebilly id, its number or Storno's id, as a string; refused when "
                "these name different orders. A number is Storno's id only."
            )
        ),
    }
)
class OrderReferenceField(serializers.Field):
    default_error_messages = {
        "invalid": _("Give the order's Rebilly id, number or id as a string (at most 50)."),
        "does_not_exist": _("No order has the Rebilly id, number or id “{reference}”."),
        "ambiguous": _(
            "“{reference}” names more than one order (ids {ids}) by Rebilly id, number or id; "
            "send Storno's order id as a number."
        ),
    }

    def to_internal_value(self, data) -> Order:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("invalid")
        if isinstance(data, int):
            order = Order.objects.filter(pk=data).first() if 1 <= data <= MAX_ID else None
            if order is None:
                self.fail("does_not_exist", reference=data)
            return order
        reference = data.strip()
        if not reference or len(reference) > ORDER_REFERENCE_MAX_LENGTH or "\x00" in reference:
            self.fail("invalid")
        orders = selectors.orders_by_reference(reference)
        if not orders:
            self.fail("does_not_exist", reference=reference)
        if len(orders) > 1:
            self.fail("ambiguous", reference=reference, ids=", ".join(str(o.pk) for o in orders))
        return orders[0]

    def to_representation(self, value) -> str:
        return str(getattr(value, "pk", value))


class RebillyCancellationInputSerializer(CancellationPlanInput):
    """The body of PUT /order-cancellations/{id} (Rebilly's OrderCancellation)."""

    orderId = OrderReferenceField()
    reason = serializers.ChoiceField(
        choices=REBILLY_REASONS,
        required=False,
        help_text=_(
            "Rebilly's reason code, for the reason mapped to it; default other. reasonId beats it."
        ),
    )
    reasonId = ModelIdField(
        CancellationReason.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text=_("A cancellation reason's id (Storno's extra)."),
    )
    status = serializers.ChoiceField(
        choices=CancellationStatus.choices,
        default=CancellationStatus.CONFIRMED,
        help_text=_(
            "draft: store the plan, change nothing; confirmed: take effect; revoked: revoke; "
            "completed: set by Storno at the churn time (accepted only when it is completed)."
        ),
    )
    canceledBy = serializers.ChoiceField(choices=CanceledBy.choices, default=CanceledBy.CUSTOMER)

    def validate(self, attrs):
        reason, code = attrs.get("reasonId"), attrs.get("reason")
        if reason is None:
            code = code or REBILLY_DEFAULT_REASON
            reason = reason_mapped_from(REBILLY, code)
            if reason is None:
                raise serializers.ValidationError(
                    {
                        "reason": _(
                            "No reason is mapped to Rebilly's “%(code)s”: map one in the "
                            "reason catalog, or send reasonId."
                        )
                        % {"code": code}
                    }
                )
        elif code is not None and rebilly_reason_code(reason) != code:
            raise serializers.ValidationError(
                {
                    "reason": _("reasonId %(id)s stands for “%(mapped)s”, not “%(code)s”.")
                    % {"id": reason.pk, "mapped": rebilly_reason_code(reason), "code": code}
                }
            )
        attrs["reasonId"] = reason
        return attrs


class RebillyLineItemSerializer(CancellationLineSerializer):
    """A line item as Rebilly has it: its periods are date-times when given, never null."""

    periodStartTime = UtcDateTimeField(source="period_start", required=False)
    periodEndTime = UtcDateTimeField(source="period_end", required=False)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in ("periodStartTime", "periodEndTime"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class RebillyLinkSerializer(LinkSerializer):
    rel = serializers.ChoiceField(choices=["self"])


class RebillyCancellationSerializer(CancellationSerializer):
    """Rebilly's OrderCancellation with Storno's extras. Needs `order_reference` in the context:
    the orderId the request named the order by."""

    orderId = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()
    canceledTime = serializers.SerializerMethodField()
    lineItems = RebillyLineItemSerializer(source="lines", many=True)
    _links = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(max_length=ORDER_REFERENCE_MAX_LENGTH))
    def get_orderId(self, cancellation) -> str:
        return str(self.context.get("order_reference") or cancellation.order_id)

    @extend_schema_field(serializers.ChoiceField(choices=REBILLY_REASONS))
    def get_reason(self, cancellation) -> str:
        return rebilly_reason_code(cancellation.reason)

    @extend_schema_field(UtcDateTimeField(allow_null=True))
    def get_canceledTime(self, cancellation):
        # Rebilly: canceled "when status is confirmed, unless draft is specified".
        if cancellation.status == CancellationStatus.DRAFT:
            return None
        return UtcDateTimeField().to_representation(cancellation.canceled_time)

    @extend_schema_field(RebillyLinkSerializer(many=True))
    def get__links(self, cancellation):
        request = self.context.get("request")
        path = cancellation_url(cancellation.pk)
        return [{"rel": "self", "href": request.build_absolute_uri(path) if request else path}]
