"""Concurrent requests against one order, with real database row locks (PostgreSQL)."""

import threading

import pytest
from django.db import close_old_connections, connection

from cancellations.errors import CancellationError
from cancellations.models import AuditEntry, Cancellation
from cancellations.services import quoting, writing
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs real row locks; SQLite's in-memory test database can't share a write lock "
        "across threads (CI runs this against PostgreSQL)",
    ),
]


def run_concurrently(count, work):
    barrier = threading.Barrier(count)
    outcomes = []
    lock = threading.Lock()

    def worker():
        close_old_connections()
        barrier.wait()
        try:
            result = work()
        except CancellationError as exc:
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_whole_order_cancels_end_in_exactly_one_cancellation():
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=3)
    reason = CancellationReasonFactory()

    outcomes = run_concurrently(
        8,
        lambda: writing.cancel_order(order, reason=reason, actor=None, via=AuditEntry.Via.API),
    )

    assert Cancellation.objects.filter(order=order).count() == 1
    assert sum(isinstance(o, Cancellation) for o in outcomes) == 1
    assert sum(isinstance(o, CancellationError) for o in outcomes) == 7
    assert order.items.get().cancelled_quantity == 3


def test_concurrent_api_cancels_of_one_order_are_one_201_and_the_rest_409_nothing_left():
    from rest_framework.test import APIClient

    order = OrderFactory()
    OrderItemFactory(order=order, quantity=3)
    reason = CancellationReasonFactory()
    agent = UserFactory(
        permissions=["cancellations.add_cancellation", "cancellations.view_cancellation"]
    )
    body = {"orderId": order.pk, "reasonId": reason.pk}

    def post():
        client = APIClient()
        client.force_authenticate(agent)
        return client.post("/api/v1/order-cancellations/", body, format="json")

    responses = run_concurrently(50, post)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 49
    types = {r.json()["type"] for r in responses if r.status_code == 409}
    assert types == {"urn:storno:problem:nothing-left-to-cancel"}
    assert Cancellation.objects.filter(order=order).count() == 1


def test_concurrent_upserts_of_one_id_create_it_once_and_update_it_otherwise():
    from rest_framework.test import APIClient

    order = OrderFactory()
    OrderItemFactory(order=order, quantity=3)
    reason = CancellationReasonFactory()
    agent = UserFactory(
        permissions=[
            "cancellations.add_cancellation",
            "cancellations.change_cancellation",
            "cancellations.view_cancellation",
        ]
    )
    body = {"orderId": order.pk, "reasonId": reason.pk}

    def put():
        client = APIClient()
        client.force_authenticate(agent)
        return client.put("/api/v1/order-cancellations/cnl-race", body, format="json")

    responses = run_concurrently(8, put)

    # The service decides under the order's lock: the first creates, the others find it.
    assert sorted(response.status_code for response in responses) == [200] * 7 + [201]
    assert Cancellation.objects.filter(order=order).count() == 1


def test_concurrent_partial_cancels_never_take_more_than_the_quantity():
    order = OrderFactory()
    item = OrderItemFactory(order=order, quantity=3)
    reason = CancellationReasonFactory()

    run_concurrently(
        6,
        lambda: writing.cancel_order(
            order,
            reason=reason,
            actor=None,
            via=AuditEntry.Via.API,
            items=[quoting.ItemPick(item.pk, 1)],
        ),
    )

    item.refresh_from_db()
    assert item.cancelled_quantity == 3
    assert Cancellation.objects.filter(order=order).count() == 3


def test_runners_sharing_a_bulk_job_cancel_every_order_exactly_once(settings):
    from cancellations import bulk, bulk_runner
    from cancellations.filter_parsing import parse_order_filter
    from cancellations.models import BulkCancellationStatus

    settings.BULK_CANCELLATION_BATCH_SIZE = 7
    orders = []
    for _ in range(60):
        order = OrderFactory(channel="/race")
        OrderItemFactory(order=order, quantity=2)
        orders.append(order)
    job = bulk.start_bulk_cancellation(
        parse_order_filter({"folders": [{"folder": "/race"}]}),
        reason=CancellationReasonFactory(),
        actor=None,
        via=AuditEntry.Via.API,
    )

    run_concurrently(4, lambda: bulk_runner.run_bulk_cancellation(job.pk))

    job.refresh_from_db()
    assert job.status == BulkCancellationStatus.FINISHED
    assert (job.total, job.cancelled_count, job.skipped_count, job.failed_count) == (60, 60, 0, 0)
    assert Cancellation.objects.filter(order__in=orders).count() == 60
    assert set(job.targets.values_list("outcome", flat=True)) == {"cancelled"}
