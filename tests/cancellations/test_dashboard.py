"""The staff dashboard: cancellations per day and reason, the rate per channel, deliveries that
need attention, what is scheduled next, and the CSV export."""

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.models import StaffProfile
from cancellations import dashboard, dashboard_views
from cancellations.dashboard import DashboardFilter
from cancellations.models import Cancellation
from cancellations.states import CancellationStatus
from providers.models import Delivery
from providers.states import DeliveryStatus
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("staff:dashboard")
CSV_EXPORT = reverse("staff:dashboard-csv")
UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
CONFIRMED = CancellationStatus.CONFIRMED
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-03"}


@pytest.fixture
def staff_client(client, agent):
    client.force_login(agent)
    return client


def cancellation_made_at(moment, *, status=CancellationStatus.COMPLETED, **fields):
    """A cancellation whose created_time (set by the database on insert) is `moment`."""
    cancellation = CancellationFactory(status=status, **fields)
    Cancellation.objects.filter(pk=cancellation.pk).update(created_time=moment)
    cancellation.refresh_from_db()
    return cancellation


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def march(day, hour=12):
    return utc(2026, 3, day, hour)


def figures(response) -> dict:
    """The per-day table as {day: {reason label: count}}, days without any left out."""
    daily = response.context["daily"]
    return {
        row.day: {
            reason.label: count
            for reason, count in zip(daily.reasons, row.counts, strict=True)
            if count
        }
        for row in daily.rows
        if row.total
    }


def delivery(provider, status, attempts=0):
    return Delivery.objects.create(
        cancellation=CancellationFactory(),
        provider=provider,
        action="add",
        status=status,
        attempts=attempts,
    )


# --- who may see it, and how one gets there -----------------------------------------------------


def test_the_root_address_and_logging_in_lead_to_the_dashboard(client, agent):
    response = client.post(
        reverse("login"),
        {"username": agent.username, "password": "correct horse battery staple"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("home"), 302), (DASHBOARD, 302)]
    assert response.status_code == 200
    assert response.templates[0].name == "cancellations/dashboard.html"
    assert client.get("/").url == DASHBOARD


def test_the_dashboard_is_the_current_page_in_the_navigation(staff_client):
    content = staff_client.get(DASHBOARD).content.decode()

    assert f'<a href="{DASHBOARD}" aria-current="page">Dashboard</a>' in content
    assert f'<a href="{reverse("staff:order-list")}">Orders</a>' in content


@pytest.mark.parametrize("url", [DASHBOARD, CSV_EXPORT])
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("url", [DASHBOARD, CSV_EXPORT])
def test_users_who_may_not_view_cancellations_are_refused(client, url):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    response = client.get(url)

    assert response.status_code == 403


# --- cancellations per day and reason ------------------------------------------------------------


def test_cancellations_are_counted_per_day_and_reason(staff_client):
    late, cheap = (
        CancellationReasonFactory(subject="Late"),
        CancellationReasonFactory(subject="Cheaper"),
    )
    cancellation_made_at(march(1, 8), reason=late)
    cancellation_made_at(march(1, 20), reason=late)
    cancellation_made_at(march(1, 9), reason=cheap)
    cancellation_made_at(march(3), reason=late)
    cancellation_made_at(march(3), reason=cheap, status=CancellationStatus.CONFIRMED)
    cancellation_made_at(march(2), reason=cheap, status=CancellationStatus.REVOKED)
    cancellation_made_at(utc(2026, 2, 28, 23, 59), reason=late)  # before the period
    cancellation_made_at(utc(2026, 3, 4, 0, 0), reason=late)  # after it

    response = staff_client.get(DASHBOARD, MARCH)

    assert response.status_code == 200
    assert figures(response) == {
        date(2026, 3, 1): {"Late": 2, "Cheaper": 1},
        date(2026, 3, 3): {"Late": 1, "Cheaper": 1},
    }
    daily = response.context["daily"]
    assert [row.day for row in daily.rows] == [date(2026, 3, d) for d in (1, 2, 3)]
    assert [(reason.label, reason.total) for reason in daily.reasons] == [
        ("Late", 3),
        ("Cheaper", 2),
    ]
    assert daily.total == 5


