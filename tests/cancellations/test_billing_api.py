"""POST /api/v1/service-items/cancel/: cancelServiceItems in AEB's shape (seed 002)."""

import logging

import pytest
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Cancellation, OrderItem, SettlementItem
from providers.contracts import openapi_schema, schema_errors
from tests.factories import OrderItemFactory, SettlementItemFactory, UserFactory

URL = "/api/v1/service-items/cancel/"


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def service_items(reason):
    first = OrderItemFactory(subscription=True, billed=True)
    SettlementItemFactory.create_batch(2, order_item=first)
    second = OrderItemFactory(order=first.order, billed=True)
    SettlementItemFactory(order_item=second)
    return [first, second]


def body(*items, **overrides) -> dict:
    data = {
        "clientSystemId": "ERP-PROD-01",
        "clientIdentCode": "STORNO",
        "resultLanguageIsoCodes": ["en", "de"],
        "reasonOfReversal": "Customer cancelled the contract",
        "items": [{"itemId": item.billing_item_id} for item in items],
    }
    data.update(overrides)
    return data


def invalid_fields(response) -> set:
    return {error["field"] for error in response.json()["invalidFields"]}


def test_cancels_the_service_items_and_answers_in_aebs_shape(api, service_items):
    response = api.post(URL, body(*service_items), format="json")

    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "hasErrors",
        "hasOnlyRetryableErrors",
        "hasWarnings",
        "messages",
        "itemResponses",
    }
    assert data["hasErrors"] is False
    assert [item["itemId"] for item in data["itemResponses"]] == [
        item.billing_item_id for item in service_items
    ]
    message = data["itemResponses"][0]["messages"][0]
    texts = message.pop("messageTexts")
    assert message == {
        "messageType": "INFO",
        "messageIdentCode": "SERVICE_ITEM_CANCELLED",
        "indentationLevel": 0,
    }
    assert [text["languageISOCode"] for text in texts] == ["en", "de"]
    assert texts[0]["text"] == (
        f"Service item {service_items[0].billing_item_id} ({service_items[0].sku}) is "
        "cancelled; settlement items removed: 2."
    )
    assert not SettlementItem.objects.present().exists()
    assert AuditEntry.objects.filter(action="cancellation.created", via="api").count() == 1


def test_a_settled_settlement_item_refuses_everything_and_persists_nothing(api, service_items):
    settled = SettlementItemFactory(order_item=service_items[1], state="settled")

    response = api.post(URL, body(*service_items), format="json")

    data = response.json()
    assert response.status_code == 200
    assert data["hasErrors"] is True
    assert data["hasOnlyRetryableErrors"] is False
    assert data["messages"][0]["messageIdentCode"] == "NOTHING_CANCELLED"
    first, second = data["itemResponses"]
    assert (first["hasErrors"], second["hasErrors"]) == (False, True)
    assert f"Settlement item {settled.pk}" in second["messages"][0]["messageTexts"][0]["text"]
    assert not Cancellation.objects.exists()
    assert not AuditEntry.objects.exists()
    assert set(OrderItem.objects.values_list("cancelled_quantity", flat=True)) == {0}


def test_an_unknown_item_is_named_in_its_item_response(api, service_items):
    response = api.post(URL, body(*service_items, items=[{"itemId": "424242"}]), format="json")

    item = response.json()["itemResponses"][0]
    assert item["itemId"] == "424242"
    assert item["messages"][0]["messageIdentCode"] == "ITEM_NOT_FOUND_ERROR"


