import re
import uuid
from decimal import Decimal
from typing import Self, TypedDict

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .states import CancellationStatus, OrderStatus
from .target_messages import target_text


class MoneyDigits(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: MoneyDigits = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")
BILLING_ITEM_ID_MAX_LENGTH = 50  # AEB's BServiceItemReferenceDTO.itemId: length=50

# Rebilly's id pattern for order cancellations: the same id travels to Rebilly unchanged.
CANCELLATION_ID_RE = re.compile(r"^[@~\-.A-Za-z0-9_]+$")
cancellation_id_validator = RegexValidator(
    CANCELLATION_ID_RE, _("Use only letters, digits and @ ~ - . _ (at most 50).")
)
currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 code."))
channel_validator = RegexValidator(
    r"^(/[A-Za-z0-9_.-]+)+$", _("Use an absolute folder path like /shop/de.")
)


def new_cancellation_id() -> str:
    return f"cnl_{uuid.uuid4().hex[:24]}"


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


class AuditEntry(models.Model):
    """Who changed what, when and why. Written by services only, never edited."""

    class Via(models.TextChoices):
        WEB = "web", _("Staff pages")
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        CALLISTO = "callisto", _("Callisto endpoint")
        TASK = "task", _("Scheduled task")
        SYSTEM = "system", _("System")

    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    order = models.ForeignKey(
        Order,
        on_delete=models.CASCADE,
        related_name="audit_entries",
        null=True,
        blank=True,
        verbose_name=_("order"),
    )
    cancellation = models.ForeignKey(
        Cancellation,
        on_delete=models.CASCADE,
        related_name="audit_entries",
        null=True,
        blank=True,
        verbose_name=_("cancellation"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    actor_label = models.CharField(
        _("actor"), max_length=150, help_text=_("The user or API client, kept if it is deleted.")
    )
    via = models.CharField(_("via"), max_length=16, choices=Via, default=Via.SYSTEM)
    data = models.JSONField(_("data"), default=dict, blank=True)
    comment = models.CharField(_("comment"), max_length=255, blank=True)
    ticket_link = models.CharField(_("ticket link"), max_length=255, blank=True)
    time_spent = models.PositiveIntegerField(_("time spent (minutes)"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        indexes = [models.Index(fields=["order", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} by {self.actor_label}"


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


class BulkCancellationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")


class BulkCancellation(models.Model):
    """A job that cancels every order a JOC-style filter (cancellations.order_filter) selects.

    The filter is kept as given and resolved against `created_at`, so relative dates ("1d")
    mean the same orders however late the job runs or resumes. The orders are written down as
    targets when the job starts; each target is settled in the transaction that cancels its
    order, which is what makes a resumed job never cancel twice."""

    filter = models.JSONField(_("filter"), default=dict)
    reason = models.ForeignKey(
        "reasons.CancellationReason",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reason"),
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    canceled_by = models.CharField(
        _("canceled by"), max_length=16, choices=CanceledBy, default=CanceledBy.MERCHANT
    )
    churn_time = models.DateTimeField(_("effective at"), null=True, blank=True)
    prorated = models.BooleanField(_("prorated"), default=False)
    audit_comment = models.CharField(_("comment"), max_length=255, blank=True)
    audit_time_spent = models.PositiveIntegerField(_("time spent (minutes)"), null=True, blank=True)
    audit_ticket_link = models.CharField(_("ticket link"), max_length=255, blank=True)

    status = models.CharField(
        _("status"),
        max_length=16,
        choices=BulkCancellationStatus,
        default=BulkCancellationStatus.QUEUED,
    )
    total = models.PositiveIntegerField(_("orders"), default=0)
    cancelled_count = models.PositiveIntegerField(_("cancelled"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    targets_ready = models.BooleanField(default=False, editable=False)
    missing_order_refs = models.JSONField(_("orders not found"), default=list, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    via = models.CharField(_("via"), max_length=16, choices=AuditEntry.Via, default="web")
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # The worker running it holds it until lease_until; past that, another worker may resume.
    worker = models.CharField(max_length=200, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bulk cancellation")
        verbose_name_plural = _("bulk cancellations")
        permissions = [("run_bulk_cancellation", _("Can cancel orders in bulk"))]

    def __str__(self) -> str:
        return _("Bulk cancellation %(id)s") % {"id": self.pk}

    def get_absolute_url(self) -> str:
        return reverse("staff:bulk-detail", args=[self.pk])

    @property
    def processed(self) -> int:
        return self.cancelled_count + self.skipped_count + self.failed_count

    @property
    def progress_percent(self) -> int:
        if self.status == BulkCancellationStatus.FINISHED:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)

    @property
    def is_finished(self) -> bool:
        return self.status == BulkCancellationStatus.FINISHED


class TargetOutcome(models.TextChoices):
    PENDING = "pending", _("Pending")
    CANCELLED = "cancelled", _("Cancelled")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class BulkCancellationTarget(models.Model):
    """One order of a bulk cancellation and what became of it."""

    bulk_cancellation = models.ForeignKey(
        BulkCancellation,
        on_delete=models.CASCADE,
        related_name="targets",
        verbose_name=_("bulk cancellation"),
    )
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="+", verbose_name=_("order")
    )
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=TargetOutcome, default=TargetOutcome.PENDING
    )
    message = models.CharField(_("message"), max_length=500, blank=True)
    # The message as a code and its parameters, shown in the reader's language
    # (cancellations.target_messages); `message` keeps the API's words (and old rows' text).
    message_code = models.CharField(_("message code"), max_length=40, blank=True)
    message_params = models.JSONField(_("message parameters"), default=dict, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        ordering = ["bulk_cancellation", "order"]
        verbose_name = _("bulk cancellation order")
        verbose_name_plural = _("bulk cancellation orders")
        constraints = [
            models.UniqueConstraint(
                fields=["bulk_cancellation", "order"], name="bulktarget_once_per_order"
            )
        ]
        indexes = [models.Index(fields=["bulk_cancellation", "outcome", "order"])]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.outcome}"

    @property
    def message_text(self) -> str:
        """The message in the reader's language, in staff words."""
        return target_text(self.message_code, self.message_params, self.message)
