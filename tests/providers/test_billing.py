"""The billing engine's cancelServiceItems (AEB, docs/contracts/billing/): the adapter over real
HTTP against the strict fake, and the way through the outbox."""

import base64

import pytest

from cancellations import service_items
from cancellations.models import AuditEntry
from cancellations.services import revoking, writing
from providers import dispatch
from providers.base import Action, Outcome, ProviderConfig
from providers.billing import BillingAdapter, reason_of_reversal
from providers.fakes.billing import DEFAULT_USER_NAME, BillingFake
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import (
    CancellationReasonFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)

API = AuditEntry.Via.API
SETTINGS = (
    "BILLING_CLIENT_SYSTEM_ID",
    "BILLING_CLIENT_IDENT_CODE",
    "BILLING_USER_NAME",
)


@pytest.fixture(scope="module")
def server():
    with BillingFake() as running:
        yield running


@pytest.fixture
def fake(server, monkeypatch):
    for name in SETTINGS:  # only what each test configures
        monkeypatch.delenv(name, raising=False)
    server.reset()
    return server


def adapter_for(fake, **config):
    values = {
        "kind": "billing",
        "base_url": fake.base_url,
        "username": fake.username,
        "password": fake.password,
        "timeout": 2.0,
        "extra": {
            "client_system_id": "STORNO-TEST",
            "client_ident_code": fake.client_ident_code,
            "user_name": DEFAULT_USER_NAME,
        },
    }
    values.update(config)
    return BillingAdapter(ProviderConfig(**values))


@pytest.fixture
def agent_user(db):
    return UserFactory(username="jdoe")


def cancel_items(*items, actor):
    result = service_items.cancel_service_items(
        item_ids=[item.billing_item_id for item in items], actor=actor, via=API
    )
    assert not result.has_errors
    return result.cancellations[0]


def cancel_whole_order(order, actor):
    return writing.cancel_order(order, reason=CancellationReasonFactory(), actor=actor, via=API)


@pytest.fixture
def service_item(db, fake):
    """A service item with two open settlement items, known to the engine by its billing id."""
    item = OrderItemFactory(subscription=True, billed=True)
    SettlementItemFactory.create_batch(2, order_item=item)
    fake.add_service_item(item.billing_item_id, ["open", "open"])
    return item


@pytest.fixture
def cancellation(service_item, agent_user):
    """A completed cancellation of the service item (and a plain item beside it)."""
    CancellationReasonFactory(subject="Too expensive")
    OrderItemFactory(order=service_item.order)
    return cancel_items(service_item, actor=agent_user)


def engine_state(fake, item):
    return fake.state()["serviceItems"][item.billing_item_id]


# --- what is sent ------------------------------------------------------------------------------


def test_it_applies_to_a_cancellation_that_takes_away_a_service_item(cancellation, fake):
    assert adapter_for(fake).applies_to(cancellation)


def test_it_does_not_apply_to_a_cancellation_of_plain_items(fake, agent):
    CancellationReasonFactory()
    cancellation = cancel_items(OrderItemFactory(billed=True), actor=agent)

    assert not adapter_for(fake).applies_to(cancellation)


