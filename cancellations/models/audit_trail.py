"""The audit trail: who changed what, when and why."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .cancellations import Cancellation
from .orders import Order


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
