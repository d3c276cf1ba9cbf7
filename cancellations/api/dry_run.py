"""`dryRun: true` on POST /order-cancellations/ and PUT /order-cancellations/{id}: the quote and
every provider's verdict (will it be told, and if not why), writing nothing: no cancellation,
audit entry or delivery, and an Idempotency-Key is not kept (backoffice.idempotency). 200."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers, status
from rest_framework.response import Response

from backoffice.idempotency import keep_nothing
from providers.base import VERDICT_REASONS

from ..errors import CancellationError
from ..ownership import check_may_act_on
from ..services import quoting, verdicts, writing
from ..states import CancellationStatus
from .serializers import CancellationLineSerializer, UtcDateTimeField, money_field

# What an existing cancellation must be for a dry run to plan it again.
PLANNABLE = (CancellationStatus.DRAFT, CancellationStatus.CONFIRMED)


class VerdictSerializer(serializers.Serializer):
    provider = serializers.CharField()
    label = serializers.CharField(help_text=_("The provider's name, in the caller's language."))
    willBeTold = serializers.BooleanField(source="will_be_told")
    reason = serializers.ChoiceField(
        choices=VERDICT_REASONS,
        help_text=_("Why (not): a stable code."),
    )
    message = serializers.CharField(help_text=_("For people: why not, or what to note."))
    needsManualAction = serializers.BooleanField(
        source="needs_manual_action",
        help_text=_("Staff will have to make the change at the provider by hand (a task)."),
    )


class QuotedItemSerializer(serializers.Serializer):
    itemId = serializers.IntegerField(source="order_item.pk")
    sku = serializers.CharField(source="order_item.sku")
    quantity = serializers.IntegerField()
    proratedCreditAmount = money_field(source="prorated_credit")


class QuoteSerializer(serializers.Serializer):
    orderId = serializers.IntegerField(source="order.pk")
    wholeOrder = serializers.BooleanField(source="is_whole_order")
    scheduled = serializers.BooleanField(source="is_scheduled")
    churnTime = UtcDateTimeField(source="effective_at")
    prorated = serializers.BooleanField()
    currency = serializers.CharField()
    items = QuotedItemSerializer(many=True)
    lineItems = CancellationLineSerializer(source="lines", many=True)
    proratedCreditAmount = money_field(source="prorated_credit")
    lineItemSubtotalAmount = money_field(source="line_item_subtotal")
    netAmount = money_field(source="net_amount")
    warnings = serializers.ListField(child=serializers.CharField())


class DryRunSerializer(serializers.Serializer):
    """The answer to a dry run: what would be cancelled and who would be told."""

    dryRun = serializers.BooleanField(help_text=_("Always true: nothing was written."))
    quote = QuoteSerializer(
        allow_null=True, help_text=_("null for a revoke: nothing is quoted for it.")
    )
    providers = VerdictSerializer(many=True)


def plan(order, arguments: dict, *, actor, excluding: str | None = None) -> dict:
    """The quote and the verdicts for cancel_order's (or update's) `arguments`; the same input
    errors as the real request."""
    writing.check_request_fields(
        arguments["canceled_by"],
        audit=arguments["audit"],
        external_user_id=arguments["external_user_id"],
    )
    quote = quoting.quote_cancellation(
        order,
        reason=arguments["reason"],
        items=arguments["items"],
        lines=arguments["lines"],
        churn_time=arguments["churn_time"],
        churn_time_policy=arguments["churn_time_policy"],
        prorated=arguments["prorated"],
        description=arguments["description"],
        excluding=excluding,
    )
    providers = verdicts.quote_verdicts(
        quote, actor=actor, external_user_id=arguments["external_user_id"]
    )
    return {"dryRun": True, "quote": quote, "providers": providers}


def upsert_plan(existing, order, asked_status: str, arguments: dict, *, actor) -> dict:
    """A dry run of the upsert: a revoke's verdicts, or the plan it would create or re-plan
    (for a draft: what confirming it would tell)."""
    if existing is not None:
        check_may_act_on(actor, existing)
    if asked_status == CancellationStatus.REVOKED:
        providers = verdicts.revoke_verdicts(existing) if existing is not None else []
        return {"dryRun": True, "quote": None, "providers": providers}
    if existing is not None and existing.status not in PLANNABLE:
        raise CancellationError(
            {
                "dryRun": _(
                    "A dry run plans a new, draft or scheduled cancellation; this one is "
                    "%(status)s."
                )
                % {"status": existing.get_status_display().lower()}
            },
            code="invalid",
        )
    excluding = existing.pk if existing is not None else None
    return plan(order, arguments, actor=actor, excluding=excluding)


def answer(result: dict) -> Response:
    response = Response(DryRunSerializer(result).data, status=status.HTTP_200_OK)
    return keep_nothing(response)
