"""PUT /api/v1/order-cancellations/{id}: Rebilly's upsert with the client's id."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Cancellation
from cancellations.states import CancellationStatus
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory


def url(cancellation_id: str, slash: bool = False) -> str:
    return f"/api/v1/order-cancellations/{cancellation_id}" + ("/" if slash else "")


def invalid_fields(response) -> dict:
    return {error["field"]: error["code"] for error in response.json()["invalidFields"]}


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def scheduled_body(order_with_items, reason):
    """A whole-order cancellation three days ahead, with a fee."""
    return {
        "orderId": order_with_items.pk,
        "reasonId": reason.pk,
        "description": "Moving abroad",
        "churnTime": (timezone.now() + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "lineItems": [
            {"type": "debit", "unitPriceAmount": 9.9, "unitPriceCurrency": "EUR", "quantity": 1}
        ],
    }


def test_put_with_a_new_id_creates_it_under_that_id(api, scheduled_body):
    response = api.put(url("sub_cnl_0YVJ5XVQM9CDP8248ZQX0RDMKV"), scheduled_body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["id"] == "sub_cnl_0YVJ5XVQM9CDP8248ZQX0RDMKV"
    assert response["Location"].endswith(url("sub_cnl_0YVJ5XVQM9CDP8248ZQX0RDMKV"))
    assert Cancellation.objects.get().status == CancellationStatus.CONFIRMED


def test_put_with_a_known_id_updates_it(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")

    response = api.put(url("cnl-1"), {**scheduled_body, "description": "Found cheaper"}, "json")

    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "Found cheaper"
    assert Cancellation.objects.get().description == "Found cheaper"
    assert AuditEntry.objects.filter(action="cancellation.updated").count() == 1


def test_the_same_body_twice_changes_nothing(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")
    before = Cancellation.objects.get()
    entries = AuditEntry.objects.count()

    response = api.put(url("cnl-1"), scheduled_body, format="json")

    assert response.status_code == 200
    assert Cancellation.objects.get().updated_time == before.updated_time
    assert AuditEntry.objects.count() == entries


def test_the_same_values_written_differently_count_as_the_same_body(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")
    entries = AuditEntry.objects.count()
    respelled = {
        **scheduled_body,
        "orderId": str(scheduled_body["orderId"]),
        "lineItems": [{**scheduled_body["lineItems"][0], "unitPriceAmount": "9.90"}],
        "lineItemSubtotal": {"amount": 1, "currency": "EUR"},
    }

    assert api.put(url("cnl-1"), respelled, format="json").status_code == 200
    assert AuditEntry.objects.count() == entries


def test_a_scheduled_cancellation_can_be_replanned(api, scheduled_body, order_with_items):
    api.put(url("cnl-1"), scheduled_body, format="json")
    plain = order_with_items.items.get(quantity=1)
    later = (timezone.now() + timedelta(days=9)).replace(microsecond=0)
    replanned = {
        **scheduled_body,
        "churnTime": later.isoformat(),
        "items": [{"itemId": plain.pk, "quantity": 1}],
    }

    response = api.put(url("cnl-1"), replanned, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["churnTime"] == later.isoformat().replace("+00:00", "Z")
    assert [item["itemId"] for item in response.json()["items"]] == [plain.pk]


def test_an_effective_cancellation_refuses_a_new_plan_naming_the_fields(api, scheduled_body):
    effective = {**scheduled_body, "churnTime": None}
    assert api.put(url("cnl-1"), effective, format="json").json()["status"] == "completed"

    response = api.put(url("cnl-1"), {**effective, "lineItems": []}, format="json")

    assert response.status_code == 422
    assert set(invalid_fields(response)) == {"lineItems"}


def test_a_cancellation_cannot_move_to_another_order(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")
    other = OrderFactory()
    OrderItemFactory(order=other)

    response = api.put(url("cnl-1"), {**scheduled_body, "orderId": other.pk}, format="json")

    assert response.status_code == 422
    assert invalid_fields(response) == {"orderId": "invalid"}


def test_a_revoked_cancellation_cannot_be_changed(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")
    api.post(url("cnl-1") + "/revoke/", {}, format="json")

    response = api.put(url("cnl-1"), {**scheduled_body, "description": "again"}, format="json")

    # Rebilly's PUT has no 409 for this: a 422, with the conflict's code.
    assert response.status_code == 422
    assert response.json()["type"] == "urn:storno:problem:invalid-input"
    assert invalid_fields(response) == {"status": "not_changeable"}


def test_an_inactive_reason_is_refused_on_update(api, scheduled_body):
    api.put(url("cnl-1"), scheduled_body, format="json")
    retired = CancellationReasonFactory(is_active=False)

    response = api.put(url("cnl-1"), {**scheduled_body, "reasonId": retired.pk}, format="json")

    assert response.status_code == 422
    assert invalid_fields(response) == {"reasonId": "invalid"}


@pytest.mark.parametrize(
    "bad_id", ["a" * 51, "sp%20ace", "semi;colon", "%C3%BCnicode", "new%0A", "nul%00"]
)
def test_an_id_outside_rebillys_pattern_is_a_422_naming_id(api, scheduled_body, bad_id):
    response = api.put(url(bad_id), scheduled_body, format="json")

    assert response.status_code == 422
    assert invalid_fields(response) == {"id": "invalid"}
    assert not Cancellation.objects.exists()


def test_put_answers_with_and_without_a_trailing_slash(api, scheduled_body):
    assert api.put(url("cnl-a", slash=True), scheduled_body, format="json").status_code == 201
    assert api.put(url("cnl-a"), scheduled_body, format="json").status_code == 200


def test_put_needs_the_change_permission(scheduled_body):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.add_cancellation"]))

    assert client.put(url("cnl-1"), scheduled_body, format="json").status_code == 403


def test_creating_with_put_also_needs_the_add_permission(scheduled_body):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.change_cancellation"]))

    response = client.put(url("cnl-1"), scheduled_body, format="json")

    assert response.status_code == 403
    assert not Cancellation.objects.exists()


def test_put_needs_credentials(scheduled_body):
    assert APIClient().put(url("cnl-1"), scheduled_body, format="json").status_code == 401
