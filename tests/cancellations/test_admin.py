"""The Django admin of orders, cancellations and the audit trail."""

import html
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cancellations.models import AuditEntry, Cancellation, Order
from cancellations.services import writing
from cancellations.states import CancellationStatus, OrderStatus
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ORDERS_URL = reverse("admin:cancellations_order_changelist")
CANCELLATIONS_URL = reverse("admin:cancellations_cancellation_changelist")
AUDIT_URL = reverse("admin:cancellations_auditentry_changelist")


@pytest.fixture
def superuser():
    return SuperUserFactory()


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def make_order(**kwargs):
    order = OrderFactory(**kwargs)
    OrderItemFactory(order=order, quantity=2)
    OrderItemFactory(order=order, quantity=1)
    return order


def make_cancellation(**kwargs):
    cancellation = CancellationFactory(created_by=UserFactory(), **kwargs)
    AuditEntry.objects.create(
        action="cancellation.created",
        order=cancellation.order,
        cancellation=cancellation,
        actor=cancellation.created_by,
        actor_label=cancellation.created_by.username,
        via=AuditEntry.Via.API,
        data={"reason": cancellation.reason_id},
    )
    return cancellation


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def offered_actions(response):
    action_form = response.context["action_form"]  # None when no action is allowed
    return [name for name, _label in action_form.fields["action"].choices] if action_form else []


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def start_cancel_action(client, orders):
    return client.post(
        ORDERS_URL,
        {"action": "cancel_orders", ACTION_CHECKBOX_NAME: [o.pk for o in orders], "index": 0},
    )


def apply_cancel_action(client, orders, **fields):
    data = {
        "action": "cancel_orders",
        ACTION_CHECKBOX_NAME: [o.pk for o in orders],
        "select_across": "0",
        "apply": "yes",
        "effective": "now",
        "description": "",
        "comment": "",
        "ticket_link": "",
        **fields,
    }
    return client.post(ORDERS_URL, data)


# --- orders: list ---------------------------------------------------------------------------------


def test_order_changelist_queries_do_not_grow_with_rows(admin_client):
    make_order()
    one_row = count_queries(admin_client, ORDERS_URL)
    for _ in range(29):
        make_order(parent=OrderFactory())
    thirty_rows = count_queries(admin_client, ORDERS_URL)
    assert thirty_rows == one_row


def test_order_changelist_shows_annotated_item_count(admin_client):
    make_order(number="ORD-COUNT")
    response = admin_client.get(ORDERS_URL)
    [order] = [o for o in response.context["cl"].result_list if o.number == "ORD-COUNT"]
    assert order.item_count == 2


def test_order_changelist_searches_customer_email(admin_client):
    make_order(number="ORD-FOUND", customer_email="ada@example.org")
    make_order(number="ORD-OTHER", customer_email="bob@example.org")
    response = admin_client.get(ORDERS_URL, {"q": "ada@example"})
    numbers = [o.number for o in response.context["cl"].result_list]
    assert numbers == ["ORD-FOUND"]


def test_order_changelist_filters_by_status(admin_client):
    make_order(number="ORD-OPEN")
    make_order(number="ORD-DONE", status=OrderStatus.COMPLETED)
    response = admin_client.get(ORDERS_URL, {"status__exact": OrderStatus.COMPLETED})
    assert [o.number for o in response.context["cl"].result_list] == ["ORD-DONE"]


# --- orders: change form --------------------------------------------------------------------------


