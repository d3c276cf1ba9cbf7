"""The staff dashboard (the page after login) and its CSV export.

Thin like views.py: a form parses the filter, cancellations/dashboard.py computes the figures,
the template shows them as tables that static/js/dashboard.js turns into a chart when the
vendored Chart.js is there."""

import csv
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import permission_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.permissions import staff_required

from . import dashboard
from .dashboard import DashboardFilter
from .forms import SANE_DATES

CHART_LIBRARY = "vendor/chart.umd.min.js"


class DashboardFilterForm(forms.Form):
    """The period (days in the user's time zone) and channel. Empty dates mean the default:
    the 30 days up to today."""

    date_from = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=SANE_DATES,
    )
    date_to = forms.DateField(
        label=gettext_lazy("Until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=SANE_DATES,
    )
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), required=False)

    def __init__(self, *args, channels=(), zone, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.fields["channel"].choices = [("", _("Any channel"))] + [(c, c) for c in channels]

    def clean(self):
        cleaned = super().clean()
        if "date_from" not in cleaned or "date_to" not in cleaned:
            return cleaned  # a date is not valid; its own error says why
        date_to = cleaned["date_to"] or timezone.localdate(timezone=self.zone)
        date_from = cleaned["date_from"] or date_to - timedelta(
            days=dashboard.DEFAULT_PERIOD_DAYS - 1
        )
        if date_to < date_from:
            self.add_error("date_to", _("The end date can't be before the start date."))
        elif (date_to - date_from).days + 1 > dashboard.MAX_PERIOD_DAYS:
            self.add_error(
                "date_from",
                _("Choose at most %(days)d days.") % {"days": dashboard.MAX_PERIOD_DAYS},
            )
        else:
            cleaned["date_from"], cleaned["date_to"] = date_from, date_to
        return cleaned

    def to_filter(self) -> DashboardFilter:
        """The valid filter (call is_valid first)."""
        data = self.cleaned_data
        return DashboardFilter(data["date_from"], data["date_to"], self.zone, data["channel"])


def _read_filter(request) -> tuple[DashboardFilterForm, DashboardFilter, bool]:
    """The form, the filter to show, and whether the request's filter was valid. Without
    parameters, or with invalid ones, the filter is the default period in all channels."""
    zone = timezone.get_current_timezone()
    default = DashboardFilter.last_days(zone=zone)
    channels = dashboard.channels()
    if not request.GET:
        form = DashboardFilterForm(channels=channels, zone=zone, initial=default.as_query())
        return form, default, True
    form = DashboardFilterForm(request.GET, channels=channels, zone=zone)
    if form.is_valid():
        return form, form.to_filter(), True
    return form, default, False


def _chart_library_url() -> str | None:
    """The vendored Chart.js, or None when the build did not put it there (the manifest
    storage refuses unknown files); the page then shows its tables only."""
    try:
        return static(CHART_LIBRARY)
    except ValueError:
        return None


def _admin_list(url_name: str, **lookups) -> str:
    return f"{reverse(url_name)}?{urlencode(lookups)}"


def _delivery_rows(providers: list[dashboard.ProviderDeliveries]) -> list[dict]:
    """Each provider's counts with links to the admin lists of exactly those deliveries."""
    return [
        {
            "provider": row,
            # Failed ones are among the deliveries needing attention; retrying ones are not
            # (yet), so they link to the list of all deliveries.
            "failed_url": _admin_list(
                "admin:providers_deliveryneedingattention_changelist",
                provider__exact=row.provider,
                status__exact="failed",
            ),
            "retrying_url": _admin_list(
                "admin:providers_delivery_changelist",
                attempts__gt=0,
                provider__exact=row.provider,
                status__exact="pending",
            ),
        }
        for row in providers
    ]


@staff_required
@permission_required("cancellations.view_cancellation", raise_exception=True)
def dashboard_page(request):
    form, flt, filter_valid = _read_filter(request)
    daily = dashboard.daily_by_reason(flt)
    chart = daily.chart_data()
    chart["labels"] = [formats.date_format(row.day, "SHORT_DATE_FORMAT") for row in daily.rows]
    chart["yTitle"] = _("Cancellations")
    # The deliveries panel is for those who may see deliveries: not even its query otherwise.
    can_view_deliveries = request.user.has_perm("providers.view_delivery")
    deliveries = dashboard.deliveries_by_provider() if can_view_deliveries else []
    return render(
        request,
        "cancellations/dashboard.html",
        {
            "form": form,
            "filter": flt,
            "filter_valid": filter_valid,
            "daily": daily,
            "chart": chart,
            "chart_library_url": _chart_library_url(),
            "rates": dashboard.rate_by_channel(flt),
            "deliveries": _delivery_rows(deliveries),
            "staff_tasks": dashboard.staff_tasks() if can_view_deliveries else None,
            "can_view_deliveries": can_view_deliveries,
            "upcoming": dashboard.upcoming_cancellations(flt),
            "csv_query": urlencode(flt.as_query()),
        },
    )


class _Echo:
    """A file-like object that hands back what csv.writer writes, for streaming."""

    def write(self, value):
        return value


@staff_required
@permission_required("cancellations.view_cancellation", raise_exception=True)
def dashboard_csv(request):
    _form, flt, filter_valid = _read_filter(request)
    if not filter_valid:
        # The dashboard shows the same filter with its errors next to the fields.
        return redirect(f"{reverse('staff:dashboard')}?{request.GET.urlencode()}")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in dashboard.export_rows(flt)),
        content_type="text/csv; charset=utf-8",
    )
    filename = f"cancellations_{flt.date_from:%Y-%m-%d}_{flt.date_to:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
