"""Atomic API throttles (backoffice.throttling): counters that can't lose an update, in Redis,
in the database, or in the tests' local-memory cache; parallel clients stay within the limit."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import close_old_connections, connection, transaction
from rest_framework.test import APIClient

from backoffice import throttling
from backoffice.models import ThrottleCounter
from backoffice.tasks import purge_expired_throttle_counters
from tests.factories import UserFactory

ORDERS_API = "/api/v1/orders/"
REDIS_URL = "redis://127.0.0.1:6379/6"
# The middle of a minute: no test here crosses into the next window while it runs.
FROZEN_NOW = 1_800_000_030.0


def redis_cache() -> RedisCache:
    cache = RedisCache(REDIS_URL, {"TIMEOUT": 300})
    try:
        cache.get("ping")
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return cache


# On PostgreSQL, counts made inside the test's transaction commit on a connection of their own
# (backoffice.throttling.counting_connection): these tests empty the tables afterwards instead.
COUNTS_COMMIT = pytest.mark.django_db(transaction=True)


@pytest.fixture
def frozen_clock(monkeypatch):
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: FROZEN_NOW))


@pytest.fixture(params=["database", "redis"])
def counted_in(request, monkeypatch):
    """Every throttle counts in the database, or in Redis."""
    cache = DatabaseCache("storno_cache", {}) if request.param == "database" else redis_cache()
    if request.param == "redis":
        cache.clear()
    monkeypatch.setattr(throttling.AtomicRateThrottle, "cache", cache)
    yield request.param
    if request.param == "redis":
        cache.clear()


# --- choosing where to count -------------------------------------------------------------------


def test_redis_and_local_memory_count_in_the_cache_the_database_cache_in_a_table():
    assert isinstance(throttling.counter_for(RedisCache(REDIS_URL, {})), throttling.CacheCounter)
    assert isinstance(throttling.counter_for(LocMemCache("t", {})), throttling.CacheCounter)
    assert isinstance(
        throttling.counter_for(DatabaseCache("storno_cache", {})), throttling.DatabaseCounter
    )


def test_with_the_tests_local_memory_cache_throttles_write_nothing_to_the_database(db):
    api = api_as(UserFactory(permissions=["cancellations.view_order"]))

    assert api.get(ORDERS_API).status_code == 200
    assert not ThrottleCounter.objects.exists()


@COUNTS_COMMIT
def test_with_the_database_as_cache_throttles_count_in_their_table(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "x"}
    }
    user = UserFactory(permissions=["cancellations.view_order"])

    assert api_as(user).get(ORDERS_API).status_code == 200
    assert api_as(user).get(ORDERS_API).status_code == 200
    counter = ThrottleCounter.objects.get()
    assert (counter.key, counter.count) == (f"throttle_user_{user.pk}", 2)


def test_a_window_starts_on_a_multiple_of_its_duration():
    assert throttling.window_of(125.5, 60) == (120, 54.5)
    assert throttling.window_of(120.0, 60) == (120, 60.0)


# --- the database counter ----------------------------------------------------------------------


@COUNTS_COMMIT
def test_the_database_counter_counts_each_hit_of_a_window():
    counter = throttling.DatabaseCounter()

    counts = [counter.hit("throttle_user_1", 120, 60) for _ in range(3)]

    assert counts == [1, 2, 3]
    assert counter.peek("throttle_user_1", 120, 60) == 3
    assert ThrottleCounter.objects.count() == 1


@COUNTS_COMMIT
def test_the_database_counter_starts_again_in_the_next_window():
    counter = throttling.DatabaseCounter()
    counter.hit("throttle_user_1", 120, 60)
    counter.hit("throttle_user_1", 120, 60)

    assert counter.hit("throttle_user_1", 180, 60) == 1
    assert counter.peek("throttle_user_1", 120, 60) == 0
    assert ThrottleCounter.objects.get().window_start == 180


@COUNTS_COMMIT
def test_a_late_hit_of_an_older_window_counts_in_the_newer_one():
    counter = throttling.DatabaseCounter()
    counter.hit("throttle_user_1", 180, 60)

    assert counter.hit("throttle_user_1", 120, 60) == 2
    assert ThrottleCounter.objects.get().window_start == 180


@COUNTS_COMMIT
def test_each_client_and_scope_has_a_counter_of_its_own():
    counter = throttling.DatabaseCounter()
    counter.hit("throttle_user_1", 120, 60)

    assert counter.hit("throttle_user_2", 120, 60) == 1
    assert counter.hit("throttle_anon_192.0.2.1", 120, 60) == 1


@COUNTS_COMMIT
def test_the_purge_task_deletes_the_counters_of_windows_long_gone():
    counter = throttling.DatabaseCounter()
    now = datetime.now(tz=UTC).timestamp()
    counter.hit("throttle_user_old", int(now) - 3600, 60)
    counter.hit("throttle_user_new", int(now // 60) * 60, 60)

    assert purge_expired_throttle_counters() == 1
    assert list(ThrottleCounter.objects.values_list("key", flat=True)) == ["throttle_user_new"]


@COUNTS_COMMIT
def test_a_counter_expires_a_minute_after_its_window():
    throttling.DatabaseCounter().hit("throttle_user_1", 120, 60)

    assert ThrottleCounter.objects.get().expires_at == datetime.fromtimestamp(240, tz=UTC)
    assert throttling.purge_expired_counters(now=datetime.fromtimestamp(239, tz=UTC)) == 0
    assert throttling.purge_expired_counters(
        now=datetime.fromtimestamp(240, tz=UTC) + timedelta(seconds=1)
    )


# --- the cache counter -------------------------------------------------------------------------


@pytest.mark.parametrize("make_cache", [lambda: LocMemCache("throttle-test", {}), redis_cache])
def test_the_cache_counter_counts_per_window(make_cache):
    cache = make_cache()
    key = f"throttle_user_{uuid.uuid4().hex}"
    counter = throttling.CacheCounter(cache)

    assert [counter.hit(key, 120, 60) for _ in range(3)] == [1, 2, 3]
    assert counter.peek(key, 120, 60) == 3
    assert counter.hit(key, 180, 60) == 1
    assert counter.peek(key, 240, 60) == 0


def test_a_redis_counter_expires_a_minute_after_its_window():
    cache = redis_cache()
    key = f"throttle_user_{uuid.uuid4().hex}"

    throttling.CacheCounter(cache).hit(key, 120, 60)

    seconds = redis.Redis.from_url(REDIS_URL).ttl(cache.make_key(f"{key}:120"))
    assert 60 < seconds <= 120


# --- through the API ---------------------------------------------------------------------------


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@COUNTS_COMMIT
def test_the_limit_holds_per_window_and_retry_after_says_when_it_ends(
    rates, frozen_clock, counted_in
):
    rates(user="3/min")
    api = api_as(UserFactory(permissions=["cancellations.view_order"]))

    statuses = [api.get(ORDERS_API).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    assert api.get(ORDERS_API)["Retry-After"] == "30"  # FROZEN_NOW is 30 s into its minute


@COUNTS_COMMIT
def test_the_next_window_lets_the_client_in_again(rates, monkeypatch, counted_in):
    rates(user="1/min")
    api = api_as(UserFactory(permissions=["cancellations.view_order"]))
    clock = iter([FROZEN_NOW, FROZEN_NOW, FROZEN_NOW + 60])
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: next(clock)))

    assert [api.get(ORDERS_API).status_code for _ in range(3)] == [200, 429, 200]


# --- parallel clients (PostgreSQL) ---------------------------------------------------------------


def hammer(user, *, threads: int, requests_each: int) -> list[int]:
    """`threads` clients of one user, each sending `requests_each` GETs at once."""
    barrier = threading.Barrier(threads)
    statuses = []
    lock = threading.Lock()

    def client_thread():
        close_old_connections()
        api = api_as(user)
        barrier.wait()
        try:
            mine = [api.get(ORDERS_API).status_code for _ in range(requests_each)]
        finally:
            connection.close()
        with lock:
            statuses.extend(mine)

    workers = [threading.Thread(target=client_thread) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return statuses


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs concurrent connections; SQLite's in-memory test database can't share one "
    "across threads (CI runs this against PostgreSQL)",
)
def test_parallel_clients_of_one_user_get_no_more_than_the_limit(rates, frozen_clock, counted_in):
    rates(user="120/min")
    user = UserFactory(permissions=["cancellations.view_order"])

    statuses = hammer(user, threads=16, requests_each=12)

    assert len(statuses) == 192
    assert set(statuses) == {200, 429}
    allowed = statuses.count(200)
    # Exact in fact; the bar is 5 %.
    assert 120 * 0.95 <= allowed <= 120 * 1.05, allowed


ON_POSTGRESQL = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: SQLite has one writer at a time, and counts on the request's "
    "connection there",
)


@pytest.mark.django_db(transaction=True)
@ON_POSTGRESQL
def test_a_count_inside_a_transaction_locks_nothing_until_that_transaction_ends():
    counter = throttling.DatabaseCounter()
    counted_elsewhere = []

    def another_request():
        try:
            counted_elsewhere.append(counter.hit("throttle_user_1", 120, 60))
        finally:
            connection.close()

    with transaction.atomic():  # a POST with an Idempotency-Key runs in one
        counter.hit("throttle_user_1", 120, 60)
        other = threading.Thread(target=another_request)
        other.start()
        other.join(timeout=10)
        assert counted_elsewhere == [2]


@pytest.mark.django_db(transaction=True)
@ON_POSTGRESQL
def test_a_count_stays_when_the_request_around_it_is_rolled_back():
    with transaction.atomic():
        throttling.DatabaseCounter().hit("throttle_failed-auth_192.0.2.1", 120, 60)
        transaction.set_rollback(True)

    assert ThrottleCounter.objects.get().count == 1
