import zoneinfo

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def _time_zone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class StaffProfile(models.Model):
    """What Storno needs to know about a staff user beyond Django's User."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    salesforce_user_id = models.CharField(
        _("Salesforce user id"),
        max_length=18,
        blank=True,
        help_text=_("Sent to Callisto as UserId for the cancellations this user makes."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Berlin", choices=_time_zone_choices
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self):
        return str(self.user)


class IdempotencyKey(models.Model):
    """One API client's Idempotency-Key and the response its first request got (see
    backoffice.idempotency). Written in the request's own transaction, with the response, so it
    commits together with what the request did or not at all; a second request with the key waits
    for that transaction and replays the response."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", _("in progress")
        DONE = "done", _("done")

    # "user:<id>" for a session, "auth:<sha256 of the Authorization header>" for a token or
    # basic credentials (both when a request carries both); never the credentials themselves.
    scope = models.CharField(_("client"), max_length=160)
    key = models.CharField(_("key"), max_length=255)
    request_fingerprint = models.CharField(
        _("request fingerprint"), max_length=64, help_text=_("SHA-256 of method, path and body.")
    )
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.IN_PROGRESS
    )
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.BinaryField(_("response body"), blank=True, default=b"")
    response_headers = models.JSONField(_("response headers"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_per_client"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_key_expiry")]

    def __str__(self):
        return self.key


class ThrottleCounter(models.Model):
    """How many API requests one client made in the current window of one throttle (see
    backoffice.throttling), when the cache can't count atomically. One row per client and
    scope; backoffice.tasks.purge_expired_throttle_counters deletes those of past windows."""

    # "throttle_<scope>_<user id or client address>"
    key = models.CharField(_("key"), max_length=200, unique=True)
    window_start = models.BigIntegerField(_("window start"), help_text=_("Unix time."))
    count = models.PositiveIntegerField(_("count"), default=0)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        verbose_name = _("throttle counter")
        verbose_name_plural = _("throttle counters")

    def __str__(self):
        return self.key
