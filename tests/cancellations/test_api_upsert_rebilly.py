"""PUT /api/v1/order-cancellations/{id} speaks Rebilly (issue 12): orderId as a string, `reason`
from Rebilly's enum, `status` honoured, 422 problems with invalidFields, and an answer that
validates against docs/contracts/rebilly/OrderCancellation.resolved.json."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Cancellation
from cancellations.states import CancellationStatus, OrderStatus
from providers.base import Action
from providers.contracts import schema, schema_errors
from providers.models import Delivery, ProviderSetting
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory

REBILLY_SCHEMA = "rebilly/OrderCancellation.resolved.json"


def url(cancellation_id: str) -> str:
    return f"/api/v1/order-cancellations/{cancellation_id}"


def problems(response) -> dict:
    return {error["field"]: error["message"] for error in response.json()["invalidFields"]}


def later(days: int = 3) -> str:
    return (timezone.now() + timedelta(days=days)).replace(microsecond=0).isoformat()


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def rebilly_order(order_with_items):
    """An order Rebilly knows, with Rebilly enabled: a cancellation that takes effect is
    delivered there."""
    order_with_items.external_ids = {"rebilly": "ord_01HRF27SATGE4Z6PBJE6PD8328"}
    order_with_items.save()
    ProviderSetting.objects.create(kind="rebilly", base_url="http://127.0.0.1:9/organizations/o")
    return order_with_items


@pytest.fixture
def too_expensive(db):
    reason = CancellationReasonFactory(subject="Zu teuer")
    ReasonMapping.objects.create(
        reason=reason, provider_kind=ProviderKind.REBILLY, value="too-expensive"
    )
    return reason


def rebilly_body(order, **overrides) -> dict:
    return {"orderId": order.external_ids["rebilly"], "reason": "too-expensive", **overrides}


def assert_untouched(order) -> None:
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert all(item.cancelled_quantity == 0 for item in order.items.all())


# --- orderId -------------------------------------------------------------------------------------


@pytest.mark.parametrize("named_by", ["rebilly id", "number", "storno id"])
def test_order_id_is_a_string_naming_the_order_by_any_of_its_ids(
    api, rebilly_order, too_expensive, named_by
):
    reference = {
        "rebilly id": rebilly_order.external_ids["rebilly"],
        "number": rebilly_order.number,
        "storno id": str(rebilly_order.pk),
    }[named_by]

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, orderId=reference), "json")

    assert response.status_code == 201, response.json()
    assert Cancellation.objects.get().order == rebilly_order
    assert response.json()["orderId"] == reference


def test_an_order_id_naming_two_orders_is_refused_naming_order_id(api, too_expensive):
    first = OrderFactory()
    OrderItemFactory(order=first)
    other = OrderFactory(number=str(first.pk))  # another order whose number is first's id
    OrderItemFactory(order=other)

    response = api.put(url("cnl-1"), {"orderId": str(first.pk), "reason": "too-expensive"}, "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"orderId"}
    assert "send Storno's order id as a number" in problems(response)["orderId"]
    assert not Cancellation.objects.exists()


def test_a_json_number_is_storno_id_only_and_settles_an_ambiguity(api, too_expensive):
    first = OrderFactory()
    OrderItemFactory(order=first)
    OrderItemFactory(order=OrderFactory(number=str(first.pk)))

    response = api.put(url("cnl-1"), {"orderId": first.pk, "reason": "too-expensive"}, "json")

    assert response.status_code == 201, response.json()
    assert Cancellation.objects.get().order == first
    assert response.json()["orderId"] == str(first.pk)


def test_an_order_id_no_order_has_is_a_422_naming_order_id(api, too_expensive):
    response = api.put(url("cnl-1"), {"orderId": "ord_nobody", "reason": "too-expensive"}, "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"orderId"}


# --- reason --------------------------------------------------------------------------------------


def test_rebillys_reason_is_taken_through_the_reason_mappings(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    assert response.status_code == 201, response.json()
    assert Cancellation.objects.get().reason == too_expensive
    assert response.json()["reason"] == "too-expensive"
    assert response.json()["reasonId"] == too_expensive.pk


def test_a_reason_no_reason_maps_to_is_a_422_naming_reason(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, reason="bugs-or-problems"), "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"reason"}
    assert not Cancellation.objects.exists()
    assert_untouched(rebilly_order)


def test_without_reason_or_reason_id_rebillys_default_other_is_mapped(api, rebilly_order):
    other = CancellationReasonFactory()
    ReasonMapping.objects.create(reason=other, provider_kind=ProviderKind.REBILLY, value="other")
    body = {"orderId": rebilly_order.external_ids["rebilly"]}

    response = api.put(url("cnl-1"), body, format="json")

    assert response.status_code == 201, response.json()
    assert Cancellation.objects.get().reason == other


def test_without_any_reason_and_no_mapping_for_other_it_is_a_422_naming_reason(api, rebilly_order):
    response = api.put(url("cnl-1"), {"orderId": str(rebilly_order.pk)}, format="json")

    assert response.status_code == 422
    assert set(problems(response)) == {"reason"}


def test_reason_and_reason_id_that_disagree_are_refused(api, rebilly_order, too_expensive):
    unmapped = CancellationReasonFactory()

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, reasonId=unmapped.pk), "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"reason"}


def test_an_inactive_reason_behind_rebillys_code_is_named_as_reason(api, rebilly_order):
    retired = CancellationReasonFactory(is_active=False)
    ReasonMapping.objects.create(reason=retired, provider_kind=ProviderKind.REBILLY, value="other")

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, reason="other"), "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"reason"}


# --- the fields Rebilly defines, and no others ---------------------------------------------------


def every_rebilly_field(order) -> dict:
    """A value for each property of Rebilly's OrderCancellation, read-only ones included."""
    return {
        "id": "ignored",
        "orderId": order.external_ids["rebilly"],
        "proratedInvoiceId": "in_0YVF9605RKC62BP14NE2R7V2XT",
        "appliedInvoiceId": None,
        "canceledBy": "merchant",
        "reason": "too-expensive",
        "description": "Moved abroad",
        "prorated": True,
        "status": "confirmed",
        "canceledTime": "2020-01-01T00:00:00Z",
        "createdTime": "2020-01-01T00:00:00Z",
        "updatedTime": "2020-01-01T00:00:00Z",
        "churnTime": later(),
        "churnTimePolicy": None,
        "lineItems": [
            {
                "type": "debit",
                "description": "Early termination fee",
                "unitPriceAmount": 49.95,
                "unitPriceCurrency": "EUR",
                "quantity": 1,
                "periodStartTime": "2026-01-01T00:00:00Z",
                "periodEndTime": "2026-02-01T00:00:00Z",
                "createdTime": "2020-01-01T00:00:00Z",
                "updatedTime": "2020-01-01T00:00:00Z",
            }
        ],
        "lineItemSubtotal": {"amount": 1, "currency": "EUR"},
        "_links": [{"rel": "self", "href": "https://api.rebilly.com/x"}],
    }


