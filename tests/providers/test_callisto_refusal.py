"""A cancellation Callisto must hear of needs a Salesforce user id (Callisto's UserId, required
by docs/contracts/seeds/000_75d496570d9fe2c2.txt): without one it is refused when it is made,
naming externalUserId, instead of failing at Callisto later. CALLISTO_DEFAULT_USER_ID fills in."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from backoffice.models import StaffProfile
from cancellations.errors import CancellationError
from cancellations.models import AuditEntry, Cancellation
from cancellations.services import updating, writing
from providers.models import Delivery, ProviderSetting
from tests.cancellations.test_views import cancel_data
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

SALESFORCE_ID = "005000000000001AAA"


@pytest.fixture
def callisto_enabled(db):
    return ProviderSetting.objects.create(
        kind="callisto", enabled=True, base_url="http://callisto.invalid"
    )


@pytest.fixture
def order(db):
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order)
    return order


def cancel(order, **kwargs):
    return writing.cancel_order(
        order, reason=CancellationReasonFactory(), via=AuditEntry.Via.API, **kwargs
    )


def test_a_cancellation_without_a_salesforce_user_is_refused_naming_external_user_id(
    callisto_enabled, order, agent
):
    with pytest.raises(CancellationError) as refused:
        cancel(order, actor=agent)

    assert list(refused.value.message_dict) == ["external_user_id"]
    assert "externalUserId" in refused.value.message_dict["external_user_id"][0]
    assert not Cancellation.objects.exists()
    assert not Delivery.objects.exists()


def test_an_external_user_id_is_enough(callisto_enabled, order, agent):
    cancellation = cancel(order, actor=agent, external_user_id=SALESFORCE_ID)

    assert Delivery.objects.get(cancellation=cancellation).status == "pending"


def test_the_acting_users_salesforce_id_is_enough(callisto_enabled, order, agent):
    StaffProfile.objects.create(user=agent, salesforce_user_id=SALESFORCE_ID)

    assert cancel(order, actor=agent).pk


def test_callisto_default_user_id_lets_it_through(callisto_enabled, order, agent, settings):
    settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"

    assert cancel(order, actor=agent).pk


def test_an_order_callisto_does_not_know_needs_no_salesforce_user(callisto_enabled, agent):
    order = OrderFactory(external_ids={"rebilly": "ord_1"})
    OrderItemFactory(order=order)

    assert cancel(order, actor=agent).pk


def test_with_callisto_switched_off_no_salesforce_user_is_needed(order, agent, db):
    ProviderSetting.objects.create(kind="callisto", enabled=False)

    assert cancel(order, actor=agent).pk


def test_an_update_that_drops_the_external_user_id_is_refused(callisto_enabled, order, agent):
    reason = CancellationReasonFactory()
    cancellation = writing.cancel_order(
        order,
        reason=reason,
        actor=agent,
        via=AuditEntry.Via.API,
        external_user_id=SALESFORCE_ID,
        description="first",
    )

    with pytest.raises(CancellationError) as refused:
        updating.update_cancellation(
            cancellation,
            order=order,
            reason=reason,
            actor=agent,
            via=AuditEntry.Via.API,
            description="second",
        )

    assert list(refused.value.message_dict) == ["external_user_id"]
    cancellation.refresh_from_db()
    assert (cancellation.external_user_id, cancellation.description) == (SALESFORCE_ID, "first")


def test_the_api_answers_400_naming_external_user_id(callisto_enabled, order, agent):
    api = APIClient()
    api.force_authenticate(agent)
    reason = CancellationReasonFactory()

    response = api.post(
        "/api/v1/order-cancellations/",
        {"orderId": order.pk, "reasonId": reason.pk},
        format="json",
    )

    assert response.status_code == 400
    fields = [error["field"] for error in response.json()["invalidFields"]]
    assert fields == ["externalUserId"]
    assert not Cancellation.objects.exists()


def test_the_staff_form_shows_the_refusal(callisto_enabled, order, agent, client):
    client.force_login(agent)
    reason = CancellationReasonFactory()

    response = client.post(
        reverse("staff:order-cancel", args=[order.pk]), cancel_data(order, reason)
    )

    assert response.status_code == 200
    assert "externalUserId" in response.content.decode()
    assert not Cancellation.objects.exists()
