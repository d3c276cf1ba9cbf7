"""Provider settings and the delivery outbox.

A Delivery is one thing to tell one provider about one cancellation (add it, or revoke it). The
cancellation services write it in their own transaction (providers/outbox.py); the dispatcher
(providers/dispatch.py) claims it, calls the adapter outside any transaction and records every
try as a DeliveryAttempt. Credentials never live here: they come from the environment
(providers/registry.py's config_from_env).
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cancellations.states import CancellationStatus

from .base import Action, Outcome
from .messages import delivery_text
from .registry import ADAPTERS
from .states import DeliveryStatus


def provider_kind_choices():
    """The kinds with an adapter in providers/registry.py. A callable, so a new adapter (billing,
    js7…) needs no migration here."""
    return [(kind, adapter.label or kind) for kind, adapter in ADAPTERS.items()]


class DeliveryAction(models.TextChoices):
    ADD = Action.ADD.value, _("Add")
    REVOKE = Action.REVOKE.value, _("Revoke")


class AttemptOutcome(models.TextChoices):
    DELIVERED = Outcome.DELIVERED.value, _("Delivered")
    RETRY = Outcome.RETRY.value, _("Retry later")
    FAILED = Outcome.FAILED.value, _("Failed")
    SKIPPED = Outcome.SKIPPED.value, _("Skipped")
    # The worker stopped answering (killed, host lost) before it could record an outcome.
    ABANDONED = "abandoned", _("Abandoned")


class ProviderSetting(models.Model):
    """Whether and where Storno talks to one provider. Credentials: environment only."""

    kind = models.CharField(
        _("provider"), max_length=16, unique=True, choices=provider_kind_choices
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_(
            "New cancellations are delivered to enabled providers only. Turning a provider off "
            "also pauses its pending deliveries until it is turned on again."
        ),
    )
    base_url = models.URLField(
        _("base URL override"),
        blank=True,
        help_text=_("Leave empty to use the base URL from the environment."),
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        _("timeout (seconds)"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["kind"]
        verbose_name = _("provider setting")
        verbose_name_plural = _("provider settings")

    def __str__(self):
        return self.get_kind_display()


class Delivery(models.Model):
    """One cancellation × provider × action (add / revoke): what to send and how it went."""

    cancellation = models.ForeignKey(
        "cancellations.Cancellation",
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("cancellation"),
    )
    provider = models.CharField(_("provider"), max_length=16, choices=provider_kind_choices)
    action = models.CharField(_("action"), max_length=8, choices=DeliveryAction)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Pending: not before this time (backoff). In flight: the claim's lease runs out at this
    # time; after it, the worker is taken for dead and the delivery can be claimed again.
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=200, blank=True)
    # Identifies one claim, so a worker that lost its lease can't overwrite a newer outcome.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    # Bumped when the cancellation is re-planned; a send of an older revision is sent again.
    revision = models.PositiveIntegerField(_("revision"), default=0, editable=False)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    # What Storno said, as a code and its parameters, rendered in the reader's language
    # (providers.messages); last_error keeps the text as written (the API, old rows).
    message_code = models.CharField(_("message code"), max_length=40, blank=True)
    message_params = models.JSONField(_("message parameters"), default=dict, blank=True)
    credentials_problem = models.BooleanField(
        _("credentials problem"),
        default=False,
        help_text=_("The provider refused our credentials (401/403): check the environment."),
    )
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    references = models.JSONField(
        _("provider references"),
        default=dict,
        blank=True,
        help_text=_("Ids the provider gave back, e.g. its own id for the cancellation."),
    )
    # A staff task: the provider can't carry the change (a skipped delivery, e.g. a partial
    # cancellation at Callisto), so someone makes it there by hand and marks it done.
    needs_manual_action = models.BooleanField(
        _("needs manual action"),
        default=False,
        help_text=_("The provider can't be told: staff must make the change there by hand."),
    )
    resolved_at = models.DateTimeField(_("done at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("done by"),
    )
    resolution_comment = models.TextField(_("what was done"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["cancellation", "provider", "action"],
                name="providers_one_delivery_per_action",
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # The open staff tasks: few among millions of rows (dashboard, attention list).
            models.Index(
                fields=["created_at"],
                condition=models.Q(needs_manual_action=True, resolved_at__isnull=True),
                name="providers_open_staff_tasks",
            ),
        ]
        permissions = [
            ("retry_delivery", _("Can retry deliveries")),
            ("resolve_delivery", _("Can mark staff tasks of deliveries done")),
        ]

    def __str__(self):
        return f"{self.cancellation_id} → {self.provider} ({self.action})"

    @property
    def is_open_task(self) -> bool:
        return self.needs_manual_action and self.resolved_at is None

    @property
    def is_moot_failure(self) -> bool:
        """A failed add of a cancellation that was undone since: it never reached the
        provider, so nothing is left to do (providers.selectors.moot_failure)."""
        return (
            self.status == DeliveryStatus.FAILED
            and self.action == Action.ADD
            and self.cancellation.status == CancellationStatus.REVOKED
        )

    @property
    def is_open_failure(self) -> bool:
        """Failed for good and still someone's to look at: not marked resolved, not moot."""
        return (
            self.status == DeliveryStatus.FAILED
            and self.resolved_at is None
            and not self.is_moot_failure
        )

    def forget_resolution(self) -> list[str]:
        """Sent again after a failure: a new failure needs someone again. Staff tasks keep
        theirs (they are skipped, never sent again). Returns the fields to save."""
        if self.needs_manual_action:
            return []
        self.resolved_at, self.resolved_by, self.resolution_comment = None, None, ""
        return ["resolved_at", "resolved_by", "resolution_comment"]

    @property
    def message_text(self) -> str:
        """last_error in the reader's language (a provider's own words stay verbatim)."""
        return delivery_text(self.message_code, self.message_params, self.last_error)


class DeliveryNeedingAttention(Delivery):
    """The admin's second list: what still needs someone (see selectors): failures nobody
    resolved, stuck deliveries, open staff tasks."""

    class Meta:
        proxy = True
        verbose_name = _("delivery needing attention")
        verbose_name_plural = _("deliveries needing attention")


class DeliveryAttempt(models.Model):
    """One try of one delivery. Written when the try starts, completed when it ends."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=AttemptOutcome, blank=True)
    request_excerpt = models.TextField(_("request"), blank=True)
    response_excerpt = models.TextField(_("response"), blank=True)
    error = models.TextField(_("error"), blank=True)
    # The request whose Celery message made this attempt (X-Request-ID; backoffice.request_id),
    # or empty when a sweep made it.
    request_id = models.CharField(_("request id"), max_length=128, blank=True)

    class Meta:
        ordering = ["delivery", "started_at", "id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self):
        return f"#{self.number} {self.outcome or '…'}"