def test_the_item_id_is_the_billing_item_id_not_storno_s_order_item_id(api, service_items):
    response = api.post(URL, body(items=[{"itemId": str(service_items[0].pk)}]), format="json")

    assert response.json()["itemResponses"][0]["messages"][0]["messageIdentCode"] == (
        "ITEM_NOT_FOUND_ERROR"
    )
    assert not Cancellation.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clientSystemId", "x" * 21),
        ("clientIdentCode", "x" * 11),
        ("reasonOfReversal", "x" * 251),
        ("items", []),
        ("resultLanguageIsoCodes", "de"),
    ],
    ids=["clientSystemId", "clientIdentCode", "reasonOfReversal", "no-items", "langs"],
)
def test_a_field_beyond_its_limit_is_a_400_naming_it(api, service_items, field, value):
    response = api.post(URL, body(*service_items, **{field: value}), format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert invalid_fields(response) == {field}
    assert not Cancellation.objects.exists()


def test_an_item_id_longer_than_fifty_is_a_400_on_its_path(api, service_items):
    response = api.post(URL, body(items=[{"itemId": "1" * 51}]), format="json")

    assert invalid_fields(response) == {"items.0.itemId"}


def test_a_known_user_name_runs_as_that_user(api, agent, service_items):
    colleague = UserFactory(username="jdoe", permissions=["cancellations.cancel_order"])

    response = api.post(URL, body(*service_items, userName="jdoe"), format="json")

    assert response.json()["hasErrors"] is False
    assert Cancellation.objects.get().created_by == colleague


def test_a_known_user_without_the_permission_is_refused(api, service_items):
    UserFactory(username="reader", permissions=["cancellations.view_order"])

    response = api.post(URL, body(*service_items, userName="reader"), format="json")

    data = response.json()
    assert data["hasErrors"] is True
    assert "NOT_AUTHORIZED" in [m["messageIdentCode"] for m in data["messages"]]
    assert not Cancellation.objects.exists()


def test_an_unknown_user_name_may_only_read_and_is_logged(api, service_items, caplog):
    with caplog.at_level(logging.WARNING, logger="cancellations.api.billing"):
        response = api.post(URL, body(*service_items, userName="nobody"), format="json")

    data = response.json()
    assert data["hasErrors"] is True
    assert data["messages"][1]["messageTexts"][0]["text"] == (
        "User nobody may not cancel service items."
    )
    assert "nobody" in caplog.text
    assert not Cancellation.objects.exists()


def test_the_user_name_is_no_credential(service_items):
    UserFactory(username="jdoe", permissions=["cancellations.cancel_order"])

    response = APIClient().post(URL, body(*service_items, userName="jdoe"), format="json")

    assert response.status_code == 401
    assert not Cancellation.objects.exists()


def test_a_caller_without_the_cancel_permission_gets_403(service_items):
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=["cancellations.view_order"]))

    response = client.post(URL, body(*service_items), format="json")

    assert response.status_code == 403


def test_http_basic_authentication_works(service_items):
    UserFactory(username="erp", permissions=["cancellations.cancel_order"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic ZXJwOmNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=")

    response = client.post(URL, body(*service_items), format="json")

    assert response.status_code == 200
    assert response.json()["hasErrors"] is False


def test_a_body_that_is_not_json_is_415(api, service_items):
    response = api.post(URL, "<items/>", content_type="application/xml")

    assert response.status_code == 415


def test_asking_for_xml_is_406(api, service_items):
    response = api.post(URL, body(*service_items), format="json", HTTP_ACCEPT="application/xml")

    assert response.status_code == 406


def test_unknown_languages_fall_back_to_english(api, service_items):
    response = api.post(
        URL, body(*service_items, resultLanguageIsoCodes=["xx", "fr"]), format="json"
    )

    texts = response.json()["itemResponses"][0]["messages"][0]["messageTexts"]
    assert [text["languageISOCode"] for text in texts] == ["en"]


def test_the_operation_is_documented_with_examples():
    generator = SchemaGenerator(patterns=[path("api/v1/", include("cancellations.api.urls"))])

    schema = generator.get_schema(request=None, public=True)

    operation = schema["paths"]["/api/v1/service-items/cancel/"]["post"]
    assert operation["operationId"] == "serviceItems_cancel"
    request_schema = schema["components"]["schemas"]["CancelServiceItemsInputRequest"]
    assert request_schema["properties"]["clientSystemId"]["maxLength"] == 20
    assert "maxItems" not in request_schema["properties"]["items"]  # AEB documents no cap
    assert operation["responses"]["200"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"items": "1"},
        {"items": ["1"]},
        {"items": [{"itemId": None}]},
        {"items": [{}]},
        {"items": [{"itemId": {"a": 1}}]},
        {"items": [{"itemId": "1"}], "resultLanguageIsoCodes": [None]},
        {"items": [{"itemId": "1"}], "userName": ["jdoe"]},
    ],
)
def test_malformed_bodies_are_400_not_500(api, service_items, payload):
    response = api.post(URL, payload, format="json")

    assert response.status_code == 400
    assert not Cancellation.objects.exists()


