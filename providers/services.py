"""State changes of deliveries that people ask for. (The dispatcher moves deliveries on its
own; the cancellation services write them through providers/outbox.py.)"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cancellations import audit as audit_log
from cancellations.models import AuditEntry
from cancellations.states import CancellationStatus

from .base import Action
from .errors import DeliveryError
from .models import Delivery
from .outbox import kick
from .states import DeliveryStatus, move

RETRYABLE = (DeliveryStatus.FAILED, DeliveryStatus.PENDING)


def retry_delivery(delivery: Delivery, *, actor, via: str = AuditEntry.Via.ADMIN) -> Delivery:
    """Send a failed delivery again with a fresh attempt budget, or a waiting one now."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("cancellation__order")
            .get(pk=delivery.pk)
        )
        if delivery.status not in RETRYABLE:
            raise DeliveryError(
                {
                    "delivery": _(
                        "Only failed or waiting deliveries can be retried; this one is %(status)s."
                    )
                    % {"status": delivery.get_status_display().lower()}
                },
                code="not_retryable",
            )
        cancellation = delivery.cancellation
        if delivery.action == Action.ADD and cancellation.status == CancellationStatus.REVOKED:
            raise DeliveryError(
                {
                    "delivery": _(
                        "Cancellation %(id)s was revoked: sending its add now would tell the "
                        "provider something that is no longer true."
                    )
                    % {"id": cancellation.pk}
                },
                code="not_retryable",
            )
        before = delivery.status
        if delivery.status == DeliveryStatus.FAILED:
            move(delivery, DeliveryStatus.PENDING)
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        audit_log.record(
            "delivery.retried",
            order=cancellation.order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={
                "delivery": delivery.pk,
                "provider": delivery.provider,
                "action": delivery.action,
                "from": before,
                "lastError": delivery.last_error,
            },
        )
        transaction.on_commit(lambda: kick([delivery.pk]))
    return delivery
