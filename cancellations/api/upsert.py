"""One cancellation: GET in Storno's shape, and PUT, Rebilly's upsert, in Rebilly's dialect
(api/rebilly.py; docs/contracts/rebilly/order-cancellations.paths.resolved.json).

The PUT answers invalid input 422 with Rebilly's problem shape (`instance` and `invalidFields`)
where Storno's other endpoints answer 400; a body that is no JSON at all stays a 400.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, status

from backoffice.openapi import problem

from ..services import updating
from ..states import CancellationStatus
from . import dry_run
from .cancellation_views import CancellationViewMixin, CanRevokeCancellations, service_arguments
from .rebilly import RebillyCancellationInputSerializer, RebillyCancellationSerializer
from .serializers import CancellationSerializer
from .views import (
    CANCELLATION_ERROR_FIELDS,
    CANCELLATION_ID,
    NOT_FOUND,
    NOT_YOURS,
    PROBLEM,
    READ_ERRORS,
    SEED_REQUEST,
    SEED_RESPONSE,
    VIA_API,
    JsonApiView,
    location,
    parse,
)

COMPLETED = CancellationStatus.COMPLETED
# Until the body says which one the client used, `reason` is Rebilly's code, not reasonId.
UPSERT_ERROR_FIELDS = {k: v for k, v in CANCELLATION_ERROR_FIELDS.items() if k != "reason"}

# The same plan as Storno's own examples, named the way a Rebilly client names it.
_REBILLY_NAMES = {"orderId": "ord_01HRF27SATGE4Z6PBJE6PD8328", "reason": "too-expensive"}
REBILLY_REQUEST = OpenApiExample(
    "Cancel at the next renewal with a fee (Rebilly's body)",
    request_only=True,
    value={
        **{k: v for k, v in SEED_REQUEST.value.items() if k != "reasonId"},
        **_REBILLY_NAMES,
        "status": "confirmed",
    },
)
REBILLY_RESPONSE = OpenApiExample(
    "A scheduled cancellation (Rebilly's shape)",
    response_only=True,
    status_codes=["200", "201"],
    value={
        **SEED_RESPONSE.value,
        **_REBILLY_NAMES,
        # Rebilly leaves a line item's unset periods out rather than sending null.
        "lineItems": SEED_REQUEST.value["lineItems"],
        "deliveries": [],
        "_links": SEED_RESPONSE.value["_links"][:1],
    },
)


def what_is_asked(data: dict) -> dict:
    """The validated body as the request's fingerprint should see it: what is asked, not how.
    reasonId already stands for the reason however it was named, and `completed` (accepted
    only when it is) asks for what `confirmed` does; so echoing an answer back is the same
    request again, not an update."""
    asked = CancellationStatus.CONFIRMED if data["status"] == COMPLETED else data["status"]
    return {**data, "reason": None, "status": asked}


class CancellationDetailView(CancellationViewMixin, JsonApiView):
    serializer_class = RebillyCancellationInputSerializer
    error_field_names = UPSERT_ERROR_FIELDS
    invalid_input_status = status.HTTP_422_UNPROCESSABLE_ENTITY  # backoffice.api
    # Rebilly's PUT answers 422, never 409, for what the state refuses (nothing left…); only
    # an id created by another request at the same moment is a 409 (backoffice.api).
    state_conflicts_are_invalid_input = True
    problem_instance = True

    @extend_schema(
        operation_id="order_cancellations_retrieve",
        summary=_("One cancellation"),
        description=_(
            "In Storno's shape, like the list and POST: orderId is Storno's order id (a "
            "number) and reason the reason's subject. PUT answers in Rebilly's."
        ),
        parameters=[CANCELLATION_ID],
        responses={200: CancellationSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request, id):
        return self.render(self.get_cancellation(id))

    @extend_schema(
        operation_id="order_cancellations_upsert",
        summary=_("Create or update the cancellation with this id (Rebilly's upsert)"),
        description=_(
            "Rebilly's PUT /order-cancellations/{id}: its body and its answer "
            "(OrderCancellation), with Storno's reasonId, items, auditLog and externalUserId "
            "besides. Any other field is refused; Rebilly's read-only fields (id, "
            "canceledTime, createdTime, updatedTime, proratedInvoiceId, appliedInvoiceId, "
            "lineItemSubtotal, _links) are ignored.\n\n"
            "orderId: the order's Rebilly id, its number or Storno's id, as a string; when "
            "these name different orders it is refused (a JSON number is Storno's id only). "
            "The answer's orderId is the string the request named the order by.\n\n"
            "reason: Rebilly's code, for the reason mapped to it (reason catalog, Rebilly "
            "mapping); reasonId beats it; neither means other.\n\n"
            "status: draft stores the plan and changes nothing (no order, item or provider "
            "hears of it) until a PUT with confirmed; confirmed (the default) takes effect; "
            "revoked revokes as POST …/revoke/ does (needs revoke_cancellation; the other "
            "fields are not applied); completed is Storno's to set when the churn time comes, "
            "accepted only for a cancellation that is completed already.\n\n"
            "201 when it was created, 200 when it existed. Sending the same body again changes "
            "nothing. Once effective (completed) only the description, canceledBy, "
            "externalUserId and auditLog may change. Creating needs add_cancellation as well "
            "as change_cancellation. Invalid input is a 422 naming each field.\n\n"
            "An existing cancellation is changed or revoked only by the user (API client) who "
            "made it, staff, or a client allowed to act for others; anyone else gets a 403.\n\n"
            "dryRun true: 200 with the quote and each provider's verdict (DryRun), writing "
            "nothing; for status revoked, the verdicts of the revoke (quote null); for a draft, "
            "what confirming it would tell."
        ),
        parameters=[CANCELLATION_ID, location(201)],
        request=RebillyCancellationInputSerializer,
        responses={
            200: PolymorphicProxySerializer(
                component_name="UpsertAnswer",
                serializers=[RebillyCancellationSerializer, dry_run.DryRunSerializer],
                resource_type_field_name=None,
            ),
            201: RebillyCancellationSerializer,
            **READ_ERRORS,
            **NOT_YOURS,
            (400, PROBLEM): problem(_("The body is not JSON.")),
            (409, PROBLEM): problem(_("Another request created this id at the same moment.")),
            (415, PROBLEM): problem(_("The body is not application/json.")),
            (422, PROBLEM): problem(_("Invalid input; invalidFields names each offending field.")),
        },
        examples=[REBILLY_REQUEST, REBILLY_RESPONSE],
    )
    def put(self, request, id):
        data = parse(RebillyCancellationInputSerializer, request)
        if request.data.get("reasonId") is not None:
            self.error_field_names = CANCELLATION_ERROR_FIELDS  # the reason came as reasonId
        dry = data.pop("dryRun")
        if dry:
            existing = self.find_cancellation(id)
            self.check_upsert_permissions(creating=existing is None, status=data["status"])
            arguments = service_arguments(what_is_asked(data))
            plan = dry_run.upsert_plan(
                existing, data["orderId"], data["status"], arguments, actor=request.user
            )
            return dry_run.answer(plan)
        # Whether it creates is the service's to decide, under the order's lock; it asks
        # check_upsert_permissions with what it found.
        cancellation, created = updating.upsert_cancellation(
            id,
            order=data["orderId"],
            status=data["status"],
            authorize=lambda existing: self.check_upsert_permissions(
                creating=existing is None, status=data["status"]
            ),
            actor=request.user,
            via=VIA_API,
            **service_arguments(what_is_asked(data)),
        )
        # Rebilly's answer names the order as the request did.
        reference = str(request.data["orderId"]).strip()
        dialect = (RebillyCancellationSerializer, {"order_reference": reference})
        if created:
            return self.created(cancellation, dialect=dialect)
        return self.render(cancellation, dialect=dialect)

    def check_upsert_permissions(self, *, creating: bool, status: str) -> None:
        """change_cancellation is the view's; creating and revoking need their own too."""
        user = self.request.user
        if creating and not user.has_perm("cancellations.add_cancellation"):
            raise exceptions.PermissionDenied(
                _("Creating a cancellation needs the add permission.")
            )
        if status == CancellationStatus.REVOKED and not CanRevokeCancellations().has_permission(
            self.request, self
        ):
            raise exceptions.PermissionDenied(_("Revoking needs the revoke permission."))


@extend_schema(exclude=True)
class CancellationDetailSlashView(CancellationDetailView):
    """The same resource with a trailing slash, for clients that add one."""
