"""The forms of the order admin (cancellations/admin/orders.py): the order form and the
questions the "Cancel selected orders" action asks."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reasons.models import CancellationReason

from ..audit import AuditInfo
from ..errors import CancellationError
from ..external_ids import clean_external_ids
from ..models import Order


class OrderAdminForm(forms.ModelForm):
    class Meta:
        model = Order
        fields = ["customer_name", "customer_email", "external_ids"]

    def clean_external_ids(self):
        # The same validator order_changes.update_order_details applies, so errors show on the form.
        try:
            return clean_external_ids(self.cleaned_data["external_ids"])
        except ValidationError as error:
            # Keys come as "external_ids.callisto": name the provider key in the message.
            raise ValidationError(
                [
                    f"{name.removeprefix('external_ids.')}: {message}"
                    if name != "external_ids"
                    else message
                    for name, field_messages in error.message_dict.items()
                    for message in field_messages
                ]
            ) from error


class CancelOrdersForm(forms.Form):
    """The questions the "Cancel selected orders" action asks once for all selected orders."""

    EFFECTIVE_NOW = "now"
    EFFECTIVE_AT = "at"

    reason = forms.ModelChoiceField(label=_("Reason"), queryset=CancellationReason.objects.none())
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Required for reasons that need extra information. Sent to the providers."),
    )
    effective = forms.ChoiceField(
        label=_("Effective"),
        choices=[(EFFECTIVE_NOW, _("Now")), (EFFECTIVE_AT, _("At a date and time"))],
        initial=EFFECTIVE_NOW,
        widget=forms.RadioSelect,
    )
    effective_at = forms.DateTimeField(
        label=_("Effective at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    prorated = forms.BooleanField(
        label=_("Prorated"),
        required=False,
        help_text=_("Credit the unused part of each item's service period."),
    )
    comment = forms.CharField(label=_("Audit comment"), required=False, max_length=255)
    ticket_link = forms.CharField(label=_("Ticket link"), required=False, max_length=255)

    # Service argument → form field, for showing the service's errors next to the field.
    SERVICE_FIELDS = {
        "reason": "reason",
        "description": "description",
        "churn_time": "effective_at",
        "prorated": "prorated",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].queryset = CancellationReason.objects.active().in_catalog_order()
        self.fields["effective_at"].help_text = _("In your time zone, %(zone)s.") % {
            "zone": timezone.get_current_timezone_name()
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("effective") == self.EFFECTIVE_AT and not cleaned.get("effective_at"):
            self.add_error("effective_at", _("Give the date and time, or choose “Now”."))
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "reason": data["reason"],
            "description": data["description"],
            "churn_time": data["effective_at"] if data["effective"] == self.EFFECTIVE_AT else None,
            "prorated": data["prorated"],
        }

    def audit_info(self) -> AuditInfo:
        return AuditInfo(
            comment=self.cleaned_data["comment"], ticket_link=self.cleaned_data["ticket_link"]
        )

    def add_service_errors(self, error: CancellationError) -> bool:
        """Put the service's input errors on their fields; False if none concerned the form."""
        found = False
        for name, field_errors in error.message_dict.items():
            field = self.SERVICE_FIELDS.get(name)
            if field:
                for message in field_errors:
                    self.add_error(field, message)
                found = True
        return found
