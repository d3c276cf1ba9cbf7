"""Every provider's verdict before confirming: will it be told, and if not why. Asked by the
previews (staff page, admin action, undo) and the API's dryRun; writes nothing. The adapters
decide, reached only through the outbox seam (providers.outbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone

from providers import outbox
from providers.base import Verdict

from ..models import Cancellation, Order
from ..states import CancellationStatus
from .quoting import CancellationQuote

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def planned_cancellation(
    order: Order,
    *,
    is_whole_order: bool,
    effective_at: Any,
    scheduled: bool,
    actor: User | None,
    external_user_id: str = "",
) -> Cancellation:
    """An unsaved cancellation carrying what the adapters judge a plan by."""
    now = timezone.now()
    return Cancellation(
        order=order,
        is_whole_order=is_whole_order,
        churn_time=effective_at or now,
        canceled_time=now,
        status=CancellationStatus.CONFIRMED if scheduled else CancellationStatus.COMPLETED,
        created_by=actor if actor is not None and actor.pk else None,
        external_user_id=external_user_id,
    )


def quote_verdicts(
    quote: CancellationQuote, *, actor: User | None, external_user_id: str = ""
) -> list[Verdict]:
    """Each provider's verdict on the cancellation a quote describes."""
    cancellation = planned_cancellation(
        quote.order,
        is_whole_order=quote.is_whole_order,
        effective_at=quote.effective_at,
        scheduled=quote.is_scheduled,
        actor=actor,
        external_user_id=external_user_id,
    )
    cancellation.reason = quote.reason
    picks = [(quoted.order_item, quoted.quantity) for quoted in quote.items]
    return outbox.add_verdicts(cancellation, picks)


def whole_order_verdicts(
    order: Order, *, actor: User | None, external_user_id: str = ""
) -> list[Verdict]:
    """Each provider's verdict on cancelling what is open of the whole order now (the admin
    action's confirmation page, before a reason or time is chosen)."""
    cancellation = planned_cancellation(
        order,
        is_whole_order=True,
        effective_at=None,
        scheduled=False,
        actor=actor,
        external_user_id=external_user_id,
    )
    picks = [(item, item.open_quantity) for item in order.items.all() if item.open_quantity]
    return outbox.add_verdicts(cancellation, picks)


def revoke_verdicts(cancellation: Cancellation) -> list[Verdict]:
    """What each provider that heard of the cancellation will hear of its undoing."""
    return outbox.revoke_verdicts(cancellation)