def test_a_numeric_item_id_is_accepted_too(api, reason):
    item = OrderItemFactory(billing_item_id="4711")

    response = api.post(URL, {"items": [{"itemId": 4711}]}, format="json")

    assert response.json()["itemResponses"][0]["itemId"] == "4711"
    assert response.json()["hasErrors"] is False
    assert OrderItem.objects.get(pk=item.pk).open_quantity == 0


# --- the request DTO, exactly ------------------------------------------------------------------

CONTRACT = "billing/aeb-lcm-cancelServiceItems.openapi-subset.json"


def test_every_field_of_the_request_dto_is_accepted(api, agent, service_items):
    dto = openapi_schema(CONTRACT, "BReverseServiceItemsRequestDTO")
    full = body(*service_items, userName=agent.get_username())

    response = api.post(URL, full, format="json")

    assert set(full) == set(dto["properties"])
    assert response.status_code == 200
    assert response.json()["hasErrors"] is False


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"userNmae": "jdoe"}, "userNmae", "unknown field; did you mean userName?"),
        ({"client_system_id": "X"}, "client_system_id", "did you mean clientSystemId?"),
        ({"errorFlag": False}, "errorFlag", "unknown field"),
    ],
)
def test_an_unknown_field_is_refused_naming_it(api, service_items, extra, field, message):
    response = api.post(URL, {**body(*service_items), **extra}, format="json")

    assert response.status_code == 400
    errors = response.json()["invalidFields"]
    assert [e["field"] for e in errors] == [field]
    assert message in errors[0]["message"]
    assert not Cancellation.objects.exists()


def test_an_unknown_field_in_an_item_is_refused_on_its_path(api, service_items):
    items = [{"itemId": service_items[0].billing_item_id, "itemID": "x"}]

    response = api.post(URL, body(items=items), format="json")

    assert response.status_code == 400
    assert invalid_fields(response) == {"items.0.itemID"}
    assert "did you mean itemId?" in response.json()["invalidFields"][0]["message"]


def test_absurdly_deep_json_is_a_400_from_the_hardened_parser(api, service_items):
    deep = '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = api.post(URL, deep, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_the_view_uses_the_projects_json_parser():
    from backoffice.api import JSONParser
    from cancellations.api.billing import ServiceItemsCancelView

    assert ServiceItemsCancelView.parser_classes == [JSONParser]


def test_any_number_of_items_is_taken(api, reason):
    items = OrderItemFactory.create_batch(60, billed=True)

    response = api.post(URL, body(*items), format="json")

    assert response.json()["hasErrors"] is False
    assert Cancellation.objects.count() == 60


@pytest.mark.parametrize("case", ["cancelled", "refused", "unknown", "not-permitted"])
def test_every_answer_validates_against_the_response_dto(api, service_items, case):
    if case == "refused":
        SettlementItemFactory(order_item=service_items[0], state="exported")
    items = body(*service_items)
    if case == "unknown":
        items = body(items=[{"itemId": "nope"}])
    if case == "not-permitted":
        items = body(*service_items, userName="nobody")

    data = api.post(URL, items, format="json").json()

    schema = openapi_schema(CONTRACT, "BReverseServiceItemsResponseDTO")
    assert schema_errors(data, schema) == []
    assert data["hasErrors"] is (case != "cancelled")
