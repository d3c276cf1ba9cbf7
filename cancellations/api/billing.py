"""`POST /api/v1/service-items/cancel/`: the billing engine's cancelServiceItems (seed 002), served
in AEB's own shape (docs/contracts/billing/aeb-lcm-cancelServiceItems.openapi-subset.json:
BReverseServiceItemsRequestDTO in, BReverseServiceItemsResponseDTO out) so that a client of the
engine can call Storno unchanged.

`itemId` is what it is at the engine: the client system's id of the service item, i.e. the
order item's billing item id (`billingItemId` on /api/v1/orders/), never Storno's own order item
id. An order item without a billing item id can't be named here.

Every field of the request DTO is accepted; any other key (at the top or in an item) is a 400
problem object naming it, with the close match ("userNmae: unknown field; did you mean
userName?"), as is a field beyond its documented length (clientSystemId 20, clientIdentCode 10,
reasonOfReversal 250, itemId 50). AEB documents no limit on the number of items, so there is
none. A request that parses always gets AEB's response body with HTTP 200; `hasErrors` says
whether it was refused, and then nothing was changed. Authentication is the request's (token or
HTTP Basic); `userName` only narrows what the request may do: a known user's permissions apply
(never more than the caller's own), an unknown user gets a read-only role and is logged.
"""

import logging

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.api import PROBLEM_CONTENT_TYPE, JSONParser
from backoffice.openapi import ProblemSerializer

from .. import billing, service_items
from ..audit import AuditInfo
from ..models import AuditEntry
from .billing_serializers import (
    CancelServiceItemsInputSerializer,
    CancelServiceItemsResponseSerializer,
)

logger = logging.getLogger(__name__)

CANCEL_PERMISSION = "cancellations.cancel_order"


def _text(language, text):
    return {"languageISOCode": language, "text": text}


REQUEST_EXAMPLE = OpenApiExample(
    "Cancel two service items",
    request_only=True,
    value={
        "clientSystemId": "ERP-PROD-01",
        "clientIdentCode": "STORNO",
        "userName": "jdoe",
        "resultLanguageIsoCodes": ["de", "en"],
        "reasonOfReversal": "Customer cancelled the contract",
        "items": [{"itemId": "SI-1041"}, {"itemId": "SI-1042"}],
    },
)
SUCCESS_EXAMPLE = OpenApiExample(
    "Both cancelled",
    response_only=True,
    status_codes=["200"],
    value={
        "hasErrors": False,
        "hasOnlyRetryableErrors": False,
        "hasWarnings": True,
        "messages": [],
        "itemResponses": [
            {
                "itemId": "SI-1041",
                "hasErrors": False,
                "hasWarnings": False,
                "messages": [
                    {
                        "messageType": "INFO",
                        "messageIdentCode": "SERVICE_ITEM_CANCELLED",
                        "messageTexts": [
                            _text(
                                "en",
                                "Service item SI-1041 (PLAN-M) is cancelled; settlement items "
                                "removed: 3.",
                            )
                        ],
                        "indentationLevel": 0,
                    }
                ],
            },
            {
                "itemId": "SI-1042",
                "hasErrors": False,
                "hasWarnings": True,
                "messages": [
                    {
                        "messageType": "WARNING",
                        "messageIdentCode": "NO_SETTLEMENT_ITEMS",
                        "messageTexts": [
                            _text(
                                "en",
                                "Service item SI-1042 (SETUP) is cancelled; it had no settlement "
                                "items to remove.",
                            )
                        ],
                        "indentationLevel": 0,
                    }
                ],
            },
        ],
    },
)
REFUSED_EXAMPLE = OpenApiExample(
    "Refused: one settlement item is settled, so nothing was cancelled",
    response_only=True,
    status_codes=["200"],
    value={
        "hasErrors": True,
        "hasOnlyRetryableErrors": False,
        "hasWarnings": False,
        "messages": [
            {
                "messageType": "ERROR",
                "messageIdentCode": "NOTHING_CANCELLED",
                "messageTexts": [
                    _text("en", "Nothing was cancelled: 1 of 2 items can't be cancelled.")
                ],
                "indentationLevel": 0,
            }
        ],
        "itemResponses": [
            {
                "itemId": "SI-1041",
                "hasErrors": True,
                "hasWarnings": False,
                "messages": [
                    {
                        "messageType": "ERROR",
                        "messageIdentCode": "SETTLEMENT_ITEM_SETTLED",
                        "messageTexts": [
                            _text(
                                "en",
                                "Settlement item 77 of service item SI-1041 (PLAN-M) is already "
                                "settled and can't be removed.",
                            )
                        ],
                        "indentationLevel": 0,
                    }
                ],
            },
            {
                "itemId": "SI-1042",
                "hasErrors": False,
                "hasWarnings": False,
                "messages": [
                    {
                        "messageType": "INFO",
                        "messageIdentCode": "NOT_PROCESSED",
                        "messageTexts": [
                            _text(
                                "en",
                                "Service item SI-1042 was left as it was because other items "
                                "can't be cancelled.",
                            )
                        ],
                        "indentationLevel": 1,
                    }
                ],
            },
        ],
    },
)


