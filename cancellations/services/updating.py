"""Changing a cancellation that exists: update_cancellation (re-plan, confirm a draft, correct
who asked), and upsert_cancellation, the one create-or-update (Rebilly's PUT with the status
the client asked for, Callisto's Add) that decides under the order's lock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import Action as DeliveryAction
from providers.outbox import enqueue_deliveries
from reasons.models import CancellationReason

from .. import audit as audit_log
from .. import ownership
from ..audit import AuditInfo
from ..errors import CancellationError
from ..models import (
    CANCELLATION_ID_RE,
    AuditEntry,
    CanceledBy,
    Cancellation,
    Order,
)
from ..states import (
    CancellationStatus,
    check_cancellation_transition,
    check_requested_status,
)
from .effect import Acting, Taking, mark_completed, take_effect_of_all
from .locks import blocked_items, lock_items, lock_order
from .quoting import ExtraLine, ItemPick, quote_cancellation, reason_errors
from .revoking import revoke_cancellation
from .writing import cancel_order, check_request_fields, write_plan

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _plan_signature(
    *,
    reason_id: int,
    items: list[ItemPick] | None,
    lines: Sequence[ExtraLine],
    churn_time: datetime | None,
    churn_time_policy: str,
    prorated: bool,
) -> dict[str, object]:
    return {
        "reason": reason_id,
        "items": None if items is None else sorted((p.order_item_id, p.quantity) for p in items),
        "lines": [
            (
                line.type,
                str(line.unit_price_amount),
                line.unit_price_currency,
                line.quantity,
                line.description,
            )
            for line in lines
        ],
        "churn_time": churn_time.isoformat() if churn_time and not churn_time_policy else None,
        "churn_time_policy": churn_time_policy or "",
        "prorated": bool(prorated),
    }


def _stored_signature(cancellation: Cancellation) -> dict[str, object]:
    items = None
    if not cancellation.is_whole_order:
        items = [ItemPick(row.order_item_id, row.quantity) for row in cancellation.items.all()]
    lines = [
        ExtraLine(
            line.type,
            line.unit_price_amount,
            line.unit_price_currency,
            line.quantity,
            line.description,
        )
        for line in cancellation.lines.all()
    ]
    return _plan_signature(
        reason_id=cancellation.reason_id,
        items=items,
        lines=lines,
        churn_time=cancellation.churn_time,
        churn_time_policy=cancellation.churn_time_policy,
        prorated=cancellation.prorated,
    )


def _check_changeable(cancellation: Cancellation, *, order: Order, draft: bool) -> None:
    """What no update may do: move to another order, touch a revoked cancellation, or make
    anything but a draft a draft again."""
    if order.pk != cancellation.order_id:
        raise CancellationError(
            {"order": _("A cancellation can't move to another order.")}, code="invalid"
        )
    if cancellation.status == CancellationStatus.REVOKED:
        raise CancellationError(
            {"status": _("A revoked cancellation can't be changed.")}, code="not_changeable"
        )
    if draft and cancellation.status != CancellationStatus.DRAFT:
        check_cancellation_transition(cancellation.status, CancellationStatus.DRAFT)


def _plan_changed(cancellation: Cancellation, **plan: Any) -> bool:
    """Whether the wanted plan differs from the stored one; refused once effective."""
    before = _stored_signature(cancellation)
    wanted = _plan_signature(**plan)
    effective = cancellation.status == CancellationStatus.COMPLETED
    if effective:
        # Once effective, "no time given" means "leave the time as it was".
        if plan["churn_time"] is None:
            wanted["churn_time"] = before["churn_time"]
        if not plan["churn_time_policy"]:
            wanted["churn_time_policy"] = before["churn_time_policy"]
    if before == wanted:
        return False
    if effective:
        changed = sorted(k for k in wanted if wanted[k] != before[k])
        raise CancellationError(
            {
                name: _("Can't change once effective; revoke it and cancel again.")
                for name in changed
            },
            code="not_changeable",
        )
    return True


def _take_request_fields(
    cancellation: Cancellation,
    *,
    reason: CancellationReason,
    description: str,
    canceled_by: str,
    churn_time_policy: str,
    external_user_id: str,
    audit: AuditInfo,
    request_fingerprint: str,
) -> None:
    cancellation.reason = reason
    cancellation.description = description.strip()
    cancellation.canceled_by = canceled_by
    cancellation.churn_time_policy = churn_time_policy or ""
    cancellation.external_user_id = external_user_id
    cancellation.audit_comment = audit.comment
    cancellation.audit_time_spent = audit.time_spent
    cancellation.audit_ticket_link = audit.ticket_link
    cancellation.request_fingerprint = request_fingerprint


def update_cancellation(
    cancellation: Cancellation,
    *,
    order: Order,
    reason: CancellationReason | None,
    actor: User | None,
    via: str,
    items: list[ItemPick] | None = None,
    lines: Sequence[ExtraLine] = (),
    churn_time: datetime | None = None,
    churn_time_policy: str = "",
    prorated: bool = False,
    description: str = "",
    canceled_by: str = CanceledBy.MERCHANT,
    external_user_id: str = "",
    audit: AuditInfo = AuditInfo(),
    request_fingerprint: str = "",
    draft: bool = False,
) -> tuple[Cancellation, bool]:
    """The update half of an upsert. Returns (cancellation, changed).

    A scheduled cancellation may be re-planned entirely. Once effective, only the description,
    who asked and the audit note may change: anything else needs a revoke and a new
    cancellation, so that what the providers were told stays true.

    A draft stays a draft (re-planned, nothing else changes) with draft=True; without, it is
    confirmed: quoted again as of now and from then on like any new cancellation (effective
    at once or scheduled, providers told). Nothing else can become a draft again."""
    ownership.check_may_act_on(actor, cancellation)
    check_request_fields(canceled_by, audit=audit, external_user_id=external_user_id)
    with transaction.atomic():
        locked_order = lock_order(cancellation.order_id)
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation.pk)
        if request_fingerprint and request_fingerprint == cancellation.request_fingerprint:
            return cancellation, False
        _check_changeable(cancellation, order=order, draft=draft)
        confirming = cancellation.status == CancellationStatus.DRAFT and not draft
        errors = reason_errors(reason, description)
        if errors or reason is None:  # reason_errors() names a missing reason
            raise CancellationError(errors, code="invalid")
        plan_changed = _plan_changed(
            cancellation,
            reason_id=reason.pk,
            items=items,
            lines=lines,
            churn_time=churn_time,
            churn_time_policy=churn_time_policy,
            prorated=prorated,
        )
        now = timezone.now()
        # A draft being confirmed is quoted again: its quote was as of when it was stored.
        replan = plan_changed or confirming
        if replan:
            lock_items(locked_order)
            quote = quote_cancellation(
                locked_order,
                reason=reason,
                items=items,
                lines=lines,
                churn_time=churn_time,
                churn_time_policy=churn_time_policy,
                prorated=prorated,
                description=description,
                now=now,
                excluding=cancellation.pk,
                blocked=blocked_items(locked_order),
            )
            cancellation.items.all().delete()
            cancellation.lines.all().delete()
        _take_request_fields(
            cancellation,
            reason=reason,
            description=description,
            canceled_by=canceled_by,
            churn_time_policy=churn_time_policy,
            external_user_id=external_user_id,
            audit=audit,
            request_fingerprint=request_fingerprint,
        )
        if confirming:
            check_cancellation_transition(cancellation.status, CancellationStatus.CONFIRMED)
            cancellation.status = CancellationStatus.CONFIRMED
            cancellation.canceled_time = now
            cancellation.order_status_before = locked_order.status
        effective_now = replan and not draft and not quote.is_scheduled
        if effective_now:
            mark_completed(cancellation, now)
        if replan:
            write_plan(cancellation, quote)
        else:
            cancellation.save()
        trail = audit_log.Trail()
        trail.add(
            "cancellation.confirmed" if confirming else "cancellation.updated",
            order=locked_order,
            cancellation=cancellation,
            actor=actor,
            via=via,
            data={"replanned": plan_changed},
            audit=audit,
        )
        if effective_now:
            taking = Taking.of_quote(cancellation, locked_order, quote)
            entries = take_effect_of_all([taking], acting=Acting(actor, via, audit), now=now)
            trail.entries += [AuditEntry(**row) for row in entries]
        trail.write()
        # Any accepted change may alter what providers were told (plan, description, who):
        # providers that take updates hear it again. A draft is told to no one.
        if not draft:
            enqueue_deliveries(cancellation, DeliveryAction.ADD)
    return cancellation, True


def _find_for_upsert(cancellation_id: str | None) -> Cancellation | None:
    # Ids outside the pattern (NUL bytes, 5 kB…) can't exist: cancel_order refuses them.
    if not cancellation_id or len(cancellation_id) > 50:
        return None
    if not CANCELLATION_ID_RE.fullmatch(cancellation_id):
        return None
    return Cancellation.objects.filter(pk=cancellation_id).first()


def _replayed(order: Order, fingerprint: str) -> Cancellation | None:
    """The order's active cancellation made by the same request before (a retry after a lost
    answer), or None."""
    if not fingerprint:
        return None
    return order.cancellations.filter(
        status__in=CancellationStatus.active, request_fingerprint=fingerprint
    ).first()


def upsert_cancellation(
    cancellation_id: str | None,
    *,
    order: Order,
    actor: User | None,
    via: str,
    status: str = CancellationStatus.CONFIRMED,
    replay: bool = False,
    canceled_time: datetime | None = None,
    authorize: Callable[[Cancellation | None], None] | None = None,
    **plan: Any,  # cancel_order's and update_cancellation's plan arguments
) -> tuple[Cancellation, bool]:
    """Create or update: the one service behind Rebilly's PUT /order-cancellations/{id} and
    Callisto's Add. Returns (cancellation, created). Decided under the order's lock, so two
    requests for one id (or one Add sent twice) can't both create.

    The cancellation with `cancellation_id` is updated (update_cancellation; the same request
    again changes nothing); without one, `replay` returns the order's active cancellation that
    the same request (plan["request_fingerprint"]) made before; otherwise cancel_order creates
    it (with `canceled_time`, when it was entered). `plan` is cancel_order's and
    update_cancellation's plan arguments (reason, items, lines, churn_time…, audit).

    status (Rebilly's): draft stores (or re-plans) a plan that changes nothing; confirmed
    takes effect (a draft is confirmed); revoked: revoke_cancellation, the plan is not
    applied; completed: only a cancellation that is completed already.

    `authorize(existing or None)`: the interface's permission check (creating may need more
    than updating), called under the lock with what was found, before anything changes."""
    with transaction.atomic():
        lock_order(order)
        existing = _find_for_upsert(cancellation_id)
        if authorize is not None:
            authorize(existing)
        if existing is not None:
            ownership.check_may_act_on(actor, existing)  # before "nothing to do": not theirs
        check_requested_status(existing.status if existing else None, status)
        if existing is not None and existing.order_id != order.pk:
            raise CancellationError(
                {"order": _("A cancellation can't move to another order.")}, code="invalid"
            )
        draft = status == CancellationStatus.DRAFT
        if existing is None:  # `revoked` was refused above: there is nothing to revoke
            replayed = _replayed(order, plan.get("request_fingerprint", "")) if replay else None
            if replayed is not None:
                return replayed, False
            created = cancel_order(
                order,
                cancellation_id=cancellation_id,
                draft=draft,
                actor=actor,
                via=via,
                canceled_time=canceled_time,
                **plan,
            )
            return created, True
        if status == CancellationStatus.REVOKED:
            if existing.status == CancellationStatus.REVOKED:
                return existing, False  # the same request again
            audit = plan.get("audit") or AuditInfo()
            revoked = revoke_cancellation(existing, actor=actor, via=via, comment=audit.comment)
            return revoked, False
        updated, _changed = update_cancellation(
            existing, order=order, draft=draft, actor=actor, via=via, **plan
        )
        return updated, False


def request_fingerprint(payload: object) -> str:
    """A stable hash of a request body, for telling a repeated PUT from a changed one."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
