"""The staff pages in a real browser: find an order, cancel it (whole, some items, later), undo a
cancellation, and do it all with the keyboard alone."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.models import StaffProfile
from cancellations.models import AuditEntry, Cancellation
from cancellations.services import writing
from cancellations.states import CancellationStatus, OrderStatus
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

pytestmark = pytest.mark.browser

DONE = re.compile(r"Order (\S+): cancellation (\S+) is done\.")


def cancel_url(order) -> str:
    return f"/staff/orders/{order.pk}/cancel/"


def choose_reason(page, reason) -> None:
    page.get_by_role("combobox", name="Reason").select_option(label=str(reason))


def preview_and_confirm(page) -> None:
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("please check")
    page.get_by_role("button", name="Confirm cancellation").click()


def test_searching_the_order_list_finds_the_order_and_opens_it(agent_page, live_server):
    wanted = OrderFactory(customer_name="Grete Sommerfeld", customer_email="grete@example.com")
    OrderItemFactory(order=wanted, sku="SKU-GRETE")
    OrderFactory.create_batch(3, customer_name="Kim Other", customer_email="kim@example.com")
    page = agent_page

    page.goto("/staff/orders/")
    expect(page.get_by_text("4 orders")).to_be_visible()
    page.get_by_role("searchbox", name="Search").fill("sommerfeld")
    page.get_by_role("button", name="Search").click()

    expect(page).to_have_url(re.compile(r"[?&]q=sommerfeld"))
    expect(page.get_by_text("1 order", exact=True)).to_be_visible()
    expect(page.locator("table.data-table tbody tr")).to_have_count(1)
    page.get_by_role("link", name=wanted.number).click()

    expect(page).to_have_url(live_server.url + wanted.get_absolute_url())
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Order {wanted.number}")
    expect(page.get_by_role("row", name=re.compile("SKU-GRETE"))).to_be_visible()


def test_cancelling_a_whole_order_shows_a_preview_then_cancels_it(
    agent_page, agent, order_with_items, screenshot
):
    order, page = order_with_items, agent_page
    reason = CancellationReasonFactory(subject="Customer changed their mind")

    page.goto(order.get_absolute_url())
    page.get_by_role("link", name="Cancel order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel order {order.number}")
    choose_reason(page, reason)
    page.get_by_label("Description:", exact=True).fill("Customer called: moving abroad")
    expect(page.get_by_label("The whole order")).to_be_checked()
    expect(page.get_by_label("Now", exact=True)).to_be_checked()
    page.get_by_label("Comment for the audit trail").fill("Confirmed by phone")
    page.get_by_label("Ticket link").fill("https://support.example.com/tickets/4711")
    page.get_by_label("Time spent (minutes)").fill("4")
    page.get_by_label("Time spent (minutes)").blur()
    screenshot(page, "cancel-form")

    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Cancel order {order.number}: please check"
    )
    preview_rows = page.get_by_role("table", name="Items to cancel").locator("tbody tr")
    expect(preview_rows).to_have_count(2)
    screenshot(page, "cancel-preview")
    assert not Cancellation.objects.exists(), "a preview writes nothing"

    page.get_by_role("button", name="Confirm cancellation").click()

    expect(page.get_by_role("status")).to_have_text(DONE)
    cancellation = Cancellation.objects.get()
    expect(page.get_by_role("status")).to_have_text(
        f"Order {order.number}: cancellation {cancellation.pk} is done."
    )
    expect(page.locator("h1 .badge")).to_have_text("Completed")
    page.locator(".breadcrumbs").get_by_role("link", name=order.number).click()
    expect(page.locator("h1 .badge")).to_have_text("Cancelled")
    expect(page.get_by_role("link", name="Cancel order")).to_have_count(0)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert (cancellation.status, cancellation.is_whole_order) == (
        CancellationStatus.COMPLETED,
        True,
    )
    assert (cancellation.reason, cancellation.created_by) == (reason, agent)
    assert cancellation.description == "Customer called: moving abroad"
    assert (cancellation.audit_comment, cancellation.audit_time_spent) == ("Confirmed by phone", 4)
    assert cancellation.audit_ticket_link == "https://support.example.com/tickets/4711"
    assert [item.open_quantity for item in order.items.all()] == [0, 0]


def test_cancelling_one_unit_of_one_item_leaves_the_rest_open(agent_page, order_with_items, reason):
    order, page = order_with_items, agent_page
    subscription, plain = order.items.order_by("pk")

    page.goto(cancel_url(order))
    choose_reason(page, reason)
    page.get_by_label("Some items").check()
    page.get_by_label(f"Quantity of {subscription.sku} to cancel").fill("1")
    page.get_by_role("button", name="Preview").click()

    preview_rows = page.get_by_role("table", name="Items to cancel").locator("tbody tr")
    expect(preview_rows).to_have_count(1)
    expect(preview_rows.first.locator("td.num").first).to_have_text("1")
    page.get_by_role("button", name="Confirm cancellation").click()

    expect(page.get_by_role("status")).to_have_text(DONE)
    expect(page.get_by_text("Some items", exact=True)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(subscription.sku))).to_contain_text("1")
    cancellation = Cancellation.objects.get()
    assert cancellation.is_whole_order is False
    assert [(row.order_item, row.quantity) for row in cancellation.items.all()] == [
        (subscription, 1)
    ]
    order.refresh_from_db()
    subscription.refresh_from_db()
    plain.refresh_from_db()
    assert order.status == OrderStatus.PARTIALLY_CANCELLED
    assert (subscription.open_quantity, plain.open_quantity) == (1, 1)

    page.goto(order.get_absolute_url())
    expect(page.locator("h1 .badge")).to_have_text("Partially cancelled")


def test_a_cancellation_at_a_later_time_is_shown_as_scheduled(
    agent_page, agent, order_with_items, reason
):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Istanbul")  # UTC+3, no DST
    istanbul = ZoneInfo("Europe/Istanbul")
    when = (timezone.now() + timedelta(days=3)).astimezone(istanbul)
    when = when.replace(hour=10, minute=30, second=0, microsecond=0)
    order, page = order_with_items, agent_page

    page.goto(cancel_url(order))
    expect(page.get_by_text("Times in Europe/Istanbul")).to_be_visible()
    choose_reason(page, reason)
    page.get_by_label("At a date and time").check()
    page.get_by_label("Effective at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Scheduled: nothing changes until")).to_be_visible()
    page.get_by_role("button", name="Confirm cancellation").click()

    expect(page.get_by_role("status")).to_contain_text("is scheduled for")
    expect(page.locator("h1 .badge")).to_have_text("Confirmed")
    expect(page.get_by_text("Scheduled: will be cancelled on")).to_be_visible()
    cancellation = Cancellation.objects.get()
    assert cancellation.status == CancellationStatus.CONFIRMED
    assert cancellation.churn_time == when  # 07:30 UTC
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN

    page.goto(order.get_absolute_url())
    expect(page.locator("h1 .badge")).to_have_text("Open")
    # Everything left is scheduled: the page says so instead of offering Cancel order.
    expect(page.locator(".notice-scheduled")).to_contain_text(
        "Everything left is scheduled to be cancelled on"
    )
    expect(page.get_by_role("link", name="Cancel order")).to_have_count(0)


def test_undoing_a_cancellation_asks_first_and_reopens_the_order(
    agent_page, agent, order_with_items, reason
):
    order, page = order_with_items, agent_page
    cancellation = writing.cancel_order(order, reason=reason, actor=agent, via=AuditEntry.Via.WEB)

    page.goto(cancellation.get_absolute_url())
    page.get_by_role("link", name="Undo").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Undo cancellation {cancellation.pk}?"
    )
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.COMPLETED, "the question changes nothing"
    page.get_by_label("Comment").fill("Customer stays after all")
    page.get_by_role("button", name="Yes, undo it").click()

    expect(page.get_by_role("status")).to_have_text(f"Cancellation {cancellation.pk} is undone.")
    expect(page.locator("h1 .badge")).to_have_text("Revoked")
    expect(page.get_by_role("link", name="Undo")).to_have_count(0)
    # The trail in words, newest first (cancellations/audit_labels.py).
    actions = page.locator(".audit-trail .audit-action")
    expect(actions.first).to_have_text("Order status changed from Cancelled to Open")
    expect(actions.nth(1)).to_have_text("Cancellation undone")
    expect(actions.last).to_have_text("Cancellation created")
    cancellation.refresh_from_db()
    order.refresh_from_db()
    assert cancellation.status == CancellationStatus.REVOKED
    assert (cancellation.revoked_by, cancellation.revoke_comment) == (
        agent,
        "Customer stays after all",
    )
    assert order.status == OrderStatus.OPEN
    assert [item.open_quantity for item in order.items.all()] == [2, 1]


# --- keyboard and labels ---------------------------------------------------------------------

UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.type !== 'hidden')
    .filter(el => ![...el.labels].some(label => label.textContent.trim())
                  && !(el.getAttribute('aria-label') || '').trim())
    .map(el => el.name || el.id)"""


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"{selector} can't be reached with Tab")


def test_the_cancel_form_has_a_label_on_every_input_and_works_with_the_keyboard_alone(
    agent_page, order_with_items, reason
):
    order, page = order_with_items, agent_page
    page.goto(cancel_url(order))

    assert page.locator("form.cancel-form").locator("input:visible, select, textarea").count() > 15
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    tab_to(page, "#id_reason")
    page.keyboard.press("ArrowDown")  # the first reason
    expect(page.locator("#id_reason")).to_have_value(str(reason.pk))
    page.keyboard.press("Tab")
    expect(page.locator("#id_description")).to_be_focused()
    page.keyboard.type("Typed without a mouse")
    tab_to(page, "button[value=preview]")
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_contain_text("please check")
    tab_to(page, "button[value=confirm]")
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_have_text(DONE)
    cancellation = Cancellation.objects.get()
    assert cancellation.description == "Typed without a mouse"
    assert (cancellation.reason, cancellation.is_whole_order) == (reason, True)
