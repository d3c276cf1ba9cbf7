"""Storno's Callisto-compatible endpoint: seed 000's fields, status codes and Allow header."""

import base64
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Cancellation
from cancellations.services import quoting, updating, writing
from cancellations.states import CancellationStatus, OrderStatus
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory

URL = "/callisto/cancel"
PASSWORD = "correct horse battery staple"
USER_ID = "005000000000001AAA"
BERLIN = ZoneInfo("Europe/Berlin")  # CALLISTO_TIME_ZONE's default


@pytest.fixture
def order(db):
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order, quantity=2)
    return order


@pytest.fixture
def reason(db):
    return CancellationReasonFactory(subject="Lieferung zu spät")


@pytest.fixture
def client(agent):
    api = APIClient()
    credentials = base64.b64encode(f"{agent.username}:{PASSWORD}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")
    return api


def fields(**changes):
    today = timezone.now().astimezone(BERLIN).date()
    payload = {
        "Id": 4711,
        "CancelDate": today.isoformat(),
        "CancelTimestamp": "2026-02-20 10:15:00",
        "CancelReason": "Lieferung zu spät",
        "UserId": USER_ID,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def send(client, method="put", payload=None, *, url=URL, **extra):
    body = json.dumps(payload if payload is not None else fields())
    extra.setdefault("HTTP_ACCEPT", "application/json")
    return getattr(client, method)(url, body, content_type="application/json", **extra)


def test_an_add_for_today_cancels_the_order_now(client, order, reason, agent):
    response = send(client)

    cancellation = Cancellation.objects.get()
    order.refresh_from_db()
    assert response.status_code == 200
    assert response["Allow"] == "PUT, DELETE"
    assert response.json()["CancelId"] == cancellation.pk
    assert response.json()["Status"] == CancellationStatus.COMPLETED
    assert cancellation.external_user_id == USER_ID
    assert cancellation.created_by == agent
    assert order.status == OrderStatus.CANCELLED
    assert AuditEntry.objects.filter(
        action="cancellation.created", via=AuditEntry.Via.CALLISTO
    ).exists()


def test_a_future_cancel_date_is_scheduled_at_midnight_in_callistos_zone(client, order, reason):
    day = timezone.now().astimezone(BERLIN).date() + timedelta(days=10)

    response = send(client, payload=fields(CancelDate=day.isoformat()))

    cancellation = Cancellation.objects.get()
    assert response.status_code == 200
    assert cancellation.status == CancellationStatus.CONFIRMED
    assert cancellation.churn_time == datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    assert response.json()["CancelDate"] == day.isoformat()


def test_the_15th_of_january_is_midnight_in_berlin_not_utc(client, order, reason):
    send(client, payload=fields(CancelDate="2099-01-15"))

    assert Cancellation.objects.get().churn_time == datetime(2099, 1, 14, 23, tzinfo=UTC)


def test_callisto_time_zone_chooses_the_zone_of_the_cancel_date(client, order, reason, settings):
    settings.CALLISTO_TIME_ZONE = "Europe/Istanbul"
    day = timezone.now().astimezone(UTC).date() + timedelta(days=10)

    send(client, payload=fields(CancelDate=day.isoformat()))

    expected = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Europe/Istanbul"))
    assert Cancellation.objects.get().churn_time == expected


def test_the_cancel_timestamp_is_kept_as_the_canceled_time_in_callistos_zone(client, order, reason):
    response = send(client, payload=fields(CancelTimestamp="2026-02-20 10:15:00"))

    cancellation = Cancellation.objects.get()
    assert cancellation.canceled_time == datetime(2026, 2, 20, 9, 15, tzinfo=UTC)
    assert response.json()["CancelTimestamp"] == "2026-02-20 10:15:00"


def test_a_cancel_timestamp_in_the_future_is_422_on_it(client, order, reason):
    later = (timezone.now() + timedelta(days=1)).astimezone(BERLIN)

    response = send(client, payload=fields(CancelTimestamp=later.strftime("%Y-%m-%d %H:%M:%S")))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["CancelTimestamp"]
    assert not Cancellation.objects.exists()


def test_an_unknown_field_is_422_naming_it_and_the_close_match(client, order, reason):
    response = send(client, payload=fields(CancelDat="2026-03-01"))

    messages = response.json()["validation_messages"]
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "Failed Validation"
    assert list(messages) == ["CancelDat"]
    assert messages["CancelDat"] == {"unknownField": "unknown field; did you mean CancelDate?"}
    assert not Cancellation.objects.exists()


def test_an_unknown_field_on_a_delete_is_422_too(client, order, reason):
    send(client)

    response = send(client, "delete", {"Id": 4711, "Comment": "x"})

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["Comment"]
    assert Cancellation.objects.get().status == CancellationStatus.COMPLETED


def test_every_field_of_the_seed_is_accepted(client, order, reason):
    response = send(client, payload=fields(Action="Add"))

    assert response.status_code == 200


def test_a_delete_without_a_content_type_is_read_as_json(client, order, reason):
    send(client)

    response = client.generic(
        "DELETE", URL, json.dumps({"Id": 4711}), content_type="", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 204
    assert Cancellation.objects.get().status == CancellationStatus.REVOKED


def test_a_put_without_a_content_type_is_still_415(client, order, reason):
    response = client.generic("PUT", URL, json.dumps(fields()), content_type="")

    assert response.status_code == 415


def test_a_past_cancel_date_means_now(client, order, reason):
    response = send(client, payload=fields(CancelDate="2020-01-31"))

    assert response.status_code == 200
    assert Cancellation.objects.get().status == CancellationStatus.COMPLETED


def test_the_reason_is_found_by_its_callisto_mapping(client, order, reason):
    ReasonMapping.objects.create(
        reason=reason, provider_kind=ProviderKind.CALLISTO, value="LIEFERVERZUG"
    )

    response = send(client, payload=fields(CancelReason="lieferverzug"))

    assert response.status_code == 200
    assert Cancellation.objects.get().reason == reason


def test_the_reason_is_found_by_its_subject_ignoring_case(client, order, reason):
    response = send(client, payload=fields(CancelReason="LIEFERUNG ZU SPÄT"))

    assert response.status_code == 200
    assert Cancellation.objects.get().reason == reason


def test_an_unknown_reason_is_422_in_the_laminas_shape_and_changes_nothing(client, order, reason):
    response = send(client, payload=fields(CancelReason="Keine Lust"))

    problem = response.json()
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response["Allow"] == "PUT, DELETE"
    assert problem["detail"] == "Failed Validation"
    assert problem["title"] == "Unprocessable Entity"
    assert list(problem["validation_messages"]) == ["CancelReason"]
    assert "notInArray" in problem["validation_messages"]["CancelReason"]
    assert not Cancellation.objects.exists()


def test_missing_fields_are_422_naming_each(client, order, reason):
    response = send(client, payload={})

    assert response.status_code == 422
    assert set(response.json()["validation_messages"]) == {
        "Id",
        "CancelDate",
        "CancelTimestamp",
        "CancelReason",
        "UserId",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Id", "47a1"),
        ("Id", True),
        ("CancelDate", "01.03.2026"),
        ("CancelTimestamp", "yesterday"),
        ("Action", "Cancel"),
    ],
)
def test_malformed_fields_are_422_naming_the_field(client, order, reason, field, value):
    response = send(client, payload=fields(**{field: value}))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == [field]


def test_an_id_given_as_digits_in_a_string_is_accepted(client, order, reason):
    assert send(client, payload=fields(Id="4711")).status_code == 200


def test_an_unknown_callisto_id_is_404(client, order, reason):
    response = send(client, payload=fields(Id=999))

    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert response["Allow"] == "PUT, DELETE"


def test_the_same_add_again_returns_the_same_cancellation(client, order, reason):
    first = send(client)
    second = send(client)

    assert second.status_code == 200
    assert second.json()["CancelId"] == first.json()["CancelId"]
    assert Cancellation.objects.count() == 1


def test_another_add_for_a_cancelled_order_is_422_on_id(client, order, reason):
    send(client)

    response = send(client, payload=fields(UserId="005000000000009ZZZ"))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["Id"]


def test_a_put_with_a_cancel_id_uses_it_and_repeating_it_changes_nothing(client, order, reason):
    first = send(client, url=f"{URL}/sf-0001")
    second = send(client, url=f"{URL}/sf-0001")

    assert (first.status_code, second.status_code) == (200, 200)
    assert Cancellation.objects.get().pk == "sf-0001"
    assert AuditEntry.objects.filter(action="cancellation.updated").count() == 0


def test_a_reason_needing_a_description_is_refused_on_cancel_reason(client, order):
    CancellationReasonFactory(subject="Sonstiges", extra_information_needed=True)

    response = send(client, payload=fields(CancelReason="Sonstiges"))

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["CancelReason"]


def test_a_delete_revokes_the_orders_cancellation(client, order, reason):
    send(client)

    response = send(client, "delete", {"Id": 4711, "UserId": USER_ID, "Action": "Delete"})

    order.refresh_from_db()
    assert response.status_code == 204
    assert response["Allow"] == "PUT, DELETE"
    assert Cancellation.objects.get().status == CancellationStatus.REVOKED
    assert order.status == OrderStatus.OPEN


def test_a_second_delete_is_204_and_changes_nothing(client, order, reason):
    send(client)
    send(client, "delete", {"Id": 4711})

    response = send(client, "delete", {"Id": 4711})

    assert response.status_code == 204
    assert AuditEntry.objects.filter(action="cancellation.revoked").count() == 1


def test_a_put_with_action_delete_revokes_too(client, order, reason):
    send(client)

    response = send(client, payload=fields(Action="Delete"))

    assert response.status_code == 204
    assert Cancellation.objects.get().status == CancellationStatus.REVOKED


def test_a_delete_names_the_cancellation_in_the_url(client, order, reason):
    send(client, url=f"{URL}/sf-0001")

    response = send(client, "delete", {}, url=f"{URL}/sf-0001")

    assert response.status_code == 204
    assert Cancellation.objects.get().status == CancellationStatus.REVOKED


def test_a_delete_for_an_order_without_cancellation_is_404(client, order):
    assert send(client, "delete", {"Id": 4711}).status_code == 404


def test_a_delete_of_an_order_with_several_cancellations_asks_for_the_id(client, order, reason):
    item = order.items.get()
    for _ in range(2):
        writing.cancel_order(
            order,
            reason=reason,
            items=[quoting.ItemPick(item.pk, 1)],
            actor=None,
            via=AuditEntry.Via.SYSTEM,
        )

    response = send(client, "delete", {"Id": 4711})

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["Id"]


def test_a_delete_saying_add_is_422(client, order, reason):
    response = send(client, "delete", {"Id": 4711, "Action": "Add"})

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["Action"]


def test_no_credentials_is_401_with_a_basic_challenge(order, reason):
    response = send(APIClient())

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response["Allow"] == "PUT, DELETE"
    assert not Cancellation.objects.exists()


def test_a_drf_token_is_accepted_as_bearer(agent, order, reason):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=agent).key}")

    assert send(api).status_code == 200


