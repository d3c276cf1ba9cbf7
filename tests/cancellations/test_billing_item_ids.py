"""An order item's billing item id: the billing engine's itemId for it, fed in with the order."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from cancellations import billing
from cancellations.errors import CancellationError
from cancellations.models import AuditEntry, OrderItem
from cancellations.services import order_changes, writing
from tests.factories import OrderItemFactory, SettlementItemFactory, SuperUserFactory, UserFactory

ORDERS = "/api/v1/orders/"


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(
        UserFactory(permissions=["cancellations.view_order", "cancellations.add_order"])
    )
    return client


def new_order(number="SO-1", **item) -> dict:
    return {
        "number": number,
        "customerName": "Ayşe Yılmaz",
        "channel": "/shop/tr",
        "currency": "EUR",
        "items": [{"sku": "PLAN-M", "quantity": 1, "unitPriceAmount": "30.00", **item}],
    }


def test_the_orders_api_takes_and_shows_the_billing_item_id(api):
    response = api.post(ORDERS, new_order(billingItemId="SI-4711"), format="json")

    assert response.status_code == 201
    assert response.json()["items"][0]["billingItemId"] == "SI-4711"
    assert OrderItem.objects.get().billing_item_id == "SI-4711"


def test_without_one_the_item_has_none(api):
    response = api.post(ORDERS, new_order(), format="json")

    assert response.json()["items"][0]["billingItemId"] == ""


def test_a_billing_item_id_longer_than_aebs_fifty_characters_is_refused(api):
    response = api.post(ORDERS, new_order(billingItemId="x" * 51), format="json")

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["invalidFields"]] == ["items.0.billingItemId"]


def test_a_billing_item_id_another_item_has_is_refused_naming_it(api):
    OrderItemFactory(billing_item_id="SI-4711")

    response = api.post(ORDERS, new_order(billingItemId="SI-4711"), format="json")

    assert response.status_code == 400
    assert [e["field"] for e in response.json()["invalidFields"]] == ["items.0.billingItemId"]
    assert OrderItem.objects.count() == 1


def test_the_same_billing_item_id_twice_in_one_order_is_refused(db):
    items = [
        order_changes.NewOrderItem(sku=sku, quantity=1, unit_price_amount=1, billing_item_id="SI-1")
        for sku in ("A", "B")
    ]

    with pytest.raises(CancellationError) as caught:
        order_changes.create_order(
            number="SO-2",
            customer_name="X",
            channel="/shop/de",
            currency="EUR",
            items=items,
            actor=None,
            via=AuditEntry.Via.API,
        )

    assert list(caught.value.message_dict) == ["items.1.billing_item_id"]


def test_items_without_one_may_be_many(db):
    OrderItemFactory.create_batch(3)

    assert OrderItem.objects.filter(billing_item_id="").count() == 3


def test_engine_items_splits_what_can_be_named_from_what_cannot(db, reason, agent):
    named = OrderItemFactory(billed=True)
    SettlementItemFactory(order_item=named)
    unnamed = OrderItemFactory(order=named.order)
    SettlementItemFactory(order_item=unnamed)
    OrderItemFactory(order=named.order, billed=True)  # no settlement items: nothing to cancel
    cancellation = writing.cancel_order(named.order, reason=reason, actor=agent, via="api")

    engine = billing.engine_items(cancellation)

    assert engine.item_ids == [named.billing_item_id]
    assert engine.unreferenced == [unnamed]


def test_the_admin_shows_an_items_billing_item_id(client, db):
    item = OrderItemFactory(billing_item_id="SI-ADMIN-1")
    client.force_login(SuperUserFactory())

    page = client.get(f"/admin/cancellations/order/{item.order_id}/change/")

    assert "SI-ADMIN-1" in page.content.decode()


def test_the_demo_gives_each_subscription_a_billing_item_id(db):
    call_command("demo_data", orders=8, stdout=None)

    subscriptions = OrderItem.objects.exclude(period_start=None)
    assert subscriptions.exists()
    assert all(item.billing_item_id.startswith("SI-") for item in subscriptions)
    assert not OrderItem.objects.filter(period_start=None).exclude(billing_item_id="").exists()
