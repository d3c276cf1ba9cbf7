"""Idempotency-Key on the API's POSTs (backoffice/idempotency.py): replays, conflicts, scopes,
expiry, and one effect under concurrency (PostgreSQL)."""

import hashlib
import json
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice import idempotency
from backoffice.models import IdempotencyKey
from backoffice.tasks import purge_expired_idempotency_keys
from cancellations.models import Cancellation
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory

LIST = "/api/v1/order-cancellations/"
AGENT_PERMISSIONS = [
    "cancellations.view_order",
    "cancellations.cancel_order",
    "cancellations.view_cancellation",
    "cancellations.add_cancellation",
    "cancellations.change_cancellation",
    "reasons.view_cancellationreason",
]


def make_agent():
    return UserFactory(permissions=AGENT_PERMISSIONS)


def session_client(user, **kwargs) -> APIClient:
    # A real session (not force_authenticate): the middleware runs before DRF authenticates.
    client = APIClient(**kwargs)
    client.force_login(user)
    return client


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post(client, body, key=None, path=LIST):
    extra = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def agent(db):
    return make_agent()


@pytest.fixture
def api(agent):
    return session_client(agent)


@pytest.fixture
def order(db):
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=5)
    return order


@pytest.fixture
def one_unit(order, reason):
    """A body that can succeed several times: it cancels one of five units."""
    return {
        "orderId": order.pk,
        "reasonId": reason.pk,
        "items": [{"itemId": order.items.get().pk, "quantity": 1}],
    }


def assert_problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert set(body) >= {"type", "title", "status", "detail"}
    return body


# --- replays ----------------------------------------------------------------------------------


