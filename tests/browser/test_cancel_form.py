"""The cancel form uses everything typed: a quantity picks "Some items", a date picks "At a date
and time", and problems are listed at the top with links to their fields."""

import pytest
from playwright.sync_api import expect

from tests.factories import CancellationReasonFactory

pytestmark = pytest.mark.browser


def open_cancel_form(page, order) -> None:
    page.goto(f"/staff/orders/{order.pk}/cancel/")
    expect(page.get_by_label("The whole order")).to_be_checked()


def test_typing_a_quantity_switches_to_some_items(agent_page, order_with_items):
    page = agent_page
    subscription = order_with_items.items.get(quantity=2)
    open_cancel_form(page, order_with_items)

    page.get_by_label(f"Quantity of {subscription.sku} to cancel").fill("1")

    expect(page.get_by_label("Some items")).to_be_checked()
    expect(page.get_by_label("The whole order")).not_to_be_checked()


def test_typing_a_date_switches_to_at_a_date_and_time(agent_page, order_with_items):
    page = agent_page
    open_cancel_form(page, order_with_items)
    expect(page.get_by_label("Now", exact=True)).to_be_checked()

    page.get_by_label("Effective at").fill("2030-06-01T09:30")

    expect(page.get_by_label("At a date and time")).to_be_checked()


def test_problems_are_summarised_at_the_top_and_link_to_their_fields(agent_page, order_with_items):
    page = agent_page
    CancellationReasonFactory(subject="Moved abroad")
    open_cancel_form(page, order_with_items)
    page.get_by_label("At a date and time").check()
    page.locator("#id_lines-0-unit_price_amount").fill("12")
    page.locator("#id_lines-0-quantity").fill("")

    page.get_by_role("button", name="Preview").click()

    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(3)
    links = summary.get_by_role("link")
    expect(links.nth(0)).to_have_text("Reason: This field is required.")
    expect(links.nth(1)).to_have_text("Effective at: Give the date and time it takes effect.")
    expect(links.nth(2)).to_have_text("Line 1: Quantity: This field is required.")
    links.nth(1).click()
    expect(page.get_by_label("Effective at")).to_be_focused()
