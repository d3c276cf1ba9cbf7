"""The request bodies of POST /order-cancellations/ and of a revoke."""

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.fields import empty

from backoffice.unknown_fields import RefuseUnknownFields, unknown_fields
from reasons.models import CancellationReason

from ..models import Order
from .serializers import CancellationPlanInput, ModelIdField


class CancellationInputSerializer(CancellationPlanInput):
    """The request body of POST. The order is read once, under its lock, by the service
    (orderId is read_later); the view turns the service's Order.DoesNotExist into orderId's
    error (ModelIdField.missing)."""

    orderId = ModelIdField(Order.objects.all(), read_later=True, help_text=_("Storno's order id."))
    reasonId = ModelIdField(
        CancellationReason.objects.all(), help_text=_("A cancellation reason's id.")
    )

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Another field is invalid: name a missing order too, as reading it at once would.
            exc.detail = self._with_missing_order(data, exc.detail)
            raise

    def _with_missing_order(self, data, detail):
        if not isinstance(data, Mapping) or not isinstance(detail, dict) or "orderId" in detail:
            return detail
        if unknown_fields(data, self.fields):  # refused before any field was read
            return detail
        order_field = self.fields["orderId"]
        reference = order_field.run_validation(data.get("orderId", empty))
        if Order.objects.filter(pk=reference.pk).exists():
            return detail
        # In the fields' order, as DRF lists the errors.
        names = list(self.fields)
        after = [
            name for name in detail if name in names and names.index(name) > names.index("orderId")
        ]
        merged = {name: errors for name, errors in detail.items() if name not in after}
        merged["orderId"] = order_field.missing(reference.pk)
        merged.update({name: detail[name] for name in after})
        return merged


class CancellationRevokeInputSerializer(RefuseUnknownFields):
    comment = serializers.CharField(max_length=255, allow_blank=True, default="")
