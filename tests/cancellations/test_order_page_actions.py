"""The order page shows only what can be done: no Cancel order when everything left is
scheduled already (it says what is scheduled instead), and items are named by SKU and
description, never by an internal id."""

import pytest
from django.urls import reverse

from cancellations.models import AuditEntry, ChurnTimePolicy
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
def plan(db):
    order = OrderFactory()
    return OrderItemFactory(
        order=order, sku="PLAN-BASIC", description="Basic plan", quantity=2, subscription=True
    )


def schedule(order, reason, items=None):
    return writing.cancel_order(
        order,
        reason=reason,
        items=items,
        churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
        actor=None,
        via=WEB,
    )


def cancel_url(order):
    return reverse("staff:order-cancel", args=[order.pk])


def test_no_cancel_button_when_everything_left_is_scheduled(staff_client, plan, reason):
    scheduled = schedule(plan.order, reason)

    page = staff_client.get(plan.order.get_absolute_url()).content.decode()

    assert cancel_url(plan.order) not in page
    assert "Everything left is scheduled to be cancelled on" in page
    assert f'href="{scheduled.get_absolute_url()}"' in page


def test_the_cancel_button_stays_while_something_is_left(staff_client, plan, reason):
    schedule(plan.order, reason, items=[ItemPick(plan.pk, 1)])

    page = staff_client.get(plan.order.get_absolute_url()).content.decode()

    assert f'href="{cancel_url(plan.order)}"' in page
    assert "Everything left is scheduled" not in page


def test_the_cancel_form_sends_back_to_the_order_when_nothing_is_left(staff_client, plan, reason):
    schedule(plan.order, reason)

    response = staff_client.get(cancel_url(plan.order), follow=True)

    assert response.redirect_chain[-1][0] == plan.order.get_absolute_url()
    assert "Nothing is left to cancel on this order." in response.content.decode()


def test_items_are_named_by_sku_and_description_never_by_id(staff_client, plan, reason):
    plan.billing_item_id = "SI-90307"
    plan.save()
    partly = schedule(plan.order, reason, items=[ItemPick(plan.pk, 1)])
    assert partly.is_scheduled

    page = staff_client.get(plan.order.get_absolute_url()).content.decode()

    assert "PLAN-BASIC (Basic plan) already has a scheduled cancellation." in page
    assert "Service item" not in page and "SI-90307" not in page


def test_a_blocking_settlement_is_named_by_its_period(staff_client, plan):
    SettlementItemFactory(order_item=plan, state="settled")

    blocked = staff_client.get(plan.order.get_absolute_url()).context["items"][0][3]

    assert len(blocked) == 1
    assert blocked[0].startswith("PLAN-BASIC (Basic plan) can't be cancelled: its billed period")
    assert blocked[0].endswith("is already settled.")


def test_the_page_costs_the_same_queries_when_everything_is_scheduled(
    staff_client, plan, reason, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20) as open_order:
        staff_client.get(plan.order.get_absolute_url())
    schedule(plan.order, reason)

    with django_assert_max_num_queries(len(open_order)):
        staff_client.get(plan.order.get_absolute_url())
