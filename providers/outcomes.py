"""Recording what came back from a batch of deliveries (the dispatcher's third step).

One short transaction per batch: lock the batch's rows again, then for each one
- whose claim is no longer ours (its lease ran out and another worker took it over): write our
  outcome on our attempt only, marked as late; the newer claim's outcome counts;
- that was re-planned while its request was in the air (its revision moved): pending again at
  once, with a fresh attempt budget, because the request may have carried the old plan;
- otherwise: delivered / skipped / failed at once / pending after a backoff (or the provider's
  own "not before"), or failed after DELIVERY_MAX_ATTEMPTS tries;
- handed back unsent (its turn came too late in the batch): pending again at once, its attempt
  neither counted nor kept.
All of it is written with one UPDATE of the deliveries and one of the attempts
(backoffice/bulk_update.py). A revoke waits
for its add: it is asked for once the add is delivered, and skipped if the add never got through.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.bulk_update import update_rows
from backoffice.metrics import observe_delivery

from . import messages, outbox
from .base import Action, Outcome, Result
from .models import Delivery, DeliveryAttempt, ProviderSetting
from .states import DeliveryStatus, check_delivery_transition, move

logger = logging.getLogger(__name__)
S = DeliveryStatus
SETTLED = (S.DELIVERED, S.FAILED, S.SKIPPED)
DELIVERY_FIELDS = [
    "status",
    "attempts",
    "next_attempt_at",
    "delivered_at",
    "last_error",
    "message_code",
    "message_params",
    "last_status_code",
    "credentials_problem",
    "needs_manual_action",
    "claim_token",
    "references",
    "updated_at",
]
SCHEDULE_AHEAD_MAX = timedelta(hours=1)  # the backoff's default cap; CELERY_VISIBILITY_TIMEOUT: 2 h
ATTEMPT_FIELDS = [
    "outcome",
    "status_code",
    "duration_ms",
    "request_excerpt",
    "response_excerpt",
    "error",
]


def max_attempts() -> int:
    return getattr(settings, "DELIVERY_MAX_ATTEMPTS", 8)


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: after the n-th failed try, wait a random time between
    half and all of min(cap, base · 2^(n-1)), so retries of many deliveries spread out."""
    base = getattr(settings, "DELIVERY_BACKOFF_BASE_SECONDS", 30)
    cap = getattr(settings, "DELIVERY_BACKOFF_MAX_SECONDS", 3600)
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


def next_try_at(now: datetime, attempts: int, retry_after: datetime | None = None) -> datetime:
    """When to try again: after the backoff, or at the provider's own "not before" (a rate
    limit's reset) when that is later."""
    backoff = now + timedelta(seconds=backoff_seconds(attempts))
    return max(backoff, retry_after) if retry_after is not None else backoff


@dataclass
class Claim:
    """One delivery a worker claimed: the row as claimed, its open attempt, its provider."""

    delivery: Delivery
    attempt: DeliveryAttempt
    setting: ProviderSetting
    token: uuid.UUID
    revision: int
    # time.monotonic() after which this row may no longer be sent (providers/dispatch.py)
    send_by: float = float("inf")


@dataclass
class Sent:
    """One claimed delivery after its turn: the adapter's result, or None if not sent."""

    claim: Claim
    result: Result | None
    duration_ms: int


def finish_batch(batch: list[Sent]) -> list[Delivery]:
    """Record the outcomes of a batch and move its deliveries on. Returns them afterwards."""
    if not batch:
        return []
    with transaction.atomic():
        now = timezone.now()
        ids = [sent.claim.delivery.pk for sent in batch]
        current = Delivery.objects.select_for_update().order_by("pk").in_bulk(ids)
        changed, attempts, unsent, kicks = [], [], [], []
        retries: dict[int, datetime] = {}
        for sent in batch:
            delivery = current.get(sent.claim.delivery.pk)
            if delivery is None:  # its cancellation was deleted meanwhile: nothing to record
                continue
            ours = delivery.status == S.IN_FLIGHT and delivery.claim_token == sent.claim.token
            if sent.result is None:
                if ours:
                    _hand_back(delivery, now)
                    changed.append(delivery)
                    unsent.append(sent.claim.attempt.pk)
                continue
            attempts.append(_attempt(sent, sent.result, late=not ours))
            if ours:
                if _record(delivery, sent.claim, sent.result, now):
                    kicks.append(delivery.pk)
                elif _scheduled_retry(delivery, now):
                    retries[delivery.pk] = delivery.next_attempt_at
                changed.append(delivery)
        if changed:
            update_rows(Delivery, changed, DELIVERY_FIELDS)
        if attempts:
            update_rows(DeliveryAttempt, attempts, ATTEMPT_FIELDS)
        if unsent:
            DeliveryAttempt.objects.filter(pk__in=unsent).delete()
        _ask_after_commit(kicks + settle_revokes(changed, now), retries)
    observe_attempts(batch)
    return [current[pk] for pk in ids if pk in current]


def _ask_after_commit(due: list[int], retries: dict[int, datetime]) -> None:
    """Once the outcomes are committed: ask for the due ones now, the retries at their time."""
    if due:
        transaction.on_commit(lambda: outbox.kick(due))
    if retries:
        transaction.on_commit(lambda: outbox.kick_at(retries))


def _scheduled_retry(delivery: Delivery, now: datetime) -> bool:
    """A retry waiting out its backoff gets a message for its time. Not one much later: a
    message held that long could outlive the broker's visibility timeout and come twice; the
    sweep sends those."""
    return (
        delivery.status == S.PENDING
        and delivery.attempts > 0
        and delivery.next_attempt_at - now <= SCHEDULE_AHEAD_MAX
    )


