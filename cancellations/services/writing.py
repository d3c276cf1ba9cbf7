"""Writing a new cancellation: cancel_order (the staff form, admin, API, Callisto, billing
engine) checks, locks and quotes, then writes a batch of one through batch_writer, the write
path the bulk job shares; and new_cancellation, the constructor both use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.metrics import count_cancellations
from providers import outbox
from providers.base import Action as DeliveryAction
from reasons.models import CancellationReason

from ..audit import AuditInfo
from ..errors import CancellationError
from ..models import (
    CANCELLATION_ID_RE,
    CanceledBy,
    Cancellation,
    CancellationItem,
    CancellationLine,
    Order,
)
from ..states import (
    CancellationStatus,
)
from .batch_writer import Planned, write_cancellations
from .effect import Acting
from .locks import blocked_items, lock_items, lock_order
from .quoting import CancellationQuote, ExtraLine, ItemPick, canceled_by_errors, quote_cancellation

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from providers.models import Delivery

    from ..models import BulkCancellation


def new_cancellation(
    order: Order,
    quote: CancellationQuote,
    *,
    reason: CancellationReason,
    description: str,
    canceled_by: str,
    churn_time_policy: str,
    actor: User | None,
    external_user_id: str,
    audit: AuditInfo,
    now: datetime,
    request_fingerprint: str = "",
    kill_running: bool = False,
    bulk_cancellation: BulkCancellation | None = None,
    canceled_time: datetime | None = None,
) -> Cancellation:
    """The (unsaved) confirmed cancellation for a quote; one constructor for the single and
    the bulk path. canceled_time: when it was asked for, if not now (see cancel_order)."""
    cancellation = Cancellation(
        order=order,
        reason=reason,
        description=description.strip(),
        canceled_by=canceled_by,
        status=CancellationStatus.CONFIRMED,
        canceled_time=now if canceled_time is None else min(canceled_time, now),
        churn_time_policy=churn_time_policy or "",
        order_status_before=order.status,
        created_by=actor if actor is not None and actor.pk else None,
        external_user_id=external_user_id,
        audit_comment=audit.comment,
        audit_time_spent=audit.time_spent,
        audit_ticket_link=audit.ticket_link,
        request_fingerprint=request_fingerprint,
        kill_running=kill_running,
        bulk_cancellation=bulk_cancellation,
    )
    _apply_quote(cancellation, quote)
    return cancellation


def _apply_quote(cancellation: Cancellation, quote: CancellationQuote) -> None:
    cancellation.is_whole_order = quote.is_whole_order
    cancellation.churn_time = quote.effective_at
    cancellation.prorated = quote.prorated
    cancellation.currency = quote.currency
    cancellation.prorated_credit_amount = quote.prorated_credit
    cancellation.line_item_subtotal_amount = quote.line_item_subtotal


def cancellation_item_rows(
    cancellation: Cancellation, quote: CancellationQuote
) -> list[CancellationItem]:
    return [
        CancellationItem(
            cancellation=cancellation,
            order_item=q.order_item,
            quantity=q.quantity,
            prorated_credit_amount=q.prorated_credit,
        )
        for q in quote.items
    ]


def write_plan(
    cancellation: Cancellation, quote: CancellationQuote
) -> tuple[list[CancellationItem], list[CancellationLine]]:
    _apply_quote(cancellation, quote)
    cancellation.save()
    items = CancellationItem.objects.bulk_create(cancellation_item_rows(cancellation, quote))
    lines = CancellationLine.objects.bulk_create(
        CancellationLine(
            cancellation=cancellation,
            type=line.type,
            description=line.description,
            unit_price_amount=line.unit_price_amount,
            unit_price_currency=line.unit_price_currency,
            quantity=line.quantity,
            period_start=line.period_start,
            period_end=line.period_end,
        )
        for line in quote.lines
    )
    return items, lines


def enqueue_deliveries(cancellation: Cancellation, action: DeliveryAction) -> list[Delivery]:
    """The outbox rows for `action` on a cancellation cancel_order has just written. Its ADD
    rows are its first: there are none to look at before (outbox.add_new_deliveries), so they
    cost one INSERT."""
    if action != DeliveryAction.ADD:
        return outbox.enqueue_deliveries(cancellation, action)
    return outbox.add_new_deliveries([cancellation])


def _check_cancellation_id(cancellation_id: str | None) -> None:
    if cancellation_id is None:
        return
    if not CANCELLATION_ID_RE.fullmatch(cancellation_id) or len(cancellation_id) > 50:
        raise CancellationError(
            {"id": _("Use at most 50 letters, digits and @ ~ - . _.")}, code="invalid"
        )
    if Cancellation.objects.filter(pk=cancellation_id).exists():
        raise CancellationError(
            {"id": _("A cancellation with this id exists already.")}, code="duplicate"
        )


MAX_MINUTES = 2**31 - 1
# How far ahead of our clock a caller's clock may be (a given canceled_time).
CLOCK_SKEW = timedelta(minutes=5)


def check_request_fields(
    canceled_by: str, *, audit: AuditInfo | None = None, external_user_id: str = ""
) -> None:
    """Who asked and the audit note: checked here, not only by each interface, so no caller
    can get a value past the service that the database would refuse."""
    errors = canceled_by_errors(canceled_by)
    texts = {"external_user_id": (external_user_id, 64)}
    if audit is not None:
        texts["audit.comment"] = (audit.comment, 255)
        texts["audit.ticket_link"] = (audit.ticket_link, 255)
        minutes = audit.time_spent
        if minutes is not None and (
            not isinstance(minutes, int)
            or isinstance(minutes, bool)
            or not 0 <= minutes <= MAX_MINUTES
        ):
            errors["audit.time_spent"] = _("Give whole minutes, 0 or more.")
    for name, (text, limit) in texts.items():
        if len(text or "") > limit:
            errors[name] = _("Use at most %(limit)s characters.") % {"limit": limit}
        elif "\x00" in (text or ""):
            errors[name] = _("Must not contain NUL characters.")
    if errors:
        raise CancellationError(errors, code="invalid")


def cancel_order(
    order: Order,
    *,
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
    cancellation_id: str | None = None,
    request_fingerprint: str = "",
    kill_running: bool = False,
    bulk_cancellation: BulkCancellation | None = None,
    canceled_time: datetime | None = None,
    draft: bool = False,
) -> Cancellation:
    """Cancel the whole order (items=None) or some quantities of its items, now or later.

    canceled_time: when the cancellation was entered, if that was before now (e.g. Callisto's
    CancelTimestamp); a few minutes ahead of our clock count as now, later is refused.

    Effective at once when the effective time has come (status completed), otherwise scheduled
    (status confirmed) for complete_due_cancellations to apply. A draft (Rebilly's "so that the
    cancellation and charge can be previewed") only stores the plan, quoted as of now: no item,
    order or provider hears of it until update_cancellation confirms it.

    The returned cancellation carries its items, lines and deliveries as written (prefetched),
    so a caller can show it without reading it back."""
    check_request_fields(canceled_by, audit=audit, external_user_id=external_user_id)
    if canceled_time is not None and canceled_time > timezone.now() + CLOCK_SKEW:
        raise CancellationError(
            {"canceled_time": _("When it was entered can't be in the future.")}, code="invalid"
        )
    try:
        with transaction.atomic():
            order = lock_order(order, with_items=True)
            _check_cancellation_id(cancellation_id)
            now = timezone.now()
            quote = quote_cancellation(
                order,
                reason=reason,
                items=items,
                lines=lines,
                churn_time=churn_time,
                churn_time_policy=churn_time_policy,
                prorated=prorated,
                description=description,
                now=now,
                reserved={
                    item.pk: item.scheduled_quantity
                    for item in lock_items(order)
                    if item.scheduled_quantity
                },
                blocked=blocked_items(order),
            )
            cancellation = new_cancellation(
                order,
                quote,
                reason=quote.reason,
                description=description,
                canceled_by=canceled_by,
                churn_time_policy=churn_time_policy,
                actor=actor,
                external_user_id=external_user_id,
                audit=audit,
                now=now,
                request_fingerprint=request_fingerprint,
                kill_running=kill_running,
                bulk_cancellation=bulk_cancellation,
                canceled_time=canceled_time,
            )
            if cancellation_id:
                cancellation.id = cancellation_id
            if draft:
                cancellation.status = CancellationStatus.DRAFT
            write_cancellations(
                [Planned(order, quote, cancellation)],
                acting=Acting(actor, via, audit),
                now=now,
                tell=lambda written: enqueue_deliveries(written, DeliveryAction.ADD),
            )
    except IntegrityError as exc:
        # Two requests racing for one client-chosen id: the loser gets the same answer as if
        # it had come second.
        raise CancellationError(
            {"id": _("A cancellation with this id exists already.")}, code="duplicate"
        ) from exc
    count_cancellations(via=via, scope="order" if items is None else "items")
    return cancellation
