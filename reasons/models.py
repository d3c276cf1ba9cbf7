from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CancellationType(models.TextChoices):
    CANCEL = "cancel", _("Cancel")
    REFUND = "refund", _("Refund")


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
    )
    subject = models.CharField(_("subject"), max_length=100)
    extra_information_needed = models.BooleanField(
        _("extra information needed"),
        default=False,
        help_text=_("A cancellation with this reason must carry a description."),
    )
    ordering = models.IntegerField(_("ordering"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    created_date = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    modified_date = models.DateTimeField(_("modified"), auto_now=True)

    objects = CancellationReasonQuerySet.as_manager()

    class Meta:
        ordering = ["ordering", "id"]
        verbose_name = _("cancellation reason")
        verbose_name_plural = _("cancellation reasons")
        indexes = [models.Index(fields=["is_active", "ordering"])]

    def __str__(self):
        return self.subject
