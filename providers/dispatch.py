"""The dispatcher: claims a batch of due deliveries, calls their adapters outside any
transaction, records the attempts and decides what happens next.

    claim_batch()  one short transaction: SELECT … FOR UPDATE SKIP LOCKED up to N due
                   deliveries, mark them in flight with a lease (the provider's timeout + a
                   margin) in one UPDATE, open their attempt rows in one INSERT, commit.
    send_batch()   load their cancellations in a few queries, then the HTTP calls, one
                   delivery after another, through the adapters (over one pooled keep-alive
                   session per provider, providers/http.py). No transaction is open.
    finish_batch() one short transaction (providers/outcomes.py): lock the rows again, check
                   each claim is still ours, record the outcomes in one UPDATE of the
                   deliveries and one of the attempts.

A delivery is due when it is pending and its next_attempt_at has come, or in flight and its
lease has run out (its worker died): the sweep takes it over. A revoke is due only once its add
was delivered. SKIP LOCKED lets any number of workers claim side by side without waiting on or
taking each other's rows; the claim token keeps a worker that lost its lease from overwriting
the outcome of the one that took over. Parallelism comes from processes (the Celery worker's
prefork pool), each sending its own batches one request at a time.

A row of a batch is sent only while its lease leaves the provider's whole timeout: one whose
turn comes later than DELIVERY_CLAIM_MARGIN_SECONDS after the claim (slow providers ahead of it
in the batch) is handed back unsent, so nobody else can be sending it at the same time.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice import request_id
from backoffice.metrics import observe_delivery
from cancellations.models import Cancellation

from . import outcomes
from .base import Action, Outcome, ProviderAdapter, Result
from .models import AttemptOutcome, Delivery, DeliveryAttempt, ProviderSetting
from .outbox import build_adapter
from .outcomes import (  # noqa: F401 - backoff_seconds, next_try_at: the dispatcher's API too
    Claim,
    Sent,
    backoff_seconds,
    finish_batch,
    max_attempts,
    next_try_at,
)
from .selectors import ready_to_send
from .states import DeliveryStatus, check_delivery_transition

logger = logging.getLogger(__name__)
S = DeliveryStatus

# How many deliveries one claim takes (DELIVERY_BATCH_SIZE). A batch costs a fixed number of
# queries, so bigger batches cost fewer per delivery; a worker that dies holds a whole batch
# until its lease runs out.
DEFAULT_BATCH_SIZE = 100


def batch_size() -> int:
    return max(1, int(getattr(settings, "DELIVERY_BATCH_SIZE", DEFAULT_BATCH_SIZE)))


def sweep_seconds() -> float:
    return getattr(settings, "DELIVERY_SWEEP_SECONDS", 50)


def claim_margin() -> timedelta:
    return timedelta(seconds=getattr(settings, "DELIVERY_CLAIM_MARGIN_SECONDS", 60))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def due_deliveries(
    now: datetime | None = None, kinds: list[str] | None = None
) -> QuerySet[Delivery]:
    """Due rows of the enabled providers (or of `kinds`, the enabled ones the caller read)."""
    now = now or timezone.now()
    enabled = (
        ProviderSetting.objects.filter(enabled=True).values("kind") if kinds is None else kinds
    )
    return Delivery.objects.filter(
        status__in=[S.PENDING, S.IN_FLIGHT], next_attempt_at__lte=now, provider__in=enabled
    ).filter(ready_to_send())


def claim_batch(
    size: int | None = None, *, delivery_id: int | None = None, worker: str = ""
) -> list[Claim]:
    """Claim up to `size` due deliveries (or that one delivery, if it is due and nobody holds
    it), the longest waiting first. Commits before returning: the caller sends outside any
    transaction."""
    worker = worker or worker_name()
    size = 1 if delivery_id is not None else (size or batch_size())
    enabled = {setting.kind: setting for setting in ProviderSetting.objects.filter(enabled=True)}
    if not enabled:
        return []
    with transaction.atomic():
        while True:
            started = time.monotonic()
            now = timezone.now()
            candidates = due_deliveries(now, list(enabled)).order_by("next_attempt_at", "id")
            if delivery_id is not None:
                candidates = candidates.filter(pk=delivery_id)
            rows = list(candidates.select_for_update(skip_locked=True)[:size])
            if not rows:
                return []
            rows = _take_over(rows)
            if rows:
                return _claim(rows, enabled, worker, now, started)
            if delivery_id is not None:
                return []


def claim(*, delivery_id: int | None = None, worker: str = "") -> Claim | None:
    """Claim the next due delivery (or that one): a batch of one."""
    claims = claim_batch(1, delivery_id=delivery_id, worker=worker)
    return claims[0] if claims else None


def _claim(
    rows: list[Delivery],
    enabled: dict[str, ProviderSetting],
    worker: str,
    now: datetime,
    started: float,
) -> list[Claim]:
    """Mark the locked rows in flight (one UPDATE) and open their attempts (one INSERT)."""
    token = uuid.uuid4()
    leases = {
        kind: now + timedelta(seconds=setting.timeout_seconds) + claim_margin()
        for kind, setting in enabled.items()
    }
    for row in rows:
        check_delivery_transition(row.status, S.IN_FLIGHT)
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(
        status=S.IN_FLIGHT,
        attempts=F("attempts") + 1,
        claimed_at=now,
        claimed_by=worker,
        claim_token=token,
        next_attempt_at=Case(
            *(When(provider=kind, then=Value(lease)) for kind, lease in leases.items())
        ),
        updated_at=now,
    )
    for row in rows:
        row.status, row.attempts, row.claim_token = S.IN_FLIGHT, row.attempts + 1, token
        row.claimed_at, row.claimed_by, row.next_attempt_at = now, worker, leases[row.provider]
    attempts = DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=row,
            number=row.attempts,
            started_at=now,
            worker=worker,
            request_id=request_id.current(),
        )
        for row in rows
    )
    send_by = started + claim_margin().total_seconds()
    return [
        Claim(row, attempt, enabled[row.provider], token, row.revision, send_by)
        for row, attempt in zip(rows, attempts, strict=True)
    ]


def _take_over(rows: list[Delivery]) -> list[Delivery]:
    """In-flight rows among `rows` had their lease run out: their worker died. Close their open
    attempts; those at the last allowed attempt fail. Returns the rows to claim."""
    stale = [row for row in rows if row.status == S.IN_FLIGHT]
    if not stale:
        return rows
    DeliveryAttempt.objects.filter(delivery__in=stale, outcome="").update(
        outcome=AttemptOutcome.ABANDONED,
        error=_("The worker stopped answering before it recorded an outcome."),
    )
    for row in stale:
        observe_delivery(provider=row.provider, outcome=AttemptOutcome.ABANDONED, seconds=None)
    spent = [row for row in stale if row.attempts >= max_attempts()]
    for row in spent:
        outcomes.give_up_abandoned(row)
    return [row for row in rows if row not in spent]


# --- sending -----------------------------------------------------------------------------------


def load_cancellations(ids: Iterable[str]) -> dict[str, Cancellation]:
    """The cancellations of a batch with what the adapters read (order, reason and its
    mappings, users and their profiles, lines), in a fixed number of queries."""
    return (
        Cancellation.objects.select_related(
            "order", "reason", "created_by__staff_profile", "revoked_by__staff_profile"
        )
        .prefetch_related("lines", "reason__mappings")
        .in_bulk(list(set(ids)))
    )


def load_cancellation(cancellation_id: str) -> Cancellation:
    return load_cancellations([cancellation_id])[cancellation_id]


def send_batch(claims: list[Claim]) -> list[Sent]:
    """Send each claimed delivery, in order; one whose turn comes after its `send_by` is
    handed back unsent (result None)."""
    cancellations = load_cancellations(claimed.delivery.cancellation_id for claimed in claims)
    adapters: dict[str, ProviderAdapter | Literal[False] | None] = {}
    sent = []
    for claimed in claims:
        if time.monotonic() > claimed.send_by:
            sent.append(Sent(claimed, None, 0))
            continue
        kind = claimed.setting.kind
        if kind not in adapters:
            adapters[kind] = _adapter(claimed.setting)
        cancellation = cancellations.get(claimed.delivery.cancellation_id)
        result, duration_ms = _send(claimed, adapters[kind], cancellation)
        sent.append(Sent(claimed, result, duration_ms))
    return sent


def send(claimed: Claim) -> tuple[Result, int]:
    """Send one claimed delivery. Never raises."""
    cancellation = load_cancellations([claimed.delivery.cancellation_id]).get(
        claimed.delivery.cancellation_id
    )
    return _send(claimed, _adapter(claimed.setting), cancellation)


def _adapter(setting: ProviderSetting) -> ProviderAdapter | Literal[False] | None:
    try:
        return build_adapter(setting)
    except Exception:
        logger.exception("Provider %s: its adapter could not be built.", setting.kind)
        return False  # _send reports it on each delivery


def _send(
    claimed: Claim,
    adapter: ProviderAdapter | Literal[False] | None,
    cancellation: Cancellation | None,
) -> tuple[Result, int]:
    """Call the adapter. Never raises: an adapter that crashes is a try to repeat later."""
    started = time.monotonic()
    try:
        if adapter is False:
            raise RuntimeError(_("The adapter could not be built."))
        result = _call(claimed, adapter, cancellation)
    except Exception as exc:
        logger.exception("Delivery %s: the adapter raised.", claimed.delivery.pk)
        result = Result(
            Outcome.RETRY,
            message=_("Unexpected error: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"},
            bug=True,
        )
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return result, result.duration_ms if result.duration_ms is not None else elapsed_ms


def _call(
    claimed: Claim, adapter: ProviderAdapter | None, cancellation: Cancellation | None
) -> Result:
    if adapter is None:
        return Result(Outcome.FAILED, message=_("This version of Storno has no adapter for it."))
    if not adapter.config.is_configured:
        return Result(
            Outcome.RETRY,
            message=_("No base URL is configured for this provider."),
            credentials_problem=True,
        )
    if cancellation is None:
        raise LookupError(f"cancellation {claimed.delivery.cancellation_id} is gone")
    action = Action(claimed.delivery.action)
    if action == Action.ADD and claimed.delivery.references:
        # An earlier try got through (it stored references): this is a re-plan, and the
        # adapter decides how the provider is told.
        return adapter.deliver_again(cancellation, claimed.delivery.references)
    return adapter.deliver(cancellation, action)


def finish(claimed: Claim, result: Result, duration_ms: int) -> Delivery:
    """Record the outcome of one try and move the delivery on."""
    recorded = finish_batch([Sent(claimed, result, duration_ms)])
    if not recorded:
        raise Delivery.DoesNotExist(f"delivery {claimed.delivery.pk} is gone")
    return recorded[0]


# --- the loop ----------------------------------------------------------------------------------


def deliver(delivery_id: int | None = None, *, worker: str = "") -> Delivery | None:
    """Claim, send and record one delivery (the next due one, or `delivery_id` if it is due).
    Returns it afterwards, or None when nothing was due."""
    claimed = claim(delivery_id=delivery_id, worker=worker)
    if claimed is None:
        return None
    result, duration_ms = send(claimed)
    return finish(claimed, result, duration_ms)


def deliver_batch(size: int | None = None, *, worker: str = "") -> int:
    """Claim, send and record one batch. Returns how many were sent (0: nothing was due)."""
    claims = claim_batch(size, worker=worker)
    if not claims:
        return 0
    sent = send_batch(claims)
    finish_batch(sent)
    return sum(1 for one in sent if one.result is not None)


def deliver_due(
    *, limit: int | None = None, budget_seconds: float | None = None, size: int | None = None
) -> int:
    """Deliver due deliveries batch after batch until none is left, `limit` were sent, or the
    time budget is spent (the next sweep carries on). Returns how many were tried."""
    budget = budget_seconds or sweep_seconds()
    deadline = time.monotonic() + budget
    worker = worker_name()
    size = size or batch_size()
    count = 0
    while (limit is None or count < limit) and time.monotonic() < deadline:
        wanted = size if limit is None else min(size, limit - count)
        tried = deliver_batch(wanted, worker=worker)
        if tried == 0:
            break  # nothing due, or the batch was handed back: the next sweep carries on
        count += tried
    return count
