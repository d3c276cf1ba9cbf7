"""The form of the bulk cancellation page. It builds a JOC-style filter dict from the fields,
lets cancellations.order_filter parse it and shows each error next to the field it concerns;
the rules themselves live in order_filter.py and bulk.py."""

import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reasons.models import CancellationReason

from .errors import CancellationError
from .filter_dates import date_formats_help, get_zone
from .filter_parsing import parse_order_filter
from .filter_words import date_help
from .forms import MAX_COUNT, ReasonField, ReasonSelect
from .order_filter import OrderFilter
from .services import quoting
from .states import OrderStatus

# Offered in the time zone select; the user's own zone is added when it is not among them.
COMMON_TIME_ZONES = (
    "UTC",
    "Europe/Berlin",
    "Europe/Istanbul",
    "Europe/London",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Paris",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Kyiv",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
)
MAX_ORDER_NUMBERS = 1000
_SEPARATORS = re.compile(r"[\s,;]+")

# Filter keys (order_filter) and service arguments (bulk.start_bulk_cancellation) → form field.
ERROR_FIELDS = {
    "orderIds": "order_numbers",
    "states": "states",
    "dateFrom": "date_from",
    "dateTo": "date_to",
    "timeZone": "time_zone",
    "deep": "deep",
    "kill": "kill",
    "auditLog.comment": "audit_comment",
    "auditLog.ticketLink": "ticket_link",
    "auditLog.timeSpent": "time_spent",
    "reason": "reason",
    "description": "description",
    "churn_time": "churn_time",
}


class TimeZoneField(forms.ChoiceField):
    """A select of common zones that takes any zone name and leaves judging it to
    parse_order_filter, so that an unknown zone gets the filter's own message."""

    def valid_value(self, value):
        return True


