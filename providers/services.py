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
TASK_RESOLVED = "delivery.task_resolved"
FAILURE_RESOLVED = "delivery.failure_resolved"


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
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "updated_at",
                *delivery.forget_resolution(),
            ]
        )
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


def resolve_delivery(
    delivery: Delivery, *, actor, comment: str, via: str = AuditEntry.Via.WEB
) -> Delivery:
    """Close what needs someone, with what was done: a staff task (a skipped delivery whose
    change was made by hand at the provider) is marked done, a failed delivery resolved (e.g.
    told to the provider by phone, or nothing to tell). Audited."""
    comment = _checked_comment(comment)
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("cancellation__order")
            .get(pk=delivery.pk)
        )
        action = _resolution_action(delivery)
        delivery.resolved_at = timezone.now()
        delivery.resolved_by = actor if actor is not None and actor.pk else None
        delivery.resolution_comment = comment
        delivery.save(
            update_fields=["resolved_at", "resolved_by", "resolution_comment", "updated_at"]
        )
        cancellation = delivery.cancellation
        what = "task" if action == TASK_RESOLVED else "lastError"  # what needed someone
        audit_log.record(
            action,
            order=cancellation.order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={
                "delivery": delivery.pk,
                "provider": delivery.provider,
                "action": delivery.action,
                what: delivery.last_error,
            },
            comment=comment,
        )
    return delivery


# Staff tasks were marked done with this name first.
resolve_task = resolve_delivery


def _checked_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if not comment:
        raise DeliveryError({"comment": _("Say what was done.")}, code="required")
    if len(comment) > COMMENT_MAX:
        raise DeliveryError(
            {"comment": _("Use at most %(limit)s characters.") % {"limit": COMMENT_MAX}},
            code="max_length",
        )
    return comment


def _resolution_action(delivery: Delivery) -> str:
    """The audit action that closes this delivery, or why it can't be closed."""
    if delivery.needs_manual_action:
        if delivery.resolved_at is not None:
            raise DeliveryError(
                {"delivery": _("This task was marked done already.")}, code="resolved"
            )
        return TASK_RESOLVED
    if delivery.status != DeliveryStatus.FAILED:
        raise DeliveryError(
            {
                "delivery": _(
                    "Only failed deliveries and tasks for staff can be marked resolved; this "
                    "one is %(status)s."
                )
                % {"status": delivery.get_status_display().lower()}
            },
            code="not_a_task",
        )
    if delivery.is_moot_failure:
        raise DeliveryError(
            {
                "delivery": _(
                    "Nothing is left to do: the cancellation was undone, and this never "
                    "reached the provider."
                )
            },
            code="resolved",
        )
    if delivery.resolved_at is not None:
        raise DeliveryError(
            {"delivery": _("This failure was marked resolved already.")}, code="resolved"
        )
    return FAILURE_RESOLVED
