"""The order's admin page shows each item's settlement items and why an item can't be
cancelled (issue 5, seed 002)."""

import html
from decimal import Decimal

import pytest
from django.urls import reverse

from cancellations.models import SettlementItem
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    SuperUserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(SuperUserFactory())
    return client


@pytest.fixture
def billed_order():
    order = OrderFactory()
    subscription = OrderItemFactory(order=order, sku="PLAN-PRO", subscription=True)
    SettlementItemFactory(order_item=subscription, amount=Decimal("29.00"), state="exported")
    router = OrderItemFactory(order=order, sku="ROUTER-X")
    SettlementItemFactory(order_item=router, amount=Decimal("89.90"), state="open")
    return order


def change_url(order):
    return reverse("admin:cancellations_order_change", args=[order.pk])


def test_order_admin_lists_each_items_settlement_items(admin_client, billed_order):
    content = html.unescape(admin_client.get(change_url(billed_order)).content.decode())

    assert "29.00 EUR" in content
    assert "Exported" in content
    assert "89.90 EUR" in content


def test_order_admin_says_which_item_cant_be_cancelled_and_why(admin_client, billed_order):
    exported = SettlementItem.objects.get(state="exported")

    content = html.unescape(admin_client.get(change_url(billed_order)).content.decode())

    assert "Can't be cancelled:" in content
    assert "PLAN-PRO (Monthly plan) can't be cancelled: its billed period" in content
    assert "is already exported." in content
    assert f"Settlement item {exported.pk}" not in content
    assert content.count('class="errornote"') == 1


def test_order_admin_escapes_item_text(admin_client, billed_order):
    OrderItemFactory(order=billed_order, sku="EVIL", description="<script>alert(1)</script>")

    content = admin_client.get(change_url(billed_order)).content.decode()

    assert "<script>alert(1)</script>" not in content


def test_order_admin_needs_the_same_queries_for_many_settlement_items(
    admin_client, billed_order, django_assert_max_num_queries
):
    with django_assert_max_num_queries(40) as few:
        admin_client.get(change_url(billed_order))
    for subscription in OrderItemFactory.create_batch(8, order=billed_order, subscription=True):
        SettlementItemFactory.create_batch(3, order_item=subscription, state="settled")

    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(change_url(billed_order))

    assert response.content.decode().count('class="errornote"') == 9
