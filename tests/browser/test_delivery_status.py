"""The cancellation page shows a provider turn Delivered by itself, without a reload: its
deliveries section polls while a delivery can still change."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from providers.base import Outcome
from providers.models import Delivery, DeliveryAttempt
from providers.states import DeliveryStatus
from tests.factories import UserFactory
from tests.providers.outbox_support import cancel, make_provider_fixture  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def retrier(db):
    return UserFactory(
        permissions=[
            "cancellations.view_order",
            "cancellations.view_cancellation",
            "providers.view_delivery",
            "providers.view_deliveryattempt",
            "providers.retry_delivery",
        ]
    )


def test_a_retrying_delivery_turns_delivered_on_the_open_page(
    page, sign_in, retrier, make_provider, settings, screenshot
):
    settings.DELIVERY_STATUS_POLL_SECONDS = 0.3
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)  # the first try (on commit, eagerly) fails
    cancellation = cancel()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    sign_in(retrier)

    page.goto(cancellation.get_absolute_url())
    row = page.locator('tr[data-provider="alpha"]')
    expect(row.locator(".delivery-status")).to_have_text("Retrying")
    expect(row.locator(".delivery-status")).to_have_attribute("aria-live", "polite")
    expect(row.locator(".delivery-when")).to_contain_text("Next try")
    expect(row.locator(".delivery-attempts")).to_have_text("1")
    expect(row.get_by_role("button", name="Retry now")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # The worker's next try succeeds meanwhile.
    now = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=delivery, number=2, started_at=now, outcome="delivered", status_code=200
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DELIVERED,
        attempts=2,
        delivered_at=now,
        last_status_code=200,
        last_error="",
    )

    expect(row.locator(".delivery-status")).to_have_text("Delivered")
    expect(row.locator(".delivery-when")).to_contain_text("Delivered")
    expect(row.locator(".delivery-attempts")).to_have_text("2")
    expect(page.locator(f'tr[data-attempts-of="{delivery.pk}"] summary')).to_have_text("2 attempts")
    expect(row.get_by_role("button", name="Retry now")).to_be_hidden()
    expect(page.locator("#deliveries-live")).to_be_hidden()  # nothing left to poll for
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "cancellation-deliveries-live")


def test_the_order_page_shows_its_cancellations_delivery_turn_delivered(
    page, sign_in, retrier, make_provider, settings
):
    settings.DELIVERY_STATUS_POLL_SECONDS = 0.3
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    delivery = Delivery.objects.get()
    sign_in(retrier)

    page.goto(cancellation.order.get_absolute_url())
    status = page.locator(f'[data-delivery="{delivery.pk}"] .delivery-status')
    expect(status).to_have_text("Retrying")
    page.evaluate("window.notReloaded = true")

    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DELIVERED, delivered_at=timezone.now()
    )

    expect(status).to_have_text("Delivered")
    expect(page.locator("#deliveries-live")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True
