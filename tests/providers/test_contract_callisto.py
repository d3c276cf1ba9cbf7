"""Every body the Callisto adapter builds matches the seed's field table
(docs/contracts/seeds/000_75d496570d9fe2c2.txt), written down as
docs/contracts/callisto/cancel.schema.json: its fields, types and formats, and nothing else."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from backoffice.models import StaffProfile
from providers.base import Action, ProviderConfig
from providers.callisto import CallistoAdapter
from providers.contracts import schema, schema_errors
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationFactory, OrderFactory, UserFactory

SCHEMA = schema("callisto/cancel.schema.json")
SALESFORCE_ID = "005000000000001AAA"

pytestmark = pytest.mark.django_db


def adapter():
    return CallistoAdapter(ProviderConfig(kind="callisto", base_url="http://callisto.invalid"))


def cancellation(**changes):
    values = {
        "order": OrderFactory(external_ids={"callisto": "4711"}),
        "reason__subject": "Zu teuer",
        "external_user_id": SALESFORCE_ID,
    }
    values.update(changes)
    return CancellationFactory(**values)


def test_the_schema_has_exactly_the_seeds_fields():
    assert set(SCHEMA["properties"]) == {
        "Id",
        "CancelDate",
        "CancelTimestamp",
        "CancelReason",
        "UserId",
        "Action",
    }
    assert SCHEMA["required"] == ["Id", "CancelDate", "CancelTimestamp", "CancelReason", "UserId"]


def test_the_schema_refuses_what_the_seed_does_not_define():
    body = adapter().build_payload(cancellation(), Action.ADD)

    assert schema_errors({**body, "Extra": 1}, SCHEMA) != []
    assert schema_errors({**body, "CancelTimestamp": "2027-01-15T10:00:00Z"}, SCHEMA) != []
    assert schema_errors({**body, "Id": "4711"}, SCHEMA) != []


def test_a_whole_order_cancelled_now():
    body = adapter().build_payload(cancellation(), Action.ADD)

    assert schema_errors(body, SCHEMA) == []
    assert body["Action"] == "Add"


def test_a_scheduled_cancellation_at_midnight_in_berlin():
    churn = datetime(2027, 1, 15, tzinfo=UTC) - timedelta(hours=1)  # 00:00 in Berlin

    body = adapter().build_payload(cancellation(churn_time=churn), Action.ADD)

    assert schema_errors(body, SCHEMA) == []
    assert body["CancelDate"] == "2027-01-15"


def test_a_revoke_by_a_staff_user():
    revoker = UserFactory()
    StaffProfile.objects.create(user=revoker, salesforce_user_id="005000000000002BBB")
    revoked = cancellation(revoked_by=revoker, revoked_time=timezone.now())

    body = adapter().build_payload(revoked, Action.REVOKE)

    assert schema_errors(body, SCHEMA) == []
    assert (body["Action"], body["UserId"]) == ("Delete", "005000000000002BBB")


def test_a_non_ascii_reason_mapping():
    planned = cancellation(reason__subject="Teslimat çok gecikti")
    ReasonMapping.objects.create(
        reason=planned.reason, provider_kind=ProviderKind.CALLISTO, value="Lieferverzögerung – ß"
    )

    body = adapter().build_payload(planned, Action.ADD)

    assert schema_errors(body, SCHEMA) == []
    assert body["CancelReason"] == "Lieferverzögerung – ß"


def test_a_long_reason():
    body = adapter().build_payload(cancellation(reason__subject="x" * 100), Action.ADD)

    assert schema_errors(body, SCHEMA) == []


def test_the_default_user_id(settings):
    settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"

    body = adapter().build_payload(cancellation(external_user_id=""), Action.ADD)

    assert schema_errors(body, SCHEMA) == []
    assert body["UserId"] == "005000000000000DEF"


def test_a_cancel_timestamp_at_the_end_of_a_summer_day():
    entered = datetime(2027, 7, 1, 21, 59, 59, tzinfo=UTC)  # 23:59:59 in Berlin

    body = adapter().build_payload(cancellation(canceled_time=entered), Action.ADD)

    assert schema_errors(body, SCHEMA) == []
    assert body["CancelTimestamp"] == "2027-07-01 23:59:59"
