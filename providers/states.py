"""The allowed transitions of a Delivery, in one place. Every status change of a delivery goes
through `move`, which refuses anything not listed here."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .errors import DeliveryError


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    IN_FLIGHT = "in_flight", _("In flight")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


S = DeliveryStatus

DELIVERY_TRANSITIONS = {
    # claimed by a worker; or nothing to send (the add was superseded by a revoke, or the
    # revoke's add never got through)
    S.PENDING: {S.IN_FLIGHT, S.SKIPPED},
    # the adapter's outcome; PENDING = retry later (or the plan changed while in the air);
    # IN_FLIGHT again = reclaimed after its worker stopped answering
    S.IN_FLIGHT: {S.DELIVERED, S.PENDING, S.FAILED, S.SKIPPED, S.IN_FLIGHT},
    # re-planned: providers that take updates are told again
    S.DELIVERED: {S.PENDING},
    # staff retry, or re-planned
    S.FAILED: {S.PENDING},
    S.SKIPPED: set(),
}


def check_delivery_transition(current: str, target: str) -> None:
    if target not in DELIVERY_TRANSITIONS[current]:
        raise DeliveryError(
            {
                "status": _("A %(current)s delivery can't become %(target)s.")
                % {"current": S(current).label, "target": S(target).label}
            },
            code="invalid_transition",
        )


def move(delivery, target: str) -> None:
    """Set a delivery's status after checking the transition (the caller saves)."""
    check_delivery_transition(delivery.status, target)
    delivery.status = target
