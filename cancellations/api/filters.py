"""Query filters of the list endpoints (django-filter), named as the API speaks."""

from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from .. import selectors
from ..models import Cancellation, Order
from ..states import CancellationStatus, OrderStatus
from .serializers import MAX_ID


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601; a time without an offset is read as UTC, whatever zone the staff user's session
    shows. Times that leave the calendar once converted to UTC (year 1 with a positive offset)
    are refused instead of crashing the query."""

    default_error_messages = {"overflow": _("This time is out of range.")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["overflow"], code="overflow") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IdFilter(django_filters.NumberFilter):
    """A database id: a whole number small enough for the database to compare."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=OrderStatus.choices, help_text=_("Repeat for several: ?status=open&status=on_hold")
    )
    channel = django_filters.CharFilter(help_text=_("Exactly this channel, e.g. /shop/de."))
    channelPrefix = django_filters.CharFilter(
        method="filter_channel_prefix",
        help_text=_("This channel folder and every folder below it: /shop matches /shop/de."),
    )
    number = django_filters.CharFilter()
    placedFrom = UtcIsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")
    placedTo = UtcIsoDateTimeFilter(field_name="placed_at", lookup_expr="lte")
    search = django_filters.CharFilter(
        method="filter_search", help_text=_("Part of the number, customer name or e-mail.")
    )

    class Meta:
        model = Order
        fields = []

    def filter_channel_prefix(self, queryset, name, value):
        folder = value.rstrip("/")
        if not folder:  # "/" is the root: every channel
            return queryset
        return queryset.filter(Q(channel=folder) | Q(channel__startswith=folder + "/"))

    def filter_search(self, queryset, name, value):
        # The staff pages' search, so both find the same orders. A subquery, not `&`: the
        # status filter may have made the queryset DISTINCT, which `&` can't combine.
        return queryset.filter(pk__in=selectors.order_list(search=value).values("pk"))


class CancellationFilter(django_filters.FilterSet):
    orderId = IdFilter(field_name="order_id")
    status = django_filters.MultipleChoiceFilter(choices=CancellationStatus.choices)
    reasonId = IdFilter(field_name="reason_id")
    createdFrom = UtcIsoDateTimeFilter(field_name="created_time", lookup_expr="gte")
    createdTo = UtcIsoDateTimeFilter(field_name="created_time", lookup_expr="lte")
    churnFrom = UtcIsoDateTimeFilter(field_name="churn_time", lookup_expr="gte")
    churnTo = UtcIsoDateTimeFilter(field_name="churn_time", lookup_expr="lte")

    class Meta:
        model = Cancellation
        fields = []
