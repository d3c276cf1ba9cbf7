"""The strict Callisto fake enforces seed 000's contract (docs/contracts/callisto/) and remembers
what it was told; where the contract is silent it answers what GUESSES.md says."""

import json

import pytest
import requests

from providers.fakes.callisto import CallistoFake
from providers.fakes.faults import FakeControl

USER_ID = "005000000000001AAA"


@pytest.fixture(scope="module")
def server():
    with CallistoFake(known_ids={4711}) as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.known_ids = {4711}
    server.existing_add = "refuse"
    return server


def body(**changes):
    payload = {
        "Id": 4711,
        "CancelDate": "2026-03-01",
        "CancelTimestamp": "2026-02-20 10:15:00",
        "CancelReason": "Zu teuer",
        "UserId": USER_ID,
        "Action": "Add",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def call(fake, method="PUT", payload=None, *, path="/callisto/cancel", headers=None, **kwargs):
    sent = {"Accept": "application/json", "Content-Type": "application/json"}
    sent.update(headers or {})
    kwargs.setdefault("auth", (fake.username, fake.password))
    timeout = kwargs.pop("timeout", 5)
    data = kwargs.pop("data", None)
    if data is None and payload is not None:
        data = json.dumps(payload)
    return requests.request(
        method, fake.url + path, data=data, headers=sent, timeout=timeout, **kwargs
    )


def test_an_add_cancels_the_order_and_answers_200_with_allow(fake):
    response = call(fake, payload=body())

    assert response.status_code == 200
    assert response.headers["Allow"] == "PUT, DELETE"
    assert response.json()["CancelDate"] == "2026-03-01"
    assert fake.is_cancelled(4711)
    assert fake.effects(4711) == ["Add"]


def test_the_same_add_twice_is_counted_but_changes_nothing(fake):
    call(fake, payload=body())
    call(fake, payload=body(CancelTimestamp="2026-02-20 10:16:00"))

    assert fake.received_count(4711) == 2
    assert fake.effects(4711) == ["Add"]


def test_an_add_with_another_date_for_a_cancelled_order_is_refused_on_id(fake):
    call(fake, payload=body())

    response = call(fake, payload=body(CancelDate="2026-04-01"))

    assert response.status_code == 422
    assert response.json()["validation_messages"] == {
        "Id": {"recordFound": "A record matching the input was found"}
    }
    assert fake.orders[4711]["CancelDate"] == "2026-03-01"
    assert fake.effects(4711) == ["Add"]


def test_in_replace_mode_an_add_with_another_date_replaces_the_cancellation(fake):
    fake.existing_add = "replace"
    call(fake, payload=body())

    response = call(fake, payload=body(CancelDate="2026-04-01"))

    assert response.status_code == 200
    assert fake.orders[4711]["CancelDate"] == "2026-04-01"


def test_a_delete_then_an_add_with_another_date_moves_the_cancellation(fake):
    call(fake, payload=body())
    call(fake, "DELETE", body(Action="Delete"))

    response = call(fake, payload=body(CancelDate="2026-04-01"))

    assert response.status_code == 200
    assert fake.effects(4711) == ["Add", "Delete", "Add"]
    assert fake.orders[4711]["CancelDate"] == "2026-04-01"


def test_a_delete_removes_the_cancellation_and_a_second_one_changes_nothing(fake):
    call(fake, payload=body())

    first = call(fake, "DELETE", body(Action="Delete"))
    second = call(fake, "DELETE", body(Action="Delete"))

    assert (first.status_code, second.status_code) == (204, 204)
    assert first.headers["Allow"] == "PUT, DELETE"
    assert not fake.is_cancelled(4711)
    assert fake.effects(4711) == ["Add", "Delete"]


def test_a_put_with_action_delete_removes_the_cancellation(fake):
    call(fake, payload=body())
    call(fake, payload=body(Action="Delete"))

    assert not fake.is_cancelled(4711)


def test_the_entity_route_with_a_cancel_id_is_served(fake):
    response = call(fake, payload=body(), path="/callisto/cancel/c-1")

    assert response.status_code == 200
    assert fake.history[4711][0]["cancelId"] == "c-1"


def test_no_credentials_is_401_with_a_basic_challenge(fake):
    response = call(fake, payload=body(), auth=None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Allow"] == "PUT, DELETE"
    assert fake.received_count(4711) == 0


def test_a_wrong_password_is_401(fake):
    assert call(fake, payload=body(), auth=(fake.username, "wrong")).status_code == 401


def test_the_bearer_token_is_accepted(fake):
    response = call(
        fake, payload=body(), auth=None, headers={"Authorization": f"Bearer {fake.token}"}
    )

    assert response.status_code == 200


def test_an_accept_header_without_json_is_406(fake):
    response = call(fake, payload=body(), headers={"Accept": "text/html"})

    assert response.status_code == 406
    assert fake.received_count(4711) == 0


def test_a_body_that_is_not_json_is_415(fake):
    response = call(fake, data="Id=4711", headers={"Content-Type": "text/plain"})

    assert response.status_code == 415


def test_broken_json_is_400(fake):
    response = call(fake, data='{"Id": 47')

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"


def test_missing_fields_are_422_failed_validation_in_the_laminas_shape(fake):
    response = call(fake, payload={"Action": "Add"})

    problem = response.json()
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert problem["detail"] == "Failed Validation"
    assert set(problem["validation_messages"]) == {
        "Id",
        "CancelDate",
        "CancelTimestamp",
        "CancelReason",
        "UserId",
    }
    assert problem["validation_messages"]["Id"] == {
        "isEmpty": "Value is required and can't be empty"
    }


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("Id", "4711", "notInt"),
        ("CancelDate", "01.03.2026", "dateFalseFormat"),
        ("CancelDate", "2026-02-30", "dateFalseFormat"),
        ("CancelTimestamp", "2026-02-20T10:15:00Z", "dateFalseFormat"),
        ("UserId", "jane.doe", "regexNotMatch"),
        ("Action", "Cancel", "notInArray"),
    ],
)
def test_malformed_fields_are_422_naming_the_field_and_rule(fake, field, value, rule):
    response = call(fake, payload=body(**{field: value}))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"][field]) == [rule]
    assert fake.received_count(4711) == 0


