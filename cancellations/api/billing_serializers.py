"""Shapes of the billing engine's dialect (api/billing.py): AEB's request DTO, parsed, and its
response DTO, for the documentation (service_items.ServiceItemsResult.as_dict renders it)."""

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from backoffice.unknown_fields import RefuseUnknownFields

from ..models import BILLING_ITEM_ID_MAX_LENGTH

# --- input -------------------------------------------------------------------------------------


class ServiceItemReferenceSerializer(RefuseUnknownFields):
    """AEB's BServiceItemReferenceDTO."""

    itemId = serializers.CharField(
        max_length=BILLING_ITEM_ID_MAX_LENGTH,
        help_text=gettext_lazy(
            "The service item's id in the billing engine: the order item's billingItemId "
            "(not Storno's order item id)."
        ),
    )


class CancelServiceItemsInputSerializer(RefuseUnknownFields):
    """AEB's BReverseServiceItemsRequestDTO: its fields and no others."""

    clientSystemId = serializers.CharField(
        max_length=20,
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy("Id of the sending client system, e.g. an ERP installation."),
    )
    clientIdentCode = serializers.CharField(
        max_length=10,
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy("Client identification code."),
    )
    userName = serializers.CharField(
        max_length=150,
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy(
            "Who initiated the request in the client system. A known user's permissions apply "
            "(never more than the authenticated caller's); an unknown user may only read and "
            "is logged. Not a credential: authentication is the request's."
        ),
    )
    resultLanguageIsoCodes = serializers.ListField(
        child=serializers.CharField(max_length=10),
        required=False,
        default=list,
        max_length=10,
        help_text=gettext_lazy(
            "2-letter ISO codes in order of preference (en, de, tr). A language without a "
            "translation of a message falls back to the next; English comes last."
        ),
    )
    reasonOfReversal = serializers.CharField(
        max_length=250,
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy(
            "Why. Picks the catalog reason whose subject or billing mapping is this text "
            "(else the configured default); kept as the cancellation's description."
        ),
    )
    items = serializers.ListField(
        child=ServiceItemReferenceSerializer(),
        min_length=1,
        help_text=gettext_lazy("The service items to cancel, all or none."),
    )


# --- output (documentation; service_items.ServiceItemsResult.as_dict renders it) -------------


class TextInLanguageSerializer(serializers.Serializer):
    languageISOCode = serializers.CharField()
    text = serializers.CharField()


class ResponseMessageSerializer(serializers.Serializer):
    messageType = serializers.ChoiceField(choices=["ERROR", "WARNING", "INFO"])
    messageIdentCode = serializers.CharField(
        help_text=gettext_lazy(
            "AEB's codes: ITEM_RETRANSMISSION_ERROR (cancelled already, or listed twice), "
            "ITEM_NOT_FOUND_ERROR (no item has this billing item id), LOCK_ERROR (busy; "
            "retryable). Storno's own: ALREADY_SCHEDULED, ORDER_NOT_CANCELLABLE, "
            "SETTLEMENT_ITEM_SETTLED, SETTLEMENT_ITEM_EXPORTED, CANCELLATION_REFUSED, "
            "NOT_PROCESSED, NOTHING_CANCELLED, NO_REASON, NOT_AUTHORIZED, "
            "SERVICE_ITEM_CANCELLED, NO_SETTLEMENT_ITEMS."
        )
    )
    messageTexts = TextInLanguageSerializer(many=True)
    indentationLevel = serializers.IntegerField()


class ItemResponseSerializer(serializers.Serializer):
    itemId = serializers.CharField()
    hasErrors = serializers.BooleanField()
    hasWarnings = serializers.BooleanField()
    messages = ResponseMessageSerializer(many=True)


class CancelServiceItemsResponseSerializer(serializers.Serializer):
    """AEB's BReverseServiceItemsResponseDTO."""

    hasErrors = serializers.BooleanField(
        help_text=gettext_lazy("True when refused: then nothing was changed.")
    )
    hasOnlyRetryableErrors = serializers.BooleanField(
        help_text=gettext_lazy("True when every error may go away by sending the same again.")
    )
    hasWarnings = serializers.BooleanField()
    messages = ResponseMessageSerializer(many=True)
    itemResponses = ItemResponseSerializer(many=True)
