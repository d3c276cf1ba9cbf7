"""The dispatcher: claims a due delivery, calls its adapter outside any transaction, records the
attempt and decides what happens next.

    claim()   one short transaction: SELECT … FOR UPDATE SKIP LOCKED the next due delivery,
              mark it in flight with a lease (the provider's timeout + a margin), open its
              attempt row, commit.
    send()    the HTTP call(s), through the adapter. No transaction is open.
    finish()  one short transaction: lock the row again, check the claim is still ours, record
              the outcome: delivered / skipped / failed at once / pending with backoff, or
              failed after DELIVERY_MAX_ATTEMPTS.

A delivery is due when it is pending and its next_attempt_at has come, or in flight and its
lease has run out (its worker died): the sweep takes it over. A revoke is due only once its add
was delivered. SKIP LOCKED lets any number of workers claim side by side without waiting on or
taking each other's rows; the claim token keeps a worker that lost its lease from overwriting
the outcome of the one that took over.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cancellations.models import Cancellation

from .base import Action, Outcome, Result
from .models import AttemptOutcome, Delivery, DeliveryAttempt, ProviderSetting
from .outbox import build_adapter, kick
from .selectors import ready_to_send
from .states import DeliveryStatus, move

logger = logging.getLogger(__name__)
S = DeliveryStatus


def max_attempts() -> int:
    return getattr(settings, "DELIVERY_MAX_ATTEMPTS", 8)


def claim_margin() -> timedelta:
    return timedelta(seconds=getattr(settings, "DELIVERY_CLAIM_MARGIN_SECONDS", 60))


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: after the n-th failed try, wait a random time between
    half and all of min(cap, base · 2^(n-1)), so retries of many deliveries spread out."""
    base = getattr(settings, "DELIVERY_BACKOFF_BASE_SECONDS", 30)
    cap = getattr(settings, "DELIVERY_BACKOFF_MAX_SECONDS", 3600)
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def next_try_at(now, attempts: int, retry_after=None):
    """When to try again: after the backoff, or at the provider's own "not before" (a rate
    limit's reset) when that is later."""
    backoff = now + timedelta(seconds=backoff_seconds(attempts))
    return max(backoff, retry_after) if retry_after is not None else backoff


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def due_deliveries(now=None) -> QuerySet[Delivery]:
    now = now or timezone.now()
    return Delivery.objects.filter(
        status__in=[S.PENDING, S.IN_FLIGHT],
        next_attempt_at__lte=now,
        provider__in=ProviderSetting.objects.filter(enabled=True).values("kind"),
    ).filter(ready_to_send())


@dataclass
class Claim:
    delivery: Delivery
    attempt: DeliveryAttempt
    setting: ProviderSetting
    token: uuid.UUID
    revision: int


def claim(*, delivery_id: int | None = None, worker: str = "") -> Claim | None:
    """Claim the next due delivery (or that one delivery, if it is due and nobody holds it).
    Commits before returning: the caller sends outside any transaction."""
    worker = worker or worker_name()
    with transaction.atomic():
        while True:
            now = timezone.now()
            candidates = due_deliveries(now).order_by("next_attempt_at", "id")
            if delivery_id is not None:
                candidates = candidates.filter(pk=delivery_id)
            delivery = candidates.select_for_update(skip_locked=True).first()
            if delivery is None:
                return None
            if delivery.status == S.IN_FLIGHT and not _take_over(delivery, now):
                if delivery_id is not None:
                    return None
                continue
            setting = ProviderSetting.objects.get(kind=delivery.provider)
            move(delivery, S.IN_FLIGHT)
            delivery.attempts += 1
            delivery.claimed_at = now
            delivery.claimed_by = worker
            delivery.claim_token = uuid.uuid4()
            delivery.next_attempt_at = (
                now + timedelta(seconds=setting.timeout_seconds) + claim_margin()
            )
            delivery.save(
                update_fields=[
                    "status",
                    "attempts",
                    "claimed_at",
                    "claimed_by",
                    "claim_token",
                    "next_attempt_at",
                    "updated_at",
                ]
            )
            attempt = DeliveryAttempt.objects.create(
                delivery=delivery, number=delivery.attempts, started_at=now, worker=worker
            )
            return Claim(delivery, attempt, setting, delivery.claim_token, delivery.revision)


def _take_over(delivery: Delivery, now) -> bool:
    """An in-flight delivery whose lease ran out: its worker died. Close the open attempt;
    claim it again unless that was the last allowed attempt. Returns whether to claim it."""
    DeliveryAttempt.objects.filter(delivery=delivery, outcome="").update(
        outcome=AttemptOutcome.ABANDONED,
        error=_("The worker stopped answering before it recorded an outcome."),
    )
    if delivery.attempts < max_attempts():
        return True
    move(delivery, S.FAILED)
    delivery.claim_token = None
    delivery.last_error = _(
        "Gave up after %(count)s attempts; the last one never finished (its worker stopped)."
    ) % {"count": delivery.attempts}
    delivery.save(update_fields=["status", "claim_token", "last_error", "updated_at"])
    _settle_revoke(delivery)
    return False


def load_cancellation(cancellation_id: str) -> Cancellation:
    return (
        Cancellation.objects.select_related("order", "reason", "created_by", "revoked_by")
        .prefetch_related("lines")
        .get(pk=cancellation_id)
    )


