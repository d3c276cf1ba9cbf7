"""The billing engine's cancelServiceItems: the adapter over real HTTP against the strict fake,
the fake's own rules, and the way through the outbox."""

import base64

import pytest
import requests

from cancellations import billing, services
from cancellations.models import AuditEntry
from providers import dispatch
from providers.base import Action, Outcome, ProviderConfig
from providers.billing import BillingAdapter
from providers.fakes.billing import BillingFake
from providers.fakes.faults import FakeControl
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)

API = AuditEntry.Via.API


@pytest.fixture(scope="module")
def server():
    with BillingFake() as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.known_ids = None
    return server


def adapter_for(fake, **config):
    values = {
        "kind": "billing",
        "base_url": fake.base_url,
        "username": fake.username,
        "password": fake.password,
        "timeout": 2.0,
        "extra": {"client_system_id": "STORNO-TEST", "client_ident_code": "STORNO"},
    }
    values.update(config)
    return BillingAdapter(ProviderConfig(**values))


@pytest.fixture
def agent_user(db):
    return UserFactory(username="jdoe")


@pytest.fixture
def cancellation(db, agent_user):
    """A completed cancellation of a service item (two open settlement items) and a plain item."""
    CancellationReasonFactory(subject="Too expensive")
    service_item = OrderItemFactory(subscription=True)
    SettlementItemFactory.create_batch(2, order_item=service_item)
    OrderItemFactory(order=service_item.order)
    result = billing.cancel_service_items(
        item_ids=[str(service_item.pk)], actor=agent_user, via=API
    )
    assert not result.has_errors
    return result.cancellations[0]


def item_id(cancellation) -> str:
    return str(billing.service_item_ids(cancellation)[0])


def post(fake, body, *, auth=None, headers=None):
    return requests.post(
        fake.base_url + "/BillingBFBean/cancelServiceItems",
        json=body,
        auth=auth or (fake.username, fake.password),
        headers=headers,
        timeout=5,
    )


def engine_body(*item_ids, **overrides):
    body = {
        "clientSystemId": "STORNO-TEST",
        "clientIdentCode": "STORNO",
        "userName": "jdoe",
        "resultLanguageIsoCodes": ["en"],
        "reasonOfReversal": "Too expensive",
        "items": [{"itemId": i} for i in item_ids],
    }
    body.update(overrides)
    return body


# --- the adapter -------------------------------------------------------------------------------


def test_it_applies_to_a_cancellation_that_takes_away_a_service_item(cancellation, fake):
    assert adapter_for(fake).applies_to(cancellation)


def test_it_does_not_apply_to_a_cancellation_of_plain_items(db, fake, agent):
    item = OrderItemFactory()
    CancellationReasonFactory()
    result = billing.cancel_service_items(item_ids=[str(item.pk)], actor=agent, via=API)

    assert not adapter_for(fake).applies_to(result.cancellations[0])


def test_an_add_posts_the_request_dto_with_http_basic(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    request = fake.received[-1]
    assert result.outcome == Outcome.DELIVERED
    assert request.method == "POST"
    assert request.path == "/billing/rest/BillingBFBean/cancelServiceItems"
    credentials = base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.json() == {
        "clientSystemId": "STORNO-TEST",
        "clientIdentCode": "STORNO",
        "userName": "jdoe",
        "resultLanguageIsoCodes": ["en", "de"],
        "reasonOfReversal": "Too expensive",
        "items": [{"itemId": item_id(cancellation)}],
    }
    assert fake.state()["serviceItems"][item_id(cancellation)]["cancelled"] is True


def test_the_engines_refusal_fails_with_its_messages(cancellation, fake):
    fake.add_service_item(item_id(cancellation), ["open", "settled"])

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert f"{item_id(cancellation)}: Settlement item {item_id(cancellation)}-2" in result.message
    assert fake.state()["serviceItems"][item_id(cancellation)]["cancelled"] is False


def test_a_refusal_with_only_retryable_errors_is_retried(cancellation, fake):
    fake.retryable_next(1)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert "locked" in result.message


def test_items_the_engine_cancelled_already_count_as_delivered(cancellation, fake):
    fake.drop_next(1, process=True)  # the engine cancels, then the answer is lost
    first = adapter_for(fake).deliver(cancellation, Action.ADD)

    again = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert first.outcome == Outcome.RETRY
    assert again.outcome == Outcome.DELIVERED
    assert "already" in again.message


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(500, Outcome.RETRY), (503, Outcome.RETRY), (429, Outcome.RETRY), (404, Outcome.FAILED)],
)
def test_http_errors_become_retry_or_failed(cancellation, fake, status, outcome):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.status_code) == (outcome, status)


