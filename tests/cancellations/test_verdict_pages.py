"""Every provider's verdict before confirming, on the staff pages and the admin's Cancel
selected orders page; staff tasks on the cancellation page and the dashboard."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from backoffice.models import StaffProfile
from cancellations.models import AuditEntry
from cancellations.services.quoting import ItemPick
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.cancellations.test_views import cancel_data, cancel_url, revoke_url
from tests.factories import (
    DeliveryFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
    UserFactory,
)
from tests.providers.outbox_support import cancel

pytestmark = pytest.mark.django_db
SALESFORCE_ID = "005000000000001AAA"


@pytest.fixture(autouse=True)
def providers_enabled(db):
    for kind in ("callisto", "js7", "rebilly"):
        ProviderSetting.objects.create(kind=kind, enabled=True, base_url=f"http://{kind}.invalid")
    ProviderSetting.objects.create(kind="billing", enabled=False)


@pytest.fixture
def order(db):
    order = OrderFactory(
        external_ids={
            "callisto": "4711",
            "rebilly": "ord_1",
            "js7ControllerId": "controller",
            "js7OrderIds": ["#2026-12-06#T1"],
        }
    )
    OrderItemFactory(order=order, quantity=2)
    return order


@pytest.fixture
def staff_client(client, agent):
    StaffProfile.objects.create(user=agent, salesforce_user_id=SALESFORCE_ID)
    client.force_login(agent)
    return client


def verdict_rows(response) -> dict[str, str]:
    """{provider: "true"/"false"} from the rows of the verdicts table."""
    found = re.findall(
        r'data-provider="(\w+)" data-will-be-told="(true|false)"', response.content.decode()
    )
    return {kind: told for kind, told in found if kind != "billing"}  # switched off here


def test_the_preview_says_callisto_wont_hear_of_a_partial_cancellation(staff_client, order, reason):
    item = order.items.get()
    data = cancel_data(order, reason, scope="items", action="preview", **{f"item_{item.pk}": "1"})

    response = staff_client.post(cancel_url(order), data)

    assert verdict_rows(response) == {"callisto": "false", "js7": "true", "rebilly": "true"}
    assert "Callisto can only cancel whole orders" in response.content.decode()
    assert "A task for staff" in response.content.decode()
    assert not Delivery.objects.exists()


def test_the_preview_of_a_whole_order_says_every_provider_will_be_told(staff_client, order, reason):
    response = staff_client.post(cancel_url(order), cancel_data(order, reason, action="preview"))

    assert verdict_rows(response) == {"callisto": "true", "js7": "true", "rebilly": "true"}


def test_the_undo_page_says_js7_wont_hear_of_the_revoke(staff_client, order):
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)

    response = staff_client.get(revoke_url(cancellation))

    assert verdict_rows(response) == {"callisto": "true", "js7": "false", "rebilly": "true"}
    assert "JOC Cockpit" in response.content.decode()


def test_the_admin_cancel_action_shows_each_orders_verdicts(client, order):
    client.force_login(SuperUserFactory())
    plain = OrderFactory(external_ids={"rebilly": "ord_2"})
    OrderItemFactory(order=plain)

    response = client.post(
        reverse("admin:cancellations_order_changelist"),
        {"action": "cancel_orders", ACTION_CHECKBOX_NAME: [order.pk, plain.pk], "index": 0},
    )

    listed = {o.number: o.provider_verdicts for o in response.context["objects"]}
    assert {v.provider: v.will_be_told for v in listed[plain.number]} == {
        "billing": False,
        "callisto": False,
        "js7": False,
        "rebilly": True,
    }
    assert 'data-provider="callisto" data-will-be-told="false"' in response.content.decode()


# --- the staff task on the cancellation page -----------------------------------------------------


@pytest.fixture
def task(order):
    cancellation = cancel(
        order, items=[ItemPick(order.items.get().pk, 1)], external_user_id=SALESFORCE_ID
    )
    return cancellation.deliveries.get(provider="callisto")


@pytest.fixture
def lead_client(client):
    lead = UserFactory(
        permissions=[
            "cancellations.view_cancellation",
            "providers.view_delivery",
            "providers.retry_delivery",
            "providers.resolve_delivery",
        ]
    )
    client.force_login(lead)
    client.user = lead
    return client


def test_a_staff_task_has_no_retry_button_but_a_mark_done_form(lead_client, task):
    response = lead_client.get(task.cancellation.get_absolute_url())

    page = response.content.decode()
    assert reverse("staff:delivery-retry", args=[task.pk]) not in page
    assert reverse("staff:delivery-resolve", args=[task.pk]) in page
    assert "Task for staff" in page


def test_marking_a_task_done_on_the_page_is_audited(lead_client, task):
    response = lead_client.post(
        reverse("staff:delivery-resolve", args=[task.pk]), {"comment": "Changed in Callisto."}
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.resolved_by, task.resolution_comment) == (
        lead_client.user,
        "Changed in Callisto.",
    )
    assert AuditEntry.objects.filter(
        action="delivery.task_resolved", actor=lead_client.user, via=AuditEntry.Via.WEB
    ).exists()
    page = lead_client.get(task.cancellation.get_absolute_url()).content.decode()
    assert "Changed in Callisto." in page
    assert reverse("staff:delivery-resolve", args=[task.pk]) not in page


def test_marking_a_task_done_needs_a_comment(lead_client, task):
    lead_client.post(reverse("staff:delivery-resolve", args=[task.pk]), {"comment": ""})

    task.refresh_from_db()
    assert task.resolved_at is None


@pytest.mark.parametrize(
    ("is_staff", "permissions"),
    [(False, ["providers.resolve_delivery"]), (True, ["cancellations.view_cancellation"])],
)
def test_marking_a_task_done_needs_staff_and_the_permission(client, task, is_staff, permissions):
    client.force_login(UserFactory(is_staff=is_staff, permissions=permissions))

    response = client.post(reverse("staff:delivery-resolve", args=[task.pk]), {"comment": "x"})

    assert response.status_code == 403
    task.refresh_from_db()
    assert task.resolved_at is None


def test_marking_a_task_done_is_a_post(lead_client, task):
    response = lead_client.get(reverse("staff:delivery-resolve", args=[task.pk]))

    assert response.status_code == 405


# --- the dashboard -------------------------------------------------------------------------------


def test_the_dashboard_lists_staff_tasks_apart_from_failures(staff_client):
    open_task = DeliveryFactory(task=True)
    DeliveryFactory(task=True, resolved_at="2026-12-01T10:00:00Z")  # done: not listed
    DeliveryFactory(status="failed", provider="rebilly")

    response = staff_client.get(reverse("staff:dashboard"))

    tasks = response.context["staff_tasks"]
    assert (tasks.count, [t.pk for t in tasks.oldest]) == (1, [open_task.pk])
    failures = {
        row["provider"].provider: row["provider"].failed for row in response.context["deliveries"]
    }
    assert failures == {"rebilly": 1}
    assert open_task.cancellation.get_absolute_url() in response.content.decode()


def test_the_admin_revoke_action_shows_who_will_hear_of_the_revoke(client, order):
    client.force_login(SuperUserFactory())
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)

    response = client.post(
        reverse("admin:cancellations_cancellation_changelist"),
        {"action": "revoke_cancellations", ACTION_CHECKBOX_NAME: [cancellation.pk], "index": 0},
    )

    assert verdict_rows(response) == {"callisto": "true", "js7": "false", "rebilly": "true"}


def test_the_undo_page_warns_beforehand_that_js7_keeps_the_cancellation(staff_client, order):
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)

    page = staff_client.get(revoke_url(cancellation)).content.decode()

    assert "In Storno, the cancelled items of order" in page
    assert "The providers hear of it only as listed below." in page
    warning = re.search(r'id="revoke-kept-by">(.*?)</p>', page, re.S).group(1)
    assert "JS7 JobScheduler can't be told about undos" in warning.replace("&#x27;", "'")
    assert "Rebilly" not in warning and "Callisto" not in warning


def test_the_undo_page_has_no_warning_when_every_provider_will_be_told(staff_client):
    order = OrderFactory(external_ids={"rebilly": "ord_9"})
    OrderItemFactory(order=order)
    cancellation = cancel(order)
    Delivery.objects.filter(provider="rebilly").update(status=DeliveryStatus.DELIVERED)

    response = staff_client.get(revoke_url(cancellation))

    assert verdict_rows(response) == {"callisto": "false", "js7": "false", "rebilly": "true"}
    assert 'id="revoke-kept-by"' not in response.content.decode()
