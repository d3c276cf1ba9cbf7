"""The admin's "Cancel selected orders" for more than a page of orders: a bulk cancellation job
instead of a loop inside the request (cancellations/admin/orders.py)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse

from cancellations.admin.orders import OrderAdmin
from cancellations.models import AuditEntry, BulkCancellation, Cancellation, Order
from cancellations.states import OrderStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ORDERS_URL = reverse("admin:cancellations_order_changelist")
PAGE = 3  # the admin's list_per_page in these tests


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(OrderAdmin, "list_per_page", PAGE)


@pytest.fixture
def admin_client(client):
    client.force_login(SuperUserFactory())
    return client


def make_orders(count: int, **kwargs):
    orders = OrderFactory.create_batch(count, **kwargs)
    for order in orders:
        OrderItemFactory(order=order, quantity=1)
    return orders


def cancel_action(client, orders, *, apply=True, select_across=False, **fields):
    data = {
        "action": "cancel_orders",
        ACTION_CHECKBOX_NAME: [order.pk for order in orders],
        "select_across": "1" if select_across else "0",
        "index": 0,
    }
    if apply:
        data.update(apply="yes", effective="now", description="", ticket_link="", comment="")
    return client.post(ORDERS_URL, {**data, **fields})


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_more_than_a_page_of_orders_starts_a_bulk_job_and_shows_its_page(admin_client, reason):
    orders = make_orders(PAGE + 1)

    response = cancel_action(admin_client, orders, reason=reason.pk, comment="Shop closed")

    job = BulkCancellation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("staff:bulk-detail", args=[job.pk])
    assert sorted(job.filter["orderIds"]) == sorted(order.pk for order in orders)
    assert (job.reason, job.via, job.audit_comment) == (reason, AuditEntry.Via.ADMIN, "Shop closed")
    assert f"Bulk cancellation #{job.pk} has started for {PAGE + 1} orders." in texts(response)[0]
    # The job cancels them in the background, not this request.
    assert not Cancellation.objects.exists()
    assert AuditEntry.objects.filter(action="bulk_cancellation.started").count() == 1


def test_select_all_across_pages_starts_a_job_for_every_order_the_list_shows(admin_client, reason):
    orders = make_orders(PAGE + 2)

    cancel_action(admin_client, orders[:1], select_across=True, reason=reason.pk)

    job = BulkCancellation.objects.get()
    assert sorted(job.filter["orderIds"]) == sorted(order.pk for order in orders)


def test_a_page_of_orders_or_fewer_is_still_cancelled_in_the_request(admin_client, reason):
    orders = make_orders(PAGE)

    response = cancel_action(admin_client, orders, reason=reason.pk)

    assert response.status_code == 302
    assert not BulkCancellation.objects.exists()
    assert Cancellation.objects.count() == PAGE
    assert f"Cancelled {PAGE} orders." in texts(response)


def test_the_confirmation_page_says_a_job_will_cancel_them(admin_client, reason):
    orders = make_orders(PAGE + 1)

    response = cancel_action(admin_client, orders, apply=False)

    assert response.status_code == 200
    assert response.context["object_count"] == PAGE + 1
    assert "a bulk cancellation job cancels them in the background" in response.content.decode()
    assert not BulkCancellation.objects.exists()


def test_bad_input_starts_no_job_and_names_the_field(admin_client):
    needs_text = CancellationReasonFactory(extra_information_needed=True)
    orders = make_orders(PAGE + 1)

    response = cancel_action(admin_client, orders, reason=needs_text.pk)

    assert response.status_code == 200
    assert "description" in response.context["form"].errors
    assert not BulkCancellation.objects.exists()


def test_without_the_bulk_permission_more_than_a_page_is_refused_and_nothing_changes(
    client, reason
):
    client.force_login(
        UserFactory(permissions=["cancellations.view_order", "cancellations.cancel_order"])
    )
    orders = make_orders(PAGE + 1)

    response = cancel_action(client, orders, reason=reason.pk)

    assert response.status_code == 302
    assert "needs the permission to run bulk cancellations" in texts(response)[0]
    assert not BulkCancellation.objects.exists()
    assert not Cancellation.objects.exists()
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.OPEN}
