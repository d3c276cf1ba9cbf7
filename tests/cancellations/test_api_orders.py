"""/api/v1/orders/: list, filters, detail and taking in new orders."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Order
from cancellations.services import writing
from cancellations.states import CancellationStatus, OrderStatus
from tests.factories import (
    CancellationFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

LIST = "/api/v1/orders/"


def detail(order_id) -> str:
    return f"/api/v1/orders/{order_id}/"


def invalid_fields(response) -> dict:
    return {error["field"]: error["code"] for error in response.json()["invalidFields"]}


@pytest.fixture
def clerk(db):
    return UserFactory(permissions=["cancellations.view_order", "cancellations.add_order"])


@pytest.fixture
def api(clerk):
    client = APIClient()
    client.force_authenticate(clerk)
    return client


def new_order_body(**overrides) -> dict:
    body = {
        "number": "SO-1001",
        "customerName": "Ayşe Yılmaz",
        "customerEmail": "ayse@example.com",
        "channel": "/shop/tr",
        "currency": "EUR",
        "placedTime": "2026-03-01T10:00:00+01:00",
        "externalIds": {"callisto": "4711", "rebilly": "ord_1"},
        "items": [
            {
                "sku": "PLAN-M",
                "description": "Monthly plan",
                "quantity": 2,
                "unitPriceAmount": "30.00",
                "periodStartTime": "2026-03-01T00:00:00Z",
                "periodEndTime": "2026-04-01T00:00:00Z",
            }
        ],
    }
    body.update(overrides)
    return body


# --- reading -------------------------------------------------------------------------------------


def test_order_list_is_a_limit_offset_page_newest_first(api):
    older = OrderFactory(placed_at=timezone.now() - timedelta(days=2))
    newer = OrderFactory(placed_at=timezone.now() - timedelta(days=1))
    OrderFactory(placed_at=timezone.now() - timedelta(days=3))

    body = api.get(LIST, {"limit": 2}).json()

    assert body["count"] == 3
    assert body["previous"] is None
    assert "offset=2" in body["next"]
    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]


def test_page_size_is_read_as_the_limit(api):
    OrderFactory.create_batch(3)

    body = api.get(LIST, {"page_size": 2}).json()

    assert (body["count"], len(body["results"])) == (3, 2)
    assert "offset=2" in body["next"]


def test_page_size_is_capped_at_the_maximum(api, monkeypatch):
    monkeypatch.setattr("backoffice.api.Pagination.max_limit", 2)
    OrderFactory.create_batch(3)

    body = api.get(LIST, {"page_size": 1000}).json()

    assert len(body["results"]) == 2


@pytest.mark.parametrize("name", ["limit", "page_size"])
@pytest.mark.parametrize("value", ["0", "-3", "ten", ""])
def test_a_page_size_that_is_no_positive_number_is_refused_naming_it(api, name, value):
    response = api.get(LIST, {name: value})

    assert response.status_code == 400
    assert invalid_fields(response) == {name: "invalid_parameter"}


def test_order_json_names_every_field_in_camel_case(api):
    parent = OrderFactory()
    order = OrderFactory(
        parent=parent,
        channel="/shop/de",
        external_ids={"callisto": "4711"},
        placed_at=timezone.now().replace(microsecond=0),
    )
    item = OrderItemFactory(
        order=order, quantity=3, unit_price_amount="12.50", subscription=True, billed=True
    )

    body = api.get(detail(order.pk)).json()

    assert body == {
        "id": order.pk,
        "number": order.number,
        "status": "open",
        "customerName": order.customer_name,
        "customerEmail": order.customer_email,
        "channel": "/shop/de",
        "parentId": parent.pk,
        "placedTime": order.placed_at.isoformat().replace("+00:00", "Z"),
        "currency": "EUR",
        "externalIds": {"callisto": "4711"},
        "scheduledCancellations": [],
        "createdTime": body["createdTime"],
        "updatedTime": body["updatedTime"],
        "items": [
            {
                "id": item.pk,
                "sku": item.sku,
                "description": "Monthly plan",
                "quantity": 3,
                "cancelledQuantity": 0,
                "unitPriceAmount": 12.5,
                "unitPriceCurrency": "EUR",
                "periodStartTime": item.period_start.isoformat().replace("+00:00", "Z"),
                "periodEndTime": item.period_end.isoformat().replace("+00:00", "Z"),
                "billingItemId": item.billing_item_id,
            }
        ],
    }


def test_scheduled_cancellations_lists_only_confirmed_cancellations_still_ahead(api):
    order = OrderFactory()
    ahead = CancellationFactory(
        order=order,
        status=CancellationStatus.CONFIRMED,
        churn_time=timezone.now() + timedelta(days=5),
    )
    CancellationFactory(
        order=order,
        status=CancellationStatus.CONFIRMED,
        churn_time=timezone.now() - timedelta(minutes=1),
    )
    CancellationFactory(order=order, status=CancellationStatus.REVOKED)
    CancellationFactory(order=order, status=CancellationStatus.COMPLETED)

    body = api.get(detail(order.pk)).json()

    assert body["scheduledCancellations"] == [ahead.pk]


def test_unknown_order_is_a_404_problem(api):
    response = api.get(detail(999999))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_order_id_too_big_for_the_database_is_a_404(api):
    assert api.get(detail(10**30)).status_code == 404


def test_order_list_queries_do_not_grow_with_the_rows(api):
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(LIST).status_code == 200
        return len(queries)

    def order_with_everything():
        order = OrderFactory()
        OrderItemFactory.create_batch(2, order=order)
        CancellationFactory(
            order=order,
            status=CancellationStatus.CONFIRMED,
            churn_time=timezone.now() + timedelta(days=1),
        )

    order_with_everything()
    api.get(LIST)  # the user's permission cache is filled once per client
    one_row = list_queries()
    for _ in range(19):
        order_with_everything()
    twenty_rows = list_queries()

    assert one_row == twenty_rows == 4  # count, orders, items, scheduled cancellations


# --- filters -------------------------------------------------------------------------------------


def numbers(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {row["number"] for row in response.json()["results"]}


def test_status_filter_takes_several_statuses(api):
    OrderFactory(number="A", status=OrderStatus.OPEN)
    OrderFactory(number="B", status=OrderStatus.ON_HOLD)
    OrderFactory(number="C", status=OrderStatus.COMPLETED)

    assert numbers(api.get(LIST, {"status": ["open", "on_hold"]})) == {"A", "B"}


def test_channel_filter_is_exact(api):
    OrderFactory(number="A", channel="/shop")
    OrderFactory(number="B", channel="/shop/de")

    assert numbers(api.get(LIST, {"channel": "/shop"})) == {"A"}


def test_channel_prefix_filter_takes_the_folder_and_everything_below(api):
    OrderFactory(number="A", channel="/shop")
    OrderFactory(number="B", channel="/shop/de/berlin")
    OrderFactory(number="C", channel="/shopping")

    assert numbers(api.get(LIST, {"channelPrefix": "/shop/"})) == {"A", "B"}


def test_number_filter_is_exact(api):
    OrderFactory(number="SO-1")
    OrderFactory(number="SO-10")

    assert numbers(api.get(LIST, {"number": "SO-1"})) == {"SO-1"}


def test_placed_filters_bound_the_placed_time_with_offsets(api):
    OrderFactory(number="A", placed_at=datetime(2026, 1, 1, 9, tzinfo=UTC))
    OrderFactory(number="B", placed_at=datetime(2026, 1, 2, 9, tzinfo=UTC))
    OrderFactory(number="C", placed_at=datetime(2026, 1, 3, 9, tzinfo=UTC))

    response = api.get(
        LIST, {"placedFrom": "2026-01-02T10:00:00+01:00", "placedTo": "2026-01-02T09:00:00Z"}
    )

    assert numbers(response) == {"B"}


def test_search_finds_orders_by_customer_name_or_number(api):
    OrderFactory(number="SO-77", customer_name="Jürgen Müller")
    OrderFactory(number="SO-88", customer_name="Ayşe Yılmaz")

    assert numbers(api.get(LIST, {"search": "Müller"})) == {"SO-77"}
    assert numbers(api.get(LIST, {"search": "o-88"})) == {"SO-88"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"placedFrom": "yesterday"}, "placedFrom"),
        ({"placedTo": "0001-01-01T00:00:00+05:00"}, "placedTo"),
        ({"status": "lost"}, "status"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_filter(api, params, field):
    response = api.get(LIST, params)

    assert response.status_code == 400
    assert field in invalid_fields(response)


# --- taking in orders ----------------------------------------------------------------------------


def test_posting_an_order_creates_it_through_the_service(api, clerk):
    response = api.post(LIST, new_order_body(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get(number="SO-1001")
    assert body["id"] == order.pk
    assert response["Location"].endswith(detail(order.pk))
    assert body["placedTime"] == "2026-03-01T09:00:00Z"
    assert body["externalIds"] == {"callisto": "4711", "rebilly": "ord_1"}
    assert body["items"][0]["unitPriceCurrency"] == "EUR"
    assert body["items"][0]["quantity"] == 2
    entry = AuditEntry.objects.get(order=order, action="order.created")
    assert (entry.via, entry.actor) == (AuditEntry.Via.API, clerk)


def test_posting_a_known_order_number_is_a_409_conflict(api):
    OrderFactory(number="SO-1001")

    response = api.post(LIST, new_order_body(), format="json")

    assert response.status_code == 409
    assert response.json()["type"] == "urn:storno:problem:conflict"
    assert invalid_fields(response) == {"number": "duplicate"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"externalIds": {"callisto": "not-a-number"}}, "externalIds.callisto"),
        ({"externalIds": {"callisto": "١٢"}}, "externalIds.callisto"),  # digits, not ASCII
        ({"externalIds": {"js7OrderIds": ["#1"]}}, "externalIds.js7ControllerId"),
        ({"externalIds": ["4711"]}, "externalIds"),
        ({"items": []}, "items"),
        ({"status": "cancelled"}, "status"),
        ({"channel": "shop/de"}, "channel"),
        ({"currency": "euro"}, "currency"),
        ({"placedTime": "2026-03-01T10:00:00"}, "placedTime"),
        ({"parentId": 987654}, "parentId"),
        ({"parentId": True}, "parentId"),
    ],
)
def test_invalid_order_input_is_a_400_naming_the_field(api, overrides, field):
    response = api.post(LIST, new_order_body(**overrides), format="json")

    assert response.status_code == 400, response.json()
    assert field in invalid_fields(response)
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"periodStartTime": "2026-04-01T00:00:00Z"}, "items.0.periodEndTime"),
        ({"quantity": 10**40}, "items.0.quantity"),
        ({"quantity": 0}, "items.0.quantity"),
        ({"unitPriceAmount": 10**20}, "items.0.unitPriceAmount"),
        ({"unitPriceAmount": "1e400"}, "items.0.unitPriceAmount"),
        ({"unitPriceAmount": "12.345"}, "items.0.unitPriceAmount"),
        ({"sku": None}, "items.0.sku"),
    ],
)
def test_invalid_order_items_are_named_by_position(api, item, field):
    body = new_order_body()
    body["items"][0].update(item)

    response = api.post(LIST, body, format="json")

    assert response.status_code == 400, response.json()
    assert field in invalid_fields(response)


def test_a_number_beyond_floating_point_is_a_400_not_a_crash(api):
    raw = json.dumps(new_order_body()).replace('"30.00"', "1e400")

    response = api.post(LIST, raw, content_type="application/json")

    assert response.status_code == 400
    assert "items.0.unitPriceAmount" in invalid_fields(response)


def test_an_order_with_null_items_is_refused(api):
    response = api.post(LIST, new_order_body(items=[None]), format="json")

    assert response.status_code == 400
    assert "items.0" in invalid_fields(response)


# --- who may --------------------------------------------------------------------------------------


def test_orders_need_credentials(db):
    response = APIClient().get(LIST)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_orders_need_the_view_permission(db):
    client = APIClient()
    client.force_authenticate(UserFactory())

    assert client.get(LIST).status_code == 403


def test_taking_in_orders_needs_the_add_permission(db):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.view_order"]))

    response = client.post(LIST, new_order_body(), format="json")

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_orders_accept_a_token(clerk):
    token = Token.objects.create(user=clerk)
    client = APIClient()

    response = client.get(LIST, HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200


def test_orders_accept_http_basic(clerk):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic(clerk.username, "correct horse battery staple"))

    assert client.get(LIST).status_code == 200


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_cancelling_through_the_service_shows_up_in_the_order(api, reason):
    order = OrderFactory()
    OrderItemFactory(order=order)
    cancellation = writing.cancel_order(
        order,
        reason=reason,
        actor=None,
        via=AuditEntry.Via.SYSTEM,
        churn_time=timezone.now() + timedelta(days=3),
    )

    assert api.get(detail(order.pk)).json()["scheduledCancellations"] == [cancellation.pk]


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def test_search_and_a_status_filter_combine(api):
    OrderFactory(number="SO-1", customer_name="Ayşe", status=OrderStatus.OPEN)
    OrderFactory(number="SO-2", customer_name="Ayşe", status=OrderStatus.COMPLETED)
    OrderFactory(number="SO-3", customer_name="Jan", status=OrderStatus.OPEN)

    # The status filter is DISTINCT; the search used to be `&`-ed to it, which is a 500.
    response = api.get(LIST, {"status": ["open", "on_hold"], "search": "Ayşe"})

    assert response.status_code == 200
    assert [order["number"] for order in response.json()["results"]] == ["SO-1"]


def test_an_order_without_an_e_mail_is_documented_as_it_is_rendered(api):
    response = api.post(LIST, new_order_body(customerEmail=""), format="json")
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert response.status_code == 201
    assert response.json()["customerEmail"] == ""
    email = schema["components"]["schemas"]["Order"]["properties"]["customerEmail"]
    assert email["type"] == "string"
    assert "format" not in email


def test_an_order_without_the_e_mail_field_is_taken_in_without_an_address(api):
    body = new_order_body()
    del body["customerEmail"]

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201, response.json()
    assert Order.objects.get().customer_email == ""


def test_an_order_id_that_is_no_number_is_a_404_problem(api):
    response = api.get("/api/v1/orders/1.5e-3/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:storno:problem:http-404"


def test_the_order_list_documents_paging_filters_and_a_bad_filter():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    listing = schema["paths"]["/api/v1/orders/"]["get"]
    assert {"limit", "offset", "status", "search", "placedFrom"} <= {
        parameter["name"] for parameter in listing["parameters"]
    }
    assert "400" in listing["responses"]
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/PaginatedOrderList"}


def test_a_created_order_documents_and_sends_its_location(api):
    response = api.post(LIST, new_order_body(), format="json")
    schema = SchemaGenerator().get_schema(request=None, public=True)

    created = schema["paths"]["/api/v1/orders/"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    assert response["Location"].endswith(detail(response.json()["id"]))


@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/api/v1/orders/", "placed_at"), ("/api/v1/order-cancellations/", "state")],
)
def test_a_list_refuses_a_query_parameter_it_does_not_know_naming_it(db, path, parameter):
    reader = APIClient()
    reader.force_authenticate(
        UserFactory(permissions=["cancellations.view_order", "cancellations.view_cancellation"])
    )
    OrderFactory()

    response = reader.get(path, {parameter: "x", "limit": 5})

    assert response.status_code == 400
    assert invalid_fields(response) == {parameter: "unknown_field"}


def test_a_list_takes_its_own_filters_and_paging(api):
    OrderFactory(channel="/shop/de")

    response = api.get(LIST, {"channel": "/shop/de", "page_size": 5, "offset": 0})

    assert response.status_code == 200
    assert response.json()["count"] == 1
