"""The strict fake of AEB's cancelServiceItems answers only as the contract says
(docs/contracts/billing/, GUESSES.md for what the contract leaves open)."""

import pytest
import requests

from providers.contracts import openapi_schema, schema_errors
from providers.fakes.billing import CONTRACT, DEFAULT_USER_NAME, BillingFake
from providers.fakes.faults import FakeControl

RESPONSE_DTO = openapi_schema(CONTRACT, "BReverseServiceItemsResponseDTO")


@pytest.fixture(scope="module")
def server():
    with BillingFake() as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    return server


def post(fake, body, *, auth=None, headers=None):
    return requests.post(
        fake.base_url + "/BillingBFBean/cancelServiceItems",
        json=body,
        auth=auth or (fake.username, fake.password),
        headers=headers,
        timeout=5,
    )


def engine_body(fake, *item_ids, **overrides):
    body = {
        "clientSystemId": "STORNO-TEST",
        "clientIdentCode": fake.client_ident_code,
        "userName": DEFAULT_USER_NAME,
        "resultLanguageIsoCodes": ["en"],
        "reasonOfReversal": "Too expensive (by jdoe)",
        "items": [{"itemId": i} for i in item_ids],
    }
    body.update(overrides)
    return body


def item_codes(data) -> list[list]:
    return [[m.get("messageIdentCode") for m in i["messages"]] for i in data["itemResponses"]]


def test_it_is_all_or_nothing(fake):
    fake.add_service_item("A", ["open"])
    fake.add_service_item("B", ["open", "exported"])

    data = post(fake, engine_body(fake, "A", "B")).json()

    assert data["hasErrors"] is True
    assert [i["hasErrors"] for i in data["itemResponses"]] == [False, True]
    assert (
        "can no longer be removed"
        in data["itemResponses"][1]["messages"][0]["messageTexts"][0]["text"]
    )
    assert fake.state()["serviceItems"]["A"]["cancelled"] is False


def test_it_cancels_and_removes_settlement_items(fake):
    fake.add_service_item("A", ["open", "open"])

    data = post(fake, engine_body(fake, "A")).json()

    assert data["hasErrors"] is False
    assert all(s["removed"] for s in fake.state()["serviceItems"]["A"]["settlements"])


def test_a_second_cancel_is_a_retransmission_as_aeb_documents(fake):
    fake.add_service_item("A")
    post(fake, engine_body(fake, "A"))

    data = post(fake, engine_body(fake, "A")).json()

    assert data["hasErrors"] is True
    assert item_codes(data) == [["ITEM_RETRANSMISSION_ERROR"]]


def test_an_item_it_does_not_know_is_an_error_in_the_response_dto(fake):
    response = post(fake, engine_body(fake, "SI-404"))

    assert response.status_code == 200
    assert response.json()["hasErrors"] is True
    assert item_codes(response.json()) == [["ITEM_NOT_FOUND_ERROR"]]
    assert fake.state()["serviceItems"] == {}  # not created on the fly


def test_a_user_name_it_does_not_know_changes_nothing(fake):
    fake.add_service_item("A")

    data = post(fake, engine_body(fake, "A", userName="agent")).json()

    assert data["hasErrors"] is True
    assert "I_EVERYONE" in data["messages"][0]["messageTexts"][0]["text"]
    assert fake.state()["serviceItems"]["A"]["cancelled"] is False


@pytest.mark.parametrize("code", ["", "OTHER", None])
def test_a_client_it_does_not_serve_is_invalid_data(fake, code):
    fake.add_service_item("A")
    body = engine_body(fake, "A", clientIdentCode=code)
    if code is None:
        del body["clientIdentCode"]

    data = post(fake, body).json()

    assert data["messages"][0]["messageIdentCode"] == "INVALID_DATA_ERROR"
    assert fake.state()["serviceItems"]["A"]["cancelled"] is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"clientSystemId": "x" * 21}, "/clientSystemId"),
        ({"clientIdentCode": "x" * 11}, "/clientIdentCode"),
        ({"reasonOfReversal": "x" * 251}, "/reasonOfReversal"),
        ({"items": [{"itemId": "x" * 51}]}, "/items/0/itemId"),
        ({"items": [{"itemId": "A", "id": 1}]}, "/items/0/id"),
        ({"items": [{"itemId": 17}]}, "/items/0/itemId"),
        ({"items": "A"}, "/items"),
        ({"resultLanguageIsoCodes": "de"}, "/resultLanguageIsoCodes"),
        ({"errorFlag": False}, "/errorFlag"),
    ],
)
def test_a_body_off_the_request_dto_is_a_400_problem_naming_the_field(fake, overrides, field):
    response = post(fake, engine_body(fake, "A", **overrides))

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert fake.calls == []


def test_it_takes_any_number_of_items(fake):
    ids = [f"SI-{n}" for n in range(120)]
    for item_id in ids:
        fake.add_service_item(item_id)

    data = post(fake, engine_body(fake, *ids)).json()

    assert data["hasErrors"] is False


@pytest.mark.parametrize("case", ["cancelled", "refused", "unknown", "locked", "user", "client"])
def test_every_answer_validates_against_the_response_dto(fake, case):
    fake.add_service_item("A", ["settled"] if case == "refused" else ["open"])
    body = engine_body(fake, "A" if case != "unknown" else "Z")
    if case == "locked":
        fake.retryable_next(1)
    if case == "user":
        body["userName"] = "nobody"
    if case == "client":
        body["clientIdentCode"] = "NOPE"

    data = post(fake, body).json()

    assert schema_errors(data, RESPONSE_DTO) == []
    assert data["hasErrors"] is (case != "cancelled")
    assert data["hasOnlyRetryableErrors"] is (case == "locked")


def test_it_wants_basic_auth(fake):
    response = post(fake, engine_body(fake, "A"), auth=(fake.username, "nope"))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_it_answers_json_only(fake):
    assert (
        post(fake, engine_body(fake, "A"), headers={"Accept": "application/xml"}).status_code == 406
    )
    response = requests.post(
        fake.base_url + "/BillingBFBean/cancelServiceItems",
        data="<items/>",
        headers={"Content-Type": "application/xml"},
        auth=(fake.username, fake.password),
        timeout=5,
    )
    assert response.status_code == 415


def test_it_answers_in_the_requested_languages(fake):
    data = post(fake, engine_body(fake, "Z", resultLanguageIsoCodes=["fr", "de", "en"])).json()

    texts = data["itemResponses"][0]["messages"][0]["messageTexts"]
    assert [t["languageISOCode"] for t in texts] == ["de", "en"]
    assert texts[0]["text"] == "Leistungsposition Z wurde nicht gefunden."


def test_it_is_controlled_over_http(fake):
    control = FakeControl(fake.url)
    for item_id, states in (("A", ["open"]), ("S", ["settled"])):
        requests.post(
            f"{fake.url}/_fake/service-items",
            json={"itemId": item_id, "settlementStates": states},
            timeout=5,
        ).raise_for_status()
    requests.post(
        f"{fake.url}/_fake/faults", json={"kind": "retryable", "count": 1}, timeout=5
    ).raise_for_status()
    control.fail_next(1, status=502)

    assert post(fake, engine_body(fake, "A")).status_code == 502
    assert post(fake, engine_body(fake, "A")).json()["hasOnlyRetryableErrors"] is True
    assert post(fake, engine_body(fake, "S")).json()["hasErrors"] is True
    assert [r["body"]["items"] for r in control.requests()] == [[{"itemId": i}] for i in "AAS"]
