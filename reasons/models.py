from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

# The languages a subject is kept in besides `subject` itself (Omnitron's `translations` keys).
SUBJECT_LANGUAGES = ("de", "en", "tr")


class CancellationType(models.TextChoices):
    """Omnitron's CancellationType enum as far as its documentation shows it (cancel, refund:
    docs/contracts/akinon/NOTES.md, GUESSES.md). A reason Omnitron sends with any other value is
    kept with UNKNOWN and reported on the pull's run: the served schema promises this enum, and
    a generated client fails on a value outside it."""

    CANCEL = "cancel", _("Cancel")
    REFUND = "refund", _("Refund")
    UNKNOWN = "", _("Unknown (Omnitron sent a type Storno doesn't know)")


KNOWN_CANCELLATION_TYPES = (CancellationType.CANCEL, CancellationType.REFUND)


class CancellationReasonQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def in_catalog_order(self):
        return self.order_by("ordering", "id")


class CancellationReason(models.Model):
    """A reason from the shared catalog (seed 004). Omnitron is the master for those with an
    omnitron_id; reasons without one are local to Storno."""

    omnitron_id = models.PositiveIntegerField(_("Omnitron id"), unique=True, null=True, blank=True)
    cancellation_type = models.CharField(
        _("cancellation type"),
        max_length=32,
        choices=CancellationType,
        default=CancellationType.CANCEL,
        blank=True,  # UNKNOWN, only for reasons from Omnitron (reasons.services.save_reason)
    )
    subject = models.CharField(_("subject"), max_length=100)
    subject_de = models.CharField(_("subject (German)"), max_length=100, blank=True)
    subject_en = models.CharField(_("subject (English)"), max_length=100, blank=True)
    subject_tr = models.CharField(_("subject (Turkish)"), max_length=100, blank=True)
    extra_information_needed = models.BooleanField(
        _("extra information needed"),
        default=False,
        help_text=_("A cancellation with this reason must carry a description."),
    )
    ordering = models.IntegerField(_("ordering"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    created_date = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    # Set by reasons.services only when something visible changed, so a pull that finds no
    # upstream change leaves it alone (auto_now would touch it on every save).
    modified_date = models.DateTimeField(_("modified"), default=timezone.now, editable=False)
    # The values Omnitron sent at the last pull. A field is overwritten by a pull only when
    # Omnitron changed it since, so an admin's curation (ordering, active) survives until then.
    omnitron_snapshot = models.JSONField(_("last values from Omnitron"), default=dict, blank=True)

    objects = CancellationReasonQuerySet.as_manager()

    class Meta:
        ordering = ["ordering", "id"]
        verbose_name = _("cancellation reason")
        verbose_name_plural = _("cancellation reasons")
        indexes = [models.Index(fields=["is_active", "ordering"])]
        permissions = [("pull_reasons", _("Can pull cancellation reasons from Omnitron"))]

    def __str__(self):
        return self.localized_subject()

    def localized_subject(self, language: str | None = None) -> str:
        """The subject in `language` (default: the active one), falling back to `subject`."""
        code = (language or get_language() or "").split("-")[0].lower()
        if code in SUBJECT_LANGUAGES:
            return getattr(self, f"subject_{code}") or self.subject
        return self.subject


class ProviderKind(models.TextChoices):
    CALLISTO = "callisto", _("Callisto")
    REBILLY = "rebilly", _("Rebilly")
    BILLING = "billing", _("Billing engine")


# Rebilly's order-cancellation `reason` enum (specs/rebilly); "other" is its default.
REBILLY_REASONS = (
    "did-not-use",
    "did-not-want",
    "missing-features",
    "bugs-or-problems",
    "do-not-remember",
    "risk-warning",
    "contract-expired",
    "too-expensive",
    "other",
    "billing-failure",
)
REBILLY_DEFAULT_REASON = "other"
BILLING_REASON_MAX_LENGTH = 250  # the billing engine's reasonOfReversal


class ReasonMapping(models.Model):
    """What one provider calls a reason. Without a mapping a reason still maps somewhere:
    see reasons.services.mapped_reason."""

    reason = models.ForeignKey(
        CancellationReason,
        on_delete=models.CASCADE,
        related_name="mappings",
        verbose_name=_("reason"),
    )
    provider_kind = models.CharField(_("provider"), max_length=16, choices=ProviderKind)
    value = models.CharField(
        _("external code or text"),
        max_length=BILLING_REASON_MAX_LENGTH,
        help_text=_(
            "Rebilly: one of its reason codes. Callisto: the CancelReason text. "
            "Billing engine: the reason for reversal (at most 250 characters)."
        ),
    )

    class Meta:
        verbose_name = _("reason mapping")
        verbose_name_plural = _("reason mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["reason", "provider_kind"], name="reasons_one_mapping_per_provider"
            )
        ]

    def __str__(self):
        return f"{self.get_provider_kind_display()}: {self.value}"

    def clean(self):
        self.value = (self.value or "").strip()
        if not self.value:
            raise ValidationError({"value": _("Enter the provider's code or text.")})
        if self.provider_kind == ProviderKind.REBILLY and self.value not in REBILLY_REASONS:
            raise ValidationError(
                {
                    "value": _("Rebilly accepts only one of: %(choices)s.")
                    % {"choices": ", ".join(REBILLY_REASONS)}
                }
            )


class SyncStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Schedule")
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    COMMAND = "command", _("Management command")


class ReasonSyncRun(models.Model):
    """One pull of the catalog from Omnitron: what it changed or why it failed."""

    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=SyncStatus, default=SyncStatus.RUNNING
    )
    trigger = models.CharField(_("triggered by"), max_length=16, choices=SyncTrigger)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    fetched_count = models.PositiveIntegerField(_("fetched"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    deactivated_count = models.PositiveIntegerField(_("deactivated"), default=0)
    error_cause = models.CharField(_("error cause"), max_length=32, blank=True)
    error = models.TextField(_("error"), blank=True)
    # What a successful pull took in but could not take as Omnitron sent it (one line each).
    warnings = models.TextField(_("warnings"), blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("reason sync run")
        verbose_name_plural = _("reason sync runs")
        constraints = [
            # The pull lock: at most one running run, enforced by the database itself
            # (a partial unique index, on SQLite and PostgreSQL alike).
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="reasons_one_running_sync",
            )
        ]

    def __str__(self):
        return _("Pull of %(started)s (%(status)s)") % {
            "started": timezone.localtime(self.started_at).strftime("%Y-%m-%d %H:%M:%S"),
            "status": self.get_status_display(),
        }

    @property
    def succeeded(self) -> bool:
        return self.status == SyncStatus.SUCCEEDED

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.finished_at else None