def test_a_delete_request_saying_add_is_422(fake):
    response = call(fake, "DELETE", body(Action="Add"))

    assert response.status_code == 422
    assert "Action" in response.json()["validation_messages"]


def test_an_order_id_it_does_not_know_is_404_and_changes_nothing(fake):
    response = call(fake, payload=body(Id=4712))

    assert response.status_code == 404
    assert response.headers["Allow"] == "PUT, DELETE"
    assert fake.orders == {}


def test_by_default_it_knows_no_order():
    with CallistoFake() as fake:
        assert call(fake, payload=body()).status_code == 404


def test_a_field_the_seed_does_not_define_is_422_naming_it(fake):
    response = call(fake, payload=body(CancelComment="x"))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["CancelComment"]
    assert fake.received_count(4711) == 0


def test_a_delete_without_a_body_type_is_not_415(fake):
    response = call(fake, "DELETE", headers={"Content-Type": None})

    assert response.status_code == 422  # Laminas checks the type of a body only


def test_a_delete_with_a_body_but_no_body_type_is_415(fake):
    response = call(fake, "DELETE", body(Action="Delete"), headers={"Content-Type": None})

    assert response.status_code == 415


def test_a_non_ascii_reason_is_accepted(fake):
    response = call(fake, payload=body(CancelReason="Teslimat çok gecikti – zu spät"))

    assert response.status_code == 200
    assert fake.orders[4711]["CancelReason"] == "Teslimat çok gecikti – zu spät"


def test_other_methods_are_405_with_allow(fake):
    response = call(fake, "GET")

    assert response.status_code == 405
    assert response.headers["Allow"] == "PUT, DELETE"


def test_fail_next_answers_the_status_without_doing_anything_then_recovers(fake):
    fake.fail_next(1, status=503)

    failed = call(fake, payload=body())
    ok = call(fake, payload=body())

    assert failed.status_code == 503
    assert failed.json()["status"] == 503
    assert ok.status_code == 200
    assert fake.received_count(4711) == 1


def test_drop_next_hangs_up_after_doing_the_work(fake):
    fake.drop_next(1)

    with pytest.raises(requests.ConnectionError):
        call(fake, payload=body())

    assert fake.is_cancelled(4711)


def test_drop_next_without_processing_changes_nothing(fake):
    fake.drop_next(1, process=False)

    with pytest.raises(requests.ConnectionError):
        call(fake, payload=body())

    assert not fake.is_cancelled(4711)


def test_delay_next_outlasts_a_short_client_timeout(fake):
    fake.delay_next(1, seconds=1.0)

    with pytest.raises(requests.Timeout):
        call(fake, payload=body(), timeout=0.2)


def test_the_http_control_api_sets_faults_lists_requests_and_resets(fake):
    control = FakeControl(fake.url)

    control.fail_next(1, status=500)
    assert call(fake, payload=body()).status_code == 500
    assert call(fake, payload=body()).status_code == 200
    assert [r["body"]["Id"] for r in control.requests()] == [4711, 4711]
    assert control.state()["orders"]["4711"]["cancelled"] is True

    control.reset()
    assert control.requests() == []
    assert fake.orders == {}


def test_the_http_control_api_sets_known_ids(fake):
    FakeControl(fake.url).set_known_ids([1])

    assert call(fake, payload=body()).status_code == 404
    FakeControl(fake.url).set_known_ids([4711])
    assert call(fake, payload=body()).status_code == 200
