"""Pulling the reason catalog from Omnitron (through providers.omnitron).

A pull (`pull_reasons`) runs in three steps so that no HTTP call happens inside a transaction:
1. take the lock: insert a `running` ReasonSyncRun. A partial unique index allows only one, so a
   second pull fails to insert and is refused (ReasonSyncInProgress). A run left `running` for
   longer than REASON_SYNC_STALE_MINUTES (a worker that died) is marked failed and taken over.
2. fetch the whole catalog from Omnitron, outside any transaction;
3. apply it in one transaction: upsert by omnitron_id, deactivate what Omnitron no longer lists,
   leave local-only reasons alone, and close the run with its counts. A failed fetch or apply
   changes no reason; the run records why.

A field of an Omnitron reason is overwritten only when Omnitron changed it since the last pull
(`omnitron_snapshot` keeps what it sent), so a reason manager's ordering or deactivation stays
until Omnitron itself changes that field. A pull that finds nothing new writes nothing.

A `cancellation_type` outside the values Omnitron documents (cancel, refund) is not stored: the
reason is kept with the UNKNOWN type ("", which the served schema allows) and the run's
`warnings` name its pk and the value. Kept rather than skipped, because it is a real reason of
the catalog: skipping it would leave a reason that changed its type upstream with a stale type,
or deactivate one that cancellations may still need.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.omnitron import OmnitronAdapter, OmnitronError, OmnitronReason

from .models import (
    KNOWN_CANCELLATION_TYPES,
    SUBJECT_LANGUAGES,
    CancellationReason,
    CancellationType,
    ReasonSyncRun,
    SyncStatus,
    SyncTrigger,
)
from .services import VIA_SYSTEM, ReasonError, announce_change

logger = logging.getLogger(__name__)

DEFAULT_STALE_MINUTES = 30
BATCH_SIZE = 500


class ReasonSyncInProgress(ReasonError):
    """Another pull holds the lock."""


@dataclass
class _Plan:
    to_create: list[CancellationReason]
    to_update: list[CancellationReason]
    snapshot_only: list[CancellationReason]
    updated_fields: set[str]
    updated_count: int
    deactivated_count: int


# --- pulling from Omnitron ---------------------------------------------------------------------


def pull_reasons(
    *, actor=None, trigger: str = SyncTrigger.COMMAND, adapter: OmnitronAdapter | None = None
) -> ReasonSyncRun:
    """Pull the catalog from Omnitron. Returns the finished run: `run.succeeded`, or
    `run.error_cause`/`run.error` saying why nothing changed. Raises ReasonSyncInProgress when
    another pull is running."""
    run = _start_run(actor=actor, trigger=trigger)
    try:
        upstream = (adapter or OmnitronAdapter()).fetch_cancellation_reasons()
    except OmnitronError as exc:
        logger.warning("Pulling cancellation reasons failed: %s", exc)
        return _fail_run(run, cause=exc.cause, message=exc.message)
    except Exception as exc:  # a bug: record it so the lock is released, then let it surface
        _fail_run(run, cause="error", message=str(exc) or type(exc).__name__)
        raise
    try:
        _apply(run, upstream)
    except Exception as exc:  # the transaction rolled back: record why, then re-raise bugs
        _fail_run(run, cause="apply_failed", message=str(exc) or type(exc).__name__)
        if not isinstance(exc, ReasonError):
            raise
    run.refresh_from_db()
    return run


def _stale_after() -> timedelta:
    minutes = getattr(settings, "REASON_SYNC_STALE_MINUTES", DEFAULT_STALE_MINUTES)
    return timedelta(minutes=minutes)


def _start_run(*, actor, trigger) -> ReasonSyncRun:
    now = timezone.now()
    try:
        with transaction.atomic():
            ReasonSyncRun.objects.filter(
                status=SyncStatus.RUNNING, started_at__lt=now - _stale_after()
            ).update(
                status=SyncStatus.FAILED,
                finished_at=now,
                error_cause="abandoned",
                error=_("Abandoned: still running after %(minutes)s minutes; taken over.")
                % {"minutes": int(_stale_after().total_seconds() // 60)},
            )
            return ReasonSyncRun.objects.create(
                status=SyncStatus.RUNNING,
                started_at=now,
                trigger=trigger,
                triggered_by=actor if actor is not None and actor.pk else None,
            )
    except IntegrityError as exc:
        raise ReasonSyncInProgress(
            _("Another pull from Omnitron is running; try again when it has finished."),
            code="sync_in_progress",
        ) from exc


def _fail_run(run: ReasonSyncRun, *, cause: str, message: str) -> ReasonSyncRun:
    ReasonSyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
        status=SyncStatus.FAILED,
        finished_at=timezone.now(),
        error_cause=cause[:32],
        error=message,
    )
    run.refresh_from_db()
    return run


def _apply(run: ReasonSyncRun, upstream: list[OmnitronReason]):
    with transaction.atomic():
        locked = ReasonSyncRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != SyncStatus.RUNNING:
            # Taken over as stale while we were fetching: the newer pull owns the catalog now.
            raise ReasonError(_("This pull was taken over by a newer one."), code="taken_over")
        now = timezone.now()
        warnings: list[str] = []
        incoming = {reason.omnitron_id: _synced_values(reason, warnings) for reason in upstream}
        existing = CancellationReason.objects.filter(omnitron_id__isnull=False).in_bulk(
            field_name="omnitron_id"
        )
        plan = _plan(incoming, existing, now)
        CancellationReason.objects.bulk_create(plan.to_create, batch_size=BATCH_SIZE)
        if plan.to_update:
            CancellationReason.objects.bulk_update(
                plan.to_update,
                [*sorted(plan.updated_fields), "omnitron_snapshot", "modified_date"],
                batch_size=BATCH_SIZE,
            )
        if plan.snapshot_only:
            CancellationReason.objects.bulk_update(
                plan.snapshot_only, ["omnitron_snapshot"], batch_size=BATCH_SIZE
            )
        _announce_changes(locked, plan)
        ReasonSyncRun.objects.filter(pk=run.pk).update(
            status=SyncStatus.SUCCEEDED,
            finished_at=timezone.now(),
            fetched_count=len(upstream),
            created_count=len(plan.to_create),
            updated_count=plan.updated_count,
            deactivated_count=plan.deactivated_count,
            warnings="\n".join(warnings),
        )


# How a pull was started, in the audit trail's words (cancellations' AuditEntry.Via).
TRIGGER_VIA = {SyncTrigger.ADMIN: "admin", SyncTrigger.API: "api", SyncTrigger.SCHEDULE: "task"}


def _announce_changes(run: ReasonSyncRun, plan: _Plan) -> None:
    """One audit entry for a pull that changed the catalog; its sync run has the details."""
    counts = {
        "created": len(plan.to_create),
        "updated": plan.updated_count,
        "deactivated": plan.deactivated_count,
    }
    if not any(counts.values()):
        return
    via = TRIGGER_VIA.get(run.trigger, VIA_SYSTEM)
    data = {"syncRun": run.pk, **counts}
    announce_change("reason_catalog.pulled", actor=run.triggered_by, via=via, data=data)


def _synced_values(reason: OmnitronReason, warnings: list[str]) -> dict:
    values = {
        "cancellation_type": _known_type(reason, warnings),
        "subject": reason.subject,
        "extra_information_needed": reason.extra_information_needed,
        "ordering": reason.ordering,
        "is_active": reason.is_active,
    }
    for language in SUBJECT_LANGUAGES:
        if language in reason.translations:
            values[f"subject_{language}"] = reason.translations[language]
    return values


def _known_type(reason: OmnitronReason, warnings: list[str]) -> str:
    if reason.cancellation_type in KNOWN_CANCELLATION_TYPES:
        return reason.cancellation_type
    warnings.append(
        _(
            "Reason pk %(pk)s: Omnitron's cancellation_type %(value)s is not one Storno knows "
            "(%(known)s); the reason is kept with an unknown type."
        )
        % {
            "pk": reason.omnitron_id,
            "value": json.dumps(reason.cancellation_type[:100], ensure_ascii=False),
            "known": ", ".join(KNOWN_CANCELLATION_TYPES),
        }
    )
    return CancellationType.UNKNOWN


def _plan(incoming: dict[int, dict], existing: dict[int, CancellationReason], now) -> _Plan:
    plan = _Plan([], [], [], set(), 0, 0)
    for omnitron_id, values in incoming.items():
        reason = existing.get(omnitron_id)
        if reason is None:
            plan.to_create.append(
                CancellationReason(
                    omnitron_id=omnitron_id,
                    created_date=now,
                    modified_date=now,
                    omnitron_snapshot=values,
                    **values,
                )
            )
            continue
        snapshot = reason.omnitron_snapshot or {}
        # Only what Omnitron changed since the last pull; local edits to the rest stay.
        changed = {
            name: value
            for name, value in values.items()
            if snapshot.get(name) != value and getattr(reason, name) != value
        }
        if _stage(plan, reason, changed, values, now):
            plan.updated_count += 1
    for omnitron_id, reason in existing.items():
        if omnitron_id in incoming:
            continue
        # Gone upstream: deactivate, never delete (cancellations point to it).
        snapshot = {**(reason.omnitron_snapshot or {}), "is_active": False}
        changed = {"is_active": False} if reason.is_active else {}
        if _stage(plan, reason, changed, snapshot, now):
            plan.deactivated_count += 1
    return plan


def _stage(plan: _Plan, reason, changed: dict, snapshot: dict, now) -> bool:
    """Queue the writes for one reason; True when a visible field changes."""
    snapshot_changed = (reason.omnitron_snapshot or {}) != snapshot
    reason.omnitron_snapshot = snapshot
    if changed:
        for name, value in changed.items():
            setattr(reason, name, value)
        reason.modified_date = now
        plan.updated_fields.update(changed)
        plan.to_update.append(reason)
    elif snapshot_changed:
        plan.snapshot_only.append(reason)  # bookkeeping only: modified_date stays
    return bool(changed)
