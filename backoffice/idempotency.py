"""`Idempotency-Key` on every POST of the API: a retried request gets the first one's response.

    POST /api/…   Idempotency-Key: <1 to 255 characters>

- The first request with a key runs. Its response (status, body, Content-Type, Location) is kept
  for IDEMPOTENCY_KEY_TTL_HOURS and replayed, with `Idempotent-Replayed: true`, to every later
  request with that key and the same method, path (with its query) and body.
- The same key on another path or with another body is a 422. A request with a key that another
  request is still running waits for it (up to CLAIM_WAIT_SECONDS, then a 409) and replays its
  response.
- 4xx responses are kept like any other (as Stripe does). 5xx and 429 responses are not: all the
  request wrote is rolled back with its key, and the client may retry with it.
- Keys belong to a client: the session's user, or a SHA-256 of the Authorization header (a hash:
  the credentials are never stored). Requests without credentials pass untouched; the API
  answers them 401. Nor is a key kept for a request whose credentials the API refused.
- Without the header nothing changes. Nor is a key kept for a response its view marked with
  keep_nothing() (a dry run: it wrote nothing, so a retry may as well run again).

One transaction: the key's row, everything the view writes and the response it answers commit
together or not at all. A request whose process dies (a killed worker, a timeout, a lost
database connection) leaves nothing behind, so the retry runs at once; one that got as far as
the commit left its response, so the retry replays it. The row is inserted first: on PostgreSQL
a concurrent insert of the same (scope, key) waits on that uncommitted row and then fails on the
unique constraint (the response is there to replay) or goes through (the first one rolled back).
SQLite takes its write lock at BEGIN (transaction_mode IMMEDIATE), so requests queue up anyway.
Work queued with transaction.on_commit (the broker kick of new deliveries) runs after the commit,
as before; views make no calls to other systems inside it (providers are reached by the outbox).
Rows past expires_at count as absent; the beat task
backoffice.tasks.purge_expired_idempotency_keys deletes them. The API's OpenAPI document shows
the header through backoffice.idempotency_openapi.
"""

import hashlib
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from .api import PROBLEM_CONTENT_TYPE
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# What a replay repeats besides status and body.
KEPT_HEADERS = ("Content-Type", "Location")
# Claiming can race with an expiry; after this many rounds the key counts as busy.
CLAIM_ROUNDS = 3
# How long a request waits for another one running with its key before answering 409 (PostgreSQL;
# SQLite waits for its write lock as long as its busy timeout). Shorter than gunicorn's timeout.
CLAIM_WAIT_SECONDS = 10
# Rows are never committed in progress any more; one that is was left by an earlier version of
# this module whose request may still be running, or died. Older than this, it died.
IN_PROGRESS_SECONDS = 300
# PostgreSQL's lock_not_available: the lock_timeout of a claim ran out.
LOCK_NOT_AVAILABLE = "55P03"


class KeyInUse(Exception):
    """Another request with this key is running."""


class KeyReused(Exception):
    """The key belongs to a different request (other path or body)."""


# --- the rules -----------------------------------------------------------------------------------


def applies_to(request) -> bool:
    return request.method == "POST" and request.path_info.startswith("/api/")


def key_error(key: str) -> tuple[str, str] | None:
    """(message, code) when the header's value can't be a key; None when it can."""
    if not key.strip():
        return _("Must not be empty."), "blank"
    if len(key) > MAX_KEY_LENGTH:
        message = _("Must have at most %(limit)d characters.") % {"limit": MAX_KEY_LENGTH}
        return message, "max_length"
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        return _("Must not contain control characters."), "invalid"
    return None


def client_scope(request) -> str | None:
    """Whose key this is: the session's user and/or a hash of the Authorization header (both
    when a request carries both, so neither alone can replay the other's response). None for a
    request without credentials."""
    parts = []
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        parts.append(f"user:{user.pk}")
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization:
        digest = hashlib.sha256(authorization.encode("utf-8", "surrogatepass")).hexdigest()
        parts.append(f"auth:{digest}")
    return " ".join(parts) or None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    # The path is percent-encoded and the method a token: neither holds a space or a newline,
    # so "METHOD path\n" + body is unambiguous.
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


def is_kept(response) -> bool:
    """Server errors and throttling say "not done, try again": nothing of the request is kept,
    its key included."""
    return response.status_code < 500 and response.status_code != 429


def is_authenticated(request) -> bool:
    """After the view: did the API accept the credentials? (DRF sets the user it found, or an
    anonymous one, on the request.)"""
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


# The attribute keep_nothing() sets on a response.
NOT_KEPT = "idempotency_not_kept"


def keep_nothing(response):
    """Mark a response whose key must not be kept (a dry run); returns it."""
    setattr(response, NOT_KEPT, True)
    return response


# --- the rows ------------------------------------------------------------------------------------


def claim_key(*, scope: str, key: str, fingerprint: str, now=None) -> tuple[IdempotencyKey, bool]:
    """Inside the request's transaction: (row, True) when this request may run, its row
    inserted but not committed; (row, False) when the key has a committed response to replay.
    Raises KeyReused, or KeyInUse when the request holding the key doesn't finish in time."""
    now = now or timezone.now()
    try:
        with waiting_at_most(CLAIM_WAIT_SECONDS):
            return _claim(scope=scope, key=key, fingerprint=fingerprint, now=now)
    except OperationalError as exc:
        if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise KeyInUse from exc
        raise


