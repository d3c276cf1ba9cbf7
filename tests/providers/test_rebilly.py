"""The Rebilly adapter over real HTTP against the strict fake, for every answer and fault."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cancellations.models import CancellationLine
from providers import dispatch
from providers.base import Action, Outcome, ProviderConfig
from providers.fakes.rebilly import RebillyFake
from providers.models import Delivery, ProviderSetting
from providers.rebilly import RebillyAdapter, retry_after
from providers.states import DeliveryStatus
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationFactory, OrderFactory
from tests.providers.outbox_support import cancel, revoke

ORDER = "ord_01HRF27SATGE"


@pytest.fixture(scope="module")
def server():
    with RebillyFake(orders=[ORDER]) as running:
        yield running


@pytest.fixture
def fake(server):
    server.reset()
    server.known_ids = {ORDER}
    server.auto_complete = True
    server.retry_after_seconds = 60
    return server


def adapter_for(fake, **config):
    values = {"kind": "rebilly", "base_url": fake.base_url, "token": fake.api_key, "timeout": 2.0}
    values.update(config)
    return RebillyAdapter(ProviderConfig(**values))


@pytest.fixture
def cancellation(db):
    cancellation = CancellationFactory(
        id="cnl_0123456789abcdef01234567",
        order=OrderFactory(external_ids={"rebilly": ORDER}),
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


def completed_at_rebilly(cancellation, fake, adapter):
    """Storno's cancellation, delivered and completed at Rebilly (its churnTime is past)."""
    cancellation.churn_time = datetime(2020, 1, 1, tzinfo=UTC)
    cancellation.revoke_comment = "Kunde bleibt – Rückruf"
    adapter.deliver(cancellation, Action.ADD)
    assert fake.cancellation(cancellation.pk)["status"] == "completed"
    return cancellation


def test_revoking_what_rebilly_completed_reactivates_the_order(cancellation, fake):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)

    result = adapter.deliver(cancellation, Action.REVOKE)

    (reactivation,) = fake.reactivations.values()
    assert result.outcome == Outcome.DELIVERED
    assert result.references == {"reactivationId": reactivation["id"], "status": "reactivated"}
    assert reactivation["orderId"] == ORDER
    assert reactivation["cancellationId"] == cancellation.pk
    assert fake.cancellation(cancellation.pk)["status"] == "completed"


def test_the_reactivation_names_the_undone_cancellation_and_the_comment(cancellation, fake):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)

    adapter.deliver(cancellation, Action.REVOKE)

    sent = [r for r in fake.received if r.method == "POST"][-1]
    assert sent.path.endswith("/order-reactivations")
    assert sent.json() == {
        "orderId": ORDER,
        "description": f"Storno: undo of cancellation {cancellation.pk}: Kunde bleibt – Rückruf",
    }


def test_the_attempt_record_shows_every_request_of_a_reactivation(cancellation, fake):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)

    result = adapter.deliver(cancellation, Action.REVOKE)

    calls = [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake.received[1:]]
    assert calls == [
        ("PUT", cancellation.pk),
        ("GET", cancellation.pk),
        ("GET", "order-reactivations"),
        ("POST", "order-reactivations"),
    ]
    assert result.request_excerpt.count(fake.base_url) == 4
    assert "HTTP 422" in result.response_excerpt and "HTTP 201" in result.response_excerpt
    assert fake.api_key not in result.request_excerpt


def test_a_repeated_revoke_finds_its_reactivation_instead_of_posting_again(cancellation, fake):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)
    first = adapter.deliver(cancellation, Action.REVOKE)  # as if its answer had been lost

    second = adapter.deliver(cancellation, Action.REVOKE)

    assert second.outcome == Outcome.DELIVERED
    assert second.references == first.references
    assert len(fake.reactivations) == 1
    assert [r.method for r in fake.received].count("POST") == 1


