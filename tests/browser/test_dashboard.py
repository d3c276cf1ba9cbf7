"""The staff dashboard (the page after login) in a real browser: its panels and its chart."""

from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from cancellations.models import Cancellation
from cancellations.states import CancellationStatus
from tests.factories import CancellationFactory, CancellationReasonFactory, OrderFactory

# Reversed when the module is collected: a missing route fails the collection (an error that
# names it), it doesn't skip the tests.
DASHBOARD = reverse("staff:dashboard")

pytestmark = pytest.mark.browser
PANELS = [
    "Cancellations per day",
    "Cancellation rate by channel",
    "Deliveries needing attention",
    "Scheduled cancellations coming up",
]
CHART_LIBRARY = "vendor/chart.umd.min.js"


def cancellation_made(days_ago: int, **fields) -> Cancellation:
    cancellation = CancellationFactory(**fields)
    made = timezone.now() - timedelta(days=days_ago)
    Cancellation.objects.filter(pk=cancellation.pk).update(created_time=made)
    return cancellation


@pytest.fixture
def a_week_of_cancellations(db):
    """Seven cancellations counted (six done, one scheduled) in two channels, one undone."""
    expensive, mind, late = (
        CancellationReasonFactory(subject=subject)
        for subject in ("Too expensive", "Changed my mind", "Delivery too late")
    )
    for days_ago, reason, channel in [
        (6, expensive, "/shop/de"),
        (5, mind, "/shop/de"),
        (3, expensive, "/shop/tr"),
        (3, late, "/shop/de"),
        (1, expensive, "/shop/de"),
        (0, mind, "/shop/tr"),
    ]:
        cancellation_made(days_ago, reason=reason, order=OrderFactory(channel=channel))
    cancellation_made(2, reason=late, status=CancellationStatus.REVOKED)
    return cancellation_made(
        0,
        reason=expensive,
        order=OrderFactory(channel="/shop/tr"),
        status=CancellationStatus.CONFIRMED,
        churn_time=timezone.now() + timedelta(days=5),
    )


def test_the_dashboard_shows_its_panels_and_draws_the_chart(
    agent_page, a_week_of_cancellations, screenshot
):
    page, scheduled = agent_page, a_week_of_cancellations

    page.goto(DASHBOARD)

    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    for panel in PANELS:
        expect(page.get_by_role("heading", level=2, name=panel)).to_be_visible()
    daily = page.locator("section", has=page.get_by_role("heading", name=PANELS[0]))
    expect(daily).to_contain_text("7 cancellations, undone ones not counted")
    rates = page.locator("section", has=page.get_by_role("heading", name=PANELS[1]))
    expect(rates.get_by_role("row", name="/shop/tr")).to_be_visible()
    upcoming = page.locator("section", has=page.get_by_role("heading", name=PANELS[3]))
    expect(upcoming.get_by_role("link", name=scheduled.pk)).to_be_visible()
    if finders.find(CHART_LIBRARY):
        # The vendored Chart.js drew the bars; the same figures stay one click away.
        expect(page.locator("#daily-chart")).to_be_visible()
        expect(page.locator("#daily-table")).not_to_have_attribute("open", "")
    else:
        expect(page.locator("#daily-table tbody tr").first).to_be_visible()
    screenshot(page, "dashboard")
