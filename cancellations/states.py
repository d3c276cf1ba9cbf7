"""The allowed state transitions, in one place. Services refuse anything not listed here."""

from django.utils.translation import gettext_lazy as _

from .errors import CancellationError


class OrderStatus:
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    PARTIALLY_CANCELLED = "partially_cancelled"
    CANCELLED = "cancelled"

    choices = [
        (OPEN, _("Open")),
        (IN_PROGRESS, _("In progress")),
        (ON_HOLD, _("On hold")),
        (COMPLETED, _("Completed")),
        (PARTIALLY_CANCELLED, _("Partially cancelled")),
        (CANCELLED, _("Cancelled")),
    ]
    # Statuses from which staff may cancel. COMPLETED and CANCELLED are final for cancelling.
    cancellable = {OPEN, IN_PROGRESS, ON_HOLD, PARTIALLY_CANCELLED}


ORDER_TRANSITIONS = {
    OrderStatus.OPEN: {
        OrderStatus.IN_PROGRESS,
        OrderStatus.ON_HOLD,
        OrderStatus.COMPLETED,
        OrderStatus.PARTIALLY_CANCELLED,
        OrderStatus.CANCELLED,
    },
    OrderStatus.IN_PROGRESS: {
        OrderStatus.OPEN,
        OrderStatus.ON_HOLD,
        OrderStatus.COMPLETED,
        OrderStatus.PARTIALLY_CANCELLED,
        OrderStatus.CANCELLED,
    },
    OrderStatus.ON_HOLD: {
        OrderStatus.OPEN,
        OrderStatus.IN_PROGRESS,
        OrderStatus.PARTIALLY_CANCELLED,
        OrderStatus.CANCELLED,
    },
    OrderStatus.PARTIALLY_CANCELLED: {
        OrderStatus.OPEN,
        OrderStatus.IN_PROGRESS,
        OrderStatus.ON_HOLD,
        OrderStatus.COMPLETED,
        OrderStatus.CANCELLED,
    },
    # Only a revoke leads out of CANCELLED, back to where the order was.
    OrderStatus.CANCELLED: {
        OrderStatus.OPEN,
        OrderStatus.IN_PROGRESS,
        OrderStatus.ON_HOLD,
        OrderStatus.PARTIALLY_CANCELLED,
    },
    OrderStatus.COMPLETED: set(),
}


class CancellationStatus:
    """Rebilly's words: confirmed = accepted (scheduled while its churn time is ahead),
    completed = effective, revoked = undone."""

    DRAFT = "draft"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    REVOKED = "revoked"

    choices = [
        (DRAFT, _("Draft")),
        (CONFIRMED, _("Confirmed")),
        (COMPLETED, _("Completed")),
        (REVOKED, _("Revoked")),
    ]
    active = {CONFIRMED, COMPLETED}


CANCELLATION_TRANSITIONS = {
    CancellationStatus.DRAFT: {CancellationStatus.CONFIRMED, CancellationStatus.REVOKED},
    CancellationStatus.CONFIRMED: {CancellationStatus.COMPLETED, CancellationStatus.REVOKED},
    CancellationStatus.COMPLETED: {CancellationStatus.REVOKED},
    CancellationStatus.REVOKED: set(),
}


def check_order_transition(current: str, target: str) -> None:
    if current != target and target not in ORDER_TRANSITIONS[current]:
        raise CancellationError(
            {
                "status": _("An order can't go from %(current)s to %(target)s.")
                % {"current": current, "target": target}
            },
            code="invalid_transition",
        )


def check_cancellation_transition(current: str, target: str) -> None:
    if target not in CANCELLATION_TRANSITIONS[current]:
        raise CancellationError(
            {
                "status": _("A %(current)s cancellation can't become %(target)s.")
                % {"current": current, "target": target}
            },
            code="invalid_transition",
        )


def check_requested_status(current: str | None, requested: str) -> None:
    """The `status` a client may ask for on Rebilly's upsert, given the cancellation's status
    now (None: it doesn't exist yet). `completed` is set by Storno when the churn time is
    reached (Rebilly: "a read-only status"), so asking for it is accepted only from a
    cancellation that is completed already; `revoked` needs a cancellation to revoke. Every
    other move is checked against CANCELLATION_TRANSITIONS by the service that makes it."""
    if requested == CancellationStatus.COMPLETED and current != CancellationStatus.COMPLETED:
        raise CancellationError(
            {
                "status": _(
                    "Storno sets completed itself when the churn time is reached; "
                    "send confirmed (or draft)."
                )
            },
            code="invalid",
        )
    if requested == CancellationStatus.REVOKED and current is None:
        raise CancellationError(
            {"status": _("There is no cancellation with this id to revoke.")}, code="invalid"
        )