def test_order_change_form_shows_items_and_external_ids(admin_client):
    order = make_order(external_ids={"callisto": "4711"})
    response = admin_client.get(reverse("admin:cancellations_order_change", args=[order.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "4711" in content
    assert order.items.first().sku in content


def test_order_status_is_read_only_on_change_form(admin_client):
    order = make_order()
    url = reverse("admin:cancellations_order_change", args=[order.pk])
    response = admin_client.get(url)
    assert "status" not in response.context["adminform"].form.fields

    admin_client.post(
        url,
        {
            "customer_name": order.customer_name,
            "customer_email": order.customer_email,
            "external_ids": "{}",
            "status": OrderStatus.CANCELLED,
            **inline_management_data(order),
        },
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN


def inline_management_data(order):
    data = {}
    for prefix, total in (("items", order.items.count()), ("cancellations", 0)):
        data |= {
            f"{prefix}-TOTAL_FORMS": total,
            f"{prefix}-INITIAL_FORMS": total,
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
    for index, item in enumerate(order.items.all()):
        data[f"items-{index}-id"] = item.pk
        data[f"items-{index}-order"] = order.pk
    return data


def test_order_change_form_saves_customer_details_through_the_service(admin_client, superuser):
    order = make_order()
    response = admin_client.post(
        reverse("admin:cancellations_order_change", args=[order.pk]),
        {
            "customer_name": "Ada Lovelace",
            "customer_email": "ada@example.org",
            "external_ids": '{"rebilly": "ord_1"}',
            **inline_management_data(order),
        },
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.customer_name, order.external_ids) == ("Ada Lovelace", {"rebilly": "ord_1"})
    entry = AuditEntry.objects.get(order=order, action="order.updated")
    assert (entry.actor, entry.via) == (superuser, AuditEntry.Via.ADMIN)


def test_order_change_form_rejects_unknown_provider_key_and_changes_nothing(admin_client):
    order = make_order(customer_name="Before")
    response = admin_client.post(
        reverse("admin:cancellations_order_change", args=[order.pk]),
        {
            "customer_name": "After",
            "customer_email": "",
            "external_ids": '{"paypal": "x"}',
            **inline_management_data(order),
        },
    )
    assert response.status_code == 200
    assert "paypal" in str(response.context["adminform"].form.errors["external_ids"])
    order.refresh_from_db()
    assert order.customer_name == "Before"


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client):
    order = make_order()
    assert admin_client.get(reverse("admin:cancellations_order_add")).status_code == 403
    delete_url = reverse("admin:cancellations_order_delete", args=[order.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


# --- orders: the cancel action --------------------------------------------------------------------


def test_cancel_action_asks_for_an_active_reason_on_an_intermediate_page(admin_client):
    offered = CancellationReasonFactory(subject="Too expensive", ordering=2)
    first = CancellationReasonFactory(subject="Changed my mind", ordering=1)
    CancellationReasonFactory(subject="Retired reason", is_active=False)
    order = make_order()

    response = start_cancel_action(admin_client, [order])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/cancellations/order/cancel_orders.html"
    choices = list(response.context["form"].fields["reason"].queryset)
    assert choices == [first, offered]
    assert order.number in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN


def test_cancel_action_cancels_each_order_and_reports_those_it_cannot(admin_client, reason):
    cancellable = [make_order(), make_order()]
    completed = make_order(status=OrderStatus.COMPLETED)

    response = apply_cancel_action(
        admin_client, [*cancellable, completed], reason=reason.pk, comment="Customer called"
    )

    assert response.status_code == 302
    for order in cancellable:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    completed.refresh_from_db()
    assert completed.status == OrderStatus.COMPLETED
    assert not completed.cancellations.exists()
    messages = texts(response)
    assert "Cancelled 2 orders." in messages
    assert any(completed.number in m and "can't be cancelled" in m for m in messages)


def test_cancel_action_records_the_admin_as_actor_with_the_audit_note(
    admin_client, superuser, reason
):
    order = make_order()
    apply_cancel_action(
        admin_client,
        [order],
        reason=reason.pk,
        comment="Customer called",
        ticket_link="https://tickets.example/42",
    )
    cancellation = Cancellation.objects.get(order=order)
    assert cancellation.created_by == superuser
    assert cancellation.audit_ticket_link == "https://tickets.example/42"
    entry = AuditEntry.objects.get(cancellation=cancellation, action="cancellation.created")
    assert (entry.via, entry.comment) == (AuditEntry.Via.ADMIN, "Customer called")


def test_cancel_action_at_a_future_time_schedules_the_cancellations(admin_client, reason):
    order = make_order()
    later = timezone.localtime() + timedelta(days=3)

    response = apply_cancel_action(
        admin_client,
        [order],
        reason=reason.pk,
        effective="at",
        effective_at=later.strftime("%Y-%m-%dT%H:%M"),
    )

    cancellation = Cancellation.objects.get(order=order)
    assert cancellation.status == CancellationStatus.CONFIRMED
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert "Scheduled the cancellation of 1 order." in texts(response)


def test_cancel_action_without_description_for_extra_information_reason_changes_nothing(
    admin_client,
):
    needs_details = CancellationReasonFactory(extra_information_needed=True)
    orders = [make_order(), make_order()]

    response = apply_cancel_action(admin_client, orders, reason=needs_details.pk, description="")

    assert response.status_code == 200
    assert response.context["form"].errors["description"] == ["This reason needs a description."]
    assert not Cancellation.objects.exists()
    assert all(o.status == OrderStatus.OPEN for o in Order.objects.all())


def test_cancel_action_with_a_time_in_the_past_changes_nothing(admin_client, reason):
    order = make_order()
    earlier = timezone.localtime() - timedelta(days=1)

    response = apply_cancel_action(
        admin_client,
        [order],
        reason=reason.pk,
        effective="at",
        effective_at=earlier.strftime("%Y-%m-%dT%H:%M"),
    )

    assert response.status_code == 200
    assert response.context["form"].errors["effective_at"] == [
        "The effective time can't be in the past."
    ]
    assert not Cancellation.objects.exists()


def test_cancel_action_at_a_time_needs_the_time(admin_client, reason):
    order = make_order()
    response = apply_cancel_action(admin_client, [order], reason=reason.pk, effective="at")
    assert "effective_at" in response.context["form"].errors
    assert not Cancellation.objects.exists()


def test_cancel_action_is_offered_to_staff_with_cancel_permission(client, agent):
    client.force_login(agent)
    make_order()
    response = client.get(ORDERS_URL)
    assert "cancel_orders" in offered_actions(response)


def test_cancel_action_is_hidden_from_staff_without_cancel_permission(client):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))
    make_order()
    response = client.get(ORDERS_URL)
    assert response.status_code == 200
    assert "cancel_orders" not in offered_actions(response)


def test_cancel_action_cannot_be_run_by_staff_without_cancel_permission(client, reason):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))
    order = make_order()

    apply_cancel_action(client, [order], reason=reason.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert not Cancellation.objects.exists()


# --- cancellations --------------------------------------------------------------------------------


def test_cancellation_changelist_queries_do_not_grow_with_rows(admin_client):
    make_cancellation()
    one_row = count_queries(admin_client, CANCELLATIONS_URL)
    for _ in range(29):
        make_cancellation()
    thirty_rows = count_queries(admin_client, CANCELLATIONS_URL)
    assert thirty_rows == one_row


def test_cancellation_changelist_searches_order_number(admin_client):
    wanted = make_cancellation(order=OrderFactory(number="ORD-WANTED"))
    make_cancellation(order=OrderFactory(number="ORD-OTHER"))
    response = admin_client.get(CANCELLATIONS_URL, {"q": "WANTED"})
    assert list(response.context["cl"].result_list) == [wanted]


def test_cancellation_page_is_read_only_and_links_to_the_staff_page(admin_client, reason):
    order = make_order()
    cancellation = writing.cancel_order(order, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM)
    url = reverse("admin:cancellations_cancellation_change", args=[quote(cancellation.pk)])

    response = admin_client.get(url)

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    assert cancellation.get_absolute_url() in response.content.decode()
    assert admin_client.post(url, {"status": CancellationStatus.REVOKED}).status_code == 403
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.COMPLETED


def test_cancellations_cannot_be_added_or_deleted_in_the_admin(admin_client):
    cancellation = make_cancellation()
    assert admin_client.get(reverse("admin:cancellations_cancellation_add")).status_code == 403
    delete_url = reverse("admin:cancellations_cancellation_delete", args=[quote(cancellation.pk)])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Cancellation.objects.filter(pk=cancellation.pk).exists()


def test_revoke_action_asks_for_confirmation_first(admin_client, reason):
    cancellation = writing.cancel_order(
        make_order(), reason=reason, actor=None, via=AuditEntry.Via.SYSTEM
    )
    response = admin_client.post(
        CANCELLATIONS_URL,
        {"action": "revoke_cancellations", ACTION_CHECKBOX_NAME: [cancellation.pk], "index": 0},
    )
    assert response.status_code == 200
    assert response.templates[0].name == (
        "admin/cancellations/cancellation/revoke_cancellations.html"
    )
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.COMPLETED


def test_revoke_action_revokes_and_reports_those_already_revoked(admin_client, superuser, reason):
    order = make_order()
    effective = writing.cancel_order(order, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM)
    already = make_cancellation(status=CancellationStatus.REVOKED)

    response = admin_client.post(
        CANCELLATIONS_URL,
        {
            "action": "revoke_cancellations",
            ACTION_CHECKBOX_NAME: [effective.pk, already.pk],
            "select_across": "0",
            "apply": "yes",
            "comment": "Customer changed their mind",
        },
    )

    assert response.status_code == 302
    effective.refresh_from_db()
    assert effective.status == CancellationStatus.REVOKED
    assert (effective.revoked_by, effective.revoke_comment) == (
        superuser,
        "Customer changed their mind",
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    messages = texts(response)
    assert "Revoked 1 cancellation." in messages
    assert any(already.pk in m and "can't be undone" in m for m in messages)


def test_revoke_action_is_offered_to_staff_with_revoke_permission(client, agent):
    client.force_login(agent)
    make_cancellation()
    response = client.get(CANCELLATIONS_URL)
    assert "revoke_cancellations" in offered_actions(response)


def test_revoke_action_is_hidden_from_staff_without_revoke_permission(client):
    client.force_login(UserFactory(permissions=["cancellations.view_cancellation"]))
    make_cancellation()
    response = client.get(CANCELLATIONS_URL)
    assert "revoke_cancellations" not in offered_actions(response)


# --- audit trail ----------------------------------------------------------------------------------


def test_audit_changelist_queries_do_not_grow_with_rows(admin_client):
    make_cancellation()
    one_row = count_queries(admin_client, AUDIT_URL)
    for _ in range(29):
        make_cancellation()
    thirty_rows = count_queries(admin_client, AUDIT_URL)
    assert thirty_rows == one_row


def test_audit_changelist_searches_order_number(admin_client):
    wanted = make_cancellation(order=OrderFactory(number="ORD-AUDITED"))
    make_cancellation()
    response = admin_client.get(AUDIT_URL, {"q": "ORD-AUDITED"})
    assert [e.order for e in response.context["cl"].result_list] == [wanted.order]


def test_audit_entry_is_viewable_with_pretty_printed_data(admin_client):
    cancellation = make_cancellation()
    entry = cancellation.audit_entries.get()
    response = admin_client.get(reverse("admin:cancellations_auditentry_change", args=[entry.pk]))
    assert response.status_code == 200
    content = html.unescape(response.content.decode())
    assert f'<pre>{{\n  "reason": {cancellation.reason_id}\n}}</pre>' in content


def test_audit_admin_refuses_add_change_and_delete(admin_client):
    entry = make_cancellation().audit_entries.get()
    change_url = reverse("admin:cancellations_auditentry_change", args=[entry.pk])
    delete_url = reverse("admin:cancellations_auditentry_delete", args=[entry.pk])

    assert admin_client.get(reverse("admin:cancellations_auditentry_add")).status_code == 403
    assert admin_client.post(change_url, {"comment": "rewritten"}).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.comment == ""