def test_an_add_posts_the_request_dto_with_http_basic(cancellation, service_item, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    request = fake.received[-1]
    assert result.outcome == Outcome.DELIVERED
    assert request.method == "POST"
    assert request.path == "/billing/rest/BillingBFBean/cancelServiceItems"
    credentials = base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.json() == {
        "clientSystemId": "STORNO-TEST",
        "clientIdentCode": fake.client_ident_code,
        "userName": DEFAULT_USER_NAME,
        "resultLanguageIsoCodes": ["en", "de"],
        "reasonOfReversal": "Too expensive (by jdoe)",
        "items": [{"itemId": service_item.billing_item_id}],
    }
    assert engine_state(fake, service_item)["cancelled"] is True


def test_the_item_id_is_the_billing_item_id_not_storno_s_own(cancellation, service_item, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.calls[-1]["items"] == [{"itemId": service_item.billing_item_id}]
    assert str(service_item.pk) not in fake.state()["serviceItems"]


def test_the_reason_is_the_billing_mapping_and_the_login_always_fits():
    long_reason = "Ü" * 300

    assert reason_of_reversal(long_reason, "jdoe") == "Ü" * 240 + " (by jdoe)"
    assert len(reason_of_reversal(long_reason, "jdoe")) == 250
    assert reason_of_reversal(long_reason, "") == "Ü" * 250


def test_the_reason_of_reversal_uses_the_reasons_billing_mapping(service_item, agent_user, fake):
    reason = CancellationReasonFactory(subject="Zu teuer", ordering=1)
    ReasonMapping.objects.create(reason=reason, provider_kind=ProviderKind.BILLING, value="PRICE")
    cancellation = cancel_items(service_item, actor=agent_user)

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.calls[-1]["reasonOfReversal"] == "PRICE (by jdoe)"


def test_an_item_without_a_billing_id_is_left_out_and_the_delivery_says_so(
    service_item, agent_user, fake
):
    unbilled = OrderItemFactory(order=service_item.order, sku="ROUTER-X")
    SettlementItemFactory(order_item=unbilled)
    cancellation = cancel_whole_order(service_item.order, agent_user)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert fake.calls[-1]["items"] == [{"itemId": service_item.billing_item_id}]
    assert f"ROUTER-X (#{unbilled.pk})" in result.message
    assert "by hand" in result.message


def test_a_cancellation_where_no_item_has_a_billing_id_is_skipped_saying_why(agent_user, fake):
    item = OrderItemFactory(sku="ROUTER-X")
    SettlementItemFactory(order_item=item)
    cancellation = cancel_whole_order(item.order, agent_user)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.SKIPPED
    assert f"ROUTER-X (#{item.pk})" in result.message
    assert fake.received == []


# --- what comes back ---------------------------------------------------------------------------


def test_the_engines_refusal_fails_with_its_messages(cancellation, service_item, fake):
    fake.add_service_item(service_item.billing_item_id, ["open", "settled"])

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert f"{service_item.billing_item_id}: Settlement item" in result.message
    assert "can no longer be removed" in result.message
    assert engine_state(fake, service_item)["cancelled"] is False


def test_an_item_the_engine_does_not_know_fails_naming_it(cancellation, service_item, fake):
    fake.reset()  # the engine knows no service item

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert f"Service item {service_item.billing_item_id} was not found" in result.message


def test_a_refusal_with_only_retryable_errors_is_retried(cancellation, fake):
    fake.retryable_next(1)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert "locked" in result.message


def test_a_retransmission_after_a_lost_answer_counts_as_delivered(cancellation, fake):
    fake.drop_next(1, process=True)  # the engine cancels, then the answer is lost
    first = adapter_for(fake).deliver(cancellation, Action.ADD)

    again = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert first.outcome == Outcome.RETRY
    assert again.outcome == Outcome.DELIVERED
    assert "had cancelled" in again.message


def test_items_cancelled_already_are_left_out_of_a_second_request(service_item, agent_user, fake):
    CancellationReasonFactory()
    other = OrderItemFactory(order=service_item.order, billed=True)
    SettlementItemFactory(order_item=other)
    fake.add_service_item(other.billing_item_id)
    fake.service_items[service_item.billing_item_id]["cancelled"] = True  # by hand, at AEB
    cancellation = cancel_items(service_item, other, actor=agent_user)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert fake.calls[-1]["items"] == [{"itemId": other.billing_item_id}]
    assert engine_state(fake, other)["cancelled"] is True
    assert f"had cancelled {service_item.billing_item_id} already" in result.message


def test_a_user_name_the_engine_does_not_know_fails(cancellation, fake):
    result = adapter_for(
        fake,
        extra={"client_system_id": "S", "client_ident_code": "STORNO", "user_name": "nobody"},
    ).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert "I_EVERYONE" in result.message


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


def test_a_dropped_connection_is_retried(cancellation, service_item, fake):
    fake.drop_next(1, process=False)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert engine_state(fake, service_item)["cancelled"] is False


def test_a_revoke_is_skipped_because_the_engine_cannot_undo(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.SKIPPED
    assert "can't undo" in result.message
    assert fake.received == []
    assert BillingAdapter.supports_revoke is False


# --- configuration -----------------------------------------------------------------------------


def test_missing_configuration_names_each_missing_setting(cancellation, fake):
    result = adapter_for(fake, password="", extra={}).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.credentials_problem
    for name in ("BILLING_PASSWORD", *SETTINGS):
        assert name in result.message
    assert "BILLING_USERNAME" not in result.message
    assert fake.received == []


def test_the_settings_come_from_the_environment(cancellation, fake, monkeypatch):
    monkeypatch.setenv("BILLING_CLIENT_SYSTEM_ID", "FROM-ENV")
    monkeypatch.setenv("BILLING_CLIENT_IDENT_CODE", fake.client_ident_code)
    monkeypatch.setenv("BILLING_USER_NAME", DEFAULT_USER_NAME)

    result = adapter_for(fake, extra={}).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert fake.calls[-1]["clientSystemId"] == "FROM-ENV"


@pytest.mark.parametrize(
    ("key", "value", "name"),
    [
        ("client_system_id", "x" * 21, "BILLING_CLIENT_SYSTEM_ID"),
        ("client_ident_code", "x" * 11, "BILLING_CLIENT_IDENT_CODE"),
    ],
)
def test_a_setting_beyond_aebs_length_is_a_configuration_problem(
    cancellation, fake, key, value, name
):
    extra = {"client_system_id": "S", "client_ident_code": "C", "user_name": "U", key: value}

    result = adapter_for(fake, extra=extra).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert name in result.message
    assert fake.received == []


# --- through the outbox ------------------------------------------------------------------------


def test_a_billing_cancellation_is_delivered_through_the_outbox(
    fake, monkeypatch, agent, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("BILLING_BASE_URL", fake.base_url)
    monkeypatch.setenv("BILLING_USERNAME", fake.username)
    monkeypatch.setenv("BILLING_PASSWORD", fake.password)
    monkeypatch.setenv("BILLING_CLIENT_SYSTEM_ID", "STORNO-TEST")
    monkeypatch.setenv("BILLING_CLIENT_IDENT_CODE", fake.client_ident_code)
    monkeypatch.setenv("BILLING_USER_NAME", DEFAULT_USER_NAME)
    ProviderSetting.objects.create(kind="billing", enabled=True)
    CancellationReasonFactory()
    item = SettlementItemFactory().order_item
    fake.add_service_item(item.billing_item_id)

    with django_capture_on_commit_callbacks(execute=True):
        cancellation = cancel_items(item, actor=agent)

    delivery = Delivery.objects.get(cancellation=cancellation, provider="billing")
    if delivery.status == DeliveryStatus.PENDING:  # no eager worker in this configuration
        dispatch.deliver(delivery.pk)
        delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert fake.calls[-1]["items"] == [{"itemId": item.billing_item_id}]


def test_revoking_a_billing_cancellation_skips_the_engine(db, fake, agent):
    ProviderSetting.objects.create(kind="billing", enabled=True)
    CancellationReasonFactory()
    cancellation = cancel_items(SettlementItemFactory().order_item, actor=agent)
    Delivery.objects.filter(cancellation=cancellation).update(status=DeliveryStatus.DELIVERED)

    revoking.revoke_cancellation(cancellation, actor=agent, via=API)

    revoke = Delivery.objects.get(cancellation=cancellation, action=Action.REVOKE)
    assert revoke.status == DeliveryStatus.SKIPPED


def test_the_demo_seeds_the_fake_so_a_demo_cancellation_is_delivered(fake, agent, monkeypatch):
    from django.core.management import call_command

    from backoffice.management.commands.rundemo import Command as RunDemo
    from cancellations.models import OrderItem
    from providers.management.commands.run_fakes import FAKES
    from providers.registry import get_adapter

    call_command("demo_data", orders=20, stdout=None)
    RunDemo()._seed_billing(fake)
    entry = next(entry for entry in FAKES if entry.name == "billing")
    for name, value in entry.env(fake).items():
        monkeypatch.setenv(name, value)
    item = next(
        item
        for item in OrderItem.objects.exclude(billing_item_id="").filter(cancelled_quantity=0)
        if not item.settlement_items.exclude(state="open").exists() and item.order.is_cancellable
    )
    cancellation = cancel_items(item, actor=agent)

    result = get_adapter("billing").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED, result.message
    assert engine_state(fake, item)["cancelled"] is True
