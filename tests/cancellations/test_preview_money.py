"""The preview explains the money: what each item was worth, from when it stops being charged,
what is credited and why; the fees and credits added; what it all comes to."""

from decimal import Decimal

import pytest
from django.utils import translation

from cancellations.preview_money import explain
from cancellations.services.quoting import ExtraLine, quote_cancellation
from tests.cancellations.test_views import cancel_data
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def quote(order, **arguments):
    return quote_cancellation(order, reason=CancellationReasonFactory(), **arguments)


def test_a_one_off_item_shows_its_value_and_that_nothing_recurring_stops():
    order = OrderFactory(currency="TRY")
    OrderItemFactory(order=order, sku="ROUTER", unit_price_amount=Decimal("89.90"))

    money = explain(quote(order, prorated=True))

    (router,) = money.items
    assert (router.value, router.credit, router.stops_charging_at) == (Decimal("89.90"), 0, None)
    assert "one-off item" in router.why
    assert money.cancelled_value == Decimal("89.90")
    assert (money.net, money.net_says) == (0, "Nothing is charged or credited.")


def test_a_prorated_subscription_stops_now_and_credits_its_unused_days():
    order = OrderFactory()
    OrderItemFactory(order=order, subscription=True, quantity=2)  # 30 days, 10 used

    money = explain(quote(order, prorated=True))

    (plan,) = money.items
    assert plan.value == Decimal("60.00")
    assert plan.stops_charging_at is not None
    assert plan.credit == Decimal("40.00")
    assert plan.why == "Unused 20 of 30 days of the service period, credited."
    assert (money.net, money.net_says) == (Decimal("-40.00"), "The customer is credited this.")


def test_without_prorating_the_unused_days_are_said_to_be_not_credited():
    order = OrderFactory()
    OrderItemFactory(order=order, subscription=True)

    (plan,) = explain(quote(order, prorated=False)).items

    assert plan.credit == 0
    assert plan.why.startswith("Not prorated")


def test_added_fees_and_credits_are_listed_with_their_sign_and_counted_in_the_net():
    order = OrderFactory()
    OrderItemFactory(order=order)
    lines = [
        ExtraLine("debit", Decimal("15.00"), order.currency, 2, "Early termination"),
        ExtraLine("credit", Decimal("5.00"), order.currency, 1, "Goodwill"),
    ]

    money = explain(quote(order, lines=lines))

    assert [(line.description, line.signed_amount) for line in money.lines] == [
        ("Early termination", Decimal("30.00")),
        ("Goodwill", Decimal("-5.00")),
    ]
    assert (money.net, money.net_says) == (Decimal("25.00"), "The customer is charged this.")


def test_the_preview_page_shows_the_explanation(client, agent):
    order = OrderFactory(currency="TRY")
    router = OrderItemFactory(order=order, sku="ROUTER", unit_price_amount=Decimal("89.90"))
    reason = CancellationReasonFactory()
    client.force_login(agent)
    body = cancel_data(order, reason, action="preview")

    response = client.post(f"/staff/orders/{order.pk}/cancel/", body)

    content = response.content.decode()
    assert router.sku in content
    assert "89.90 TRY" in content
    assert "a one-off item, nothing recurring to stop or credit" in content
    assert "Nothing is charged or credited." in content
