"""The cancellation page closes what needs someone: a failed delivery offers Retry and Mark
resolved; one an undo made moot offers neither and says nothing is left to do."""

import pytest
from django.urls import reverse

from cancellations.models import AuditEntry
from tests.factories import CancellationFactory, DeliveryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_client(client):
    lead = UserFactory(
        is_staff=True,
        permissions=[
            "cancellations.view_cancellation",
            "cancellations.view_auditentry",
            "providers.view_delivery",
            "providers.view_deliveryattempt",
            "providers.retry_delivery",
            "providers.resolve_delivery",
        ],
    )
    client.force_login(lead)
    client.user = lead
    return client


def page_of(client, cancellation) -> str:
    return client.get(cancellation.get_absolute_url()).content.decode()


def test_a_failed_delivery_offers_retry_and_mark_resolved(lead_client):
    failed = DeliveryFactory(status="failed", provider="rebilly")

    page = page_of(lead_client, failed.cancellation)

    assert reverse("staff:delivery-retry", args=[failed.pk]) in page
    assert reverse("staff:delivery-resolve", args=[failed.pk]) in page
    assert "Mark resolved" in page


def test_a_moot_failure_offers_no_retry_that_would_be_refused(lead_client):
    undone = CancellationFactory(status="revoked")
    moot = DeliveryFactory(cancellation=undone, status="failed", provider="rebilly")

    page = page_of(lead_client, undone)

    assert reverse("staff:delivery-retry", args=[moot.pk]) not in page
    assert reverse("staff:delivery-resolve", args=[moot.pk]) not in page
    assert "Nothing left to do: the cancellation was undone" in page


def test_marking_a_failure_resolved_on_the_page_is_audited_and_shown(lead_client):
    failed = DeliveryFactory(status="failed", provider="rebilly")

    response = lead_client.post(
        reverse("staff:delivery-resolve", args=[failed.pk]),
        {"comment": "Rebilly support cancelled it."},
        follow=True,
    )

    page = response.content.decode()
    assert "The failed delivery to Rebilly is marked resolved." in page
    assert "Rebilly support cancelled it." in page
    assert reverse("staff:delivery-retry", args=[failed.pk]) not in page
    assert AuditEntry.objects.filter(
        action="delivery.failure_resolved", actor=lead_client.user, via=AuditEntry.Via.WEB
    ).exists()
    assert "Failed delivery to Rebilly marked resolved" in page  # the audit trail


def test_the_deliveries_cost_no_query_per_row(lead_client, django_assert_max_num_queries):
    undone = CancellationFactory(status="revoked")
    DeliveryFactory(cancellation=undone, status="failed", provider="rebilly")
    with django_assert_max_num_queries(30) as one_row:
        page_of(lead_client, undone)
    DeliveryFactory(cancellation=undone, status="failed", provider="js7", action="revoke")
    DeliveryFactory(cancellation=undone, status="failed", provider="callisto")

    with django_assert_max_num_queries(len(one_row)):
        page_of(lead_client, undone)
