"""Read-side queries of the outbox, shared by the admin, the staff pages and the API."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from cancellations.states import CancellationStatus

from .base import Action
from .models import Delivery
from .states import DeliveryStatus

# A pending delivery this far past its time means nothing is sweeping (beat or workers down)
# or its provider is switched off.
OVERDUE_AFTER = timedelta(minutes=5)


def add_was_delivered() -> Exists:
    """For a delivery row: its cancellation's add at the same provider was delivered (a revoke
    waits for that)."""
    return Exists(
        Delivery.objects.filter(
            cancellation_id=OuterRef("cancellation_id"),
            provider=OuterRef("provider"),
            action=Action.ADD,
            status=DeliveryStatus.DELIVERED,
        )
    )


def ready_to_send() -> Q:
    """Adds always; revokes once their add was delivered."""
    return Q(action=Action.ADD) | Q(add_was_delivered())


def deliveries_for(cancellation) -> QuerySet[Delivery]:
    """A cancellation's deliveries, provider by provider, the add before the revoke."""
    return Delivery.objects.filter(cancellation=cancellation).order_by("provider", "action")


def delivery_list() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("cancellation__order")


def moot_failure() -> Q:
    """A failed add of a cancellation undone since: it never reached the provider (the revoke
    was skipped for that reason), so nothing is left to do. Resolved by the undo, whichever
    came first, the failure or the undo."""
    return Q(
        status=DeliveryStatus.FAILED,
        action=Action.ADD,
        cancellation__status=CancellationStatus.REVOKED,
    )


def open_failures() -> Q:
    """Failed for good and still needing someone: not resolved by staff, not made moot by an
    undo. (A later success moves the row out of failed by itself.)"""
    return Q(status=DeliveryStatus.FAILED, resolved_at__isnull=True) & ~moot_failure()


def open_staff_task() -> Q:
    return Q(needs_manual_action=True, resolved_at__isnull=True)


def deliveries_needing_attention(now=None) -> QuerySet[Delivery]:
    """Failed for good and not resolved (open_failures), stuck (in flight past the claim's
    lease: its worker died and nothing took it over; pending long past its time), refused for
    credentials, or an open staff task."""
    now = now or timezone.now()
    return delivery_list().filter(
        open_failures()
        | open_staff_task()
        | Q(status=DeliveryStatus.IN_FLIGHT, next_attempt_at__lt=now)
        | (
            Q(status=DeliveryStatus.PENDING, next_attempt_at__lt=now - OVERDUE_AFTER)
            & ready_to_send()
        )
        | Q(status=DeliveryStatus.PENDING, credentials_problem=True)
    )


def open_staff_tasks() -> QuerySet[Delivery]:
    """Skipped deliveries whose change staff must make at the provider by hand and haven't
    marked done yet, oldest first (partial index providers_open_staff_tasks)."""
    return delivery_list().filter(open_staff_task()).order_by("created_at", "id")