def test_the_figures_are_in_an_html_table_and_in_the_chart_data(staff_client):
    reason = CancellationReasonFactory(subject="Too expensive")
    cancellation_made_at(march(2), reason=reason)
    cancellation_made_at(march(2), reason=reason)

    response = staff_client.get(DASHBOARD, MARCH)

    content = response.content.decode()
    assert '<details class="chart-table" id="daily-table" open>' in content
    assert '<th scope="col" class="num">Too expensive</th>' in content
    assert '<script id="daily-chart-data" type="application/json">' in content
    chart = response.context["chart"]
    assert chart["datasets"] == [{"label": "Too expensive", "data": [0, 2, 0]}]
    assert len(chart["labels"]) == 3


def test_days_are_the_users_days_in_the_users_time_zone(staff_client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Berlin")
    # 23:30 UTC on 1 March is 00:30 on 2 March in Berlin.
    counted = cancellation_made_at(utc(2026, 3, 1, 23, 30))
    # 23:30 UTC on 2 March is already 3 March in Berlin: outside the period.
    cancellation_made_at(utc(2026, 3, 2, 23, 30))

    response = staff_client.get(DASHBOARD, {"date_from": "2026-03-02", "date_to": "2026-03-02"})

    assert response.context["filter"].zone == BERLIN
    assert figures(response) == {date(2026, 3, 2): {counted.reason.subject: 1}}


def test_the_day_of_a_cancellation_follows_the_zone_of_the_filter():
    cancellation_made_at(utc(2026, 3, 1, 23, 30))
    in_utc = DashboardFilter(date(2026, 3, 1), date(2026, 3, 2), UTC)
    in_berlin = DashboardFilter(date(2026, 3, 1), date(2026, 3, 2), BERLIN)

    assert [row.total for row in dashboard.daily_by_reason(in_utc).rows] == [1, 0]
    assert [row.total for row in dashboard.daily_by_reason(in_berlin).rows] == [0, 1]


def test_the_default_period_is_the_last_30_days(staff_client):
    now = timezone.now()
    cancellation_made_at(now)
    cancellation_made_at(now - timedelta(days=29))
    cancellation_made_at(now - timedelta(days=30))

    response = staff_client.get(DASHBOARD)

    today = timezone.localdate()
    flt = response.context["filter"]
    assert (flt.date_from, flt.date_to) == (today - timedelta(days=29), today)
    assert response.context["daily"].total == 2
    assert len(response.context["daily"].rows) == 30
    assert f'value="{flt.date_from.isoformat()}"' in response.content.decode()


def test_the_channel_filter_narrows_the_figures(staff_client):
    OrderFactory(channel="/shop/tr")
    for channel in ("/shop/de", "/shop/tr", "/shop/tr"):
        cancellation_made_at(march(2), order=OrderFactory(channel=channel, placed_at=march(1)))
    CancellationFactory(
        order=OrderFactory(channel="/shop/de"),
        status=CancellationStatus.CONFIRMED,
        churn_time=timezone.now() + timedelta(days=3),
    )
    CancellationFactory(
        order=OrderFactory(channel="/shop/tr"),
        status=CancellationStatus.CONFIRMED,
        churn_time=timezone.now() + timedelta(days=3),
    )

    response = staff_client.get(DASHBOARD, {**MARCH, "channel": "/shop/tr"})

    assert response.context["daily"].total == 2
    assert [rate.channel for rate in response.context["rates"]] == ["/shop/tr"]
    assert [row.channel for row in response.context["upcoming"]] == ["/shop/tr"]
    assert [label for _, label in response.context["form"].fields["channel"].choices] == [
        "Any channel",
        "/shop/de",
        "/shop/tr",
    ]


# --- cancellation rate per channel ---------------------------------------------------------------


def test_the_rate_is_cancelled_orders_per_orders_placed_in_each_channel(staff_client):
    placed_in_march = [OrderFactory(channel="/shop/de", placed_at=march(1)) for _ in range(4)]
    OrderFactory(channel="/shop/de", placed_at=utc(2026, 2, 1))  # placed before the period
    # Two cancellations of one order count as one cancelled order.
    cancellation_made_at(march(2), order=placed_in_march[0], is_whole_order=False)
    cancellation_made_at(march(3), order=placed_in_march[0])
    # An undone cancellation cancelled nothing.
    cancellation_made_at(march(2), order=placed_in_march[1], status=CancellationStatus.REVOKED)
    # An order placed before the period but cancelled in it counts as cancelled.
    cancellation_made_at(
        march(2), order=OrderFactory(channel="/shop/tr", placed_at=utc(2026, 1, 5))
    )

    response = staff_client.get(DASHBOARD, MARCH)

    rates = {
        rate.channel: (rate.orders_placed, rate.orders_cancelled, rate.rate_percent)
        for rate in response.context["rates"]
    }
    assert rates == {"/shop/de": (4, 1, Decimal("25.0")), "/shop/tr": (0, 1, None)}
    content = response.content.decode()
    assert "25.0&nbsp;%" in content
    assert '<td class="num">—</td>' in content


def test_the_rate_is_rounded_to_one_decimal():
    assert dashboard.ChannelRate("/shop/de", 3, 1).rate_percent == Decimal("33.3")
    assert dashboard.ChannelRate("/shop/de", 3, 2).rate_percent == Decimal("66.7")
    assert dashboard.ChannelRate("/shop/de", 0, 0).rate_percent is None


# --- deliveries that need attention --------------------------------------------------------------


@pytest.fixture
def troubled_deliveries(db):
    delivery("callisto", DeliveryStatus.FAILED, attempts=8)
    delivery("callisto", DeliveryStatus.FAILED, attempts=3)
    delivery("callisto", DeliveryStatus.PENDING, attempts=2)
    delivery("callisto", DeliveryStatus.PENDING, attempts=0)  # not tried yet: not retrying
    delivery("rebilly", DeliveryStatus.PENDING, attempts=1)
    delivery("rebilly", DeliveryStatus.DELIVERED, attempts=1)
    delivery("js7", DeliveryStatus.SKIPPED)


def test_failed_and_retrying_deliveries_are_counted_per_provider(staff_client, troubled_deliveries):
    response = staff_client.get(DASHBOARD)

    providers = [row["provider"] for row in response.context["deliveries"]]
    counts = [(p.provider, p.label, p.failed, p.retrying) for p in providers]
    assert counts == [("callisto", "Callisto", 2, 1), ("rebilly", "Rebilly", 0, 1)]


def test_each_delivery_count_links_to_the_admin_list_of_those_deliveries(
    client, troubled_deliveries
):
    client.force_login(
        UserFactory(
            permissions=["cancellations.view_cancellation", "providers.view_delivery"],
        )
    )
    response = client.get(DASHBOARD)
    callisto = response.context["deliveries"][0]

    content = response.content.decode()
    failed = client.get(callisto["failed_url"])
    retrying = client.get(callisto["retrying_url"])

    assert f'href="{callisto["failed_url"]}"'.replace("&", "&amp;") in content
    assert f'href="{callisto["retrying_url"]}"'.replace("&", "&amp;") in content
    assert failed.status_code == retrying.status_code == 200
    assert {(d.provider, d.status) for d in failed.context["cl"].result_list} == {
        ("callisto", "failed")
    }
    assert failed.context["cl"].result_count == 2
    assert [(d.provider, d.status, d.attempts) for d in retrying.context["cl"].result_list] == [
        ("callisto", "pending", 2)
    ]


def test_users_who_may_not_see_deliveries_get_no_deliveries_panel(client, troubled_deliveries):
    client.force_login(UserFactory(permissions=["cancellations.view_cancellation"]))

    response = client.get(DASHBOARD)

    content = response.content.decode()
    assert response.context["deliveries"] == []
    assert 'id="panel-deliveries"' not in content
    assert "/admin/providers/" not in content


# --- scheduled cancellations ---------------------------------------------------------------------


def test_the_next_ten_scheduled_cancellations_are_listed_soonest_first(staff_client):
    now = timezone.now()
    scheduled = [
        CancellationFactory(
            status=CancellationStatus.CONFIRMED, churn_time=now + timedelta(hours=h)
        )
        for h in (5, 1, 3, 2, 4, 6, 7, 8, 9, 10, 11, 12)
    ]
    CancellationFactory(status=CancellationStatus.CONFIRMED, churn_time=now - timedelta(hours=1))
    CancellationFactory(status=CancellationStatus.COMPLETED, churn_time=now + timedelta(minutes=5))
    CancellationFactory(status=CancellationStatus.REVOKED, churn_time=now + timedelta(minutes=5))

    response = staff_client.get(DASHBOARD)

    upcoming = response.context["upcoming"]
    soonest = sorted(scheduled, key=lambda c: c.churn_time)[:10]
    assert [row.id for row in upcoming] == [c.pk for c in soonest]
    content = response.content.decode()
    first = soonest[0]
    assert f'href="{reverse("staff:cancellation-detail", args=[first.pk])}"' in content
    order_link = reverse("staff:order-detail", args=[first.order_id])
    assert f'<a href="{order_link}">{first.order.number}</a>' in content


# --- empty states and bad input ------------------------------------------------------------------


def test_every_panel_says_so_when_it_has_nothing_to_show(staff_client):
    response = staff_client.get(DASHBOARD)

    content = response.content.decode()
    assert response.status_code == 200
    assert "No cancellations were made in this period." in content
    assert "No orders were placed or cancelled in this period." in content
    assert "no delivery failed or waits for a retry" in content
    assert "No cancellation is scheduled for later." in content
    assert "daily-chart-data" not in content


@pytest.mark.parametrize(
    "query, field, message",
    [
        ({"date_from": "yesterday"}, "date_from", "Enter a valid date."),
        ({"date_to": "2026-02-30"}, "date_to", "Enter a valid date."),
        ({"date_from": "0001-01-01"}, "date_from", "greater than or equal to"),
        (
            {"date_from": "2026-03-10", "date_to": "2026-03-01"},
            "date_to",
            "The end date can't be before the start date.",
        ),
        (
            {"date_from": "2025-01-01", "date_to": "2026-03-01"},
            "date_from",
            "Choose at most 366 days.",
        ),
        ({"channel": "/nowhere"}, "channel", "Select a valid choice."),
    ],
)
def test_bad_filters_are_shown_next_to_their_field(staff_client, query, field, message):
    response = staff_client.get(DASHBOARD, query)

    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    assert response.context["filter_valid"] is False
    assert response.context["filter"] == DashboardFilter.last_days(zone=UTC)
    assert 'aria-invalid="true"' in response.content.decode()


def test_a_period_of_366_days_is_allowed(staff_client):
    response = staff_client.get(DASHBOARD, {"date_from": "2025-03-01", "date_to": "2026-03-01"})

    assert response.context["form"].errors == {}
    assert len(response.context["daily"].rows) == 366


def test_the_page_keeps_its_tables_when_chart_js_was_not_built(staff_client, monkeypatch):
    monkeypatch.setattr(dashboard_views, "_chart_library_url", lambda: None)
    cancellation_made_at(march(1))

    response = staff_client.get(DASHBOARD, MARCH)

    content = response.content.decode()
    assert "chart.umd.min.js" not in content
    assert "js/dashboard.js" not in content
    assert '<details class="chart-table" id="daily-table" open>' in content


def test_the_page_loads_the_vendored_chart_js_when_there_is_something_to_draw(staff_client):
    cancellation_made_at(march(1))

    content = staff_client.get(DASHBOARD, MARCH).content.decode()

    assert '<script src="/static/vendor/chart.umd.min.js" defer></script>' in content
    assert '<script src="/static/js/dashboard.js" defer></script>' in content


# --- CSV export ----------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_export_lists_the_filtered_cancellations_with_their_details(staff_client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Berlin")
    reason = CancellationReasonFactory(omnitron_id=7, subject="Lieferung zu spät")
    order = OrderFactory(number="ORD-42", channel="/shop/de", currency="EUR")
    first = cancellation_made_at(
        utc(2026, 3, 1, 23, 30),
        order=order,
        reason=reason,
        created_by=agent,
        churn_time=utc(2026, 3, 20, 22, 0),
        prorated_credit_amount=Decimal("12.50"),
        line_item_subtotal_amount=Decimal("3.00"),
    )
    revoked = cancellation_made_at(
        march(3), order=order, status=CancellationStatus.REVOKED, is_whole_order=False
    )
    cancellation_made_at(march(2), order=OrderFactory(channel="/shop/tr"))
    cancellation_made_at(march(5), order=order)  # after the period

    response = staff_client.get(
        CSV_EXPORT, {"date_from": "2026-03-02", "date_to": "2026-03-03", "channel": "/shop/de"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="cancellations_2026-03-02_2026-03-03.csv"'
    )
    rows = read_csv(response)
    assert rows[0] == dashboard.CSV_COLUMNS
    assert rows[1] == [
        first.pk,
        "ORD-42",
        "/shop/de",
        "7",
        "Lieferung zu spät",
        "completed",
        "true",
        "2026-03-02T00:30:00+01:00",
        "2026-03-20T23:00:00+01:00",
        "12.50",
        "3.00",
        "EUR",
        agent.username,
    ]
    assert [(row[0], row[5], row[6]) for row in rows[2:]] == [(revoked.pk, "revoked", "false")]


def test_the_csv_export_defuses_cells_that_spreadsheets_would_run_as_formulas(staff_client):
    cancellation_made_at(march(1), order=OrderFactory(number="=HYPERLINK(1)"))

    rows = read_csv(staff_client.get(CSV_EXPORT, MARCH))

    assert rows[1][1] == "'=HYPERLINK(1)"


def test_the_csv_link_carries_the_dashboards_filter(staff_client):
    OrderFactory(channel="/shop/tr")

    response = staff_client.get(DASHBOARD, {**MARCH, "channel": "/shop/tr"})

    query = urlencode({**MARCH, "channel": "/shop/tr"}).replace("&", "&amp;")
    assert f'href="{CSV_EXPORT}?{query}"' in response.content.decode()


def test_a_csv_export_with_bad_filters_goes_back_to_the_dashboard_to_show_them(staff_client):
    response = staff_client.get(CSV_EXPORT, {"date_from": "nope"})

    assert response.status_code == 302
    assert response.url == f"{DASHBOARD}?date_from=nope"


# --- query counts --------------------------------------------------------------------------------


def varied_data(count):
    """`count` orders on different days and channels, each with a completed cancellation
    (its own reason, a failed delivery) and a scheduled one."""
    now = timezone.now()
    for index in range(count):
        order = OrderFactory(channel=f"/shop/c{index}", placed_at=now - timedelta(days=index))
        made = cancellation_made_at(now - timedelta(days=index), order=order)
        Delivery.objects.create(
            cancellation=made, provider="callisto", action="add", status="failed"
        )
        CancellationFactory(
            order=order,
            status=CancellationStatus.CONFIRMED,
            churn_time=now + timedelta(days=index + 1),
        )


@pytest.mark.parametrize("url", [DASHBOARD, CSV_EXPORT])
def test_the_number_of_queries_does_not_grow_with_the_data(
    staff_client, django_assert_max_num_queries, django_assert_num_queries, url
):
    varied_data(1)
    # From the second request on the user's permissions are kept (backoffice.auth_backends).
    warm_up = staff_client.get(url)
    if warm_up.streaming:
        read_csv(warm_up)
    with django_assert_max_num_queries(20) as few:
        response = staff_client.get(url)
        if response.streaming:
            assert len(read_csv(response)) == 1 + 2
    varied_data(19)

    with django_assert_num_queries(len(few)):
        response = staff_client.get(url)
        if response.streaming:
            assert len(read_csv(response)) == 1 + 2 * 20

    if not response.streaming:
        assert response.context["daily"].total == 2 * 20
        assert len(response.context["upcoming"]) == 10
