"""Revoking a cancellation: the items come back, the order's status is restored and the
providers are told (a REVOKE outbox row per ADD)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import Action as DeliveryAction
from providers.outbox import enqueue_deliveries

from .. import audit as audit_log
from .. import ownership
from ..errors import CancellationError
from ..models import (
    Cancellation,
    OrderItem,
)
from ..states import (
    CancellationStatus,
    OrderStatus,
    check_cancellation_transition,
)
from .effect import derived_order_status, set_order_status
from .locks import lock_items, lock_order

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def revoke_cancellation(
    cancellation: Cancellation, *, actor: User | None, via: str, comment: str = ""
) -> Cancellation:
    """Undo a cancellation: give the items back and restore the order's status."""
    ownership.check_may_act_on(actor, cancellation)
    if len(comment or "") > 255:
        raise CancellationError({"comment": _("Use at most 255 characters.")}, code="invalid")
    with transaction.atomic():
        order = lock_order(cancellation.order_id)
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        if cancellation.status not in CancellationStatus.active:
            raise CancellationError(
                {
                    "status": _("This cancellation is %(status)s and can't be undone.")
                    % {"status": cancellation.get_status_display().lower()}
                },
                code="not_revocable",
            )
        check_cancellation_transition(cancellation.status, CancellationStatus.REVOKED)
        was_effective = cancellation.status == CancellationStatus.COMPLETED
        if was_effective:
            items = {item.pk: item for item in lock_items(order)}
            changed = []
            for item_id, quantity in cancellation.items.values_list("order_item_id", "quantity"):
                items[item_id].cancelled_quantity -= quantity
                changed.append(items[item_id])
            OrderItem.objects.bulk_update(changed, ["cancelled_quantity"])
            cancellation.removed_settlement_items.update(
                removed_at=None, removed_by_cancellation=None
            )
        cancellation.status = CancellationStatus.REVOKED
        cancellation.revoked_time = timezone.now()
        cancellation.revoked_by = actor if actor is not None and actor.pk else None
        cancellation.revoke_comment = comment
        cancellation.save()
        trail = audit_log.Trail()
        trail.add(
            "cancellation.revoked",
            order=order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={"wasEffective": was_effective},
            comment=comment,
        )
        if was_effective:
            restored = cancellation.order_status_before
            if restored in (OrderStatus.CANCELLED, OrderStatus.PARTIALLY_CANCELLED):
                restored = OrderStatus.OPEN
            set_order_status(
                order,
                derived_order_status(items.values(), restored),
                trail=trail,
                actor=actor,
                via=via,
                cancellation=cancellation,
            )
        trail.write()
        enqueue_deliveries(cancellation, DeliveryAction.REVOKE)
    return cancellation
