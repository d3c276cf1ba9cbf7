"""The billing engine's settlement items: the billed periods of an order item."""

from typing import Self

from django.db import models
from django.utils.translation import gettext_lazy as _

from .cancellations import Cancellation
from .fields import MONEY, currency_validator
from .orders import OrderItem


class SettlementState(models.TextChoices):
    OPEN = "open", _("Open")
    SETTLED = "settled", _("Settled")
    EXPORTED = "exported", _("Exported")


class SettlementItemQuerySet(models.QuerySet["SettlementItem"]):
    def present(self) -> Self:
        """Not logically removed."""
        return self.filter(removed_at__isnull=True)

    def blocking(self) -> Self:
        """Present but settled or exported: these can no longer be removed, so their order
        item can't be cancelled (the billing engine's rule, seed 002)."""
        return self.present().exclude(state=SettlementState.OPEN)


class SettlementItem(models.Model):
    """One billed period of a service item (an order item), as the billing engine keeps it.

    Cancelling the order item removes its settlement items logically (removed_at is set, the
    row stays); a revoke puts them back. Settled or exported ones can't be removed."""

    order_item = models.ForeignKey(
        OrderItem,
        on_delete=models.CASCADE,
        related_name="settlement_items",
        verbose_name=_("order item"),
    )
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    state = models.CharField(
        _("billing state"),
        max_length=16,
        choices=SettlementState.choices,
        default=SettlementState.OPEN,
    )
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by_cancellation = models.ForeignKey(
        Cancellation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="removed_settlement_items",
        verbose_name=_("removed by cancellation"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = SettlementItemQuerySet.as_manager()

    class Meta:
        ordering = ["order_item", "period_start", "id"]
        verbose_name = _("settlement item")
        verbose_name_plural = _("settlement items")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="settlementitem_period_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.amount} {self.currency}"

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    @property
    def is_blocking(self) -> bool:
        return not self.is_removed and self.state != SettlementState.OPEN
