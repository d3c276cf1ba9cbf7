"""Forms of the staff pages. They parse input into the service layer's arguments and show the
service's errors next to the fields; the rules themselves live in cancellations/services/."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reasons.models import CancellationReason

from . import billing
from .audit import AuditInfo
from .errors import CancellationError
from .models import CanceledBy, ChurnTimePolicy, LineType, Order
from .services.quoting import ExtraLine, ItemPick, scheduled_quantities
from .services.refusals import Refusal, item_refusals
from .states import OrderStatus

# Bounds that keep numbers inside what the database columns hold.
MAX_AMOUNT = Decimal("999999999999.99")
MAX_COUNT = 1_000_000


# Far-off dates overflow when shifted between time zones; no order is that old or that new.
SANE_DATES = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(9000, 12, 31))]


# --- order search -----------------------------------------------------------------------------


class OrderFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Number, customer or email")}
        ),
    )
    status = forms.ChoiceField(label=_("Status"), required=False)
    channel = forms.ChoiceField(label=_("Channel"), required=False)
    placed_from = forms.DateField(
        label=_("Placed from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=SANE_DATES,
    )
    placed_to = forms.DateField(
        label=_("Placed until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=SANE_DATES,
    )

    def __init__(self, *args, channels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("Any status")), *OrderStatus.choices]
        self.fields["channel"].choices = [("", _("Any channel"))] + [(c, c) for c in channels]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("placed_from"), cleaned.get("placed_to")
        if start and end and end < start:
            self.add_error("placed_to", _("The end date can't be before the start date."))
        return cleaned

    @property
    def is_filtering(self) -> bool:
        return any(self.data.get(name) for name in self.fields)

    def filter(self, orders):
        """Apply the valid filters (call is_valid first); an invalid one is ignored."""
        data = self.cleaned_data
        if data.get("status"):
            orders = orders.filter(status=data["status"])
        if data.get("channel"):
            orders = orders.filter(channel=data["channel"])
        # Dates are days in the user's time zone.
        if data.get("placed_from"):
            orders = orders.filter(placed_at__gte=_start_of_day(data["placed_from"]))
        if data.get("placed_to"):
            orders = orders.filter(placed_at__lt=_start_of_day(data["placed_to"] + timedelta(1)))
        return orders


def _start_of_day(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# --- cancelling -------------------------------------------------------------------------------


class ReasonSelect(forms.Select):
    """Marks the reasons that need a description: data attribute and a trailing asterisk."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        reason = getattr(value, "instance", None)
        if reason is not None and reason.extra_information_needed:
            option["attrs"]["data-needs-description"] = "true"
            option["label"] = f"{label} *"
        return option


class ActiveReasonIterator(forms.models.ModelChoiceIterator):
    def __init__(self, field):
        super().__init__(field)
        self.queryset = field.queryset.active().in_catalog_order()


class ReasonField(forms.ModelChoiceField):
    """Offers the active reasons in catalog order, but accepts any existing one, so that a
    reason retired meanwhile gets the service's own error message."""

    iterator = ActiveReasonIterator


class LineForm(forms.Form):
    type = forms.ChoiceField(label=_("Type"), choices=LineType.choices, initial=LineType.DEBIT)
    description = forms.CharField(label=_("Description"), required=False, max_length=1000)
    unit_price_amount = forms.DecimalField(
        label=_("Amount"),
        max_value=MAX_AMOUNT,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )
    quantity = forms.IntegerField(
        label=_("Quantity"), initial=1, max_value=MAX_COUNT, widget=forms.NumberInput({"min": 1})
    )


LineFormSet = forms.formset_factory(LineForm, extra=2, max_num=10, validate_max=True)

WHOLE_ORDER, SOME_ITEMS = "whole", "items"
AT_TIME = "at-time"


