"""A cancellation: which items it takes away, its extra fee and credit lines."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..states import CancellationStatus, OrderStatus
from .fields import MONEY, ZERO, cancellation_id_validator, currency_validator, new_cancellation_id
from .orders import Order, OrderItem


class CanceledBy(models.TextChoices):
    MERCHANT = "merchant", _("Merchant")
    CUSTOMER = "customer", _("Customer")
    REBILLY = "rebilly", _("Rebilly")


class ChurnTimePolicy(models.TextChoices):
    NOW = "now", _("Now")
    AT_NEXT_RENEWAL = "at-next-renewal", _("At the end of the service period")


class Cancellation(models.Model):
    """One cancellation request (whole order or some items), shaped like Rebilly's
    order-cancellation resource (seed 001)."""

    id = models.CharField(
        primary_key=True,
        max_length=50,
        default=new_cancellation_id,
        validators=[cancellation_id_validator],
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="cancellations", verbose_name=_("order")
    )
    is_whole_order = models.BooleanField(_("whole order"), default=True)
    reason = models.ForeignKey(
        "reasons.CancellationReason",
        on_delete=models.PROTECT,
        related_name="cancellations",
        verbose_name=_("reason"),
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    canceled_by = models.CharField(
        _("canceled by"), max_length=16, choices=CanceledBy, default=CanceledBy.MERCHANT
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=CancellationStatus.choices,
        default=CancellationStatus.CONFIRMED,
    )
    canceled_time = models.DateTimeField(_("canceled at"), default=timezone.now)
    churn_time = models.DateTimeField(_("effective at"))
    churn_time_policy = models.CharField(
        _("churn time policy"), max_length=16, choices=ChurnTimePolicy, blank=True
    )
    completed_time = models.DateTimeField(_("completed at"), null=True, blank=True)
    prorated = models.BooleanField(_("prorated"), default=False)
    currency = models.CharField(_("currency"), max_length=3)
    prorated_credit_amount = models.DecimalField(_("prorated credit"), default=ZERO, **MONEY)
    line_item_subtotal_amount = models.DecimalField(_("line item subtotal"), default=ZERO, **MONEY)
    prorated_invoice_id = models.CharField(_("prorated invoice id"), max_length=50, blank=True)
    applied_invoice_id = models.CharField(_("applied invoice id"), max_length=50, blank=True)
    # The order's status before this cancellation, restored when it is revoked.
    order_status_before = models.CharField(max_length=24, choices=OrderStatus.choices)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    external_user_id = models.CharField(
        _("external user id"),
        max_length=64,
        blank=True,
        help_text=_("The Salesforce user id of whoever asked for it, sent to Callisto as UserId."),
    )
    audit_comment = models.CharField(_("comment"), max_length=255, blank=True)
    audit_time_spent = models.PositiveIntegerField(_("time spent (minutes)"), null=True, blank=True)
    audit_ticket_link = models.CharField(_("ticket link"), max_length=255, blank=True)

    revoked_time = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    revoke_comment = models.CharField(_("revoke comment"), max_length=255, blank=True)
    # JS7: also stop the order's workflow orders that are running (JOC's "kill"), set by a
    # bulk cancellation with kill; otherwise running workflow orders are left to finish.
    kill_running = models.BooleanField(_("stop running workflow orders"), default=False)
    bulk_cancellation = models.ForeignKey(
        "BulkCancellation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cancellations",
        verbose_name=_("bulk cancellation"),
    )
    # Hash of the request that created it, so that the same PUT body twice changes nothing.
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    created_time = models.DateTimeField(_("created"), auto_now_add=True)
    updated_time = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_time", "-id"]
        verbose_name = _("cancellation")
        verbose_name_plural = _("cancellations")
        indexes = [
            models.Index(fields=["status", "churn_time"]),
            models.Index(fields=["-created_time", "-id"]),
        ]
        permissions = [
            ("revoke_cancellation", _("Can revoke (undo) cancellations")),
            # cancellations/ownership.py: without it, only one's own (or nobody's) cancellations.
            (
                "act_for_other_clients",
                _("Can change or revoke cancellations other users or API clients made"),
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("staff:cancellation-detail", args=[self.pk])

    @property
    def is_scheduled(self) -> bool:
        return self.status == CancellationStatus.CONFIRMED

    @property
    def is_revocable(self) -> bool:
        return self.status in CancellationStatus.active

    @property
    def net_amount(self) -> Decimal:
        """What the customer is charged (positive) or credited (negative) in the end."""
        return self.line_item_subtotal_amount - self.prorated_credit_amount


class CancellationItem(models.Model):
    """Which order item, and how many of it, a cancellation takes away."""

    cancellation = models.ForeignKey(
        Cancellation, on_delete=models.CASCADE, related_name="items", verbose_name=_("cancellation")
    )
    order_item = models.ForeignKey(
        OrderItem,
        on_delete=models.PROTECT,
        related_name="cancellation_items",
        verbose_name=_("order item"),
    )
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    prorated_credit_amount = models.DecimalField(_("prorated credit"), default=ZERO, **MONEY)

    class Meta:
        ordering = ["cancellation", "id"]
        verbose_name = _("cancelled item")
        verbose_name_plural = _("cancelled items")
        constraints = [
            models.UniqueConstraint(
                fields=["cancellation", "order_item"], name="cancellationitem_once_per_item"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_item.sku} × {self.quantity}"


class LineType(models.TextChoices):
    DEBIT = "debit", _("Fee (debit)")
    CREDIT = "credit", _("Credit")


class CancellationLine(models.Model):
    """An extra fee or credit line billed with the cancellation (Rebilly's lineItems)."""

    cancellation = models.ForeignKey(
        Cancellation, on_delete=models.CASCADE, related_name="lines", verbose_name=_("cancellation")
    )
    type = models.CharField(_("type"), max_length=8, choices=LineType)
    description = models.CharField(_("description"), max_length=1000, blank=True)
    unit_price_amount = models.DecimalField(
        _("unit price"), validators=[MinValueValidator(ZERO)], **MONEY
    )
    unit_price_currency = models.CharField(
        _("currency"), max_length=3, validators=[currency_validator]
    )
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)

    class Meta:
        ordering = ["cancellation", "id"]
        verbose_name = _("fee or credit line")
        verbose_name_plural = _("fee and credit lines")

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.unit_price_amount} × {self.quantity}"

    @property
    def signed_total(self) -> Decimal:
        total = self.unit_price_amount * self.quantity
        return total if self.type == LineType.DEBIT else -total
