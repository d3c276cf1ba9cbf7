"""Before confirming, the staff preview says which providers won't hear of the cancellation and
why; after confirming, that provider's delivery is a staff task, marked done on the page."""

import re

import pytest
from playwright.sync_api import expect

from backoffice.models import StaffProfile
from cancellations.models import AuditEntry, Cancellation
from providers.models import ProviderSetting
from tests.factories import (
    CancellationFactory,
    DeliveryFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def lead(db):
    lead = UserFactory(
        permissions=[
            "cancellations.view_order",
            "cancellations.cancel_order",
            "cancellations.view_cancellation",
            "providers.view_delivery",
            "providers.retry_delivery",
            "providers.resolve_delivery",
            "reasons.view_cancellationreason",
        ]
    )
    StaffProfile.objects.create(user=lead, salesforce_user_id="005000000000001AAA")
    return lead


def test_the_preview_names_callisto_as_not_told_and_the_task_is_marked_done(
    page, sign_in, lead, reason
):
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, enabled=True, base_url=f"http://{kind}.invalid")
    order = OrderFactory(external_ids={"callisto": "4711", "rebilly": "ord_1"})
    item = OrderItemFactory(order=order, quantity=2)
    sign_in(lead)

    page.goto(f"/staff/orders/{order.pk}/cancel/")
    page.get_by_role("combobox", name="Reason").select_option(label=str(reason))
    page.get_by_label("Some items").check()
    page.get_by_label(f"Quantity of {item.sku} to cancel").fill("1")
    page.get_by_role("button", name="Preview").click()

    verdicts = page.get_by_role("region", name="Providers")
    callisto = verdicts.get_by_role("row", name=re.compile("Callisto"))
    expect(callisto).to_contain_text("Won't be told")
    expect(callisto).to_contain_text("Callisto can only cancel whole orders")
    expect(verdicts.get_by_role("row", name=re.compile("Rebilly"))).to_contain_text("Will be told")
    page.get_by_role("button", name="Confirm cancellation").click()

    task = page.locator('tr[data-provider="callisto"]')
    expect(task).to_contain_text("Task for staff")
    expect(task.get_by_role("button", name="Retry now")).to_have_count(0)
    task.get_by_label("What was done").fill("Cancelled the item in Callisto by hand.")
    task.get_by_role("button", name="Mark done").click()

    expect(page.get_by_role("status")).to_contain_text("marked done")
    expect(page.locator('tr[data-provider="callisto"]')).to_contain_text("Task done")
    cancellation = Cancellation.objects.get()
    assert AuditEntry.objects.filter(
        cancellation=cancellation, action="delivery.task_resolved", actor=lead
    ).exists()


def test_a_failed_delivery_is_marked_resolved_and_a_moot_one_offers_nothing(page, sign_in, lead):
    failed = DeliveryFactory(status="failed", provider="rebilly", last_error="HTTP 422")
    undone = CancellationFactory(status="revoked")
    DeliveryFactory(cancellation=undone, status="failed", provider="rebilly")
    sign_in(lead)

    page.goto(failed.cancellation.get_absolute_url())
    row = page.locator('tr[data-provider="rebilly"]')
    expect(row.get_by_role("button", name="Retry now")).to_be_visible()
    row.get_by_label("What was done").fill("Rebilly support cancelled it by hand.")
    row.get_by_role("button", name="Mark resolved").click()

    expect(page.get_by_role("status")).to_contain_text("marked resolved")
    row = page.locator('tr[data-provider="rebilly"]')
    expect(row).to_contain_text("Resolved")
    expect(row).to_contain_text("Rebilly support cancelled it by hand.")
    expect(row.get_by_role("button")).to_have_count(0)

    page.goto(undone.get_absolute_url())
    row = page.locator('tr[data-provider="rebilly"]')
    expect(row).to_contain_text("Nothing left to do: the cancellation was undone")
    expect(row.get_by_role("button")).to_have_count(0)
