"""The orders being cancelled and their items."""

from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..states import OrderStatus
from .fields import BILLING_ITEM_ID_MAX_LENGTH, MONEY, channel_validator, currency_validator


class Order(models.Model):
    number = models.CharField(_("number"), max_length=40, unique=True)
    customer_name = models.CharField(_("customer name"), max_length=200)
    customer_email = models.EmailField(_("customer email"), blank=True)
    channel = models.CharField(
        _("channel"),
        max_length=200,
        validators=[channel_validator],
        help_text=_("Sales channel as a folder path, e.g. /shop/de."),
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent order"),
    )
    status = models.CharField(
        _("status"), max_length=24, choices=OrderStatus.choices, default=OrderStatus.OPEN
    )
    placed_at = models.DateTimeField(_("placed at"), default=timezone.now)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    # References the providers need, in one place: {"callisto": "4711", "rebilly": "ord_1",
    # "js7ControllerId": "controller", "js7OrderIds": ["#2026-…"]}. See external_ids.py.
    external_ids = models.JSONField(_("external ids"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Not a field: set on a locked order by services.locks.lock_items(), its items locked.
    _locked_items: "list[OrderItem]"

    class Meta:
        ordering = ["-placed_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [
            models.Index(fields=["status", "-placed_at"]),
            models.Index(fields=["channel", "-placed_at"]),
            models.Index(fields=["-placed_at", "-id"]),
        ]
        permissions = [("cancel_order", _("Can cancel orders"))]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("staff:order-detail", args=[self.pk])

    @property
    def is_cancellable(self) -> bool:
        return self.status in OrderStatus.cancellable


class OrderItem(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="items", verbose_name=_("order")
    )
    sku = models.CharField(_("SKU"), max_length=64)
    description = models.CharField(_("description"), max_length=255, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    unit_price_amount = models.DecimalField(_("unit price"), **MONEY)
    unit_price_currency = models.CharField(
        _("currency"), max_length=3, validators=[currency_validator]
    )
    period_start = models.DateTimeField(_("service period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("service period end"), null=True, blank=True)
    cancelled_quantity = models.PositiveIntegerField(_("cancelled quantity"), default=0)
    # The billing engine's itemId for this service item (AEB: unique together with the client
    # system id, at most 50 characters; docs/contracts/billing/). Blank: not billed there.
    billing_item_id = models.CharField(
        _("billing item id"),
        max_length=BILLING_ITEM_ID_MAX_LENGTH,
        blank=True,
        help_text=_("The service item's id in the billing engine; empty when it has none."),
    )

    class Meta:
        ordering = ["order", "id"]
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cancelled_quantity__lte=models.F("quantity")),
                name="orderitem_cancelled_within_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__isnull=True)
                | models.Q(period_start__isnull=True)
                | models.Q(period_end__gt=models.F("period_start")),
                name="orderitem_period_ends_after_start",
            ),
            models.UniqueConstraint(
                fields=["billing_item_id"],
                condition=~models.Q(billing_item_id=""),
                name="orderitem_billing_item_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} × {self.quantity}"

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.cancelled_quantity

    @property
    def has_service_period(self) -> bool:
        return self.period_start is not None and self.period_end is not None