def test_wrong_credentials_fail_and_are_flagged(cancellation, fake):
    result = adapter_for(fake, password="wrong").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 401
    assert result.credentials_problem


def test_a_slow_engine_is_retried(cancellation, fake):
    fake.delay_next(1, seconds=1.5)

    result = adapter_for(fake, timeout=0.3).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY


def test_a_dropped_connection_is_retried(cancellation, fake):
    fake.drop_next(1, process=False)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert fake.state()["serviceItems"] == {}


def test_a_revoke_is_skipped_because_the_engine_cannot_undo(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.SKIPPED
    assert "can't undo" in result.message
    assert fake.received == []
    assert BillingAdapter.supports_revoke is False


def test_missing_configuration_fails_without_a_request(cancellation, fake, monkeypatch):
    monkeypatch.delenv("BILLING_CLIENT_SYSTEM_ID", raising=False)

    result = adapter_for(fake, password="", extra={}).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.credentials_problem
    assert "BILLING_PASSWORD" in result.message
    assert "BILLING_CLIENT_SYSTEM_ID" in result.message
    assert fake.received == []


def test_a_client_system_id_over_twenty_characters_is_a_configuration_problem(cancellation, fake):
    adapter = adapter_for(fake, extra={"client_system_id": "x" * 21})

    result = adapter.deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert fake.received == []


# --- the fake ----------------------------------------------------------------------------------


def test_the_fake_is_all_or_nothing_over_http(fake):
    fake.add_service_item("A", ["open"])
    fake.add_service_item("B", ["open", "exported"])

    response = post(fake, engine_body("A", "B"))

    data = response.json()
    assert response.status_code == 200
    assert data["hasErrors"] is True
    codes = [[m["messageIdentCode"] for m in i["messages"]] for i in data["itemResponses"]]
    assert codes == [["NOT_PROCESSED"], ["SETTLEMENT_ITEM_EXPORTED"]]
    assert fake.state()["serviceItems"]["A"]["cancelled"] is False


def test_the_fake_cancels_and_removes_settlement_items(fake):
    fake.add_service_item("A", ["open", "open"])

    data = post(fake, engine_body("A")).json()

    assert data["hasErrors"] is False
    assert all(s["removed"] for s in fake.state()["serviceItems"]["A"]["settlements"])
    assert post(fake, engine_body("A")).json()["itemResponses"][0]["messages"][0][
        "messageIdentCode"
    ] == ("ALREADY_CANCELLED")


def test_the_fake_refuses_unknown_items_when_told_which_exist(fake):
    fake.known_ids = {"A"}

    data = post(fake, engine_body("Z")).json()

    assert data["itemResponses"][0]["messages"][0]["messageIdentCode"] == "SERVICE_ITEM_NOT_FOUND"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"clientSystemId": "x" * 21}, "clientSystemId"),
        ({"clientIdentCode": "x" * 11}, "clientIdentCode"),
        ({"reasonOfReversal": "x" * 251}, "reasonOfReversal"),
        ({"items": [{"itemId": "A"}] * 51}, "items"),
        ({"items": [{"itemId": "x" * 51}]}, "items.0.itemId"),
        ({"resultLanguageIsoCodes": ["deu"]}, "resultLanguageIsoCodes.0"),
        ({"errorFlag": False}, "errorFlag"),
    ],
)
def test_the_fake_enforces_the_field_limits(fake, overrides, field):
    response = post(fake, engine_body("A", **overrides))

    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert fake.calls == []


