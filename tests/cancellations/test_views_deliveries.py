"""The cancellation page and the API show where each provider stands, and staff can retry."""

import pytest
from django.urls import reverse

from cancellations.models import AuditEntry
from providers.models import Delivery
from providers.states import DeliveryStatus
from tests.factories import UserFactory
from tests.providers.outbox_support import cancel, make_provider_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

VIEWER = [
    "cancellations.view_cancellation",
    "cancellations.view_order",
    "providers.view_delivery",
    "providers.view_deliveryattempt",
]


def failed_cancellation(make_provider):
    make_provider("alpha")
    cancellation = cancel()
    Delivery.objects.filter(cancellation=cancellation).update(
        status=DeliveryStatus.FAILED, attempts=8, last_status_code=422, last_error="Id unknown"
    )
    return cancellation


def test_the_cancellation_page_lists_each_providers_delivery(client, make_provider):
    cancellation = failed_cancellation(make_provider)
    client.force_login(UserFactory(permissions=VIEWER))

    page = client.get(cancellation.get_absolute_url()).content.decode()

    assert 'data-provider="alpha" data-status="failed"' in page
    assert "HTTP 422 Id unknown" in page
    assert "Retry now" not in page  # no retry permission


def test_staff_with_the_permission_can_retry_a_failed_delivery(client, make_provider):
    cancellation = failed_cancellation(make_provider)
    client.force_login(UserFactory(permissions=[*VIEWER, "providers.retry_delivery"]))
    delivery = Delivery.objects.get(cancellation=cancellation)
    assert "Retry now" in client.get(cancellation.get_absolute_url()).content.decode()

    response = client.post(reverse("staff:delivery-retry", args=[delivery.pk]))

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 0
    retried = AuditEntry.objects.get(action="delivery.retried")
    assert retried.via == AuditEntry.Via.WEB


def test_retrying_without_the_permission_is_forbidden(client, make_provider):
    cancellation = failed_cancellation(make_provider)
    client.force_login(UserFactory(permissions=VIEWER))
    delivery = Delivery.objects.get(cancellation=cancellation)

    response = client.post(reverse("staff:delivery-retry", args=[delivery.pk]))

    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_retrying_a_delivered_delivery_says_why_not(client, make_provider):
    make_provider("alpha")
    cancellation = cancel()
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)
    client.force_login(UserFactory(permissions=[*VIEWER, "providers.retry_delivery"]))

    response = client.post(
        reverse("staff:delivery-retry", args=[Delivery.objects.get().pk]), follow=True
    )

    assert response.status_code == 200
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert next(iter(response.context["messages"])).level_tag == "error"
    assert response.context["cancellation"] == cancellation


def test_the_api_shows_each_delivery(client, make_provider):
    cancellation = failed_cancellation(make_provider)
    client.force_login(UserFactory(permissions=VIEWER))

    body = client.get(
        f"/api/v1/order-cancellations/{cancellation.pk}", HTTP_ACCEPT="application/json"
    ).json()

    assert body["deliveries"] == [
        {
            "provider": "alpha",
            "action": "add",
            "status": "failed",
            "attempts": 8,
            "lastStatusCode": 422,
            "lastError": "Id unknown",
            "lastErrorCode": None,  # a provider's own words
            "nextAttemptTime": body["deliveries"][0]["nextAttemptTime"],
            "deliveredTime": None,
            "references": {},
        }
    ]
