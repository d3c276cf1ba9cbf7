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
COMMENT_MAX = 255  # the audit entry's comment


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


def resolve_task(
    delivery: Delivery, *, actor, comment: str, via: str = AuditEntry.Via.WEB
) -> Delivery:
    """Mark a staff task (a skipped delivery that needs a change made by hand at the provider)
    done, with what was done. Audited."""
    comment = (comment or "").strip()
    if not comment:
        raise DeliveryError({"comment": _("Say what was done.")}, code="required")
    if len(comment) > COMMENT_MAX:
        raise DeliveryError(
            {"comment": _("Use at most %(limit)s characters.") % {"limit": COMMENT_MAX}},
            code="max_length",
        )
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("cancellation__order")
            .get(pk=delivery.pk)
        )
        if not delivery.needs_manual_action:
            raise DeliveryError(
                {"delivery": _("This delivery needs nothing done by hand.")}, code="not_a_task"
            )
        if delivery.resolved_at is not None:
            raise DeliveryError(
                {"delivery": _("This task was marked done already.")}, code="resolved"
            )
        delivery.resolved_at = timezone.now()
        delivery.resolved_by = actor if actor is not None and actor.pk else None
        delivery.resolution_comment = comment
        delivery.save(
            update_fields=["resolved_at", "resolved_by", "resolution_comment", "updated_at"]
        )
        cancellation = delivery.cancellation
        audit_log.record(
            "delivery.task_resolved",
            order=cancellation.order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={
                "delivery": delivery.pk,
                "provider": delivery.provider,
                "action": delivery.action,
                "task": delivery.last_error,
            },
            comment=comment,
        )
    return delivery