def test_a_repeated_post_replays_the_first_response_and_cancels_once(api, order, one_unit):
    first = post(api, one_unit, key="cancel-1")
    second = post(api, one_unit, key="cancel-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.content == first.content
    assert second["Location"] == first["Location"]
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Cancellation.objects.filter(order=order).count() == 1
    assert Cancellation.objects.get().pk == first.json()["id"]


def test_a_replay_runs_no_view(api, one_unit, django_assert_max_num_queries):
    post(api, one_unit, key="cancel-1")

    # Session, user, profile; the request's transaction (2 here, a savepoint in the test's), the
    # refused insert (3 with its savepoint), reading the key; PostgreSQL sets and resets a
    # lock_timeout.
    budget = 10 + 2 * (connection.vendor == "postgresql")
    with django_assert_max_num_queries(budget) as queries:
        replayed = post(api, one_unit, key="cancel-1")

    assert replayed["Idempotent-Replayed"] == "true"
    assert not [q["sql"] for q in queries.captured_queries if "cancellations_" in q["sql"]]


def test_a_client_error_is_kept_and_replayed(api, reason):
    body = {"orderId": 987654, "reasonId": reason.pk}

    first = post(api, body, key="bad-order")
    second = post(api, body, key="bad-order")

    assert_problem(first, 400)
    assert second.status_code == 400
    assert second.content == first.content
    assert second["Content-Type"] == "application/problem+json"
    assert second["Idempotent-Replayed"] == "true"


# --- the same key for something else -----------------------------------------------------------


def test_the_same_key_with_another_body_is_a_422_and_writes_nothing(api, order, one_unit):
    post(api, one_unit, key="cancel-1")

    response = post(api, {**one_unit, "description": "Other"}, key="cancel-1")

    body = assert_problem(response, 422)
    [error] = body["invalidFields"]
    assert (error["field"], error["code"]) == ("Idempotency-Key", "reused")
    assert "Idempotency-Key" in body["detail"]
    assert Cancellation.objects.filter(order=order).count() == 1


def test_the_same_key_on_another_path_is_a_422(api, one_unit):
    post(api, one_unit, key="cancel-1")

    response = post(api, one_unit, key="cancel-1", path="/api/v1/orders/")

    assert assert_problem(response, 422)["invalidFields"][0]["field"] == "Idempotency-Key"


# --- scopes ------------------------------------------------------------------------------------


def test_another_user_with_the_same_key_is_independent(api, order, one_unit):
    other = session_client(make_agent())

    mine = post(api, one_unit, key="shared-key")
    theirs = post(other, one_unit, key="shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert Cancellation.objects.filter(order=order).count() == 2


def test_token_clients_are_scoped_by_a_hash_of_their_authorization_header(agent, one_unit):
    client = token_client(agent)
    authorization = client._credentials["HTTP_AUTHORIZATION"]

    first = post(client, one_unit, key="token-key")
    second = post(client, one_unit, key="token-key")
    by_session = post(session_client(agent), one_unit, key="token-key")

    assert first.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    # The same user by session is another client: its request runs.
    assert by_session.status_code == 201
    assert "Idempotent-Replayed" not in by_session
    stored = IdempotencyKey.objects.get(key="token-key", scope__startswith="auth:")
    assert stored.scope == "auth:" + hashlib.sha256(authorization.encode()).hexdigest()
    assert Token.objects.get().key not in stored.scope


def test_a_request_without_credentials_is_a_401_and_leaves_no_key(one_unit):
    response = post(APIClient(), one_unit, key="anonymous")

    assert response.status_code == 401
    assert not IdempotencyKey.objects.exists()


# --- what is not kept --------------------------------------------------------------------------


def test_a_server_error_is_not_kept_so_the_key_can_be_retried(agent, order, one_unit, monkeypatch):
    api = session_client(agent, raise_request_exception=False)

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    with monkeypatch.context() as patch:
        patch.setattr("cancellations.services.writing.cancel_order", broken)
        failed = post(api, one_unit, key="retry-me")

    assert failed.status_code == 500
    assert not IdempotencyKey.objects.exists()

    retried = post(api, one_unit, key="retry-me")

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Cancellation.objects.filter(order=order).count() == 1


def test_an_expired_key_counts_as_absent_and_the_request_runs_again(api, order, one_unit):
    first = post(api, one_unit, key="old-key")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    again = post(api, one_unit, key="old-key")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert Cancellation.objects.filter(order=order).count() == 2
    assert IdempotencyKey.objects.get().expires_at > timezone.now() + timedelta(hours=23)


def test_without_a_key_two_posts_make_two_cancellations(api, order, one_unit):
    first = post(api, one_unit)
    second = post(api, one_unit)

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert Cancellation.objects.filter(order=order).count() == 2
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize(
    ("key", "code"),
    [("", "blank"), ("   ", "blank"), ("k" * 256, "max_length"), ("a\x00b", "invalid")],
)
def test_a_key_that_cannot_be_one_is_a_400_naming_the_header(api, order, one_unit, key, code):
    response = post(api, one_unit, key=key)

    body = assert_problem(response, 400)
    assert [(e["field"], e["code"]) for e in body["invalidFields"]] == [("Idempotency-Key", code)]
    assert not Cancellation.objects.exists()
    assert not IdempotencyKey.objects.exists()


def test_a_key_of_255_characters_is_accepted(api, one_unit):
    assert post(api, one_unit, key="k" * 255).status_code == 201


def test_a_key_in_progress_is_a_409_and_nothing_runs(api, agent, one_unit):
    # Committed in progress: only the version before #13 wrote such rows (rolling deploys).
    raw = json.dumps(one_unit).encode()
    IdempotencyKey.objects.create(
        scope=f"user:{agent.pk}",
        key="busy",
        request_fingerprint=idempotency.request_fingerprint("POST", LIST, raw),
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )

    response = post(api, one_unit, key="busy")

    body = assert_problem(response, 409)
    assert "still in progress" in body["detail"]
    assert response["Retry-After"] == "1"
    assert not Cancellation.objects.exists()
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.IN_PROGRESS


def test_a_key_left_in_progress_by_a_dead_process_is_free_again(api, agent, one_unit):
    raw = json.dumps(one_unit).encode()
    long_ago = timezone.now() - timedelta(seconds=idempotency.IN_PROGRESS_SECONDS + 1)
    IdempotencyKey.objects.create(
        scope=f"user:{agent.pk}",
        key="orphan",
        request_fingerprint=idempotency.request_fingerprint("POST", LIST, raw),
        created_at=long_ago,
        expires_at=long_ago + timedelta(hours=24),
    )

    response = post(api, one_unit, key="orphan")

    assert response.status_code == 201
    assert Cancellation.objects.count() == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE


def test_only_api_posts_are_looked_at(api, agent, one_unit):
    api.get(LIST, HTTP_IDEMPOTENCY_KEY="")
    api.post("/i18n/setlang/", {"language": "de"}, HTTP_IDEMPOTENCY_KEY="")

    assert not IdempotencyKey.objects.exists()


# --- upkeep and documentation ------------------------------------------------------------------


def test_the_hourly_purge_deletes_expired_keys_only(agent):
    now = timezone.now()
    for key, expires_at in [
        ("old", now - timedelta(minutes=1)),
        ("live", now + timedelta(hours=1)),
    ]:
        IdempotencyKey.objects.create(
            scope=f"user:{agent.pk}",
            key=key,
            request_fingerprint="0" * 64,
            created_at=now - timedelta(hours=1),
            expires_at=expires_at,
        )

    assert purge_expired_idempotency_keys.delay().get() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["live"]


def test_the_schema_documents_the_header_on_every_api_post():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    parameter = {"$ref": "#/components/parameters/IdempotencyKey"}
    assert schema["components"]["parameters"]["IdempotencyKey"]["in"] == "header"
    posts = [ops["post"] for path, ops in schema["paths"].items() if "post" in ops]
    assert posts
    assert all(parameter in op["parameters"] for op in posts)
    assert all({"409", "422"} <= set(op["responses"]) for op in posts)
    gets = [ops["get"] for ops in schema["paths"].values() if "get" in ops]
    assert not any(parameter in op.get("parameters", []) for op in gets)


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs concurrent connections; SQLite's in-memory test database can't share one "
    "across threads (CI runs this against PostgreSQL)",
)
def test_concurrent_posts_with_one_key_cancel_once():
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=5)
    reason = CancellationReasonFactory()
    agent = make_agent()
    body = {
        "orderId": order.pk,
        "reasonId": reason.pk,
        "items": [{"itemId": order.items.get().pk, "quantity": 1}],
    }
    clients = [session_client(agent) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    responses = []
    lock = threading.Lock()

    def worker(client):
        close_old_connections()
        barrier.wait()
        try:
            response = post(client, body, key="at-once")
        finally:
            connection.close()
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=worker, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(responses) == 8
    assert Cancellation.objects.filter(order=order).count() == 1
    created = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r]
    assert len(created) == 1
    others = [r for r in responses if r is not created[0]]
    # The others waited for the first one's row and replay its answer.
    assert all(r.status_code == 201 for r in others)
    assert all(r.content == created[0].content for r in others)
    assert all(r["Idempotent-Replayed"] == "true" for r in others)
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE


def test_the_schema_documents_the_400_of_a_bad_key_on_every_api_post():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    posts = [ops["post"] for path, ops in schema["paths"].items() if "post" in ops]
    assert all("Idempotency-Key" in str(op["responses"]["400"]["description"]) for op in posts)