def test_a_conflict_rebilly_does_not_explain_fails_with_its_words(cancellation, fake, monkeypatch):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)
    monkeypatch.setattr(
        fake, "_reactivate", lambda request: fake.error_response(409, "Order is active.")
    )

    result = adapter.deliver(cancellation, Action.REVOKE)

    assert (result.outcome, result.status_code) == (Outcome.FAILED, 409)
    assert result.message == (
        f"Rebilly would not reactivate order {ORDER} (HTTP 409): Order is active."
    )


def test_a_revoke_before_completion_does_not_reactivate(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)

    adapter.deliver(cancellation, Action.REVOKE)

    assert fake.reactivations == {}
    assert [r.method for r in fake.received] == ["PUT", "PUT"]


def test_an_outage_while_checking_the_refusal_is_retried(cancellation, fake):
    adapter = adapter_for(fake)
    completed_at_rebilly(cancellation, fake, adapter)
    fake.fail_next(1, status=422)  # the PUT
    fake.fail_next(1, status=503)  # the GET that would tell why

    result = adapter.deliver(cancellation, Action.REVOKE)

    assert result.outcome == Outcome.RETRY
    assert fake.reactivations == {}


def test_an_immediate_cancellation_undone_in_storno_reactivates_the_order_at_rebilly(
    db, fake, monkeypatch
):
    monkeypatch.setenv("REBILLY_API_KEY", fake.api_key)
    ProviderSetting.objects.create(kind="rebilly", base_url=fake.base_url, timeout_seconds=2)
    fake.known_ids.add("ord_1")
    cancellation = cancel()  # effective at once: completed in Storno and at Rebilly
    dispatch.deliver_due()

    revoke(cancellation)
    dispatch.deliver_due()

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert [r["cancellationId"] for r in fake.reactivations.values()] == [cancellation.pk]


def test_an_order_rebilly_does_not_know_fails_with_the_invalid_field(cancellation, fake):
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


@pytest.mark.parametrize("status", [500, 502, 503, 504])
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


# --- the rate limit -----------------------------------------------------------------------------
def test_a_429_is_retried_not_before_rebillys_reset(cancellation, fake):
    fake.retry_after_seconds = 600
    fake.fail_next(1, status=429)
    before = timezone.now()

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert before + timedelta(seconds=598) <= result.retry_after <= before + timedelta(seconds=601)
    assert fake.cancellations == {}


def test_a_rate_limited_delivery_waits_for_the_reset_not_the_backoff(db, fake, monkeypatch):
    monkeypatch.setenv("REBILLY_API_KEY", fake.api_key)
    ProviderSetting.objects.create(kind="rebilly", base_url=fake.base_url, timeout_seconds=2)
    fake.known_ids.add("ord_1")
    fake.retry_after_seconds = 900  # beyond the first backoff (at most 30 s)
    fake.fail_next(1, status=429)
    cancel()
    before = timezone.now()

    dispatch.deliver_due()

    delivery = Delivery.objects.get(provider="rebilly")
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at >= before + timedelta(seconds=898)
    assert dispatch.deliver_due() == 0  # not due before the reset


NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (str(int(NOW.timestamp()) + 90), NOW + timedelta(seconds=90)),  # documented: Unix seconds
        (str(int(NOW.timestamp()) * 1000 + 90000), NOW + timedelta(seconds=90)),  # milliseconds
        ("90", NOW + timedelta(seconds=90)),  # seconds to wait
        ("2027-01-15T12:01:30Z", NOW + timedelta(seconds=90)),
        ("Fri, 15 Jan 2027 12:01:30 GMT", NOW + timedelta(seconds=90)),
        (str(int(NOW.timestamp()) - 5), None),  # past: the backoff decides
        ("soon", None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("9" * 40, None),  # past any clock
        ("", None),
        (None, None),
        (str(int(NOW.timestamp()) + 30 * 86400), NOW + timedelta(days=1)),  # not believed
    ],
)
def test_the_retry_after_header_is_read_in_every_plausible_form(header, expected):
    assert retry_after(header, NOW) == expected
