"""API throttles that count with atomic increments, so parallel requests can't slip past a limit.

DRF's SimpleRateThrottle reads a history list from the cache, changes it and writes it back
without a lock: requests that run side by side all read the same history, and each one's write
hides the others (16 parallel clients got 700 of 700 requests through a 600/min limit). Here a
request adds one to a counter in a single atomic step and is let through when the total it got
back is within the limit:

- fixed windows of the rate's period, aligned on the epoch: at most `limit` requests per
  window, whatever the concurrency (a client may use one window's allowance at its end and the
  next one's at its start);
- counted in the default cache when that cache increments atomically across processes
  (Redis: INCR; the local-memory cache of the tests: a lock), otherwise in the database with one
  `INSERT … ON CONFLICT DO UPDATE SET count = count + 1` (Django's database cache reads and
  writes back, so it would lose updates just the same).

The throttles keep DRF's scopes, rates and client addresses (THROTTLE_RATES, NUM_PROXIES).
"""

import math
from contextlib import contextmanager
from datetime import UTC, datetime

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, connection, connections
from rest_framework import throttling

from .models import ThrottleCounter

# Counters are kept this long past their window's end, so that a request which computed its
# window just before the end still finds the window's counter.
EXPIRY_MARGIN_SECONDS = 60


def window_of(now: float, duration: int) -> tuple[int, float]:
    """(start of the window `now` falls in, seconds left in it); windows are epoch-aligned."""
    start = int(now // duration) * duration
    return start, start + duration - now


# --- where counts live ----------------------------------------------------------------------------


class CacheCounter:
    """Counts in a cache whose incr is atomic (Redis, or one process's local memory)."""

    def __init__(self, cache):
        self.cache = cache

    def hit(self, key: str, window_start: int, duration: int) -> int:
        windowed = f"{key}:{window_start}"
        for _attempt in range(2):
            # add() is SET NX with the expiry: only the window's first request creates it.
            self.cache.add(windowed, 0, timeout=duration + EXPIRY_MARGIN_SECONDS)
            try:
                return self.cache.incr(windowed)
            except ValueError:
                continue  # expired between add and incr: create it again
        return self.cache.incr(windowed)

    def peek(self, key: str, window_start: int, duration: int) -> int:
        return self.cache.get(f"{key}:{window_start}", 0)


@contextmanager
def counting_connection():
    """The connection a count is written on: the request's, unless that is inside a transaction
    on PostgreSQL (a POST with an Idempotency-Key runs in one, backoffice.idempotency). There a
    connection of its own commits the count at once: the client's counter row is not locked
    until the request ends (its other requests would wait for it), nor is the count undone
    when the request is rolled back. SQLite has one writer at a time anyway."""
    if not (connection.in_atomic_block and connection.vendor == "postgresql"):
        yield connection
        return
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        yield own
    finally:
        own.close()


class DatabaseCounter:
    """Counts in the ThrottleCounter table: one row per client and scope, moved on to the next
    window by the same statement that counts (PostgreSQL and SQLite ≥ 3.35 both speak it)."""

    def hit(self, key: str, window_start: int, duration: int) -> int:
        with counting_connection() as counting:
            return self._hit(counting, key, window_start, duration)

    def _hit(self, db, key: str, window_start: int, duration: int) -> int:
        table = db.ops.quote_name(ThrottleCounter._meta.db_table)
        key_column = db.ops.quote_name("key")
        # A request that computed an older window than the row already has (it was slow to get
        # here) counts in the newer window rather than resetting it.
        sql = f"""
            INSERT INTO {table} ({key_column}, window_start, count, expires_at)
            VALUES (%s, %s, 1, %s)
            ON CONFLICT ({key_column}) DO UPDATE SET
                count = CASE
                    WHEN {table}.window_start >= excluded.window_start THEN {table}.count + 1
                    ELSE 1 END,
                window_start = CASE
                    WHEN {table}.window_start >= excluded.window_start THEN {table}.window_start
                    ELSE excluded.window_start END,
                expires_at = CASE
                    WHEN {table}.window_start >= excluded.window_start THEN {table}.expires_at
                    ELSE excluded.expires_at END
            RETURNING count
        """  # noqa: S608 - the table name is ours, every value a parameter
        expires_at = datetime.fromtimestamp(window_start + duration + EXPIRY_MARGIN_SECONDS, tz=UTC)
        with db.cursor() as cursor:
            cursor.execute(sql, [key, window_start, db.ops.adapt_datetimefield_value(expires_at)])
            return cursor.fetchone()[0]

    def peek(self, key: str, window_start: int, duration: int) -> int:
        row = ThrottleCounter.objects.filter(key=key, window_start=window_start).first()
        return row.count if row else 0


def counter_for(cache) -> CacheCounter | DatabaseCounter:
    if isinstance(cache, (RedisCache, LocMemCache)):
        return CacheCounter(cache)
    return DatabaseCounter()


def purge_expired_counters(*, now=None) -> int:
    """Delete the counters of windows long gone; how many went."""
    deleted, _by_model = ThrottleCounter.objects.filter(
        expires_at__lte=now or datetime.now(tz=UTC)
    ).delete()
    return deleted


# --- the throttles ----------------------------------------------------------------------------


class AtomicRateThrottle(throttling.SimpleRateThrottle):
    """SimpleRateThrottle with an atomic fixed-window counter instead of a history list."""

    # None: the default cache, looked up per request (DRF's `cache` is a proxy of it, which
    # doesn't tell what kind of cache is behind it).
    cache = None

    def counter(self) -> CacheCounter | DatabaseCounter:
        return counter_for(self.cache if self.cache is not None else caches["default"])

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window_start, self.seconds_left = window_of(self.timer(), self.duration)
        count = self.counter().hit(self.key, window_start, self.duration)
        return count <= self.num_requests

    def wait(self):
        return math.ceil(self.seconds_left)


class AnonRateThrottle(throttling.AnonRateThrottle, AtomicRateThrottle):
    """Per client address, for requests without a user."""


class UserRateThrottle(throttling.UserRateThrottle, AtomicRateThrottle):
    """Per user (per address for requests without one)."""


class ScopedRateThrottle(throttling.ScopedRateThrottle, AtomicRateThrottle):
    """Per user and the view's throttle_scope (bulk cancellation)."""


class FailedCredentialsThrottle(AtomicRateThrottle):
    """Refused credentials per client address (the `failed-auth` rate): past the limit, every
    request with credentials from that address is a 429 until the window ends, the right
    credentials too, so that guessing learns nothing. Used by backoffice.authentication."""

    scope = "failed-auth"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def is_exceeded(self, request) -> bool:
        if self.rate is None:
            return False
        window_start, self.seconds_left = window_of(self.timer(), self.duration)
        key = self.get_cache_key(request)
        return self.counter().peek(key, window_start, self.duration) >= self.num_requests

    def record_failure(self, request) -> None:
        if self.rate is not None:
            self.allow_request(request, None)
