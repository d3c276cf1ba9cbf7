"""The Rebilly adapter over real HTTP against the strict fake, for every answer and fault."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cancellations.models import CancellationLine
from providers.base import Action, Outcome, ProviderConfig
from providers.fakes.rebilly import RebillyFake
from providers.rebilly import RebillyAdapter
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationFactory, OrderFactory


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


def adapter_for(fake, **config):
    values = {"kind": "rebilly", "base_url": fake.base_url, "token": fake.api_key, "timeout": 2.0}
    values.update(config)
    return RebillyAdapter(ProviderConfig(**values))


@pytest.fixture
def cancellation(db):
    cancellation = CancellationFactory(
        id="cnl_0123456789abcdef01234567",
        order=OrderFactory(external_ids={"rebilly": "ord_01HRF27SATGE"}),
        churn_time=datetime(2030, 3, 1, tzinfo=UTC),
        description="Customer moved abroad",
        canceled_by="customer",
        prorated=True,
    )
    CancellationLine.objects.create(
        cancellation=cancellation,
        type="debit",
        description="Early termination fee",
        unit_price_amount=Decimal("9.95"),
        unit_price_currency="EUR",
        quantity=2,
        period_start=datetime(2030, 2, 1, tzinfo=UTC),
        period_end=datetime(2030, 3, 1, tzinfo=UTC),
    )
    return cancellation


def test_it_applies_to_orders_with_a_rebilly_id(cancellation, fake):
    assert adapter_for(fake).applies_to(cancellation)


def test_it_does_not_apply_to_orders_without_a_rebilly_id(db, fake):
    cancellation = CancellationFactory(order=OrderFactory(external_ids={"callisto": "1"}))

    assert not adapter_for(fake).applies_to(cancellation)


def test_an_add_upserts_under_our_own_id_with_the_spec_fields(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    request = fake.received[-1]
    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 201
    assert request.method == "PUT"
    assert request.path.endswith("/order-cancellations/cnl_0123456789abcdef01234567")
    assert request.headers["reb-apikey"] == fake.api_key
    assert request.json() == {
        "orderId": "ord_01HRF27SATGE",
        "churnTime": "2030-03-01T00:00:00Z",
        "prorated": True,
        "reason": "other",
        "canceledBy": "customer",
        "description": "Customer moved abroad",
        "status": "confirmed",
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 9.95,
                "unitPriceCurrency": "EUR",
                "quantity": 2,
                "description": "Early termination fee",
                "periodStartTime": "2030-02-01T00:00:00Z",
                "periodEndTime": "2030-03-01T00:00:00Z",
            }
        ],
    }


def test_the_references_rebilly_gave_back_are_returned(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    stored = fake.cancellations[cancellation.pk]
    assert result.references == {
        "id": cancellation.pk,
        "status": "confirmed",
        "proratedInvoiceId": stored["proratedInvoiceId"],
        "appliedInvoiceId": stored["appliedInvoiceId"],
        "lineItemSubtotal": {"amount": 19.9, "currency": "EUR"},
    }


def test_the_churn_time_policy_is_sent_only_when_set(cancellation, fake):
    adapter = adapter_for(fake)
    assert "churnTimePolicy" not in adapter.build_payload(cancellation, Action.ADD)

    cancellation.churn_time_policy = "at-next-renewal"

    assert adapter.build_payload(cancellation, Action.ADD)["churnTimePolicy"] == "at-next-renewal"


def test_the_reason_is_sent_as_its_rebilly_mapping(cancellation, fake):
    ReasonMapping.objects.create(
        reason=cancellation.reason, provider_kind=ProviderKind.REBILLY, value="too-expensive"
    )

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.received[-1].json()["reason"] == "too-expensive"


def test_a_mapping_rebilly_does_not_know_is_sent_as_other(cancellation, fake):
    ReasonMapping.objects.create(
        reason=cancellation.reason, provider_kind=ProviderKind.REBILLY, value="bored"
    )

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert fake.received[-1].json()["reason"] == "other"


def test_a_revoke_puts_status_revoked(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)

    result = adapter.deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 200
    assert result.references["status"] == "revoked"
    assert fake.cancellations[cancellation.pk]["status"] == "revoked"


def test_a_retry_after_a_lost_answer_is_an_idempotent_upsert(cancellation, fake):
    adapter = adapter_for(fake)
    fake.drop_next(1)  # Rebilly stores it, then the answer is lost

    first = adapter.deliver(cancellation, Action.ADD)
    second = adapter.deliver(cancellation, Action.ADD)

    assert (first.outcome, second.outcome) == (Outcome.RETRY, Outcome.DELIVERED)
    assert fake.effects(cancellation.pk) == ["created", "unchanged"]
    assert len(fake.cancellations) == 1


def test_revoking_what_rebilly_already_completed_fails_with_its_message(cancellation, fake):
    fake.auto_complete = True
    cancellation.churn_time = datetime(2020, 1, 1, tzinfo=UTC)
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)

    result = adapter.deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 422
    assert "status: A completed cancellation may not be changed." in result.message


def test_a_validation_error_fails_with_the_invalid_fields(cancellation, fake):
    fake.known_ids = {"ord_other"}

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.message == "Invalid data sent.; orderId: Order ord_01HRF27SATGE not found."


def test_a_wrong_api_key_is_a_credentials_problem(cancellation, fake):
    result = adapter_for(fake, token="wrong").deliver(cancellation, Action.ADD)

    assert (result.outcome, result.status_code) == (Outcome.FAILED, 401)
    assert result.credentials_problem


def test_a_403_is_a_credentials_problem(cancellation, fake):
    fake.fail_next(1, status=403)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.credentials_problem) == (Outcome.FAILED, True)


def test_a_missing_api_key_fails_without_a_call(cancellation, fake):
    result = adapter_for(fake, token="").deliver(cancellation, Action.ADD)

    assert (result.outcome, result.credentials_problem) == (Outcome.FAILED, True)
    assert fake.received == []


@pytest.mark.parametrize("status", [406, 415])
def test_a_refused_format_is_a_bug(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.bug) == (Outcome.FAILED, True)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert fake.cancellations == {}


@pytest.mark.parametrize("status", [400, 404, 409])
def test_other_statuses_fail(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == status


def test_a_timeout_is_retried(cancellation, fake):
    fake.delay_next(1, seconds=1.0)

    result = adapter_for(fake, timeout=0.2).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code is None


def test_a_dropped_connection_is_retried(cancellation, fake):
    fake.drop_next(1, process=False)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY


def test_the_recorded_request_leaves_out_the_api_key(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.api_key not in result.request_excerpt
    assert '"orderId": "ord_01HRF27SATGE"' in result.request_excerpt
    assert result.response_excerpt.startswith("HTTP 201")