def observe_attempts(batch: list[Sent]) -> None:
    """Count each attempt made (storno_deliveries_total, storno_delivery_seconds) and log it
    (the request id comes with the task: backoffice.log_format)."""
    for sent in batch:
        if sent.result is not None:  # None: handed back unsent, no attempt
            _observe(sent, sent.result)


def _observe(sent: Sent, result: Result) -> None:
    delivery = sent.claim.delivery
    observe_delivery(
        provider=delivery.provider,
        outcome=result.outcome.value,
        seconds=sent.duration_ms / 1000,
    )
    logger.info(
        "Delivery %s (%s %s) attempt %s: %s",
        delivery.pk,
        delivery.provider,
        delivery.action,
        sent.claim.attempt.number,
        result.outcome.value,
        extra={
            "delivery_id": delivery.pk,
            "provider": delivery.provider,
            "outcome": result.outcome.value,
            "status_code": result.status_code,
            "duration_ms": sent.duration_ms,
        },
    )


def _attempt(sent: Sent, result: Result, *, late: bool) -> DeliveryAttempt:
    attempt = sent.claim.attempt
    attempt.outcome = result.outcome.value
    attempt.status_code = result.status_code
    attempt.duration_ms = sent.duration_ms
    attempt.request_excerpt = result.request_excerpt
    attempt.response_excerpt = result.response_excerpt
    attempt.error = result.message if result.outcome != Outcome.DELIVERED else ""
    if late:
        # Our lease ran out and another worker took over: its outcome counts, not ours.
        note = _("(Came back after its claim had expired.)")
        attempt.error = " ".join(part for part in (attempt.error, note) if part)
    return attempt


def _record(delivery: Delivery, claimed: Claim, result: Result, now: datetime) -> bool:
    """Move one delivery on after its answer. Returns whether to ask for it again at once."""
    delivery.updated_at = now
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
        return True
    if result.outcome == Outcome.DELIVERED:
        move(delivery, S.DELIVERED)
        delivery.delivered_at = now
        # A delivered answer may carry a note staff should see ("JS7 had no such orders").
        _say(delivery, result.message)
    elif result.outcome in (Outcome.SKIPPED, Outcome.FAILED):
        move(delivery, S(result.outcome.value))
        _say(delivery, result.message)
        # What the provider can't carry becomes a staff task (done by hand, marked done).
        delivery.needs_manual_action = result.outcome == Outcome.SKIPPED and (
            result.needs_manual_action
        )
    elif delivery.attempts >= max_attempts():
        move(delivery, S.FAILED)
        _say_coded(delivery, messages.GAVE_UP, count=delivery.attempts, error=result.message)
    else:
        move(delivery, S.PENDING)
        delivery.next_attempt_at = next_try_at(now, delivery.attempts, result.retry_after)
        _say(delivery, result.message)
    return False


def _say(delivery: Delivery, text: str) -> None:
    """The answer's message: Storno's own words by their code (providers.messages), a
    provider's verbatim."""
    delivery.last_error = text
    delivery.message_code, delivery.message_params = messages.coded(text), {}


def _say_coded(delivery: Delivery, code: str, **params: object) -> None:
    delivery.last_error = messages.render(code, params)
    delivery.message_code, delivery.message_params = code, params


def _hand_back(delivery: Delivery, now: datetime) -> None:
    """Not sent after all: due again at once, as if never claimed."""
    move(delivery, S.PENDING)
    delivery.attempts -= 1
    delivery.claim_token = None
    delivery.next_attempt_at = now
    delivery.updated_at = now


def give_up_abandoned(delivery: Delivery) -> None:
    """An in-flight delivery whose worker died on its last allowed attempt: failed for good."""
    move(delivery, S.FAILED)
    delivery.claim_token = None
    _say_coded(delivery, messages.WORKER_STOPPED, count=delivery.attempts)
    delivery.save(update_fields=["status", "claim_token", *messages.MESSAGE_FIELDS, "updated_at"])
    kicks = settle_revokes([delivery], timezone.now())
    if kicks:
        transaction.on_commit(lambda: outbox.kick(kicks))


def settle_revokes(deliveries: list[Delivery], now: datetime) -> list[int]:
    """A revoke waits for its add: of the adds among `deliveries` that settled, the waiting
    revokes of delivered ones are due now (their ids are returned, to ask for them), and those
    of adds that never got through are skipped. One query when any add settled."""
    settled = {
        (add.cancellation_id, add.provider): add
        for add in deliveries
        if add.action == Action.ADD and add.status in SETTLED
    }
    if not settled:
        return []
    waiting = Delivery.objects.select_for_update().filter(
        cancellation_id__in={cancellation_id for cancellation_id, _kind in settled},
        action=Action.REVOKE,
        status=S.PENDING,
    )
    due, skipped = [], []
    for revoke in waiting.order_by("pk"):
        add = settled.get((revoke.cancellation_id, revoke.provider))
        if add is None:
            continue
        if add.status == S.DELIVERED:
            due.append(revoke.pk)
        else:
            check_delivery_transition(revoke.status, S.SKIPPED)
            skipped.append(revoke.pk)
    if skipped:
        Delivery.objects.filter(pk__in=skipped).update(
            status=S.SKIPPED,
            last_error=messages.render(messages.ADD_NEVER_REACHED),
            message_code=messages.ADD_NEVER_REACHED,
            message_params={},
            updated_at=now,
        )
    return due