def _claim(*, scope: str, key: str, fingerprint: str, now) -> tuple[IdempotencyKey, bool]:
    expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    for _round in range(CLAIM_ROUNDS):
        try:
            # A savepoint, so that the IntegrityError doesn't spoil the request's transaction.
            # On PostgreSQL this waits while another transaction holds an uncommitted row with
            # the key, and fails once that one commits.
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    scope=scope,
                    key=key,
                    request_fingerprint=fingerprint,
                    created_at=now,
                    expires_at=expires_at,
                )
            return row, True
        except IntegrityError:
            pass
        row = IdempotencyKey.objects.filter(scope=scope, key=key).first()
        if row is None:
            continue  # deleted (expired) since our insert failed: try again
        if row.expires_at <= now:
            # Expired counts as absent; deleted in this transaction, the insert takes its place.
            IdempotencyKey.objects.filter(pk=row.pk, expires_at__lte=now).delete()
            continue
        if row.request_fingerprint != fingerprint:
            raise KeyReused
        if row.state == IdempotencyKey.State.IN_PROGRESS:
            if row.created_at > now - timedelta(seconds=IN_PROGRESS_SECONDS):
                raise KeyInUse
            # Left by a process that died: the key is free.
            IdempotencyKey.objects.filter(pk=row.pk, state=row.state).delete()
            continue
        return row, False
    raise KeyInUse


@contextmanager
def waiting_at_most(seconds: int):
    """PostgreSQL's lock_timeout for the statements inside, in this transaction only."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{seconds * 1000}ms"])
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout TO DEFAULT")


def _sqlstate(exc: Exception) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def settle(row: IdempotencyKey, request, response) -> None:
    """At the end of the request's transaction: keep the response with the key, drop the key,
    or roll everything back."""
    if not is_kept(response):
        transaction.set_rollback(True)  # not done: the retry runs again, from scratch
    elif response.streaming or not is_authenticated(request) or getattr(response, NOT_KEPT, False):
        release_key(row)  # nothing to replay, nobody the key could belong to, or a dry run
    else:
        record_response(row, response)


def record_response(row: IdempotencyKey, response) -> None:
    IdempotencyKey.objects.filter(pk=row.pk).update(
        state=IdempotencyKey.State.DONE,
        response_status=response.status_code,
        response_body=response.content,
        response_headers={name: response[name] for name in KEPT_HEADERS if name in response},
    )


def release_key(row: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=row.pk).delete()


def replay(row: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(row.response_body), status=row.response_status)
    for name, value in row.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def purge_expired_keys(*, now=None) -> int:
    """Delete the keys past their expiry; how many went."""
    deleted, _by_model = IdempotencyKey.objects.filter(
        expires_at__lte=now or timezone.now()
    ).delete()
    return deleted


# --- the responses of its own --------------------------------------------------------------------


def problem(status: int, type_: str, title: str, detail: str, invalid_fields=None, headers=None):
    """The API's problem object (backoffice.api), outside DRF."""
    body = {
        "type": f"urn:storno:problem:{type_}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if invalid_fields is not None:
        body["invalidFields"] = invalid_fields
    return JsonResponse(
        body,
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
        json_dumps_params={"ensure_ascii": False},
    )


def invalid_key(message: str, code: str):
    return problem(
        400,
        "invalid-input",
        _("Invalid input"),
        f"{HEADER}: {message}",
        [{"field": HEADER, "message": message, "code": code}],
    )


def key_reused():
    message = _(
        "This key was used for a different request (another path or body). Use a new key for "
        "a new request."
    )
    return problem(
        422,
        "idempotency-key-reused",
        _("Idempotency key reused"),
        f"{HEADER}: {message}",
        [{"field": HEADER, "message": message, "code": "reused"}],
    )


def key_in_use():
    return problem(
        409,
        "idempotency-key-in-use",
        _("Conflict"),
        _("A request with this key is still in progress. Retry when it has finished."),
        headers={"Retry-After": "1"},
    )


def body_too_large():
    return problem(
        413,
        "http-413",
        _("Request too large"),
        _("The body is too large for a request with an %(header)s.") % {"header": HEADER},
    )


# --- the middleware ------------------------------------------------------------------------------


class IdempotencyKeyMiddleware:
    """Installed after AuthenticationMiddleware (it needs the session's user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER) if applies_to(request) else None
        if key is None:
            return self.get_response(request)
        error = key_error(key)
        if error:
            return invalid_key(*error)
        scope = client_scope(request)
        if scope is None:
            return self.get_response(request)  # no credentials: a 401, nothing to remember
        try:
            body = request.body
        except RequestDataTooBig:
            return body_too_large()
        fingerprint = request_fingerprint(request.method, request.get_full_path_info(), body)
        try:
            return self.run_once(request, scope, key, fingerprint)
        except KeyReused:
            return key_reused()
        except KeyInUse:
            return key_in_use()

    def run_once(self, request, scope: str, key: str, fingerprint: str):
        # Anything raised in here (a lost connection, a failed commit, the SystemExit of a worker
        # killed by gunicorn) rolls the key back with the rest: the client never got an answer
        # it could rely on, and its retry runs.
        with transaction.atomic():
            row, claimed = claim_key(scope=scope, key=key, fingerprint=fingerprint)
            if not claimed:
                return replay(row)
            response = self.get_response(request)
            settle(row, request, response)
        return response
