"""The strict Rebilly fake enforces the order-cancellation upsert's OpenAPI contract."""

import json

import pytest
import requests

from providers.fakes.faults import FakeControl
from providers.fakes.rebilly import RebillyFake


@pytest.fixture(scope="module")
def server():
    with RebillyFake() as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.known_ids = None
    server.auto_complete = False
    return server


def body(**changes):
    payload = {
        "orderId": "ord_1",
        "churnTime": "2030-03-01T00:00:00Z",
        "prorated": False,
        "reason": "too-expensive",
        "canceledBy": "merchant",
        "status": "confirmed",
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 9.95,
                "unitPriceCurrency": "EUR",
                "quantity": 2,
                "description": "Early termination fee",
            }
        ],
    }
    payload.update(changes)
    return payload


def put(fake, payload=None, *, cancellation_id="cnl_1", headers=None, data=None, timeout=5):
    sent = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "REB-APIKEY": fake.api_key,
    }
    sent.update(headers or {})
    url = f"{fake.base_url}/order-cancellations/{cancellation_id}"
    data = data if data is not None else json.dumps(payload if payload is not None else body())
    headers = {k: v for k, v in sent.items() if v}
    return requests.put(url, data=data, headers=headers, timeout=timeout)


def test_a_new_cancellation_is_created_with_201_and_a_location(fake):
    response = put(fake)

    resource = response.json()
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/order-cancellations/cnl_1")
    assert resource["id"] == "cnl_1"
    assert resource["status"] == "confirmed"
    assert resource["lineItemSubtotal"] == {"amount": 19.9, "currency": "EUR"}
    assert resource["appliedInvoiceId"].startswith("in_")
    assert resource["proratedInvoiceId"] is None
    assert fake.effects("cnl_1") == ["created"]


def test_the_same_put_again_is_200_and_changes_nothing(fake):
    first = put(fake).json()
    second = put(fake)

    assert second.status_code == 200
    assert second.json() == first
    assert fake.effects("cnl_1") == ["created", "unchanged"]


def test_a_changed_put_updates_the_resource(fake):
    put(fake)
    response = put(fake, body(reason="did-not-use"))

    assert response.status_code == 200
    assert fake.cancellations["cnl_1"]["reason"] == "did-not-use"
    assert fake.effects("cnl_1") == ["created", "updated"]


def test_status_revoked_revokes_and_a_revoked_one_cannot_be_confirmed_again(fake):
    put(fake)
    revoked = put(fake, body(status="revoked"))
    confirmed = put(fake, body())

    assert revoked.json()["status"] == "revoked"
    assert confirmed.status_code == 422
    assert confirmed.json()["invalidFields"][0]["field"] == "status"


def test_with_auto_complete_a_due_cancellation_is_completed_and_cannot_be_revoked(fake):
    fake.auto_complete = True
    completed = put(fake, body(churnTime="2020-01-01T00:00:00Z"))
    revoke = put(fake, body(churnTime="2020-01-01T00:00:00Z", status="revoked"))

    assert completed.json()["status"] == "completed"
    assert revoke.status_code == 422
    assert fake.cancellations["cnl_1"]["status"] == "completed"


def test_a_missing_api_key_is_401_problem(fake):
    response = put(fake, headers={"REB-APIKEY": ""})

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert fake.cancellations == {}


def test_a_wrong_api_key_is_401(fake):
    assert put(fake, headers={"REB-APIKEY": "nope"}).status_code == 401


def test_an_accept_without_json_is_406(fake):
    assert put(fake, headers={"Accept": "text/html"}).status_code == 406


def test_a_body_that_is_not_json_is_415(fake):
    assert put(fake, headers={"Content-Type": "text/plain"}).status_code == 415


def test_broken_json_is_400(fake):
    assert put(fake, data='{"orderId": ').status_code == 400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"orderId": None}, "orderId"),
        ({"orderId": "x" * 51}, "orderId"),
        ({"reason": "bored"}, "reason"),
        ({"canceledBy": "staff"}, "canceledBy"),
        ({"status": "completed"}, "status"),
        ({"description": "x" * 256}, "description"),
        ({"prorated": "yes"}, "prorated"),
        ({"churnTime": "2030-03-01"}, "churnTime"),
        ({"churnTimePolicy": "later"}, "churnTimePolicy"),
        ({"lineItems": [{"type": "fee", "unitPriceAmount": 1, "unitPriceCurrency": "EUR",
                         "quantity": 1}]}, "lineItems.0.type"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": "9.95", "unitPriceCurrency": "EUR",
                         "quantity": 1}]}, "lineItems.0.unitPriceAmount"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "eur",
                         "quantity": 1}]}, "lineItems.0.unitPriceCurrency"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR",
                         "quantity": 1.5}]}, "lineItems.0.quantity"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR"}]},
         "lineItems.0.quantity"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_422_with_invalid_fields_in_dot_notation(fake, changes, field):
    payload = {k: v for k, v in body(**changes).items() if v is not None}

    response = put(fake, payload)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["invalidFields"]] == [field]
    assert fake.cancellations == {}


def test_an_id_outside_the_pattern_is_422(fake):
    response = put(fake, cancellation_id="a b")

    assert response.status_code == 422
    assert response.json()["invalidFields"][0]["field"] == "id"


def test_an_unknown_order_is_422_on_order_id_when_known_ids_are_set(fake):
    fake.known_ids = {"ord_other"}

    response = put(fake)

    assert response.status_code == 422
    assert response.json()["invalidFields"] == [
        {"field": "orderId", "message": "Order ord_1 not found."}
    ]


def test_get_returns_the_resource_and_404_for_an_unknown_id(fake):
    put(fake)
    headers = {"REB-APIKEY": fake.api_key}
    url = f"{fake.base_url}/order-cancellations/"

    assert requests.get(url + "cnl_1", headers=headers, timeout=5).json()["id"] == "cnl_1"
    assert requests.get(url + "cnl_2", headers=headers, timeout=5).status_code == 404


def test_delete_is_405(fake):
    url = f"{fake.base_url}/order-cancellations/cnl_1"
    response = requests.delete(url, headers={"REB-APIKEY": fake.api_key}, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT"


def test_another_organization_is_404(fake):
    url = f"{fake.url}/organizations/org_other/order-cancellations/cnl_1"
    response = requests.put(url, json=body(), headers={"REB-APIKEY": fake.api_key}, timeout=5)

    assert response.status_code == 404


def test_fail_next_429_carries_the_retry_after_header(fake):
    fake.fail_next(1, status=429)

    response = put(fake)

    assert response.status_code == 429
    assert "X-RateLimit-Retry-After" in response.headers
    assert fake.cancellations == {}


def test_a_dropped_answer_still_applied_the_upsert(fake):
    fake.drop_next(1)

    with pytest.raises(requests.ConnectionError):
        put(fake)

    assert fake.cancellations["cnl_1"]["status"] == "confirmed"


def test_the_http_control_api_drives_faults_from_another_process(fake):
    control = FakeControl(fake.url)
    control.delay_next(1, seconds=1.0)

    with pytest.raises(requests.Timeout):
        put(fake, timeout=0.2)
    assert control.state()["cancellations"]["cnl_1"]["orderId"] == "ord_1"
    assert control.requests()[0]["headers"]["reb-apikey"] == fake.api_key
