"""Every staff page shows a moment the same way: the locale's date and time in the reader's
zone, with the zone named; the admin says which zone its times are in."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from backoffice.models import StaffProfile
from cancellations.states import CancellationStatus
from tests.factories import CancellationFactory, OrderFactory

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 6, 15, 27, tzinfo=UTC)


def render_moment(value) -> str:
    return Template("{% load moments %}{{ value|moment }}").render(Context({"value": value}))


@pytest.mark.parametrize(
    ("language", "zone", "shown"),
    [
        ("en", "Europe/Berlin", "Dec. 6, 2026, 4:27 p.m. CET"),
        ("de", "Europe/Berlin", "6. Dezember 2026 16:27 CET"),
        ("tr", "Europe/Istanbul", "06 Aralık 2026 18:27 +03"),
    ],
)
def test_a_moment_is_shown_in_the_readers_zone_and_language_with_the_zone(language, zone, shown):
    with translation.override(language), timezone.override(zone):
        assert render_moment(WHEN) == shown


def test_no_moment_shows_nothing():
    assert render_moment(None) == ""


def test_the_order_list_and_the_order_page_show_a_moment_alike(client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Berlin")
    order = OrderFactory(placed_at=WHEN)
    client.force_login(agent)

    listed = client.get("/staff/orders/").content.decode()
    detailed = client.get(order.get_absolute_url()).content.decode()

    assert "Dec. 6, 2026, 4:27 p.m. CET" in listed
    assert "Dec. 6, 2026, 4:27 p.m. CET" in detailed


def test_the_cancellation_page_names_the_zone_of_its_times(client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Istanbul")
    cancellation = CancellationFactory(status=CancellationStatus.COMPLETED, completed_time=WHEN)
    client.force_login(agent)

    content = client.get(cancellation.get_absolute_url()).content.decode()

    assert "Dec. 6, 2026, 6:27 p.m. +03" in content


def test_the_admin_says_which_zone_its_times_are_in(admin_client, admin_user):
    StaffProfile.objects.create(user=admin_user, time_zone="America/New_York")

    content = admin_client.get("/admin/").content.decode()

    assert "Times in America/New_York." in content
