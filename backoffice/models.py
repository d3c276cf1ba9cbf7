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