def send(claimed: Claim) -> tuple[Result, int]:
    """Call the adapter. Never raises: an adapter that crashes is a try to repeat later."""
    started = time.monotonic()
    try:
        adapter = build_adapter(claimed.setting)
        if adapter is None:
            result = Result(
                Outcome.FAILED, message=_("This version of Storno has no adapter for it.")
            )
        elif not adapter.config.is_configured:
            result = Result(
                Outcome.RETRY,
                message=_("No base URL is configured for this provider."),
                credentials_problem=True,
            )
        else:
            cancellation = load_cancellation(claimed.delivery.cancellation_id)
            action = Action(claimed.delivery.action)
            if action == Action.ADD and claimed.delivery.references:
                # An earlier try got through (it stored references): this is a re-plan, and
                # the adapter decides how the provider is told.
                result = adapter.deliver_again(cancellation, claimed.delivery.references)
            else:
                result = adapter.deliver(cancellation, action)
    except Exception as exc:
        logger.exception("Delivery %s: the adapter raised.", claimed.delivery.pk)
        result = Result(
            Outcome.RETRY,
            message=_("Unexpected error: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"},
            bug=True,
        )
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return result, result.duration_ms if result.duration_ms is not None else elapsed_ms


def finish(claimed: Claim, result: Result, duration_ms: int) -> Delivery:
    """Record the outcome of one try and move the delivery on."""
    with transaction.atomic():
        now = timezone.now()
        delivery = Delivery.objects.select_for_update().get(pk=claimed.delivery.pk)
        attempt = claimed.attempt
        attempt.outcome = result.outcome.value
        attempt.status_code = result.status_code
        attempt.duration_ms = duration_ms
        attempt.request_excerpt = result.request_excerpt
        attempt.response_excerpt = result.response_excerpt
        attempt.error = result.message if result.outcome != Outcome.DELIVERED else ""
        if delivery.status != S.IN_FLIGHT or delivery.claim_token != claimed.token:
            # Our lease ran out and another worker took over: its outcome counts, not ours.
            attempt.error = " ".join(
                part
                for part in (attempt.error, _("(Came back after its claim had expired.)"))
                if part
            )
            attempt.save()
            return delivery
        attempt.save()

        delivery.last_status_code = result.status_code
        delivery.credentials_problem = result.credentials_problem
        delivery.claim_token = None
        if result.references:
            delivery.references = {**delivery.references, **result.references}
        if delivery.revision != claimed.revision:
            # Re-planned while the request was in the air: it may have carried the old plan.
            move(delivery, S.PENDING)
            delivery.attempts = 0
            delivery.next_attempt_at = now
            transaction.on_commit(lambda: kick([delivery.pk]))
        elif result.outcome == Outcome.DELIVERED:
            move(delivery, S.DELIVERED)
            delivery.delivered_at = now
            # A delivered answer may carry a note staff should see ("JS7 had no such orders").
            delivery.last_error = result.message
        elif result.outcome == Outcome.SKIPPED:
            move(delivery, S.SKIPPED)
            delivery.last_error = result.message
        elif result.outcome == Outcome.FAILED:
            move(delivery, S.FAILED)
            delivery.last_error = result.message
        elif delivery.attempts >= max_attempts():
            move(delivery, S.FAILED)
            delivery.last_error = _("Gave up after %(count)s attempts. Last error: %(error)s") % {
                "count": delivery.attempts,
                "error": result.message,
            }
        else:
            move(delivery, S.PENDING)
            delivery.next_attempt_at = next_try_at(now, delivery.attempts, result.retry_after)
            delivery.last_error = result.message
        delivery.save()
        _settle_revoke(delivery)
    return delivery


def _settle_revoke(add: Delivery) -> None:
    """A revoke waits for its add: send it once the add is delivered, skip it if the add never
    got through."""
    if add.action != Action.ADD or add.status not in (S.DELIVERED, S.FAILED, S.SKIPPED):
        return
    revoke = (
        Delivery.objects.select_for_update()
        .filter(
            cancellation_id=add.cancellation_id,
            provider=add.provider,
            action=Action.REVOKE,
            status=S.PENDING,
        )
        .first()
    )
    if revoke is None:
        return
    if add.status == S.DELIVERED:
        transaction.on_commit(lambda: kick([revoke.pk]))
        return
    move(revoke, S.SKIPPED)
    revoke.last_error = _("The add never reached the provider, so there is nothing to revoke.")
    revoke.save(update_fields=["status", "last_error", "updated_at"])


def deliver(delivery_id: int | None = None, *, worker: str = "") -> Delivery | None:
    """Claim, send and record one delivery (the next due one, or `delivery_id` if it is due).
    Returns it afterwards, or None when nothing was due."""
    claimed = claim(delivery_id=delivery_id, worker=worker)
    if claimed is None:
        return None
    result, duration_ms = send(claimed)
    return finish(claimed, result, duration_ms)


def deliver_due(*, limit: int | None = None, budget_seconds: float | None = None) -> int:
    """Deliver due deliveries one after another until none is left, `limit` were sent, or the
    time budget is spent (the next sweep carries on). Returns how many were tried."""
    budget = budget_seconds or getattr(settings, "DELIVERY_SWEEP_SECONDS", 50)
    deadline = time.monotonic() + budget
    worker = worker_name()
    count = 0
    while (limit is None or count < limit) and time.monotonic() < deadline:
        if deliver(worker=worker) is None:
            break
        count += 1
    return count