class CancelOrderForm(forms.Form):
    """One form for the whole cancellation; the extra lines are a formset in `self.lines`."""

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
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 255}),
    )
    scope = forms.ChoiceField(
        label=_("What to cancel"),
        choices=[(WHOLE_ORDER, _("The whole order")), (SOME_ITEMS, _("Some items"))],
        initial=WHOLE_ORDER,
        widget=forms.RadioSelect,
    )
    churn_time_policy = forms.ChoiceField(
        label=_("When"),
        choices=[
            (ChurnTimePolicy.NOW, _("Now")),
            (AT_TIME, _("At a date and time")),
            (ChurnTimePolicy.AT_NEXT_RENEWAL, _("At the end of the service period")),
        ],
        initial=ChurnTimePolicy.NOW,
        widget=forms.RadioSelect,
    )
    churn_time = forms.DateTimeField(
        label=_("Effective at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("In your time zone."),
    )
    prorated = forms.BooleanField(
        label=_("Credit the unused part of the service period (prorate)"), required=False
    )
    canceled_by = forms.ChoiceField(
        label=_("Canceled by"),
        choices=[
            (CanceledBy.MERCHANT, CanceledBy.MERCHANT.label),
            (CanceledBy.CUSTOMER, CanceledBy.CUSTOMER.label),
        ],
        initial=CanceledBy.MERCHANT,
    )
    audit_comment = forms.CharField(
        label=_("Comment for the audit trail"), required=False, max_length=255
    )
    ticket_link = forms.CharField(label=_("Ticket link"), required=False, max_length=255)
    time_spent = forms.IntegerField(
        label=_("Time spent (minutes)"), required=False, min_value=0, max_value=MAX_COUNT
    )

    def __init__(self, data=None, *, order: Order, **kwargs):
        super().__init__(data, **kwargs)
        self.order = order
        self.lines = LineFormSet(data, prefix="lines")
        reserved = scheduled_quantities(order)
        # Told before the user tries, by the quote's own refusals: why an item can't be
        # cancelled. An item with settled or exported settlement items can't be at all.
        items, refused = billing.refusals_of(order)
        self.blocked_reasons = billing.rendered(items, refused)
        self.item_rows = []  # (order item, field name or None, quantity already scheduled)
        for item in order.items.all():
            available = max(item.open_quantity - reserved.get(item.pk, 0), 0)
            unbillable = any(r.code == Refusal.SETTLEMENT_BLOCKED for r in refused.get(item.pk, ()))
            name = None
            if not item_refusals(item, wanted=None, reserved=reserved.get(item.pk, 0)):
                name = f"item_{item.pk}"
                self.fields[name] = forms.IntegerField(
                    label=_("Quantity of %(sku)s to cancel") % {"sku": item.sku},
                    required=False,
                    min_value=0,
                    initial=0,
                    # A disabled field ignores what is posted and keeps 0: nothing picked.
                    disabled=unbillable,
                    widget=forms.NumberInput(attrs={"min": 0, "max": available}),
                )
            self.item_rows.append((item, name, reserved.get(item.pk, 0)))

    def item_fields(self):
        """(order item, bound quantity field or None, scheduled quantity, why it can't be
        cancelled) for the template."""
        return [
            (item, self[name] if name else None, sched, self.blocked_reasons.get(item.pk, []))
            for item, name, sched in self.item_rows
        ]

    def is_valid(self):
        return all([super().is_valid(), self.lines.is_valid()])

    def clean_churn_time(self):
        value = self.cleaned_data["churn_time"]
        if value and not 1900 <= value.year <= 9000:
            raise forms.ValidationError(_("Give a date between the years 1900 and 9000."))
        return value

    def clean(self):
        cleaned = super().clean()
        wants_time = cleaned.get("churn_time_policy") == AT_TIME
        if wants_time and not cleaned.get("churn_time") and "churn_time" not in self.errors:
            self.add_error("churn_time", _("Give the date and time it takes effect."))
        # Nothing typed is silently dropped: a date or quantities that the chosen option would
        # ignore are refused (with JavaScript, typing them switches the option instead).
        if cleaned.get("churn_time") and cleaned.get("churn_time_policy") not in (None, AT_TIME):
            self.add_error(
                "churn_time",
                _("You gave a date: choose “At a date and time” to use it, or clear the date."),
            )
        if cleaned.get("scope") == WHOLE_ORDER and self._picks()[0]:
            self.add_error(
                "scope",
                _("You typed quantities: choose “Some items” to cancel only those, or clear them."),
            )
        return cleaned

    def error_summary(self) -> list[tuple[str, str]]:
        """(field id, message) for every error, in page order, for the summary at the top;
        an empty id for errors that belong to no field."""
        summary = [("", str(message)) for message in self.non_field_errors()]
        for name, field in self.fields.items():
            for message in self.errors.get(name, []):
                summary.append((self[name].auto_id, f"{field.label}: {message}"))
        summary += [("", str(message)) for message in self.lines.non_form_errors()]
        for number, line in enumerate(self.lines.forms, start=1):
            summary += [("", str(message)) for message in line.non_field_errors()]
            for name, field in line.fields.items():
                for message in line.errors.get(name, []):
                    label = _("Line %(number)s: %(label)s") % {
                        "number": number,
                        "label": field.label,
                    }
                    summary.append((line[name].auto_id, f"{label}: {message}"))
        return summary

    # --- to and from the service layer ---

    def _picks(self) -> tuple[list[ItemPick], list[str]]:
        picks, names = [], []
        for item, name, _sched in self.item_rows:
            quantity = self.cleaned_data.get(name) if name else None
            if quantity:
                picks.append(ItemPick(order_item_id=item.pk, quantity=quantity))
                names.append(name)
        return picks, names

    def _line_forms(self) -> list[LineForm]:
        return [form for form in self.lines.forms if form.has_changed()]

    def service_arguments(self) -> dict:
        """Arguments for services.quote_cancellation and cancel_order; call is_valid first."""
        data = self.cleaned_data
        policy = data["churn_time_policy"]
        return {
            "reason": data["reason"],
            "description": data["description"],
            "items": self._picks()[0] if data["scope"] == SOME_ITEMS else None,
            "lines": [
                ExtraLine(
                    type=form.cleaned_data["type"],
                    description=form.cleaned_data["description"],
                    unit_price_amount=form.cleaned_data["unit_price_amount"],
                    unit_price_currency=self.order.currency,
                    quantity=form.cleaned_data["quantity"],
                )
                for form in self._line_forms()
            ],
            "churn_time": data["churn_time"] if policy == AT_TIME else None,
            "churn_time_policy": "" if policy == AT_TIME else policy,
            "prorated": data["prorated"],
        }

    def cancel_arguments(self) -> dict:
        """service_arguments plus what only cancel_order takes."""
        data = self.cleaned_data
        return {
            **self.service_arguments(),
            "canceled_by": data["canceled_by"],
            "audit": AuditInfo(
                comment=data["audit_comment"],
                time_spent=data["time_spent"],
                ticket_link=data["ticket_link"],
            ),
        }

    def add_service_errors(self, error: CancellationError) -> None:
        """Put each error of the service next to the field it names; the rest on top."""
        _picks, pick_fields = self._picks() if hasattr(self, "cleaned_data") else ([], [])
        line_forms = self._line_forms()
        for key, messages in error.message_dict.items():
            parts = key.split(".")
            target_form, field = self, None
            if key in ("reason", "description", "churn_time", "churn_time_policy", "canceled_by"):
                field = key
            elif parts[0] == "items" and len(parts) == 3 and parts[1].isdigit():
                index = int(parts[1])
                if parts[2] == "quantity" and index < len(pick_fields):
                    field = pick_fields[index]
            elif parts[0] == "lines" and len(parts) == 3 and parts[1].isdigit():
                index = int(parts[1])
                if index < len(line_forms):
                    target_form = line_forms[index]
                    field = parts[2] if parts[2] in target_form.fields else None
            for message in messages:
                target_form.add_error(field, message)


class ResolveTaskForm(forms.Form):
    """Marking a staff task done: what was done at the provider."""

    comment = forms.CharField(
        label=_("What was done"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": 255}),
        error_messages={"required": _("Say what was done.")},
    )


class RevokeForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 255}),
        help_text=_("Optional: why it is undone."),
    )

    def add_service_errors(self, error: CancellationError) -> None:
        for key, messages in error.message_dict.items():
            for message in messages:
                self.add_error("comment" if key == "comment" else None, message)
