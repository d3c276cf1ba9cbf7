"""The orders' shapes in the cancellations API: an order as shown, and the input that takes
one in (`POST /api/v1/orders/`). The field helpers are the cancellations' (serializers.py)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backoffice.unknown_fields import RefuseUnknownFields

from ..models import (
    BILLING_ITEM_ID_MAX_LENGTH,
    Order,
    channel_validator,
    currency_validator,
)
from ..states import OrderStatus
from .serializers import (
    ModelIdField,
    UtcDateTimeField,
    money_field,
    quantity_field,
)


class OrderItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    cancelledQuantity = serializers.IntegerField(source="cancelled_quantity")
    unitPriceAmount = money_field(source="unit_price_amount")
    unitPriceCurrency = serializers.CharField(source="unit_price_currency")
    periodStartTime = UtcDateTimeField(source="period_start", allow_null=True)
    periodEndTime = UtcDateTimeField(source="period_end", allow_null=True)
    billingItemId = serializers.CharField(
        source="billing_item_id", help_text=_("The billing engine's itemId; empty when none.")
    )


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    customerName = serializers.CharField(source="customer_name")
    # Not an EmailField: an order taken in without an address has "", which isn't an e-mail.
    customerEmail = serializers.CharField(
        source="customer_email", help_text=_("An e-mail address, or empty when none was given.")
    )
    channel = serializers.CharField()
    parentId = serializers.IntegerField(source="parent_id", allow_null=True)
    placedTime = UtcDateTimeField(source="placed_at")
    currency = serializers.CharField()
    externalIds = serializers.JSONField(source="external_ids")
    scheduledCancellations = serializers.SerializerMethodField(
        help_text=_("Ids of confirmed cancellations whose churn time is still ahead.")
    )
    createdTime = UtcDateTimeField(source="created_at")
    updatedTime = UtcDateTimeField(source="updated_at")
    items = OrderItemSerializer(many=True)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_scheduledCancellations(self, order) -> list[str]:
        # Filled by selectors.order_api_queryset; one query for the whole page.
        return [cancellation.pk for cancellation in order.scheduled_cancellation_list]


class NewOrderItemInputSerializer(RefuseUnknownFields):
    sku = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=255, allow_blank=True, default="")
    quantity = quantity_field()
    unitPriceAmount = money_field(min_value=0)
    periodStartTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    periodEndTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    billingItemId = serializers.CharField(
        max_length=BILLING_ITEM_ID_MAX_LENGTH,
        allow_blank=True,
        default="",
        help_text=_(
            "The service item's id in the billing engine (AEB itemId), if it is billed there: "
            "a cancellation taking the item away completely sends it to the engine."
        ),
    )


class OrderInputSerializer(RefuseUnknownFields):
    number = serializers.CharField(max_length=40)
    customerName = serializers.CharField(max_length=200)
    # No default: "" isn't an e-mail address, so the schema can't document it as the default
    # (openapi-spec-validator refuses that). Absent or "" both mean none was given.
    customerEmail = serializers.EmailField(
        required=False,
        allow_blank=True,
        help_text=_("An e-mail address; absent or empty when none was given."),
    )
    channel = serializers.CharField(max_length=200, validators=[channel_validator])
    currency = serializers.CharField(max_length=3, validators=[currency_validator])
    status = serializers.ChoiceField(choices=OrderStatus.choices, default=OrderStatus.OPEN)
    placedTime = UtcDateTimeField(required=False, allow_null=True, default=None)
    parentId = ModelIdField(Order.objects.all(), required=False, allow_null=True, default=None)
    externalIds = serializers.JSONField(
        required=False,
        allow_null=True,
        default=dict,
        help_text=_('Provider references, e.g. {"callisto": "4711", "rebilly": "ord_1"}.'),
    )
    items = NewOrderItemInputSerializer(many=True)


# --- cancellations -------------------------------------------------------------------------------
