"""The order page shows only what can be done: with everything left scheduled there is no
Cancel order button, the page says what is scheduled and links to it, and items are named by
SKU and description, never by an internal id."""

import pytest
from playwright.sync_api import expect

from cancellations.models import AuditEntry, ChurnTimePolicy
from cancellations.services import writing
from cancellations.services.quoting import ItemPick
from tests.factories import OrderFactory, OrderItemFactory

pytestmark = pytest.mark.browser


def schedule(order, reason, items=None):
    return writing.cancel_order(
        order,
        reason=reason,
        items=items,
        churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
        actor=None,
        via=AuditEntry.Via.WEB,
    )


def test_with_everything_scheduled_the_order_page_says_so_instead_of_offering_cancel(
    agent_page, reason
):
    order = OrderFactory()
    OrderItemFactory(
        order=order,
        sku="PLAN-BASIC",
        description="Basic plan",
        quantity=1,
        subscription=True,
        billing_item_id="SI-90307",
    )
    scheduled = schedule(order, reason)
    page = agent_page

    page.goto(order.get_absolute_url())

    expect(page.get_by_role("link", name="Cancel order")).to_have_count(0)
    notice = page.locator("#nothing-left-to-cancel")
    expect(notice).to_contain_text("Everything left is scheduled to be cancelled on")
    notice.get_by_role("link", name=scheduled.pk).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(scheduled.pk)


def test_an_item_that_cant_be_cancelled_is_named_by_sku_and_description(agent_page, reason):
    order = OrderFactory()
    plan = OrderItemFactory(
        order=order,
        sku="PLAN-BASIC",
        description="Basic plan",
        quantity=2,
        subscription=True,
        billing_item_id="SI-90307",
    )
    schedule(order, reason, items=[ItemPick(plan.pk, 1)])
    page = agent_page

    page.goto(order.get_absolute_url())

    expect(page.get_by_role("link", name="Cancel order")).to_be_visible()  # 1 is left
    note = page.locator(".blocked-note")
    expect(note).to_contain_text("PLAN-BASIC (Basic plan) already has a scheduled cancellation.")
    expect(page.locator("main")).not_to_contain_text("Service item")
    expect(page.locator("main")).not_to_contain_text("SI-90307")
