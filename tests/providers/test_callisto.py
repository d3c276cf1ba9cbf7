"""The Callisto adapter over real HTTP against the strict fake, for every answer and fault."""

import base64
import socket
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from backoffice.models import StaffProfile
from cancellations.states import CancellationStatus
from providers.base import Action, Outcome, ProviderConfig
from providers.callisto import CallistoAdapter
from providers.fakes.callisto import CallistoFake
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationFactory, OrderFactory, UserFactory

SALESFORCE_ID = "005000000000001AAA"
STAFF_SALESFORCE_ID = "005000000000002BBB"


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


def adapter_for(fake, **config):
    values = {
        "kind": "callisto",
        "base_url": fake.url,
        "username": fake.username,
        "password": fake.password,
        "timeout": 2.0,
    }
    values.update(config)
    return CallistoAdapter(ProviderConfig(**values))


@pytest.fixture
def cancellation(db):
    return CancellationFactory(
        order=OrderFactory(external_ids={"callisto": "4711"}),
        reason__subject="Lieferung zu spät",
        churn_time=datetime(2030, 3, 1, 22, 30, tzinfo=UTC),  # 23:30 in Berlin
        canceled_time=datetime(2030, 2, 20, 10, 15, 7, tzinfo=UTC),  # 11:15:07 in Berlin
        external_user_id=SALESFORCE_ID,
    )


def test_it_applies_to_orders_with_a_callisto_id(cancellation, fake):
    assert adapter_for(fake).applies_to(cancellation)


def test_it_does_not_apply_to_orders_without_a_callisto_id(db, fake):
    cancellation = CancellationFactory(order=OrderFactory(external_ids={"rebilly": "ord_1"}))

    assert not adapter_for(fake).applies_to(cancellation)


def test_an_add_puts_the_seed_fields_and_is_delivered(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    request = fake.received[-1]
    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 200
    assert (request.method, request.path) == ("PUT", "/callisto/cancel")
    assert request.json() == {
        "Id": 4711,
        "CancelDate": "2030-03-01",
        "CancelTimestamp": "2030-02-20 11:15:07",
        "CancelReason": "Lieferung zu spät",
        "UserId": SALESFORCE_ID,
        "Action": "Add",
    }
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert fake.is_cancelled(4711)


def test_the_cancel_date_is_the_effective_day_in_callistos_zone(cancellation, fake):
    # 2027-01-15 00:00 in Berlin is 2027-01-14 23:00 UTC: Callisto must hear the 15th.
    cancellation.churn_time = datetime(2027, 1, 15, tzinfo=ZoneInfo("Europe/Berlin"))

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.received[-1].json()["CancelDate"] == "2027-01-15"


def test_the_cancel_timestamp_is_in_callistos_zone_in_summer_too(cancellation, fake):
    cancellation.canceled_time = datetime(2027, 7, 1, 22, 30, 5, tzinfo=UTC)

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.received[-1].json()["CancelTimestamp"] == "2027-07-02 00:30:05"


def test_callisto_time_zone_chooses_the_zone(cancellation, fake, settings):
    settings.CALLISTO_TIME_ZONE = "Europe/Istanbul"
    cancellation.churn_time = datetime(2027, 1, 14, 21, 30, tzinfo=UTC)  # 00:30 in Istanbul

    adapter_for(fake).deliver(cancellation, Action.ADD)

    body = fake.received[-1].json()
    assert body["CancelDate"] == "2027-01-15"
    assert body["CancelTimestamp"] == "2030-02-20 13:15:07"


def test_basic_credentials_are_sent(cancellation, fake):
    adapter_for(fake).deliver(cancellation, Action.ADD)

    expected = base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
    assert fake.received[-1].headers["authorization"] == f"Basic {expected}"


def test_a_token_is_sent_as_bearer(cancellation, fake):
    result = adapter_for(fake, username="", password="", token=fake.token).deliver(
        cancellation, Action.ADD
    )

    assert result.outcome == Outcome.DELIVERED
    assert fake.received[-1].headers["authorization"] == f"Bearer {fake.token}"


def test_the_reason_is_sent_as_its_callisto_mapping(cancellation, fake):
    ReasonMapping.objects.create(
        reason=cancellation.reason, provider_kind=ProviderKind.CALLISTO, value="LIEFERVERZUG"
    )

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.received[-1].json()["CancelReason"] == "LIEFERVERZUG"


def test_the_staff_users_salesforce_id_wins_over_the_external_user_id(cancellation, fake):
    staff = UserFactory()
    StaffProfile.objects.create(user=staff, salesforce_user_id=STAFF_SALESFORCE_ID)
    cancellation.created_by = staff

    adapter_for(fake).deliver(cancellation, Action.ADD)

    assert fake.received[-1].json()["UserId"] == STAFF_SALESFORCE_ID


def test_callisto_default_user_id_is_sent_when_nobody_has_a_salesforce_id(
    cancellation, fake, settings
):
    settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"
    cancellation.external_user_id = ""

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.DELIVERED
    assert fake.received[-1].json()["UserId"] == "005000000000000DEF"


def test_a_plan_without_any_salesforce_id_is_a_problem_naming_external_user_id(cancellation, fake):
    cancellation.external_user_id = ""

    problems = adapter_for(fake).plan_problems(cancellation)

    assert list(problems) == ["external_user_id"]
    assert "externalUserId" in problems["external_user_id"]


def test_a_plan_with_a_salesforce_id_or_the_default_has_no_problem(cancellation, fake, settings):
    adapter = adapter_for(fake)
    assert adapter.plan_problems(cancellation) == {}

    cancellation.external_user_id = ""
    settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"
    assert adapter.plan_problems(cancellation) == {}


def test_without_any_salesforce_id_it_fails_without_calling_callisto(cancellation, fake):
    cancellation.external_user_id = ""
    cancellation.created_by = UserFactory()  # no staff profile

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert "UserId" in result.message
    assert fake.received == []


def test_a_callisto_id_that_is_not_a_number_fails_without_a_call(cancellation, fake):
    cancellation.order.external_ids = {"callisto": "A-17"}

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert "A-17" in result.message
    assert fake.received == []


def test_a_partial_cancellation_is_skipped_for_staff_without_calling_callisto(cancellation, fake):
    cancellation.is_whole_order = False

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.needs_manual_action) == (Outcome.SKIPPED, True)
    assert "whole orders" in result.message
    assert fake.received == []


