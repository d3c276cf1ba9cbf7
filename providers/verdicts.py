"""What a provider will hear of a revoke, decided from its add's delivery: one rule for the undo
confirmation (providers.outbox.revoke_verdicts) and for the revoke rows the outbox writes."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .base import Verdict, VerdictReason
from .models import Delivery
from .registry import ADAPTERS
from .states import DeliveryStatus


def revoke_verdict(add: Delivery) -> Verdict:
    """Will the provider of this add be told of its cancellation's revoke, and if not why."""
    adapter_class = ADAPTERS.get(add.provider)
    label = str(adapter_class.label or add.provider) if adapter_class else add.provider
    nothing = VerdictReason.NOTHING_TO_REVOKE

    def verdict(told: bool, reason: VerdictReason, message: object = "") -> Verdict:
        return Verdict(add.provider, label, told, reason, str(message))

    if add.status == DeliveryStatus.PENDING and add.attempts == 0:
        return verdict(False, nothing, _("The add was never sent, so there is nothing to revoke."))
    if add.status in (DeliveryStatus.FAILED, DeliveryStatus.SKIPPED):
        return verdict(
            False, nothing, _("The add never reached the provider, so there is nothing to revoke.")
        )
    if adapter_class is None or not adapter_class.supports_revoke:
        refusal = adapter_class.revoke_refusal() if adapter_class else ""
        return verdict(False, VerdictReason.NO_REVOKE, refusal)
    if add.status == DeliveryStatus.DELIVERED:
        return verdict(True, VerdictReason.WILL_BE_TOLD)
    return verdict(
        True, VerdictReason.WILL_BE_TOLD, _("Told once its add has reached the provider.")
    )
