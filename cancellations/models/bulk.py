"""Bulk cancellation jobs and the orders they target."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..target_messages import target_text
from .audit_trail import AuditEntry
from .cancellations import CanceledBy
from .orders import Order


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
