"""A bulk cancellation in a real browser: the filter, the preview, the confirmation, and the
progress bar moving while the job runs."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cancellations import bulk_batch, bulk_runner, tasks
from cancellations.models import BulkCancellation, BulkCancellationStatus
from cancellations.states import OrderStatus
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def bulk_operator(db):
    return UserFactory(
        permissions=[
            "cancellations.view_order",
            "cancellations.view_cancellation",
            "cancellations.run_bulk_cancellation",
            "cancellations.view_bulkcancellation",
        ]
    )


def test_a_channel_over_the_last_day_is_previewed_then_cancelled_with_a_moving_progress_bar(
    page, sign_in, bulk_operator, settings, monkeypatch, screenshot
):
    reason = CancellationReasonFactory()
    recent = timezone.now() - timedelta(hours=3)
    wanted = [OrderFactory(channel="/shop/tr", placed_at=recent) for _ in range(6)]
    for order in wanted:
        OrderItemFactory(order=order)
    OrderItemFactory(order=OrderFactory(channel="/shop/tr", placed_at=recent - timedelta(days=3)))
    OrderItemFactory(order=OrderFactory(channel="/shop/de", placed_at=recent))
    # The job is run below, batch by batch, instead of by the eager Celery task in the request.
    queued = []
    monkeypatch.setattr(tasks, "queue_bulk_cancellation", queued.append)
    settings.BULK_CANCELLATION_BATCH_SIZE = 2
    sign_in(bulk_operator)

    page.goto("/staff/bulk/new/")
    page.get_by_label("Channels").select_option("/shop/tr")
    page.get_by_label("Placed from").fill("1d")
    page.get_by_role("combobox", name="Reason").select_option(label=str(reason))
    page.get_by_role("button", name="Preview").click()

    preview = page.locator("#bulk-preview")
    expect(preview).to_contain_text("6")
    expect(page.locator("table.bulk-sample tbody tr")).to_have_count(6)
    screenshot(page, "bulk-preview")
    page.get_by_role("button", name="Cancel 6 orders").click()

    job = BulkCancellation.objects.get()
    assert queued == [job.pk]
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Bulk cancellation #{job.pk}")
    progress = page.locator("#bulk-progress")
    expect(progress).not_to_have_attribute("value", "100")

    # Stop after the first batch, so that the page shows the bar part of the way.
    # (after its transaction has committed, or the page would see nothing yet).
    real_run_next = bulk_batch.BatchRunner.run_next
    first_batch_done, go_on = threading.Event(), threading.Event()

    def pausing_run_next(runner):
        due = real_run_next(runner)
        if not first_batch_done.is_set():
            first_batch_done.set()
            go_on.wait(timeout=30)
        return due

    monkeypatch.setattr(bulk_batch.BatchRunner, "run_next", pausing_run_next)
    worker = threading.Thread(target=bulk_runner.run_bulk_cancellation, args=(job.pk,))
    worker.start()
    try:
        assert first_batch_done.wait(timeout=30)
        expect(progress).to_have_attribute("value", "33")
        expect(page.locator("#bulk-counts")).to_contain_text("2")
    finally:
        go_on.set()
        worker.join(timeout=30)

    job.refresh_from_db()
    assert job.status == BulkCancellationStatus.FINISHED
    expect(page.locator("#bulk-status")).to_contain_text("Finished")
    expect(progress).to_have_attribute("value", "100")
    for order in wanted:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    assert job.cancelled_count == 6