def test_every_field_rebilly_defines_is_accepted(api, rebilly_order, too_expensive):
    contract = schema(REBILLY_SCHEMA)
    body = every_rebilly_field(rebilly_order)
    assert set(body) == set(contract["properties"])
    line_fields = contract["properties"]["lineItems"]["items"]["properties"]
    assert set(body["lineItems"][0]) == set(line_fields)

    response = api.put(url("cnl-1"), body, format="json")

    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["id"] == "cnl-1"  # read-only ones are Storno's, not the body's
    assert answer["lineItemSubtotal"] == {"amount": 49.95, "currency": "EUR"}
    assert answer["proratedInvoiceId"] is None
    assert answer["canceledBy"] == "merchant"


def test_storno_extras_are_accepted_beside_rebillys_fields(api, rebilly_order, too_expensive):
    item = rebilly_order.items.get(quantity=1)
    body = rebilly_body(
        rebilly_order,
        reasonId=too_expensive.pk,
        items=[{"itemId": item.pk, "quantity": 1}],
        auditLog={"comment": "By phone", "timeSpent": 3, "ticketLink": "T-1"},
        externalUserId="005Dn000003xyz",
    )

    response = api.put(url("cnl-1"), body, format="json")

    assert response.status_code == 201, response.json()
    assert [row["itemId"] for row in response.json()["items"]] == [item.pk]
    assert response.json()["auditLog"]["comment"] == "By phone"


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"churn_time": "x"}, "churn_time", "unknown field; did you mean churnTime?"),
        ({"proratedCredit": {}}, "proratedCredit", "unknown field; did you mean prorated?"),
        (
            {
                "lineItems": [
                    {
                        "type": "debit",
                        "unitPriceAmount": 1,
                        "unitPriceCurrency": "EUR",
                        "quantity": 1,
                        "periodStart": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "lineItems.0.periodStart",
            "unknown field; did you mean periodStartTime?",
        ),
    ],
)
def test_any_other_field_is_a_422_naming_it(
    api, rebilly_order, too_expensive, extra, field, message
):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, **extra), format="json")

    assert response.status_code == 422
    assert problems(response) == {field: message}
    assert not Cancellation.objects.exists()
    assert_untouched(rebilly_order)


