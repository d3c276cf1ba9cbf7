"""Contract test: what Storno sends to JS7, and what the fake answers, against JOC's own schemas
(docs/contracts/js7/*.resolved.json, sos-berlin/js7-api-schemas)."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from cancellations.models import CancellationItem, CancellationLine, CancellationStatus
from providers import js7
from providers.base import Action, ProviderConfig
from providers.contracts import schema, schema_errors
from providers.fakes.js7 import DEFAULT_CONTROLLER, Js7Fake
from providers.js7 import Js7Adapter
from tests.factories import (
    CancellationFactory,
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
)

CANCEL = schema("js7/cancelOrders.resolved.json")
OK = schema("js7/ok.resolved.json")
ERROR420 = schema("js7/error420.resolved.json")
JS7_IDS = {"js7ControllerId": DEFAULT_CONTROLLER, "js7OrderIds": ["#2027-01-15#T1-shop"]}

pytestmark = pytest.mark.django_db


def adapter(fake=None) -> Js7Adapter:
    url = fake.url if fake else "http://127.0.0.1:9"
    return Js7Adapter(
        ProviderConfig(kind="js7", base_url=url, username="storno", password="js7-fake-password")
    )


def order(**external_ids):
    return OrderFactory(external_ids={**JS7_IDS, **external_ids})


def whole():
    return CancellationFactory(order=order())


def partial():
    cancellation = CancellationFactory(order=order(), is_whole_order=False)
    item = OrderItemFactory(order=cancellation.order, quantity=3)
    CancellationItem.objects.create(cancellation=cancellation, order_item=item, quantity=1)
    return cancellation


def with_lines():
    cancellation = CancellationFactory(order=order())
    CancellationLine.objects.create(
        cancellation=cancellation,
        type="credit",
        description="Goodwill",
        unit_price_amount=Decimal("5.00"),
        unit_price_currency="EUR",
        quantity=1,
    )
    return cancellation


def revoked():
    return CancellationFactory(order=order(), status=CancellationStatus.REVOKED)


def scheduled():
    return CancellationFactory(order=order(), churn_time=timezone.now() + timedelta(days=30))


def killing():
    return CancellationFactory(order=order(), kill_running=True)


def many_orders():
    ids = [f"#2027-01-15#T{n}-shop" for n in range(40)] + ["#2027-01-15#T1-shop"]
    return CancellationFactory(order=order(js7OrderIds=ids))


def long_texts():
    return CancellationFactory(
        order=order(),
        reason=CancellationReasonFactory(subject="<Grund> " + "x" * 90),
        audit_comment="<b>" + "ü" * 252,
        audit_ticket_link="https://tickets.example/" + "t" * 231,
        audit_time_spent=2**31 - 1,
    )


def non_ascii():
    return CancellationFactory(
        order=order(js7OrderIds=["#2027-01-15#T1-Straße", "#日本-1"]),
        reason=CancellationReasonFactory(subject="Kunde storniert wegen Umzug — İzmir"),
        audit_comment="Müşteri taşınıyor",
        audit_time_spent=0,
    )


CASES = [
    whole,
    partial,
    with_lines,
    scheduled,
    revoked,
    killing,
    many_orders,
    long_texts,
    non_ascii,
]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_every_outbound_body_validates_against_cancel_orders(make, settings):
    settings.STORNO_PUBLIC_URL = "https://storno.example.com"

    body = adapter().build_payload(make())

    assert schema_errors(body, CANCEL) == []


def test_a_revoke_sends_nothing_to_validate():
    result = adapter().deliver(whole(), Action.REVOKE)

    assert result.request_excerpt == ""


@pytest.fixture
def fake():
    js7.forget_tokens()
    with Js7Fake(orders={DEFAULT_CONTROLLER: ["#2027-01-15#T1-shop"]}) as running:
        yield running
    js7.forget_tokens()


def test_the_fake_received_only_bodies_that_validate(fake):
    cancellation = whole()

    adapter(fake).deliver(cancellation, Action.ADD)
    adapter(fake).deliver(cancellation, Action.ADD)  # JOC-161 the second time

    bodies = fake.cancel_bodies()
    assert len(bodies) == 2
    assert [schema_errors(body, CANCEL) for body in bodies] == [[], []]


def post_cancel(fake, body):
    token = requests.post(
        fake.url + "/joc/api/authentication/login", auth=(fake.username, fake.password), timeout=5
    ).headers["X-Access-Token"]
    headers = {"Content-Type": "application/json", "X-Access-Token": token}
    return requests.post(
        fake.url + "/joc/api/orders/cancel", data=json.dumps(body), headers=headers, timeout=5
    )


@pytest.mark.parametrize(
    ("body", "status", "response_schema"),
    [
        ({"controllerId": DEFAULT_CONTROLLER, "orderIds": ["#2027-01-15#T1-shop"]}, 200, OK),
        ({"controllerId": DEFAULT_CONTROLLER, "orderIds": ["#unknown"]}, 420, ERROR420),
        ({"controllerId": DEFAULT_CONTROLLER, "dateFrom": "0", "dateTo": "1d"}, 420, ERROR420),
        ({"controllerId": DEFAULT_CONTROLLER, "states": ["DONE"]}, 420, ERROR420),
    ],
    ids=["ok", "JOC-161", "JOC-400", "JOC-420"],
)
def test_the_fakes_answers_validate_against_jocs_response_schemas(
    fake, body, status, response_schema
):
    response = post_cancel(fake, body)

    assert response.status_code == status
    assert schema_errors(response.json(), response_schema) == []
