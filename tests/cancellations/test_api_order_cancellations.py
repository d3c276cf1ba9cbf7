"""/api/v1/order-cancellations/: list, filters, detail and POST (Storno chooses the id)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cancellations.api.cancellation_input import CancellationInputSerializer
from cancellations.audit import AuditInfo
from cancellations.models import AuditEntry, Cancellation
from cancellations.services import quoting, writing
from cancellations.states import CancellationStatus, OrderStatus
from providers.models import ProviderSetting
from providers.registry import ADAPTERS
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

LIST = "/api/v1/order-cancellations/"


def detail(cancellation_id) -> str:
    return f"/api/v1/order-cancellations/{cancellation_id}"


def invalid_fields(response) -> dict:
    return {error["field"]: error["code"] for error in response.json()["invalidFields"]}


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


def body_for(order, reason, **overrides) -> dict:
    body = {"orderId": order.pk, "reasonId": reason.pk}
    body.update(overrides)
    return body


def cancel(order, reason, **kwargs) -> Cancellation:
    return writing.cancel_order(
        order, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM, **kwargs
    )


# --- reading -------------------------------------------------------------------------------------


def test_cancellation_json_is_rebillys_shape_in_camel_case(api, order_with_items, reason):
    subscription = order_with_items.items.get(quantity=2)
    cancellation = cancel(
        order_with_items,
        reason=reason,
        items=[quoting.ItemPick(subscription.pk, 1)],
        lines=[quoting.ExtraLine("debit", Decimal("49.95"), "EUR", 1, "Early termination fee")],
        prorated=True,
        description="Moved abroad",
        external_user_id="005Dn000003xyz",
        audit=AuditInfo(comment="By phone", time_spent=5, ticket_link="T-1"),
    )
    cancellation.refresh_from_db()

    body = api.get(detail(cancellation.pk)).json()

    assert body == {
        "id": cancellation.pk,
        "orderId": order_with_items.pk,
        "reasonId": reason.pk,
        "reason": reason.subject,
        "description": "Moved abroad",
        "canceledBy": "merchant",
        "status": "completed",
        "canceledTime": iso(cancellation.canceled_time),
        "churnTime": iso(cancellation.churn_time),
        "churnTimePolicy": None,
        "completedTime": iso(cancellation.completed_time),
        "prorated": True,
        "proratedCredit": {"amount": float(cancellation.prorated_credit_amount), "currency": "EUR"},
        "lineItemSubtotal": {"amount": 49.95, "currency": "EUR"},
        "proratedInvoiceId": None,
        "appliedInvoiceId": None,
        "items": [
            {
                "itemId": subscription.pk,
                "sku": subscription.sku,
                "quantity": 1,
                "proratedCreditAmount": float(cancellation.prorated_credit_amount),
            }
        ],
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 49.95,
                "unitPriceCurrency": "EUR",
                "quantity": 1,
                "description": "Early termination fee",
                "periodStartTime": None,
                "periodEndTime": None,
            }
        ],
        "externalUserId": "005Dn000003xyz",
        "auditLog": {"comment": "By phone", "timeSpent": 5, "ticketLink": "T-1"},
        "createdTime": iso(cancellation.created_time),
        "updatedTime": iso(cancellation.updated_time),
        "revokedTime": None,
        "deliveries": [],
        "_links": [
            {"rel": "self", "href": f"http://testserver{detail(cancellation.pk)}"},
            {"rel": "order", "href": f"http://testserver/api/v1/orders/{order_with_items.pk}/"},
        ],
    }
    assert cancellation.prorated_credit_amount > 0


def test_detail_answers_with_and_without_a_trailing_slash(api):
    cancellation = CancellationFactory(id="cnl-slash")

    assert api.get("/api/v1/order-cancellations/cnl-slash").json()["id"] == cancellation.pk
    assert api.get("/api/v1/order-cancellations/cnl-slash/").json()["id"] == cancellation.pk


def test_unknown_cancellation_is_a_404_problem(api):
    response = api.get(detail("nope"))

    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


@pytest.mark.parametrize("odd_id", ["a%00b", "x" * 5000, "%C3%BC"])
def test_ids_that_cannot_exist_are_a_404(api, odd_id):
    assert api.get(detail(odd_id)).status_code == 404


def test_cancellation_list_is_a_limit_offset_page_newest_first(api):
    first = CancellationFactory()
    second = CancellationFactory()
    Cancellation.objects.filter(pk=first.pk).update(created_time=timezone.now() - timedelta(1))

    body = api.get(LIST, {"limit": 1}).json()

    assert body["count"] == 2
    assert body["previous"] is None
    assert "offset=1" in body["next"]
    assert [row["id"] for row in body["results"]] == [second.pk]


def test_cancellation_list_queries_do_not_grow_with_the_rows(api, reason):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(LIST).status_code == 200
        return len(queries)

    def cancellation_with_everything():
        order = OrderFactory()
        OrderItemFactory.create_batch(2, order=order)
        cancel(
            order,
            reason,
            lines=[quoting.ExtraLine("debit", Decimal("5.00"), "EUR", 1)],
        )

    cancellation_with_everything()
    api.get(LIST)  # the user's permission cache is filled once per client
    one_row = list_queries()
    for _ in range(19):
        cancellation_with_everything()
    twenty_rows = list_queries()

    # count, cancellations + order + reason, items, lines, deliveries
    assert one_row == twenty_rows == 5


# --- filters -------------------------------------------------------------------------------------


def ids(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


def test_filters_by_order_status_and_reason(api):
    reason = CancellationReasonFactory()
    wanted = CancellationFactory(id="wanted", reason=reason, status=CancellationStatus.CONFIRMED)
    CancellationFactory(id="other-order", reason=reason, status=CancellationStatus.CONFIRMED)
    CancellationFactory(id="other-status", order=wanted.order, reason=reason)
    CancellationFactory(id="other-reason", order=wanted.order, status="confirmed")

    response = api.get(
        LIST, {"orderId": str(wanted.order_id), "status": "confirmed", "reasonId": reason.pk}
    )

    assert ids(response) == {"wanted"}


def test_status_filter_takes_several_statuses(api):
    CancellationFactory(id="a", status=CancellationStatus.CONFIRMED)
    CancellationFactory(id="b", status=CancellationStatus.REVOKED)
    CancellationFactory(id="c", status=CancellationStatus.COMPLETED)

    assert ids(api.get(LIST, {"status": ["confirmed", "revoked"]})) == {"a", "b"}


def test_churn_filters_bound_the_churn_time(api):
    CancellationFactory(id="early", churn_time=datetime(2026, 1, 1, tzinfo=UTC))
    CancellationFactory(id="mid", churn_time=datetime(2026, 2, 1, tzinfo=UTC))
    CancellationFactory(id="late", churn_time=datetime(2026, 3, 1, tzinfo=UTC))

    response = api.get(
        LIST, {"churnFrom": "2026-01-15T00:00:00Z", "churnTo": "2026-02-15T00:00:00+01:00"}
    )

    assert ids(response) == {"mid"}


def test_created_filters_bound_the_created_time(api):
    CancellationFactory(id="old")
    CancellationFactory(id="new")
    Cancellation.objects.filter(pk="old").update(created_time=datetime(2025, 1, 1, tzinfo=UTC))

    assert ids(api.get(LIST, {"createdFrom": "2025-06-01T00:00:00Z"})) == {"new"}
    assert ids(api.get(LIST, {"createdTo": "2025-06-01T00:00:00Z"})) == {"old"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"orderId": "abc"}, "orderId"),
        ({"orderId": str(10**30)}, "orderId"),
        ({"reasonId": "-1"}, "reasonId"),
        ({"churnFrom": "2026-13-01T00:00:00Z"}, "churnFrom"),
        ({"createdTo": "0001-01-01T00:00:00+01:00"}, "createdTo"),
        ({"status": "cancelled"}, "status"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_filter(api, params, field):
    response = api.get(LIST, params)

    assert response.status_code == 400
    assert field in invalid_fields(response)


# --- POST ----------------------------------------------------------------------------------------


def test_posting_cancels_the_whole_order_now(api, agent, order_with_items, reason):
    response = api.post(LIST, body_for(order_with_items, reason), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "completed"
    assert response["Location"] == f"http://testserver{detail(body['id'])}"
    assert sorted(item["quantity"] for item in body["items"]) == [1, 2]
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.CANCELLED
    entry = AuditEntry.objects.get(cancellation_id=body["id"], action="cancellation.created")
    assert (entry.via, entry.actor) == (AuditEntry.Via.API, agent)


def test_posting_some_items_cancels_only_those(api, order_with_items, reason):
    subscription = order_with_items.items.get(quantity=2)
    body = body_for(order_with_items, reason, items=[{"itemId": subscription.pk, "quantity": 1}])

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert [(i["itemId"], i["quantity"]) for i in response.json()["items"]] == [
        (subscription.pk, 1)
    ]
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.PARTIALLY_CANCELLED


def test_a_future_churn_time_schedules_the_cancellation(api, order_with_items, reason):
    churn = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    body = body_for(order_with_items, reason, churnTime=churn.isoformat())

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "confirmed"
    assert response.json()["churnTime"] == iso(churn)
    order = api.get(f"/api/v1/orders/{order_with_items.pk}/").json()
    assert order["status"] == "open"
    assert order["scheduledCancellations"] == [response.json()["id"]]


def test_at_next_renewal_takes_the_end_of_the_service_period(api, order_with_items, reason):
    subscription = order_with_items.items.get(quantity=2)
    body = body_for(
        order_with_items,
        reason,
        churnTimePolicy="at-next-renewal",
        items=[{"itemId": subscription.pk, "quantity": 2}],
    )

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["churnTime"] == iso(subscription.period_end)
    assert response.json()["churnTimePolicy"] == "at-next-renewal"


def test_line_item_subtotal_is_computed_never_taken_from_the_body(api, order_with_items, reason):
    body = body_for(
        order_with_items,
        reason,
        lineItems=[
            {"type": "debit", "unitPriceAmount": 20, "unitPriceCurrency": "EUR", "quantity": 2},
            {
                "type": "credit",
                "unitPriceAmount": "5.50",
                "unitPriceCurrency": "EUR",
                "quantity": 1,
            },
        ],
        lineItemSubtotal={"amount": 1000000, "currency": "EUR"},
    )

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["lineItemSubtotal"] == {"amount": 34.5, "currency": "EUR"}
    assert response.json()["proratedCredit"] == {"amount": 0.0, "currency": "EUR"}


def test_order_id_may_be_a_numeric_string(api, order_with_items, reason):
    body = body_for(order_with_items, reason, orderId=str(order_with_items.pk))

    assert api.post(LIST, body, format="json").status_code == 201


def test_the_audit_log_is_kept_with_the_cancellation(api, order_with_items, reason):
    body = body_for(
        order_with_items,
        reason,
        auditLog={"comment": "Customer called", "timeSpent": 12, "ticketLink": "JIRA-7"},
    )

    response = api.post(LIST, body, format="json")

    assert response.json()["auditLog"] == {
        "comment": "Customer called",
        "timeSpent": 12,
        "ticketLink": "JIRA-7",
    }
    entry = AuditEntry.objects.get(action="cancellation.created")
    assert (entry.comment, entry.time_spent, entry.ticket_link) == ("Customer called", 12, "JIRA-7")


def test_null_items_line_items_and_audit_log_mean_none_given(api, order_with_items, reason):
    body = body_for(order_with_items, reason, items=None, lineItems=None, auditLog=None)

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert len(response.json()["items"]) == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"orderId": 987654}, "orderId"),
        ({"orderId": 10**30}, "orderId"),
        ({"orderId": "twelve"}, "orderId"),
        ({"orderId": True}, "orderId"),
        ({"orderId": None}, "orderId"),
        ({"orderId": {"id": 1}}, "orderId"),
        ({"reasonId": 987654}, "reasonId"),
        ({"reasonId": [1]}, "reasonId"),
        ({"canceledBy": "robot"}, "canceledBy"),
        ({"churnTime": "2026-05-01T12:00:00"}, "churnTime"),
        ({"churnTime": "2020-01-01T00:00:00Z"}, "churnTime"),
        ({"churnTime": "9999-12-31T23:59:59-05:00"}, "churnTime"),
        ({"churnTime": 1714557600}, "churnTime"),
        ({"churnTimePolicy": "tomorrow"}, "churnTimePolicy"),
        ({"prorated": "perhaps"}, "prorated"),
        ({"description": "x" * 256}, "description"),
        ({"externalUserId": "x" * 65}, "externalUserId"),
        ({"items": []}, "items"),
        ({"items": [None]}, "items.0"),
        ({"items": [{"itemId": 987654, "quantity": 1}]}, "items.0.itemId"),
        ({"items": [{"itemId": 1, "quantity": 10**30}]}, "items.0.quantity"),
        ({"items": "all"}, "items"),
        ({"lineItems": [None]}, "lineItems.0"),
        ({"lineItems": [{"type": "debit"}]}, "lineItems.0.unitPriceAmount"),
        ({"lineItems": {"type": "debit"}}, "lineItems"),
        ({"auditLog": {"timeSpent": -1}}, "auditLog.timeSpent"),
        ({"auditLog": {"timeSpent": 1.5}}, "auditLog.timeSpent"),
        ({"auditLog": {"comment": "x" * 256}}, "auditLog.comment"),
        ({"auditLog": {"ticketLink": "x" * 256}}, "auditLog.ticketLink"),
        ({"auditLog": "note"}, "auditLog"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(api, order_with_items, reason, overrides, field):
    response = api.post(LIST, body_for(order_with_items, reason, **overrides), format="json")

    assert response.status_code == 400, response.json()
    assert field in invalid_fields(response), response.json()
    assert not Cancellation.objects.exists()


def line(**overrides) -> dict:
    return {
        "type": "debit",
        "unitPriceAmount": "10.00",
        "unitPriceCurrency": "EUR",
        "quantity": 1,
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unitPriceCurrency": "USD"}, "lineItems.0.unitPriceCurrency"),
        ({"unitPriceAmount": "10.001"}, "lineItems.0.unitPriceAmount"),
        ({"unitPriceAmount": "-1"}, "lineItems.0.unitPriceAmount"),
        ({"unitPriceAmount": 10**20}, "lineItems.0.unitPriceAmount"),
        ({"type": "refund"}, "lineItems.0.type"),
        ({"quantity": 0}, "lineItems.0.quantity"),
        ({"quantity": "many"}, "lineItems.0.quantity"),
        ({"description": "x" * 1001}, "lineItems.0.description"),
        (
            {"periodStartTime": "2026-02-01T00:00:00Z", "periodEndTime": "2026-01-01T00:00:00Z"},
            "lineItems.0.periodEndTime",
        ),
        ({"periodStartTime": "2026-02-01T00:00:00"}, "lineItems.0.periodStartTime"),
    ],
)
def test_invalid_line_items_are_named_by_position(api, order_with_items, reason, overrides, field):
    body = body_for(order_with_items, reason, lineItems=[line(**overrides)])

    response = api.post(LIST, body, format="json")

    assert response.status_code == 400, response.json()
    assert field in invalid_fields(response), response.json()


def test_too_many_of_an_item_is_named_by_position(api, order_with_items, reason):
    plain = order_with_items.items.get(quantity=1)
    body = body_for(order_with_items, reason, items=[{"itemId": plain.pk, "quantity": 2}])

    response = api.post(LIST, body, format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {"items.0.quantity": "invalid"}


def test_an_item_of_another_order_is_named_by_position(api, order_with_items, reason):
    stranger = OrderItemFactory()
    body = body_for(order_with_items, reason, items=[{"itemId": stranger.pk, "quantity": 1}])

    response = api.post(LIST, body, format="json")

    assert response.status_code == 400
    assert "items.0.itemId" in invalid_fields(response)


def test_an_inactive_reason_is_refused_under_reason_id(api, order_with_items):
    retired = CancellationReasonFactory(is_active=False)

    response = api.post(LIST, body_for(order_with_items, retired), format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {"reasonId": "invalid"}


def test_a_reason_needing_extra_information_needs_a_description(api, order_with_items):
    reason = CancellationReasonFactory(extra_information_needed=True)

    response = api.post(LIST, body_for(order_with_items, reason), format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {"description": "invalid"}


def test_a_cancelled_order_is_a_409_with_nothing_left_to_cancel(api, reason):
    order = OrderFactory(status=OrderStatus.CANCELLED)
    OrderItemFactory(order=order)

    response = api.post(LIST, body_for(order, reason), format="json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:nothing-left-to-cancel"
    assert invalid_fields(response) == {"orderId": "nothing_left"}


def test_a_completed_order_is_a_409_order_not_cancellable(api, reason):
    order = OrderFactory(status=OrderStatus.COMPLETED)
    OrderItemFactory(order=order)

    response = api.post(LIST, body_for(order, reason), format="json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:order-not-cancellable"
    assert invalid_fields(response) == {"orderId": "order_not_cancellable"}


def test_cancelling_the_whole_order_twice_is_a_409_nothing_left(api, order_with_items, reason):
    assert api.post(LIST, body_for(order_with_items, reason), format="json").status_code == 201

    response = api.post(LIST, body_for(order_with_items, reason), format="json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:nothing-left-to-cancel"


def test_more_of_an_item_than_is_left_is_a_409_naming_the_item(api, reason):
    order = OrderFactory()
    item = OrderItemFactory(order=order, quantity=2, cancelled_quantity=1)

    response = api.post(
        LIST, body_for(order, reason, items=[{"itemId": item.pk, "quantity": 2}]), format="json"
    )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:not-enough-left"
    assert invalid_fields(response) == {"items.0.quantity": "not_enough_left"}


def test_a_conflict_beside_invalid_input_is_a_400_naming_both(api):
    order = OrderFactory()
    item = OrderItemFactory(order=order, quantity=2, cancelled_quantity=1)
    retired = CancellationReasonFactory(is_active=False)
    body = body_for(order, retired, items=[{"itemId": item.pk, "quantity": 2}])

    response = api.post(LIST, body, format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {
        "reasonId": "invalid",
        "items.0.quantity": "not_enough_left",
    }


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.post(LIST, [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["invalidFields"][0]["field"] == "__all__"


def test_a_number_beyond_floating_point_is_a_400_not_a_crash(api, order_with_items, reason):
    raw = json.dumps(body_for(order_with_items, reason, lineItems=[line()]))
    raw = raw.replace('"10.00"', "1e400")

    response = api.post(LIST, raw, content_type="application/json")

    assert response.status_code == 400
    assert "lineItems.0.unitPriceAmount" in invalid_fields(response)


# --- who may -------------------------------------------------------------------------------------


def test_cancellations_need_credentials(db):
    assert APIClient().get(LIST).status_code == 401


def test_reading_cancellations_needs_the_view_permission(db):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.view_order"]))

    assert client.get(LIST).status_code == 403


def test_posting_needs_the_add_permission(order_with_items, reason):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.view_cancellation"]))

    response = client.post(LIST, body_for(order_with_items, reason), format="json")

    assert response.status_code == 403
    assert not Cancellation.objects.exists()


def test_line_items_adding_up_beyond_what_is_stored_are_refused(api, order_with_items, reason):
    huge = line(unitPriceAmount="999999999999.99", quantity=2**31 - 1)

    response = api.post(LIST, body_for(order_with_items, reason, lineItems=[huge]), format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {"lineItems": "invalid"}
    assert api.get(LIST).status_code == 200


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def test_invoice_ids_without_an_invoice_are_null_and_documented_so(api, order_with_items, reason):
    cancellation = cancel(order_with_items, reason)
    schema = SchemaGenerator().get_schema(request=None, public=True)

    body = api.get(detail(cancellation.pk)).json()

    assert body["proratedInvoiceId"] is None
    assert body["appliedInvoiceId"] is None
    fields = schema["components"]["schemas"]["Cancellation"]["properties"]
    assert fields["proratedInvoiceId"]["nullable"] is True
    assert fields["appliedInvoiceId"]["nullable"] is True


def test_the_cancellation_list_documents_paging_filters_and_a_bad_filter(api):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    listing = schema["paths"][LIST]["get"]
    assert {"limit", "offset", "orderId", "status", "churnFrom"} <= {
        parameter["name"] for parameter in listing["parameters"]
    }
    assert "400" in listing["responses"]
    assert api.get(LIST, {"status": "lost"}).status_code == 400


def test_created_cancellations_document_their_location(api, order_with_items, reason):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    response = api.put(detail("my-id-1"), body_for(order_with_items, reason), format="json")

    assert response.status_code == 201
    assert response["Location"].endswith(detail("my-id-1"))
    post = schema["paths"][LIST]["post"]["responses"]
    upsert = schema["paths"]["/api/v1/order-cancellations/{id}"]["put"]["responses"]
    assert post["201"]["headers"]["Location"]["required"] is True
    assert upsert["201"]["headers"]["Location"]["required"] is True
    assert "headers" not in upsert["200"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, {"orderId": "does_not_exist"}, id="alone"),
        pytest.param({"dryRun": True}, {"orderId": "does_not_exist"}, id="dry-run"),
        pytest.param(
            {"reasonId": 987654, "canceledBy": "robot"},
            {
                "orderId": "does_not_exist",
                "reasonId": "does_not_exist",
                "canceledBy": "invalid_choice",
            },
            id="beside-other-errors",
        ),
    ],
)
def test_an_order_that_isnt_there_is_named_with_every_other_invalid_field(
    api, reason, overrides, expected
):
    """The order is only read under its lock, yet a missing one is still orderId's error, and
    named beside the others."""
    response = api.post(
        LIST, {"orderId": 987654, "reasonId": reason.pk, **overrides}, format="json"
    )

    assert response.status_code == 400, response.json()
    assert invalid_fields(response) == expected
    assert list(invalid_fields(response)) == [
        name for name in CancellationInputSerializer().fields if name in expected
    ]
    assert (
        "987654" in {e["field"]: e["message"] for e in response.json()["invalidFields"]}["orderId"]
    )
    assert not Cancellation.objects.exists()


# --- cost ----------------------------------------------------------------------------------------


def token_client(*permissions) -> APIClient:
    client = APIClient()
    user = UserFactory(permissions=list(permissions))
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_whole_order_post_stays_within_its_query_budget(reason, django_assert_max_num_queries):
    """What bench/api_load.py measures: an API client with a token cancels a whole order, every
    provider turned off."""
    for kind in ADAPTERS:
        ProviderSetting.objects.create(kind=kind, enabled=False)
    client = token_client(
        "cancellations.view_cancellation",
        "cancellations.add_cancellation",
        "cancellations.cancel_order",
    )
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=2, subscription=True)
    OrderItemFactory(order=order)

    # token + user (with the staff profile); user and group permissions; reasonId; savepoint;
    # the order (read only here, under its lock), then its items with their scheduled
    # quantities and settlement flags, locked; the cancellation; its items; the items'
    # quantities; the order's status; the three audit entries; the provider settings (kept for
    # a few seconds after); release. Read back: nothing.
    with django_assert_max_num_queries(14):
        response = client.post(LIST, body_for(order, reason), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "completed"


def test_a_whole_order_post_told_to_callisto_and_rebilly_stays_within_its_query_budget(
    reason, settings, django_assert_max_num_queries, monkeypatch
):
    """bench/api_load.py's cancel: the service's ten queries (savepoint and release included)
    plus the request's own: the token with its user and staff profile, and the reasonId. The
    order is read once, under its lock. Permissions and provider settings are kept per
    process; the staff profile Callisto names the user by comes with the token."""
    monkeypatch.delenv("PROVIDER_SETTINGS_MAX_AGE", raising=False)
    settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, base_url="http://127.0.0.1:9/organizations/o")
    client = token_client(
        "cancellations.view_cancellation",
        "cancellations.add_cancellation",
        "cancellations.cancel_order",
    )
    first, order = OrderFactory(), OrderFactory()
    for each in (first, order):
        OrderItemFactory(order=each, quantity=2, subscription=True)
        OrderItemFactory(order=each)
    warm = client.post(LIST, body_for(first, reason), format="json")  # permissions, settings
    assert warm.status_code == 201, warm.json()

    with django_assert_max_num_queries(12):
        response = client.post(LIST, body_for(order, reason), format="json")

    assert response.status_code == 201, response.json()
    assert [row["provider"] for row in response.json()["deliveries"]] == ["callisto", "rebilly"]


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param({}, id="whole-order-now"),
        pytest.param(
            {"churnTimePolicy": "at-next-renewal", "prorated": True}, id="scheduled-prorated"
        ),
        pytest.param(
            {"lineItems": [line(), line(type="credit", description="Goodwill")]}, id="lines"
        ),
    ],
)
def test_the_answer_to_a_post_is_what_reading_the_cancellation_gives(
    api, order_with_items, reason, plan
):
    """The POST answers from the rows it has just written: it must not differ from a GET."""
    for kind in ("callisto", "rebilly"):
        ProviderSetting.objects.create(kind=kind, base_url="http://127.0.0.1:9/organizations/o")
    subscription, plain = order_with_items.items.order_by("id")
    # Not in id order: the answer keeps the order of the picks, as reading does.
    picks = [{"itemId": plain.pk, "quantity": 1}, {"itemId": subscription.pk, "quantity": 1}]
    body = body_for(
        order_with_items,
        reason,
        items=picks,
        description="  Moved abroad ",
        externalUserId="005Dn000003xyz",
        auditLog={"comment": "By phone", "timeSpent": 5, "ticketLink": "T-1"},
        **plan,
    )

    created = api.post(LIST, body, format="json")

    assert created.status_code == 201, created.json()
    read = api.get(detail(created.json()["id"]))
    assert created.json() == read.json()
    assert [row["provider"] for row in read.json()["deliveries"]] == ["callisto", "rebilly"]


def test_the_answer_to_an_upsert_that_creates_is_what_reading_gives_in_rebillys_words(
    api, order_with_items, reason
):
    body = body_for(order_with_items, reason, lineItems=[line()])

    created = api.put(detail("crm-7"), body, format="json")

    assert created.status_code == 201, created.json()
    read = api.get(detail("crm-7")).json()
    assert created.json() == {
        **read,
        "orderId": str(order_with_items.pk),
        "reason": "other",  # the reason has no Rebilly mapping
        "lineItems": [{k: v for k, v in row.items() if v is not None} for row in read["lineItems"]],
        "_links": [link for link in read["_links"] if link["rel"] == "self"],
    }


def test_a_rebilly_upsert_by_rebilly_id_stays_within_its_query_budget(
    reason, django_assert_max_num_queries
):
    """The POST's queries (with the order found by its Rebilly id), plus: is there a
    cancellation with this id, and the reason's Rebilly mapping for the answer. None grows
    with the order's items."""
    for kind in ADAPTERS:
        ProviderSetting.objects.create(kind=kind, enabled=False)
    client = token_client(
        "cancellations.view_cancellation",
        "cancellations.add_cancellation",
        "cancellations.change_cancellation",
    )
    order = OrderFactory(external_ids={"rebilly": "ord_1"})
    OrderItemFactory.create_batch(5, order=order, quantity=2, subscription=True)

    # 21: the create-or-update decides under the order's lock (a savepoint and the lock),
    # and cancel_order locks the order once more; the id is looked up once, under the lock.
    with django_assert_max_num_queries(21):
        response = client.put(
            detail("cnl-budget"), {"orderId": "ord_1", "reasonId": reason.pk}, format="json"
        )

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "completed"