class BulkCancelForm(forms.Form):
    # --- which orders ---
    order_numbers = forms.CharField(
        label=_("Order numbers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Optional: cancel exactly these orders (separated by spaces, commas or new lines). "
            "Given, they win: channels, statuses and dates are then not applied."
        ),
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("Exactly these channels. Hold Ctrl (⌘ on a Mac) to pick several."),
    )
    folder = forms.CharField(
        label=_("Folder"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "/shop/de"}),
        help_text=_("A channel folder, e.g. /shop/de. Together with the channels picked above."),
    )
    recursive = forms.BooleanField(label=_("Include sub-folders"), required=False, initial=True)
    states = forms.MultipleChoiceField(
        label=_("Statuses"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every status (orders that can't be cancelled are skipped)."),
    )
    date_from = forms.CharField(label=_("Placed from"), required=False, max_length=64)
    date_to = forms.CharField(label=_("Placed before"), required=False, max_length=64)
    time_zone = TimeZoneField(
        label=_("Time zone"),
        help_text=_("For dates without an offset and for the midnight of relative days."),
    )
    deep = forms.BooleanField(label=_("Also their child orders (at any depth)"), required=False)
    kill = forms.BooleanField(
        label=_("Also orders in progress (stops their running workflow orders)"),
        required=False,
    )

    # --- how they are cancelled ---
    reason = ReasonField(
        label=_("Reason"),
        queryset=CancellationReason.objects.all(),
        empty_label=_("Choose a reason"),
        widget=ReasonSelect,
        help_text=_("Reasons marked * need a description."),
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 255}),
    )
    churn_time = forms.DateTimeField(
        label=_("Effective at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    # --- for the record ---
    audit_comment = forms.CharField(
        label=_("Comment for the audit trail"), required=False, max_length=255
    )
    ticket_link = forms.CharField(label=_("Ticket link"), required=False, max_length=255)
    time_spent = forms.IntegerField(
        label=_("Time spent (minutes)"), required=False, min_value=0, max_value=MAX_COUNT
    )

    def __init__(self, *args, channels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.order_filter: OrderFilter | None = None
        self.fields["channels"].choices = [(channel, channel) for channel in channels]
        self.fields["states"].choices = [
            (value, label)
            for value, label in OrderStatus.choices
            if value in OrderStatus.cancellable
        ]
        user_zone = timezone.get_current_timezone_name()
        zones = list(COMMON_TIME_ZONES)
        posted = self.data.get(self.add_prefix("time_zone")) if self.is_bound else None
        for extra in (user_zone, posted):
            if extra and extra not in zones and _is_zone(extra):
                zones.append(extra)
        self.fields["time_zone"].choices = [(zone, zone) for zone in zones]
        self.fields["time_zone"].initial = user_zone
        self.fields["date_from"].help_text = date_help()
        self.fields["date_to"].help_text = _("Not included. Same formats as “Placed from”.")
        self.fields["churn_time"].help_text = _(
            "Optional; empty means now. In your time zone, %(zone)s."
        ) % {"zone": user_zone}

    def clean_order_numbers(self):
        numbers = [n for n in _SEPARATORS.split(self.cleaned_data["order_numbers"]) if n]
        if len(numbers) > MAX_ORDER_NUMBERS:
            raise forms.ValidationError(
                _("At most %(max)s orders at once.") % {"max": MAX_ORDER_NUMBERS}
            )
        return list(dict.fromkeys(numbers))

    def clean_churn_time(self):
        value = self.cleaned_data["churn_time"]
        if value and not 1900 <= value.year <= 9000:
            raise forms.ValidationError(_("Give a date between the years 1900 and 9000."))
        # start_bulk_cancellation checks this again; here it is told before the preview.
        if value and (error := quoting.churn_time_error(value, timezone.now())):
            raise forms.ValidationError(error)
        return value

    def clean(self):
        cleaned = super().clean()
        reason = cleaned.get("reason")
        if reason is not None and "description" not in self.errors:
            # The service's rule (retired reason, description needed), told before the preview.
            for name, message in quoting.reason_errors(reason, cleaned.get("description")).items():
                self.add_error(ERROR_FIELDS.get(name), message)
        filter_fields = ("order_numbers", "channels", "folder", "states", "time_zone")
        if any(name in self.errors for name in filter_fields):
            return cleaned  # its own error says why; the filter can't be built
        try:
            self.order_filter = parse_order_filter(self.filter_data())
        except CancellationError as error:
            self.add_service_errors(error)
        return cleaned

    def filter_data(self) -> dict:
        """The JOC-style filter (order_filter's camelCase) of the cleaned fields."""
        data = self.cleaned_data
        folders = [{"folder": channel, "recursive": False} for channel in data["channels"]]
        if data.get("folder", "").strip():
            folders.append({"folder": data["folder"], "recursive": data.get("recursive", False)})
        audit = {
            "comment": data.get("audit_comment", ""),
            "ticketLink": data.get("ticket_link", ""),
        }
        if data.get("time_spent") is not None:
            audit["timeSpent"] = data["time_spent"]
        filter_data = {
            "folders": folders,
            "states": data["states"],
            "dateFrom": data.get("date_from", ""),
            "dateTo": data.get("date_to", ""),
            "timeZone": data["time_zone"],
            "deep": data.get("deep", False),
            "kill": data.get("kill", False),
            "auditLog": audit,
        }
        if data["order_numbers"]:
            filter_data["orderIds"] = data["order_numbers"]
        return filter_data

    def hidden_items(self) -> list[tuple[str, str]]:
        """(name, value) of every posted field, for the confirm form to send again exactly
        what was previewed (as_hidden would repeat the visible fields' ids)."""
        if not self.is_bound:
            return []
        return [
            (self.add_prefix(name), value)
            for name in self.fields
            for value in self.data.getlist(self.add_prefix(name))
        ]

    def start_arguments(self) -> dict:
        """Keyword arguments of bulk.start_bulk_cancellation besides actor and via."""
        data = self.cleaned_data
        return {
            "reason": data["reason"],
            "description": data["description"],
            "churn_time": data["churn_time"],
        }

    def add_service_errors(self, error: CancellationError) -> None:
        """Put each error of order_filter or bulk next to the field it names (`dateFrom`,
        `folders.0.folder`, `churn_time`…); the rest on top of the form."""
        channel_count = len(self.cleaned_data.get("channels") or ())
        for key, messages in error.message_dict.items():
            field = ERROR_FIELDS.get(key)
            parts = key.split(".")
            if field is None and parts[0] in ERROR_FIELDS and parts[0] != "auditLog":
                field = ERROR_FIELDS[parts[0]]  # states.2, orderIds.0 …
            elif parts[0] == "folders":
                field = "folder"
                if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < channel_count:
                    field = "channels"
            for message in messages:
                if field is not None and field in self.errors:
                    continue  # the field's own error already says what is wrong
                if field in ("date_from", "date_to"):
                    # The formats are in the help text right there; say only what is wrong.
                    message = message.replace(date_formats_help(), "").strip()
                self.add_error(field, message)


def _is_zone(name: str) -> bool:
    try:
        get_zone(name)
    except ValueError:
        return False
    return True