def _problem(description):
    return OpenApiResponse(ProblemSerializer, description=description)


# --- the view ----------------------------------------------------------------------------------


class CanCancelOrders(permissions.BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(CANCEL_PERMISSION))


def acting_user(request, user_name: str):
    """Who the request runs as: the caller, or the named user if the caller and that user may
    both cancel. None when the named user is unknown (read-only role) or may not cancel."""
    if not user_name:
        return request.user
    user_model = get_user_model()
    named = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: user_name}).first()
    if named is None:
        logger.warning(
            "cancelServiceItems: unknown userName %r sent by %s; read-only role, refused",
            user_name,
            request.user.get_username(),
        )
        return None
    return named if named.is_active and named.has_perm(CANCEL_PERMISSION) else None


class FieldNamesAsSent(dict):
    """error_field_names for a dialect spelt camelCase already: a key is named as it was sent,
    so an unknown `client_system_id` isn't camel-cased into the `clientSystemId` it resembles."""

    def __bool__(self):
        return True

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return key

    def get(self, key, default=None):
        return key


class ServiceItemsCancelView(APIView):
    permission_classes = [CanCancelOrders]
    # The hardened parser: absurdly deep JSON is a 400, not a RecursionError.
    parser_classes = [JSONParser]
    error_field_names = FieldNamesAsSent()
    # Items that can't be cancelled are answered in the 200 body, never as a 409 (an
    # Idempotency-Key in use still is one: backoffice.idempotency documents it).
    error_shapes = {409: None}

    @extend_schema(
        operation_id="serviceItems_cancel",
        summary=gettext_lazy("Cancel service items, all or nothing (cancelServiceItems)"),
        description=gettext_lazy(
            "The billing engine's cancelServiceItems (AEB Logistics Cost Management): each item "
            "is cancelled completely and its settlement items are removed logically, in one "
            "transaction. `itemId` is the service item's id in the billing engine, as there: "
            "the order item's `billingItemId`, not Storno's order item id. If any item can't "
            "be cancelled (unknown, already cancelled, a settlement item already settled or "
            "exported, …) nothing is changed, `hasErrors` is true and every item's messages "
            "say why. Messages come in the requested languages. Fields the request DTO doesn't "
            "define are refused (400, naming them)."
        ),
        request=CancelServiceItemsInputSerializer,
        responses={
            200: CancelServiceItemsResponseSerializer,
            (400, PROBLEM_CONTENT_TYPE): _problem(
                gettext_lazy("Invalid input; invalidFields names each offending field.")
            ),
            (401, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("No or wrong credentials.")),
            (403, PROBLEM_CONTENT_TYPE): _problem(
                gettext_lazy("The caller may not cancel orders.")
            ),
            (406, PROBLEM_CONTENT_TYPE): _problem(
                gettext_lazy("The Accept header asks for something other than JSON.")
            ),
            (415, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The body is not JSON.")),
        },
        examples=[REQUEST_EXAMPLE, SUCCESS_EXAMPLE, REFUSED_EXAMPLE],
    )
    def post(self, request):
        serializer = CancelServiceItemsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item_ids = [item["itemId"] for item in data["items"]]
        languages = data["resultLanguageIsoCodes"]
        actor = acting_user(request, data["userName"])
        if actor is None:
            result = service_items.refused(
                item_ids, languages=languages, message=billing.not_permitted(data["userName"])
            )
        else:
            result = service_items.cancel_service_items(
                item_ids=item_ids,
                actor=actor,
                via=AuditEntry.Via.API,
                reason_of_reversal=data["reasonOfReversal"],
                languages=languages,
                audit=AuditInfo(comment=_audit_comment(request, data)),
            )
        return Response(result.as_dict())


def _audit_comment(request, data) -> str:
    comment = _("cancelServiceItems from %(system)s/%(client)s, sent by %(caller)s") % {
        "system": data["clientSystemId"] or "-",
        "client": data["clientIdentCode"] or "-",
        "caller": request.user.get_username(),
    }
    return comment[:255]