def test_missing_credentials_are_a_credentials_problem_without_a_call(cancellation, fake):
    result = adapter_for(fake, username="", password="").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.credentials_problem
    assert fake.received == []


def test_a_revoke_deletes_with_action_delete(cancellation, fake):
    adapter = adapter_for(fake)
    adapter.deliver(cancellation, Action.ADD)
    cancellation.status = CancellationStatus.REVOKED

    result = adapter.deliver(cancellation, Action.REVOKE)

    request = fake.received[-1]
    assert result.outcome == Outcome.DELIVERED
    assert result.status_code == 204
    assert request.method == "DELETE"
    assert request.json()["Action"] == "Delete"
    assert not fake.is_cancelled(4711)


def test_a_revoke_names_the_revoking_staff_user(cancellation, fake):
    revoker = UserFactory()
    StaffProfile.objects.create(user=revoker, salesforce_user_id=STAFF_SALESFORCE_ID)
    cancellation.revoked_by = revoker

    adapter_for(fake).deliver(cancellation, Action.REVOKE)

    assert fake.received[-1].json()["UserId"] == STAFF_SALESFORCE_ID


def test_a_retry_after_a_lost_answer_has_one_effect(cancellation, fake):
    adapter = adapter_for(fake)
    fake.drop_next(1)  # Callisto cancels, then the answer is lost

    first = adapter.deliver(cancellation, Action.ADD)
    second = adapter.deliver(cancellation, Action.ADD)

    assert (first.outcome, second.outcome) == (Outcome.RETRY, Outcome.DELIVERED)
    assert fake.received_count(4711) == 2
    assert fake.effects(4711) == ["Add"]


def test_a_validation_error_fails_with_callistos_messages(cancellation, fake):
    cancellation.external_user_id = "jane.doe"  # not a Salesforce id

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 422
    assert result.message.startswith("Failed Validation; UserId: The input does not match")
    assert not result.bug


def test_a_400_fails_with_the_body_shown(cancellation, fake):
    fake.fail_next(1, status=400)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.message == "Injected fault."


def test_wrong_credentials_are_a_credentials_problem(cancellation, fake):
    result = adapter_for(fake, password="wrong").deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 401
    assert result.credentials_problem


def test_a_403_is_a_credentials_problem(cancellation, fake):
    fake.fail_next(1, status=403)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.credentials_problem) == (Outcome.FAILED, True)


def test_an_unknown_order_fails_saying_so(cancellation, fake):
    fake.known_ids = {1}

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert result.status_code == 404
    assert result.message.startswith("Unknown order in Callisto")


@pytest.mark.parametrize("status", [406, 415])
def test_a_refused_format_is_a_bug(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert (result.outcome, result.bug) == (Outcome.FAILED, True)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code == status
    assert not fake.is_cancelled(4711)


@pytest.mark.parametrize("status", [409, 418])
def test_other_statuses_fail(cancellation, fake, status):
    fake.fail_next(1, status=status)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.FAILED
    assert not (result.bug or result.credentials_problem)


def test_a_timeout_is_retried(cancellation, fake):
    fake.delay_next(1, seconds=1.0)

    result = adapter_for(fake, timeout=0.2).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert result.status_code is None
    assert "timeout" in result.message.lower()


def test_a_dropped_connection_is_retried(cancellation, fake):
    fake.drop_next(1, process=False)

    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert not fake.is_cancelled(4711)


def test_a_refused_connection_is_retried(cancellation):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once it is closed
    config = ProviderConfig(kind="callisto", base_url=f"http://127.0.0.1:{port}", token="t")

    result = CallistoAdapter(config).deliver(cancellation, Action.ADD)

    assert result.outcome == Outcome.RETRY
    assert "connect" in result.message.lower()


def test_the_recorded_request_shows_the_body_but_no_credentials(cancellation, fake):
    result = adapter_for(fake).deliver(cancellation, Action.ADD)

    assert result.request_excerpt.startswith(f"PUT {fake.url}/callisto/cancel")
    assert '"CancelReason": "Lieferung zu spät"' in result.request_excerpt
    assert fake.password not in result.request_excerpt
    assert "Authorization" not in result.request_excerpt
    assert result.response_excerpt.startswith("HTTP 200")
    assert result.duration_ms is not None
