"""Ownership (cancellations/ownership.py): a cancellation one API client made is changed or
revoked only by that client, staff, or a client allowed to act for others, on every entry point.
Reading is not acting: every client sees every cancellation."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice.roles import API_CLIENT, BULK_OPERATOR, CUSTOMER_SERVICE
from cancellations.models import AuditEntry, Cancellation
from cancellations.ownership import ACT_FOR_OTHERS, NotYourCancellation, may_act_on
from cancellations.services import revoking, writing
from cancellations.states import CancellationStatus, OrderStatus
from tests.factories import OrderFactory, OrderItemFactory, SuperUserFactory, UserFactory

pytestmark = pytest.mark.django_db

REFUSAL = "Another user or API client made this cancellation"
PROBLEM = "application/problem+json"


def in_role(role, **fields):
    user = UserFactory(**fields)
    user.groups.add(Group.objects.get(name=role))
    return user


def api_client_user(username):
    """Another app: a user in the API client role, no admin access, talking with a token."""
    return in_role(API_CLIENT, username=username, is_staff=False)


@pytest.fixture
def shop():
    return api_client_user("shop")


@pytest.fixture
def crm():
    return api_client_user("crm")


@pytest.fixture
def trusted():
    """An API client given the permission to act for others."""
    user = api_client_user("helpdesk-bridge")
    app_label, codename = ACT_FOR_OTHERS.split(".")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    return user


@pytest.fixture
def staff():
    return in_role(CUSTOMER_SERVICE, username="agent-smith")


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def shops_cancellation(order_with_items, reason, shop):
    """Scheduled three days ahead by the shop, under an id it chose (PUT)."""
    body = {
        "orderId": order_with_items.pk,
        "reasonId": reason.pk,
        "description": "Moving abroad",
        "churnTime": (timezone.now() + timedelta(days=3)).replace(microsecond=0).isoformat(),
    }
    response = token_client(shop).put(url("shop-1"), body, format="json")
    assert response.status_code == 201, response.json()
    return Cancellation.objects.get(pk="shop-1")


def url(cancellation_id: str) -> str:
    return f"/api/v1/order-cancellations/{cancellation_id}"


def revoke(client, cancellation_id: str):
    return client.post(f"{url(cancellation_id)}/revoke/", {"comment": "Stays"}, format="json")


def put(client, cancellation, **changes):
    body = {
        "orderId": str(cancellation.order_id),
        "reasonId": cancellation.reason_id,
        "description": "Found cheaper",
        "churnTime": cancellation.churn_time.isoformat(),
        **changes,
    }
    return client.put(url(cancellation.pk), body, format="json")


def snapshot(cancellation) -> tuple:
    """What a refused request must leave alone."""
    cancellation.refresh_from_db()
    cancellation.order.refresh_from_db()
    return (
        cancellation.status,
        cancellation.description,
        cancellation.updated_time,
        cancellation.revoked_by_id,
        cancellation.order.status,
        AuditEntry.objects.count(),
        cancellation.deliveries.count(),
    )


def assert_refused_as_not_theirs(response, *, instance=None):
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 403
    assert body["title"] == "Permission denied"
    assert body["type"] == "urn:storno:problem:http-403"
    assert body["detail"].startswith(REFUSAL)
    assert "invalidFields" not in body
    if instance is not None:
        assert body["instance"] == instance


# --- the API's revoke ----------------------------------------------------------------------------


def test_the_shop_made_the_cancellation(shops_cancellation, shop):
    assert shops_cancellation.created_by == shop


def test_another_client_cannot_revoke_it(shops_cancellation, crm):
    before = snapshot(shops_cancellation)

    response = revoke(token_client(crm), shops_cancellation.pk)

    assert_refused_as_not_theirs(response)
    assert snapshot(shops_cancellation) == before


def test_the_client_that_made_it_can_revoke_it(shops_cancellation, shop, order_with_items):
    response = revoke(token_client(shop), shops_cancellation.pk)

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == CancellationStatus.REVOKED
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.revoked_by == shop


@pytest.mark.parametrize("role", [CUSTOMER_SERVICE, BULK_OPERATOR])
def test_staff_can_revoke_it(shops_cancellation, role):
    agent = in_role(role)

    response = revoke(token_client(agent), shops_cancellation.pk)

    assert response.status_code == 200, response.json()
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.revoked_by == agent


def test_a_superuser_can_revoke_it(shops_cancellation):
    response = revoke(token_client(SuperUserFactory()), shops_cancellation.pk)

    assert response.status_code == 200, response.json()


def test_a_client_allowed_to_act_for_others_can_revoke_it(shops_cancellation, trusted):
    response = revoke(token_client(trusted), shops_cancellation.pk)

    assert response.status_code == 200, response.json()
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.REVOKED


def test_model_permissions_are_still_checked_first(shops_cancellation):
    viewer = UserFactory(permissions=["cancellations.view_cancellation", ACT_FOR_OTHERS])

    response = revoke(token_client(viewer), shops_cancellation.pk)

    assert response.status_code == 403
    assert not response.json()["detail"].startswith(REFUSAL)


def test_a_cancellation_nobody_made_can_be_revoked_by_any_client(order_with_items, reason, crm):
    cancellation = writing.cancel_order(
        order_with_items, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM
    )

    assert revoke(token_client(crm), cancellation.pk).status_code == 200


# --- the API's upsert ----------------------------------------------------------------------------


def test_another_client_cannot_change_it(shops_cancellation, crm):
    before = snapshot(shops_cancellation)

    response = put(token_client(crm), shops_cancellation)

    assert_refused_as_not_theirs(response, instance=url(shops_cancellation.pk))
    assert snapshot(shops_cancellation) == before


def test_another_client_cannot_revoke_it_with_status_revoked(shops_cancellation, crm):
    before = snapshot(shops_cancellation)

    response = put(token_client(crm), shops_cancellation, status="revoked")

    assert_refused_as_not_theirs(response, instance=url(shops_cancellation.pk))
    assert snapshot(shops_cancellation) == before


def test_another_client_sending_what_is_stored_already_is_refused_too(shops_cancellation, crm):
    response = put(token_client(crm), shops_cancellation, description="Moving abroad")

    assert_refused_as_not_theirs(response)


def test_another_client_cannot_confirm_the_shops_draft(order_with_items, reason, shop, crm):
    token_client(shop).put(
        url("shop-draft"),
        {"orderId": order_with_items.pk, "reasonId": reason.pk, "status": "draft"},
        format="json",
    )
    draft = Cancellation.objects.get(pk="shop-draft")

    response = put(token_client(crm), draft, status="confirmed")

    assert_refused_as_not_theirs(response)
    draft.refresh_from_db()
    assert draft.status == CancellationStatus.DRAFT


def test_the_client_that_made_it_can_change_it(shops_cancellation, shop):
    response = put(token_client(shop), shops_cancellation)

    assert response.status_code == 200, response.json()
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.description == "Found cheaper"


def test_staff_can_change_it(shops_cancellation, staff):
    response = put(token_client(staff), shops_cancellation)

    assert response.status_code == 200, response.json()
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.description == "Found cheaper"
    assert shops_cancellation.created_by.username == "shop"  # still the shop's


def test_a_client_allowed_to_act_for_others_can_revoke_it_with_status_revoked(
    shops_cancellation, trusted
):
    response = put(token_client(trusted), shops_cancellation, status="revoked")

    assert response.status_code == 200, response.json()
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.REVOKED


def test_any_client_may_create_a_new_id_and_then_owns_it(order_with_items, reason, crm, shop):
    body = {"orderId": order_with_items.pk, "reasonId": reason.pk}

    assert token_client(crm).put(url("crm-1"), body, format="json").status_code == 201
    assert Cancellation.objects.get(pk="crm-1").created_by == crm
    assert revoke(token_client(shop), "crm-1").status_code == 403


# --- reading is not acting -----------------------------------------------------------------------


def test_another_client_still_reads_it(shops_cancellation, crm):
    client = token_client(crm)

    detail = client.get(url(shops_cancellation.pk))
    listed = client.get("/api/v1/order-cancellations/")

    assert detail.status_code == 200
    assert [c["id"] for c in listed.json()["results"]] == [shops_cancellation.pk]


# --- the services, for every entry point ---------------------------------------------------------


def test_the_service_refuses_another_client_whatever_the_entry_point(shops_cancellation, crm):
    for via in (AuditEntry.Via.WEB, AuditEntry.Via.ADMIN, AuditEntry.Via.CALLISTO):
        with pytest.raises(NotYourCancellation) as refused:
            revoking.revoke_cancellation(shops_cancellation, actor=crm, via=via)
        assert refused.value.codes == {"forbidden"}
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.CONFIRMED


def test_storno_acting_on_its_own_is_never_refused(shops_cancellation):
    revoking.revoke_cancellation(shops_cancellation, actor=None, via=AuditEntry.Via.TASK)

    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.REVOKED


def test_is_staff_alone_does_not_make_staff(shops_cancellation):
    """Admin access is not a role: only the permission (staff roles hold it) lets one act."""
    admin_user = UserFactory(is_staff=True, permissions=["cancellations.revoke_cancellation"])

    assert not may_act_on(admin_user, shops_cancellation)


# --- the staff pages, the admin, the Callisto endpoint -------------------------------------------


def test_the_staff_revoke_page_refuses_another_client(client, shops_cancellation, crm):
    crm.is_staff = True  # past the staff check: refused for whose cancellation it is
    crm.save(update_fields=["is_staff"])
    client.force_login(crm)
    page = f"/staff/cancellations/{shops_cancellation.pk}/revoke/"

    assert client.get(page).status_code == 403
    assert client.post(page, {"comment": ""}).status_code == 403
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.CONFIRMED


def test_the_cancellation_page_offers_undo_only_to_those_who_may(client, shops_cancellation, crm):
    # Staff pages are for staff: these two client users are given staff access for it.
    owner = shops_cancellation.created_by
    for user in (owner, crm):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    page = f"/staff/cancellations/{shops_cancellation.pk}/"
    revoke_link = f"/staff/cancellations/{shops_cancellation.pk}/revoke/"

    client.force_login(crm)
    response = client.get(page)
    assert response.status_code == 200
    assert revoke_link not in response.content.decode()
    client.force_login(owner)
    assert revoke_link in client.get(page).content.decode()


def test_client_users_without_staff_access_get_no_staff_page(client, shops_cancellation):
    client.force_login(shops_cancellation.created_by)

    assert client.get(f"/staff/cancellations/{shops_cancellation.pk}/").status_code == 403


def test_the_staff_revoke_page_lets_staff_revoke_it(client, shops_cancellation, staff):
    client.force_login(staff)

    response = client.post(f"/staff/cancellations/{shops_cancellation.pk}/revoke/", {})

    assert response.status_code == 302
    shops_cancellation.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.REVOKED


def test_the_admin_action_reports_another_clients_cancellation_and_revokes_the_rest(
    client, shops_cancellation, order_with_items, reason
):
    other_order = OrderItemFactory().order
    own = writing.cancel_order(other_order, reason=reason, actor=None, via="system")
    user = in_role(API_CLIENT, username="admin-client")  # is_staff: may use the admin
    client.force_login(user)

    response = client.post(
        "/admin/cancellations/cancellation/",
        {
            "action": "revoke_cancellations",
            "_selected_action": [shops_cancellation.pk, own.pk],
            "apply": "1",
            "comment": "",
        },
        follow=True,
    )

    shops_cancellation.refresh_from_db()
    own.refresh_from_db()
    assert shops_cancellation.status == CancellationStatus.CONFIRMED
    assert own.status == CancellationStatus.REVOKED
    shown = [str(m) for m in response.context["messages"]]
    assert any(m.startswith(f"{shops_cancellation.pk}: {REFUSAL}") for m in shown), shown


@pytest.fixture
def callisto_cancellation(shop, reason):
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order)
    return writing.cancel_order(
        order,
        reason=reason,
        actor=shop,
        via=AuditEntry.Via.CALLISTO,
        churn_time=timezone.now() + timedelta(days=3),
        external_user_id="005000000000001AAA",
    )


def callisto(user, method, path, payload):
    return getattr(token_client(user), method)(
        path, json.dumps(payload), content_type="application/json", HTTP_ACCEPT="application/json"
    )


def test_another_client_cannot_delete_it_on_the_callisto_endpoint(callisto_cancellation, crm):
    response = callisto(crm, "delete", "/callisto/cancel", {"Id": 4711})

    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Forbidden"
    assert response.json()["detail"].startswith(REFUSAL)
    callisto_cancellation.refresh_from_db()
    assert callisto_cancellation.status == CancellationStatus.CONFIRMED


def test_another_client_cannot_change_it_on_the_callisto_endpoint(
    callisto_cancellation, crm, reason
):
    path = f"/callisto/cancel/{callisto_cancellation.pk}"
    later = (timezone.now() + timedelta(days=9)).date().isoformat()

    payload = {
        "Id": 4711,
        "CancelDate": later,
        "CancelTimestamp": "2026-02-20 10:15:00",
        "CancelReason": reason.subject,
        "UserId": "005000000000002AAA",
    }

    response = callisto(crm, "put", path, payload)

    assert response.status_code == 403, response.json()
    assert response.json()["detail"].startswith(REFUSAL)
    callisto_cancellation.refresh_from_db()
    assert callisto_cancellation.churn_time < timezone.now() + timedelta(days=4)


def test_the_client_that_made_it_can_delete_it_on_the_callisto_endpoint(
    callisto_cancellation, shop
):
    response = callisto(shop, "delete", "/callisto/cancel", {"Id": 4711})

    assert response.status_code == 204
    callisto_cancellation.refresh_from_db()
    assert callisto_cancellation.status == CancellationStatus.REVOKED
    assert callisto_cancellation.order.status == OrderStatus.OPEN
