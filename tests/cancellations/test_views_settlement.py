"""The staff pages show each item's settlement items and, before anyone tries, which items
can't be cancelled and why (issue 5, seed 002)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import formats, timezone

from cancellations.models import AuditEntry, Cancellation, ChurnTimePolicy, SettlementItem
from cancellations.services import writing
from cancellations.services.quoting import ItemPick
from tests.factories import OrderFactory, OrderItemFactory, SettlementItemFactory

pytestmark = pytest.mark.django_db

WEB = AuditEntry.Via.WEB


@pytest.fixture
def staff_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def billed_order():
    """An open order: a subscription with a settled month and an open one, and a router
    with one open settlement item."""
    order = OrderFactory()
    subscription = OrderItemFactory(order=order, sku="PLAN-PRO", quantity=1, subscription=True)
    SettlementItemFactory(order_item=subscription, amount=Decimal("29.00"), state="settled")
    SettlementItemFactory(order_item=subscription, amount=Decimal("31.00"), state="open")
    router = OrderItemFactory(order=order, sku="ROUTER-X", quantity=1)
    SettlementItemFactory(order_item=router, amount=Decimal("89.90"), state="open")
    return order


def item(order, sku):
    return order.items.get(sku=sku)


def settled_message(order) -> str:
    """In staff words: the item by SKU and description, the settlement by its billed period."""
    settled = SettlementItem.objects.get(order_item__order=order, state="settled")
    period = " – ".join(
        formats.date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT")
        for moment in (settled.period_start, settled.period_end)
    )
    return (
        f"PLAN-PRO (Monthly plan) can&#x27;t be cancelled: its billed period {period} is already "
        "settled."
    )


def cancel_url(order):
    return reverse("staff:order-cancel", args=[order.pk])


# --- order detail ------------------------------------------------------------------------------


def test_order_detail_lists_each_items_settlement_items(staff_client, billed_order):
    content = staff_client.get(billed_order.get_absolute_url()).content.decode()

    assert "29.00 EUR" in content
    assert "31.00 EUR" in content
    assert "89.90 EUR" in content
    assert content.count('class="settlement-item settlement-open') == 2
    assert content.count('class="settlement-item settlement-settled') == 1


def test_order_detail_warns_which_item_cant_be_cancelled_and_why(staff_client, billed_order):
    content = staff_client.get(billed_order.get_absolute_url()).content.decode()

    assert "Can't be cancelled:" in content
    assert settled_message(billed_order) in content
    assert content.count("blocked-note") == 1  # the router can still be cancelled


def test_order_detail_marks_settlement_items_removed_by_a_cancellation(
    staff_client, billed_order, reason
):
    router = item(billed_order, "ROUTER-X")
    cancellation = writing.cancel_order(
        billed_order, reason=reason, items=[ItemPick(router.pk, 1)], actor=None, via=WEB
    )

    content = staff_client.get(billed_order.get_absolute_url()).content.decode()

    assert content.count("settlement-removed") == 1
    assert "<del>89.90 EUR</del>" in content
    assert f'href="{cancellation.get_absolute_url()}"' in content


def test_order_detail_needs_the_same_queries_for_many_settlement_items(
    staff_client, django_assert_max_num_queries, billed_order
):
    with django_assert_max_num_queries(30) as few:
        staff_client.get(billed_order.get_absolute_url())
    for subscription in OrderItemFactory.create_batch(8, order=billed_order, subscription=True):
        SettlementItemFactory.create_batch(3, order_item=subscription, state="exported")

    with django_assert_max_num_queries(len(few)):
        response = staff_client.get(billed_order.get_absolute_url())

    assert response.content.decode().count("blocked-note") == 9


# --- cancel form -------------------------------------------------------------------------------


def test_cancel_form_names_the_reason_before_the_user_tries(staff_client, billed_order):
    content = staff_client.get(cancel_url(billed_order)).content.decode()

    assert settled_message(billed_order) in content


def test_cancel_form_disables_the_quantity_of_an_item_that_cant_be_cancelled(
    staff_client, billed_order
):
    subscription, router = item(billed_order, "PLAN-PRO"), item(billed_order, "ROUTER-X")

    content = staff_client.get(cancel_url(billed_order)).content.decode()

    subscription_input = re.search(rf'<input[^>]*name="item_{subscription.pk}"[^>]*>', content)
    router_input = re.search(rf'<input[^>]*name="item_{router.pk}"[^>]*>', content)
    assert " disabled" in subscription_input.group(0)
    assert " disabled" not in router_input.group(0)


def test_cancel_form_ignores_a_quantity_posted_for_a_blocked_item(
    staff_client, billed_order, reason
):
    subscription, router = item(billed_order, "PLAN-PRO"), item(billed_order, "ROUTER-X")
    data = {
        "reason": reason.pk,
        "scope": "items",
        "churn_time_policy": "now",
        "canceled_by": "merchant",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
        f"item_{subscription.pk}": "1",
        f"item_{router.pk}": "1",
        "action": "confirm",
    }

    staff_client.post(cancel_url(billed_order), data)

    cancellation = Cancellation.objects.get(order=billed_order)
    assert [row.order_item_id for row in cancellation.items.all()] == [router.pk]


def test_cancel_form_keeps_an_unblocked_partly_scheduled_item_editable(
    staff_client, order_with_items, reason
):
    subscription = order_with_items.items.get(quantity=2)
    writing.cancel_order(
        order_with_items,
        reason=reason,
        items=[ItemPick(subscription.pk, 1)],
        churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
        actor=None,
        via=WEB,
    )

    content = staff_client.get(cancel_url(order_with_items)).content.decode()

    quantity_input = re.search(rf'<input[^>]*name="item_{subscription.pk}"[^>]*>', content)
    assert " disabled" not in quantity_input.group(0)