def test_a_user_without_the_cancel_permission_gets_403(order, reason):
    UserFactory(username="viewer", permissions=["cancellations.view_order"])
    api = APIClient()
    credentials = base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")

    response = send(api)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert not Cancellation.objects.exists()


def test_a_user_without_the_revoke_permission_cannot_delete(client, order, reason):
    send(client)
    UserFactory(username="canceller", permissions=["cancellations.cancel_order"])
    api = APIClient()
    credentials = base64.b64encode(f"canceller:{PASSWORD}".encode()).decode()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {credentials}")

    response = send(api, "delete", {"Id": 4711})

    assert response.status_code == 403
    assert Cancellation.objects.get().status == CancellationStatus.COMPLETED


def test_an_accept_without_json_is_406(client, order, reason):
    response = send(client, HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert response["Allow"] == "PUT, DELETE"


def test_a_body_that_is_not_json_is_415(client, order, reason):
    response = client.put(URL, "Id=4711", content_type="text/plain")

    assert response.status_code == 415
    assert response["Allow"] == "PUT, DELETE"


def test_broken_json_is_400(client, order, reason):
    response = client.put(URL, '{"Id": 47', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["title"] == "Bad Request"


def test_a_json_array_is_400(client, order, reason):
    assert client.put(URL, "[1]", content_type="application/json").status_code == 400


@pytest.mark.parametrize("method", ["get", "post", "patch", "options"])
def test_other_methods_are_405_with_allow(client, method):
    response = getattr(client, method)(URL)

    assert response.status_code == 405
    assert response["Allow"] == "PUT, DELETE"


def test_a_cancel_id_outside_the_id_pattern_is_422_on_cancel_id(client, order, reason):
    response = send(client, url=f"{URL}/{'x' * 51}")

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["cancel_id"]
    assert not Cancellation.objects.exists()


def test_a_delete_without_id_or_cancel_id_is_422(client, order):
    response = client.delete(URL, HTTP_ACCEPT="application/json")

    assert response.status_code == 422
    assert list(response.json()["validation_messages"]) == ["Id"]


def test_a_wrong_bearer_token_is_401(order, reason):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert send(api).status_code == 401


def test_refused_bearer_tokens_are_counted_per_address_like_the_apis(order, reason, rates):
    rates(failed_auth="2/min")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    responses = [send(api) for _ in range(3)]

    assert [response.status_code for response in responses] == [401, 401, 429]
    assert not Cancellation.objects.exists()
    assert responses[-1]["Content-Type"] == "application/problem+json"
    assert responses[-1].json()["title"] == "Too Many Requests"
    assert int(responses[-1]["Retry-After"]) > 0


def test_a_lost_database_is_a_503_laminas_problem_with_retry_after(
    client, order, reason, monkeypatch
):
    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(updating, "upsert_cancellation", lost)

    response = send(client)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Service Unavailable"
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    "changes",
    [{"Id": 10**20}, {"UserId": {"id": 1}}, {"CancelReason": ["a"]}, {"CancelDate": 20260301}],
)
def test_odd_json_types_are_422_not_500(client, order, reason, changes):
    assert send(client, payload=fields(**changes)).status_code == 422


@pytest.mark.parametrize("callisto_id", ["²", "9" * 100_000])
def test_an_id_of_other_digits_or_100000_of_them_is_422_not_500(client, order, reason, callisto_id):
    response = send(client, payload=fields(Id=callisto_id))

    assert response.status_code == 422
    assert response.json()["validation_messages"]["Id"] == {
        "notDigits": "The input must contain only digits"
    }


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def test_a_path_no_route_matches_is_a_laminas_404(client, order, reason):
    # `/` inside the cancel id: no route matches, so Django itself answers.
    response = client.put(f"{URL}/a/b", fields(), format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Not Found"
    assert body["type"].startswith("http://www.w3.org/")