def test_the_fake_wants_basic_auth(fake):
    response = post(fake, engine_body("A"), auth=(fake.username, "nope"))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_the_fake_answers_json_only(fake):
    assert post(fake, engine_body("A"), headers={"Accept": "application/xml"}).status_code == 406
    response = requests.post(
        fake.base_url + "/BillingBFBean/cancelServiceItems",
        data="<items/>",
        headers={"Content-Type": "application/xml"},
        auth=(fake.username, fake.password),
        timeout=5,
    )
    assert response.status_code == 415


def test_the_fake_answers_in_the_requested_languages(fake):
    data = post(fake, engine_body("A", resultLanguageIsoCodes=["fr", "de", "en"])).json()

    texts = data["itemResponses"][0]["messages"][0]["messageTexts"]
    assert [t["languageISOCode"] for t in texts] == ["de", "en"]
    assert texts[0]["text"].startswith("Leistungsposition A storniert")


def test_the_fake_is_controlled_over_http(fake):
    control = FakeControl(fake.url)
    requests.post(
        f"{fake.url}/_fake/service-items",
        json={"itemId": "S", "settlementStates": ["settled"]},
        timeout=5,
    ).raise_for_status()
    requests.post(
        f"{fake.url}/_fake/faults", json={"kind": "retryable", "count": 1}, timeout=5
    ).raise_for_status()
    control.fail_next(1, status=502)

    assert post(fake, engine_body("A")).status_code == 502
    assert post(fake, engine_body("A")).json()["hasOnlyRetryableErrors"] is True
    assert post(fake, engine_body("S")).json()["hasErrors"] is True
    assert [r["body"]["items"] for r in control.requests()] == [[{"itemId": i}] for i in "AAS"]


# --- through the outbox ------------------------------------------------------------------------


def test_a_billing_cancellation_is_delivered_through_the_outbox(
    db, fake, monkeypatch, agent, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("BILLING_BASE_URL", fake.base_url)
    monkeypatch.setenv("BILLING_USERNAME", fake.username)
    monkeypatch.setenv("BILLING_PASSWORD", fake.password)
    monkeypatch.setenv("BILLING_CLIENT_SYSTEM_ID", "STORNO-TEST")
    ProviderSetting.objects.create(kind="billing", enabled=True)
    CancellationReasonFactory()
    item = OrderItemFactory()
    SettlementItemFactory(order_item=item)

    with django_capture_on_commit_callbacks(execute=True):
        result = billing.cancel_service_items(item_ids=[str(item.pk)], actor=agent, via=API)

    delivery = Delivery.objects.get(cancellation=result.cancellations[0], provider="billing")
    if delivery.status == DeliveryStatus.PENDING:  # no eager worker in this configuration
        dispatch.deliver(delivery.pk)
        delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert fake.calls[-1]["items"] == [{"itemId": str(item.pk)}]


def test_revoking_a_billing_cancellation_skips_the_engine(db, fake, agent):
    ProviderSetting.objects.create(kind="billing", enabled=True)
    CancellationReasonFactory()
    item = OrderItemFactory()
    SettlementItemFactory(order_item=item)
    cancellation = billing.cancel_service_items(
        item_ids=[str(item.pk)], actor=agent, via=API
    ).cancellations[0]
    Delivery.objects.filter(cancellation=cancellation).update(status=DeliveryStatus.DELIVERED)

    services.revoke_cancellation(cancellation, actor=agent, via=API)

    revoke = Delivery.objects.get(cancellation=cancellation, action=Action.REVOKE)
    assert revoke.status == DeliveryStatus.SKIPPED
