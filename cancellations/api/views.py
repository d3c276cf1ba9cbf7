"""The cancellations API: orders and Rebilly-shaped order cancellations (the Rebilly-dialect
upsert and GET of one cancellation: upsert.py).

Each view parses with an input serializer, calls a service (via=API, actor=the caller), reads
back through a selector and renders with an output serializer. Errors become problem objects in
backoffice.api; `error_field_names` turns the services' argument names into the API's.
"""

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from backoffice.api import PROBLEM_CONTENT_TYPE, JSONParser
from backoffice.openapi import ListSchema, problem
from backoffice.unknown_fields import UNKNOWN_FIELD, unknown_fields

from .. import selectors
from ..models import AuditEntry
from ..services import order_changes
from .filters import OrderFilter
from .order_serializers import OrderInputSerializer, OrderSerializer
from .serializers import order_url

VIA_API = AuditEntry.Via.API
PROBLEM = PROBLEM_CONTENT_TYPE

# Service argument → API field, applied to each segment of a dotted service key
# (`lines.0.period_end` → `lineItems.0.periodEndTime`); anything else is camel-cased.
ORDER_ERROR_FIELDS = {
    "placed_at": "placedTime",
    "parent": "parentId",
    "period_start": "periodStartTime",
    "period_end": "periodEndTime",
}
CANCELLATION_ERROR_FIELDS = {
    "order": "orderId",
    "reason": "reasonId",
    "lines": "lineItems",
    "audit": "auditLog",
    "period_start": "periodStartTime",
    "period_end": "periodEndTime",
}


READ_ERRORS = {
    (401, PROBLEM): problem(_("No or wrong credentials.")),
    (403, PROBLEM): problem(_("The user lacks the model permission.")),
    (406, PROBLEM): problem(_("The Accept header asks for something other than JSON.")),
}
LIST_ERRORS = {
    **READ_ERRORS,
    (400, PROBLEM): problem(_("A filter is invalid; invalidFields names it.")),
}
WRITE_ERRORS = {
    **READ_ERRORS,
    (400, PROBLEM): problem(_("Invalid input; invalidFields names each offending field.")),
    (415, PROBLEM): problem(_("The body is not application/json.")),
}
NOT_FOUND = {(404, PROBLEM): problem(_("No such resource."))}
# Changing or revoking one cancellation (cancellations/ownership.py).
NOT_YOURS = {
    (403, PROBLEM): problem(
        _(
            "The user lacks the model permission, or another user or API client made this "
            "cancellation and the user may not act for others."
        )
    )
}


def location(*status_codes: int) -> OpenApiParameter:
    """The Location response header of a created (or accepted) resource."""
    return OpenApiParameter(
        "Location",
        OpenApiTypes.URI,
        OpenApiParameter.HEADER,
        required=True,
        response=list(status_codes),
        description=_("The new resource's URL."),
    )


CANCELLATION_ID = OpenApiParameter(
    "id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description=_("The cancellation id; on PUT the client chooses it: ^[@~\\-.\\w]+$, ≤ 50."),
)

SEED_REQUEST = OpenApiExample(
    "Cancel at the next renewal with a fee",
    request_only=True,
    value={
        "orderId": 42,
        "reasonId": 3,
        "description": "Customer moved abroad.",
        "canceledBy": "customer",
        "churnTimePolicy": "at-next-renewal",
        "prorated": True,
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 49.95,
                "unitPriceCurrency": "USD",
                "quantity": 1,
                "description": "Early termination fee",
            }
        ],
        "auditLog": {"comment": "Asked by phone", "timeSpent": 5, "ticketLink": ""},
    },
)
SEED_RESPONSE = OpenApiExample(
    "A scheduled cancellation",
    response_only=True,
    status_codes=["200", "201"],
    value={
        "id": "sub_cnl_0YVJ5XVQM9CDP8248ZQX0RDMKV",
        "orderId": 42,
        "reasonId": 3,
        "reason": "Too expensive",
        "description": "Customer moved abroad.",
        "canceledBy": "customer",
        "status": "confirmed",
        "canceledTime": "2026-05-01T09:30:00Z",
        "churnTime": "2026-05-31T00:00:00Z",
        "churnTimePolicy": "at-next-renewal",
        "completedTime": None,
        "prorated": True,
        "proratedCredit": {"amount": 0, "currency": "USD"},
        "lineItemSubtotal": {"amount": 49.95, "currency": "USD"},
        "proratedInvoiceId": None,
        "appliedInvoiceId": None,
        "items": [{"itemId": 7, "sku": "PLAN-M", "quantity": 1, "proratedCreditAmount": 0}],
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 49.95,
                "unitPriceCurrency": "USD",
                "quantity": 1,
                "description": "Early termination fee",
                "periodStartTime": None,
                "periodEndTime": None,
            }
        ],
        "externalUserId": "",
        "auditLog": {"comment": "Asked by phone", "timeSpent": 5, "ticketLink": ""},
        "createdTime": "2026-05-01T09:30:00Z",
        "updatedTime": "2026-05-01T09:30:00Z",
        "revokedTime": None,
        "_links": [
            {
                "rel": "self",
                "href": "https://storno.example/api/v1/order-cancellations/"
                "sub_cnl_0YVJ5XVQM9CDP8248ZQX0RDMKV",
            },
            {"rel": "order", "href": "https://storno.example/api/v1/orders/42/"},
        ],
    },
)