def test_an_unknown_field_on_an_update_changes_nothing(api, rebilly_order, too_expensive):
    api.put(url("cnl-1"), rebilly_body(rebilly_order, churnTime=later()), format="json")
    before = Cancellation.objects.get()

    response = api.put(
        url("cnl-1"), rebilly_body(rebilly_order, churnTime=later(9), descripton="x"), "json"
    )

    assert response.status_code == 422
    assert Cancellation.objects.get().churn_time == before.churn_time
    assert Cancellation.objects.get().updated_time == before.updated_time


def test_canceled_by_defaults_to_rebillys_customer(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    assert response.json()["canceledBy"] == "customer"


# --- status --------------------------------------------------------------------------------------


def test_a_draft_stores_the_plan_and_changes_nothing(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="draft"), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "draft"
    assert response.json()["canceledTime"] is None
    assert Cancellation.objects.get().status == CancellationStatus.DRAFT
    assert_untouched(rebilly_order)
    assert not Delivery.objects.exists()


def test_a_draft_reserves_nothing(api, rebilly_order, too_expensive):
    api.put(url("draft-1"), rebilly_body(rebilly_order, status="draft"), format="json")

    response = api.put(url("real-1"), rebilly_body(rebilly_order), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "completed"


def test_a_draft_replanned_as_a_draft_still_changes_nothing(api, rebilly_order, too_expensive):
    api.put(url("cnl-1"), rebilly_body(rebilly_order, status="draft"), format="json")

    response = api.put(
        url("cnl-1"), rebilly_body(rebilly_order, status="draft", churnTime=later()), "json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "draft"
    assert_untouched(rebilly_order)
    assert not Delivery.objects.exists()


def test_confirming_a_draft_takes_effect_and_tells_the_providers(api, rebilly_order, too_expensive):
    api.put(url("cnl-1"), rebilly_body(rebilly_order, status="draft"), format="json")

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="confirmed"), "json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed"
    assert response.json()["canceledTime"] is not None
    rebilly_order.refresh_from_db()
    assert rebilly_order.status == OrderStatus.CANCELLED
    assert list(Delivery.objects.values_list("provider", "action")) == [("rebilly", Action.ADD)]
    assert AuditEntry.objects.filter(action="cancellation.confirmed").count() == 1


def test_confirming_a_draft_with_a_later_churn_time_schedules_it(api, rebilly_order, too_expensive):
    body = rebilly_body(rebilly_order, churnTime=later())
    api.put(url("cnl-1"), {**body, "status": "draft"}, format="json")

    response = api.put(url("cnl-1"), body, format="json")

    assert response.json()["status"] == "confirmed"
    assert_untouched(rebilly_order)
    assert Delivery.objects.count() == 1


def test_a_confirmed_cancellation_cannot_become_a_draft(api, rebilly_order, too_expensive):
    body = rebilly_body(rebilly_order, churnTime=later())
    api.put(url("cnl-1"), body, format="json")

    response = api.put(url("cnl-1"), {**body, "status": "draft"}, format="json")

    assert response.status_code == 422
    assert set(problems(response)) == {"status"}
    assert Cancellation.objects.get().status == CancellationStatus.CONFIRMED


def test_status_revoked_revokes_as_the_revoke_endpoint_does(api, rebilly_order, too_expensive):
    api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "revoked"
    assert_untouched(rebilly_order)
    assert Delivery.objects.filter(action=Action.REVOKE).count() == 1
    assert AuditEntry.objects.filter(action="cancellation.revoked").count() == 1


def test_status_revoked_twice_is_the_same_request_again(api, rebilly_order, too_expensive):
    api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")
    api.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    assert response.status_code == 200
    assert AuditEntry.objects.filter(action="cancellation.revoked").count() == 1


def test_status_revoked_needs_the_revoke_permission(rebilly_order, too_expensive):
    client = APIClient()
    client.force_authenticate(
        UserFactory(
            permissions=["cancellations.add_cancellation", "cancellations.change_cancellation"]
        )
    )
    client.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    response = client.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    assert response.status_code == 403
    assert Cancellation.objects.get().status == CancellationStatus.COMPLETED


def test_status_revoked_for_a_new_id_is_a_422_naming_status(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    assert response.status_code == 422
    assert set(problems(response)) == {"status"}
    assert not Cancellation.objects.exists()


@pytest.mark.parametrize("before", [None, "draft", "confirmed"])
def test_status_completed_is_refused_until_it_is_completed(
    api, rebilly_order, too_expensive, before
):
    body = rebilly_body(rebilly_order, churnTime=later())
    if before:
        api.put(url("cnl-1"), {**body, "status": before}, format="json")

    response = api.put(url("cnl-1"), {**body, "status": "completed"}, format="json")

    assert response.status_code == 422
    assert set(problems(response)) == {"status"}
    assert_untouched(rebilly_order)


def test_status_completed_is_accepted_for_a_completed_cancellation(
    api, rebilly_order, too_expensive
):
    api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    response = api.put(
        url("cnl-1"), rebilly_body(rebilly_order, status="completed", description="Fine"), "json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "Fine"


# --- errors and the answer -----------------------------------------------------------------------


def test_a_validation_error_is_rebillys_422_problem(api, rebilly_order, too_expensive):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, prorated="maybe"), "json")

    assert response.status_code == 422
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance", "invalidFields"}
    assert (body["status"], body["title"], body["instance"]) == (
        422,
        "Validation error",
        url("cnl-1"),
    )
    assert [error["field"] for error in body["invalidFields"]] == ["prorated"]


def test_a_body_that_is_not_json_stays_a_400(api):
    response = api.put(url("cnl-1"), "{nope", content_type="application/json")

    assert response.status_code == 400


def test_other_endpoints_keep_answering_400(api, rebilly_order, too_expensive):
    response = api.post("/api/v1/order-cancellations/", {"orderId": "x"}, format="json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"status": "draft"},
        {"churnTime": later(), "prorated": True},
        {"churnTimePolicy": "now", "description": "Ümlaut ğ"},
        {
            "lineItems": [
                {
                    "type": "debit",
                    "unitPriceAmount": 9.9,
                    "unitPriceCurrency": "EUR",
                    "quantity": 2,
                },
                {
                    "type": "credit",
                    "unitPriceAmount": "1.50",
                    "unitPriceCurrency": "EUR",
                    "quantity": 1,
                    "periodStartTime": "2026-01-01T00:00:00Z",
                    "periodEndTime": "2026-02-01T00:00:00Z",
                    "description": "Goodwill",
                },
            ]
        },
    ],
)
def test_the_answer_validates_against_rebillys_order_cancellation(
    api, rebilly_order, too_expensive, variant
):
    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, **variant), format="json")

    assert response.status_code == 201, response.json()
    assert schema_errors(response.json(), schema(REBILLY_SCHEMA)) == []


def test_the_answer_to_a_revoke_validates_against_rebillys_schema(
    api, rebilly_order, too_expensive
):
    api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json")

    response = api.put(url("cnl-1"), rebilly_body(rebilly_order, status="revoked"), "json")

    assert schema_errors(response.json(), schema(REBILLY_SCHEMA)) == []
    assert [link["rel"] for link in response.json()["_links"]] == ["self"]


def test_echoing_the_answer_back_is_the_same_request_again(api, rebilly_order, too_expensive):
    first = api.put(url("cnl-1"), rebilly_body(rebilly_order), format="json").json()
    entries = AuditEntry.objects.count()
    deliveries = list(Delivery.objects.values_list("pk", "updated_at"))
    echoed = {
        key: first[key]
        for key in ("id", "orderId", "reason", "reasonId", "status", "canceledTime", "_links")
    }

    response = api.put(url("cnl-1"), {**echoed, "status": "completed"}, format="json")

    assert response.status_code == 200, response.json()
    assert AuditEntry.objects.count() == entries
    assert list(Delivery.objects.values_list("pk", "updated_at")) == deliveries
