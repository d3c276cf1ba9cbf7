"""The strict Rebilly fake answers as docs/contracts/rebilly/ says: order cancellations,
order reactivations, its known orders, completion at churnTime, and its problem shapes."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from backoffice.management.commands import rundemo
from providers.contracts import load, schema, schema_errors
from providers.fakes.faults import FakeControl
from providers.fakes.rebilly import RebillyFake
from tests.factories import OrderFactory

CANCELLATION = schema("rebilly/OrderCancellation.resolved.json")
REACTIVATION = schema("rebilly/OrderReactivation.resolved.json")


@pytest.fixture(scope="module")
def server():
    with RebillyFake(orders=["ord_1"]) as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.known_ids = {"ord_1"}
    server.renewal_times = {}
    server.auto_complete = True
    server.clock = lambda: datetime.now(UTC)
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


def headers_for(fake, **changes):
    sent = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "REB-APIKEY": fake.api_key,
    }
    sent.update(changes)
    return {k: v for k, v in sent.items() if v}


def put(fake, payload=None, *, cancellation_id="cnl_1", headers=None, data=None, timeout=5):
    url = f"{fake.base_url}/order-cancellations/{cancellation_id}"
    data = data if data is not None else json.dumps(payload if payload is not None else body())
    return requests.put(
        url, data=data, headers=headers_for(fake, **(headers or {})), timeout=timeout
    )


def get(fake, path):
    return requests.get(f"{fake.base_url}/{path}", headers=headers_for(fake), timeout=5)


def reactivate(fake, payload=None):
    payload = payload if payload is not None else {"orderId": "ord_1", "description": "Undo"}
    url = f"{fake.base_url}/order-reactivations"
    return requests.post(url, json=payload, headers=headers_for(fake), timeout=5)


def response_schema(paths_file, path, method, status):
    operation = load(paths_file)[path][method]
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]


def later(fake, **delta):
    moment = datetime.now(UTC) + timedelta(**delta)
    fake.clock = lambda: moment


# --- the upsert ---------------------------------------------------------------------------------
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


@pytest.mark.parametrize(
    "payload",
    [body(), body(lineItems=[]), body(churnTimePolicy="at-next-renewal", prorated=True)],
    ids=["line items", "no line items", "at next renewal"],
)
def test_every_cancellation_it_answers_validates_against_the_schema(fake, payload):
    created = put(fake, payload)
    again = put(fake, payload)
    read = get(fake, "order-cancellations/cnl_1")

    for response in (created, again, read):
        assert schema_errors(response.json(), CANCELLATION) == []


def test_read_only_fields_in_the_body_are_ignored(fake):
    payload = body(id="cnl_other", appliedInvoiceId="in_x", lineItemSubtotal={"amount": 1})

    resource = put(fake, payload).json()

    assert resource["id"] == "cnl_1"
    assert resource["appliedInvoiceId"] != "in_x"
    assert resource["lineItemSubtotal"] == {"amount": 19.9, "currency": "EUR"}


def test_at_next_renewal_takes_effect_at_the_orders_renewal(fake):
    fake.add_orders(["ord_1"], renewal_time=datetime(2031, 5, 1, tzinfo=UTC))

    resource = put(fake, body(churnTimePolicy="at-next-renewal")).json()

    assert resource["churnTime"] == "2031-05-01T00:00:00Z"


def test_status_revoked_revokes_and_a_revoked_one_cannot_be_confirmed_again(fake):
    put(fake)
    revoked = put(fake, body(status="revoked"))
    confirmed = put(fake, body())

    assert revoked.json()["status"] == "revoked"
    assert confirmed.status_code == 422
    assert confirmed.json()["invalidFields"][0]["field"] == "status"


# --- completion at churnTime --------------------------------------------------------------------
def test_a_cancellation_whose_churn_time_has_passed_is_completed_at_once(fake):
    response = put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    assert response.json()["status"] == "completed"


def test_a_confirmed_cancellation_is_completed_when_its_churn_time_is_reached(fake):
    churn = datetime.now(UTC) + timedelta(hours=1)
    put(fake, body(churnTime=churn.strftime("%Y-%m-%dT%H:%M:%SZ")))
    before = get(fake, "order-cancellations/cnl_1").json()["status"]

    later(fake, hours=2)

    assert before == "confirmed"
    assert get(fake, "order-cancellations/cnl_1").json()["status"] == "completed"


def test_without_auto_complete_it_stays_confirmed(fake):
    fake.auto_complete = False

    assert put(fake, body(churnTime="2020-01-01T00:00:00Z")).json()["status"] == "confirmed"


def test_a_completed_cancellation_refuses_any_change_with_422(fake):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    revoke = put(fake, body(churnTime="2020-01-01T00:00:00Z", status="revoked"))
    changed = put(fake, body(churnTime="2020-01-01T00:00:00Z", reason="other"))

    assert (revoke.status_code, changed.status_code) == (422, 422)
    assert revoke.json()["invalidFields"][0]["field"] == "status"
    assert schema_errors(revoke.json(), response_schema(*PUT, 422)) == []
    assert fake.cancellation("cnl_1")["status"] == "completed"


def test_the_same_body_again_after_completion_is_accepted_unchanged(fake):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    again = put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    assert (again.status_code, again.json()["status"]) == (200, "completed")


# --- what it refuses ----------------------------------------------------------------------------
PUT = ("rebilly/order-cancellations.paths.resolved.json", "/order-cancellations/{id}", "put")


def test_a_missing_api_key_is_401_unauthorized_problem(fake):
    response = put(fake, headers={"REB-APIKEY": ""})

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["title"] == "Unauthorized"
    assert schema_errors(response.json(), response_schema(*PUT, 401)) == []
    assert fake.cancellations == {}


def test_a_wrong_api_key_is_401(fake):
    assert put(fake, headers={"REB-APIKEY": "nope"}).status_code == 401


def test_the_key_of_one_organization_is_403_at_another(fake):
    url = f"{fake.url}/organizations/org_other/order-cancellations/cnl_1"
    response = requests.put(url, json=body(), headers=headers_for(fake), timeout=5)

    assert response.status_code == 403
    assert schema_errors(response.json(), response_schema(*PUT, 403)) == []


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
        ({"orderId": 17}, "orderId"),
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
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EURO",
                         "quantity": 1}]}, "lineItems.0.unitPriceCurrency"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR",
                         "quantity": 1.5}]}, "lineItems.0.quantity"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR"}]},
         "lineItems.0.quantity"),
        ({"lineItems": [{"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR",
                         "quantity": 1, "periodEndTime": "tomorrow"}]},
         "lineItems.0.periodEndTime"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_422_with_invalid_fields_in_dot_notation(fake, changes, field):
    payload = {k: v for k, v in body(**changes).items() if v is not None}

    response = put(fake, payload)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["invalidFields"]] == [field]
    assert schema_errors(response.json(), response_schema(*PUT, 422)) == []
    assert fake.cancellations == {}


def test_an_id_outside_the_pattern_is_422(fake):
    response = put(fake, cancellation_id="a b")

    assert response.status_code == 422
    assert response.json()["invalidFields"][0]["field"] == "id"


def test_an_order_it_does_not_know_is_422_on_order_id(fake):
    response = put(fake, body(orderId="ord_2"))

    assert response.status_code == 422
    assert response.json()["invalidFields"] == [
        {"field": "orderId", "message": "Order ord_2 not found."}
    ]
    assert fake.cancellations == {}


def test_orders_can_be_added_over_the_control_api(fake):
    FakeControl(fake.url).set_known_ids(["ord_1", "ord_2"])

    assert put(fake, body(orderId="ord_2")).status_code == 201


def test_get_returns_the_resource_and_404_for_an_unknown_id(fake):
    put(fake)
    missing = get(fake, "order-cancellations/cnl_2")

    assert get(fake, "order-cancellations/cnl_1").json()["id"] == "cnl_1"
    assert missing.status_code == 404
    assert schema_errors(missing.json(), response_schema(*PUT[:2], "get", 404)) == []


def test_delete_is_405(fake):
    url = f"{fake.base_url}/order-cancellations/cnl_1"
    response = requests.delete(url, headers={"REB-APIKEY": fake.api_key}, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT"


def test_a_429_carries_the_reset_as_a_unix_timestamp(fake):
    fake.fail_next(1, status=429)

    response = put(fake)

    reset = int(response.headers["X-RateLimit-Retry-After"])
    assert response.status_code == 429
    assert 0 < reset - datetime.now(UTC).timestamp() <= 61
    assert schema_errors(response.json(), response_schema(*PUT, 429)) == []
    assert fake.cancellations == {}


# --- reactivations ------------------------------------------------------------------------------
REACTIVATIONS = ("rebilly/order-reactivations.paths.resolved.json", "/order-reactivations", "post")


def test_reactivating_after_completion_makes_a_reactivation_of_that_cancellation(fake):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    response = reactivate(fake)

    resource = response.json()
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"/order-reactivations/{resource['id']}")
    assert resource["orderId"] == "ord_1"
    assert resource["cancellationId"] == "cnl_1"
    assert resource["description"] == "Undo"
    assert schema_errors(resource, REACTIVATION) == []
    assert fake.cancellation("cnl_1")["status"] == "completed"


def test_reactivating_before_completion_revokes_the_confirmed_cancellation(fake):
    put(fake)

    response = reactivate(fake)

    assert response.status_code == 201
    assert fake.cancellation("cnl_1")["status"] == "revoked"


def test_reactivating_an_active_order_is_409(fake):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))
    reactivate(fake)

    response = reactivate(fake)

    assert response.status_code == 409
    assert schema_errors(response.json(), response_schema(*REACTIVATIONS, 409)) == []
    assert len(fake.reactivations) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"orderId": "ord_2"}, "orderId"),
        ({"description": "Undo"}, "orderId"),
        ({"orderId": "ord_1", "description": "x" * 256}, "description"),
        ({"orderId": "ord_1", "effectiveTime": "now"}, "effectiveTime"),
    ],
)
def test_an_invalid_reactivation_is_422(fake, payload, field):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))

    response = reactivate(fake, payload)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["invalidFields"]] == [field]
    assert schema_errors(response.json(), response_schema(*REACTIVATIONS, 422)) == []
    assert fake.reactivations == {}


def test_reactivations_are_listed_by_filter_and_read_by_id(fake):
    put(fake, body(churnTime="2020-01-01T00:00:00Z"))
    created = reactivate(fake).json()

    mine = get(fake, "order-reactivations?filter=orderId:ord_1&limit=10")
    others = get(fake, "order-reactivations?filter=orderId:ord_2")

    assert mine.json() == [created]
    assert mine.headers["Pagination-Total"] == "1"
    assert others.json() == []
    assert get(fake, f"order-reactivations/{created['id']}").json() == created
    assert get(fake, "order-reactivations/ord_rct_nope").status_code == 404


# --- faults -------------------------------------------------------------------------------------
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


# --- the demo -----------------------------------------------------------------------------------
def test_the_demo_tells_the_fake_the_rebilly_ids_of_its_orders(db):
    OrderFactory(external_ids={"rebilly": "ord_2612-10001"})
    OrderFactory(external_ids={"callisto": "400001"})

    with RebillyFake() as fresh:
        rundemo.Command()._seed_rebilly(fresh)

        assert fresh.known_ids == {"ord_2612-10001"}
