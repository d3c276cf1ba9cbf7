"""POST and GET /order-cancellations/ (Storno's own shape) and the revoke; the Rebilly-shaped
upsert and GET of one cancellation are in upsert.py. The order and its items are read once,
under their lock, by the service."""

from typing import NoReturn

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from backoffice.openapi import ListSchema

from .. import selectors
from ..audit import AuditInfo
from ..models import CANCELLATION_ID_RE, Order
from ..services import quoting, revoking, updating, writing
from . import dry_run
from .cancellation_input import CancellationInputSerializer, CancellationRevokeInputSerializer
from .filters import CancellationFilter
from .serializers import CancellationSerializer, cancellation_url
from .views import (
    CANCELLATION_ERROR_FIELDS,
    CANCELLATION_ID,
    LIST_ERRORS,
    NOT_FOUND,
    NOT_YOURS,
    SEED_REQUEST,
    SEED_RESPONSE,
    VIA_API,
    WRITE_ERRORS,
    JsonApiView,
    location,
    parse,
)


class CanRevokeCancellations(permissions.BasePermission):
    """Revoking undoes what the providers were told: it has its own model permission."""

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user and user.is_authenticated and user.has_perm("cancellations.revoke_cancellation")
        )


def service_arguments(data: dict) -> dict:
    """The validated body as cancel_order / update_cancellation keyword arguments."""
    audit = data["auditLog"] or {}
    picks = data["items"]
    return {
        "reason": data["reasonId"],
        "items": None
        if picks is None
        else [quoting.ItemPick(pick["itemId"], pick["quantity"]) for pick in picks],
        "lines": [
            quoting.ExtraLine(
                type=line["type"],
                unit_price_amount=line["unitPriceAmount"],
                unit_price_currency=line["unitPriceCurrency"],
                quantity=line["quantity"],
                description=line["description"],
                period_start=line["periodStartTime"],
                period_end=line["periodEndTime"],
            )
            for line in data["lineItems"] or ()
        ],
        "churn_time": data["churnTime"],
        "churn_time_policy": data["churnTimePolicy"] or "",
        "prorated": data["prorated"],
        "description": data["description"],
        "canceled_by": data["canceledBy"],
        "external_user_id": data["externalUserId"],
        "audit": AuditInfo(
            comment=audit.get("comment", ""),
            time_spent=audit.get("timeSpent"),
            ticket_link=audit.get("ticketLink", ""),
        ),
        # The validated input, not the raw bytes: key order, "1" vs 1 or 49.9 vs 49.90 don't
        # make a repeated PUT look new.
        "request_fingerprint": updating.request_fingerprint(
            {**data, "orderId": data["orderId"].pk, "reasonId": data["reasonId"].pk}
        ),
    }


def order_missing(order: Order) -> NoReturn:
    """orderId's error for an order that isn't there, as the serializer would give it."""
    field = CancellationInputSerializer().fields["orderId"]
    raise ValidationError({"orderId": field.missing(order.pk)})


class CancellationViewMixin:
    error_field_names = CANCELLATION_ERROR_FIELDS

    def get_queryset(self):
        return selectors.cancellation_list()

    def find_cancellation(self, cancellation_id: str):
        # Ids outside Rebilly's pattern (NUL bytes, 5 kB…) can't exist: don't query for them.
        if len(cancellation_id) > 50 or not CANCELLATION_ID_RE.fullmatch(cancellation_id):
            return None
        return self.get_queryset().filter(pk=cancellation_id).first()

    def get_cancellation(self, cancellation_id: str):
        cancellation = self.find_cancellation(cancellation_id)
        if cancellation is None:
            raise Http404
        return cancellation

    def render(self, cancellation, status_code=status.HTTP_200_OK, headers=None, *, dialect=None):
        """`dialect`: (output serializer, extra context) when not Storno's own shape."""
        serializer_class, context = dialect or (CancellationSerializer, {})
        # What the serializer needs: in hand after a create, read back otherwise.
        cancellation = selectors.cancellation_for_display(cancellation)
        context = {"request": self.request, **context}
        data = serializer_class(cancellation, context=context).data
        return Response(data, status=status_code, headers=headers)

    def created(self, cancellation, *, dialect=None):
        location = self.request.build_absolute_uri(cancellation_url(cancellation.pk))
        headers = {"Location": location}
        return self.render(cancellation, status.HTTP_201_CREATED, headers, dialect=dialect)


class CancellationListCreateView(CancellationViewMixin, JsonApiView):
    serializer_class = CancellationInputSerializer
    filterset_class = CancellationFilter
    schema = ListSchema()

    @extend_schema(
        operation_id="order_cancellations_list",
        summary=_("List cancellations, newest first"),
        responses={200: CancellationSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        data = CancellationSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="order_cancellations_create",
        summary=_("Cancel an order or some of its items; Storno chooses the id"),
        description=_(
            "With dryRun true: 200 with the quote and each provider's verdict (will it be "
            "told, and if not why), writing nothing; the same input errors as without."
        ),
        request=CancellationInputSerializer,
        parameters=[location(201)],
        responses={
            201: CancellationSerializer,
            200: dry_run.DryRunSerializer,
            **WRITE_ERRORS,
        },
        examples=[SEED_REQUEST, SEED_RESPONSE],
    )
    def post(self, request):
        data = parse(CancellationInputSerializer, request)
        order = data["orderId"]  # only its pk: read under the lock (or for the dry run)
        if data.pop("dryRun"):
            arguments = service_arguments(data)
            order = Order.objects.filter(pk=order.pk).first() or order_missing(order)
            return dry_run.answer(dry_run.plan(order, arguments, actor=request.user))
        try:
            cancellation = writing.cancel_order(
                order, actor=request.user, via=VIA_API, **service_arguments(data)
            )
        except Order.DoesNotExist:
            order_missing(order)
        return self.created(cancellation)


class CancellationRevokeView(CancellationViewMixin, JsonApiView):
    serializer_class = CancellationRevokeInputSerializer
    permission_classes = [CanRevokeCancellations]

    @extend_schema(
        operation_id="order_cancellations_revoke",
        summary=_("Undo a cancellation"),
        description=_(
            "Gives the items back and restores the order's status. Revoking a cancellation that "
            "is already revoked (or a draft) is a 400 naming `status`. Only the user (API "
            "client) who made it, staff, or a client allowed to act for others may revoke it: "
            "anyone else gets a 403."
        ),
        parameters=[CANCELLATION_ID],
        request=CancellationRevokeInputSerializer,
        responses={200: CancellationSerializer, **WRITE_ERRORS, **NOT_YOURS, **NOT_FOUND},
    )
    def post(self, request, id):
        cancellation = self.get_cancellation(id)
        data = parse(CancellationRevokeInputSerializer, request)
        cancellation = revoking.revoke_cancellation(
            cancellation, actor=request.user, via=VIA_API, comment=data["comment"]
        )
        return self.render(cancellation)