class JsonApiView(GenericAPIView):
    """JSON only: the staff pages are the human interface (and the browsable API's forms would
    render input serializers over output objects). serializer_class is what OPTIONS describes."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    lookup_url_kwarg = "id"
    PAGING = ("limit", "offset", "page_size")  # backoffice.api.Pagination's

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A query parameter the view doesn't know is a 400 naming it, not silently dropped
        # (a misspelt filter would otherwise answer every row).
        known = self.known_query_parameters(request)
        unknown = unknown_fields(request.query_params, known) if known is not None else {}
        if unknown:
            detail = {
                name: [ErrorDetail(text, code=UNKNOWN_FIELD)] for name, text in unknown.items()
            }
            raise ValidationError(detail)

    def known_query_parameters(self, request) -> list[str] | None:
        """The query parameters this request may carry; None: not checked. A list's GET takes
        its filters and the paging."""
        filterset = getattr(self, "filterset_class", None)
        if request.method == "GET" and filterset is not None:
            return [*filterset.base_filters, *self.PAGING]
        return None


def parse(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- orders --------------------------------------------------------------------------------------


class OrderListCreateView(JsonApiView):
    serializer_class = OrderInputSerializer
    filterset_class = OrderFilter
    error_field_names = ORDER_ERROR_FIELDS
    schema = ListSchema()

    def get_queryset(self):
        return selectors.order_api_queryset()

    @extend_schema(
        operation_id="orders_list",
        summary=_("List orders, newest first"),
        responses={200: OrderSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        orders = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        data = OrderSerializer(orders, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="orders_create",
        summary=_("Take in an order from another system"),
        request=OrderInputSerializer,
        parameters=[location(201)],
        responses={
            201: OrderSerializer,
            **WRITE_ERRORS,
            (409, PROBLEM): problem(_("An order with this number exists already.")),
        },
    )
    def post(self, request):
        data = parse(OrderInputSerializer, request)
        order = order_changes.create_order(
            number=data["number"],
            customer_name=data["customerName"],
            customer_email=data.get("customerEmail", ""),
            channel=data["channel"],
            currency=data["currency"],
            status=data["status"],
            placed_at=data["placedTime"],
            parent=data["parentId"],
            external_ids=data["externalIds"],
            items=[
                order_changes.NewOrderItem(
                    sku=item["sku"],
                    quantity=item["quantity"],
                    unit_price_amount=item["unitPriceAmount"],
                    description=item["description"],
                    period_start=item["periodStartTime"],
                    period_end=item["periodEndTime"],
                    billing_item_id=item["billingItemId"],
                )
                for item in data["items"]
            ],
            actor=request.user,
            via=VIA_API,
        )
        order = self.get_queryset().get(pk=order.pk)
        return Response(
            OrderSerializer(order, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(order_url(order.pk))},
        )


class OrderDetailView(JsonApiView):
    serializer_class = OrderSerializer

    def get_queryset(self):
        return selectors.order_api_queryset()

    @extend_schema(
        operation_id="orders_retrieve",
        summary=_("One order with its items"),
        responses={200: OrderSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request, id):
        order = self.get_queryset().filter(pk=id).first()
        if order is None:
            raise Http404
        return Response(OrderSerializer(order, context={"request": request}).data)
