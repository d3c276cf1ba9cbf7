"""AEB's cancelServiceItems served by Storno (seed 002; docs/contracts/billing/, the API dialect is
cancellations/api/billing.py): cancel a set of service items in one transaction, all or nothing.

It goes through the one cancellation rule book, writing.cancel_order (one call per order, each
in a savepoint of one outer transaction), and rolls everything back when any item fails. Every
item gets its messages (cancellations.billing.Message), in the caller's languages. Items are
named by their id in the billing engine (OrderItem.billing_item_id), as AEB's itemId.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_noop

from reasons.models import BILLING_REASON_MAX_LENGTH, CancellationReason, ProviderKind

from .audit import AuditInfo
from .billing import (
    ERROR,
    INFO,
    LOCKED,
    SOURCE_LANGUAGE,
    WARNING,
    Message,
    diagnose,
    duplicate_item,
    item_params,
    present_settlements,
    result_languages,
    unknown_item,
)
from .errors import CancellationError
from .models import Cancellation, Order, OrderItem
from .services import quoting, writing

logger = logging.getLogger(__name__)


@dataclass
class ItemResult:
    item_id: str  # as the caller sent it
    messages: list[Message] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(m.type == ERROR for m in self.messages)

    @property
    def has_warnings(self) -> bool:
        return any(m.type == WARNING for m in self.messages)


@dataclass
class ServiceItemsResult:
    """AEB's BReverseServiceItemsResponseDTO, before rendering."""

    languages: list[str]
    items: list[ItemResult]
    messages: list[Message] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)

    def _all_messages(self) -> list[Message]:
        return self.messages + [m for item in self.items for m in item.messages]

    @property
    def has_errors(self) -> bool:
        return any(m.type == ERROR for m in self._all_messages())

    @property
    def has_only_retryable_errors(self) -> bool:
        errors = [m for m in self._all_messages() if m.type == ERROR]
        return bool(errors) and all(m.retryable for m in errors)

    @property
    def has_warnings(self) -> bool:
        return any(m.type == WARNING for m in self._all_messages())

    def as_dict(self) -> dict:
        return {
            "hasErrors": self.has_errors,
            "hasOnlyRetryableErrors": self.has_only_retryable_errors,
            "hasWarnings": self.has_warnings,
            "messages": [m.as_dict(self.languages) for m in self.messages],
            "itemResponses": [
                {
                    "itemId": item.item_id,
                    "hasErrors": item.has_errors,
                    "hasWarnings": item.has_warnings,
                    "messages": [m.as_dict(self.languages) for m in item.messages],
                }
                for item in self.items
            ],
        }


class _Refused(Exception):
    """Raised to roll the outer transaction back when any item failed."""


def billing_reason(reason_of_reversal: str = "") -> CancellationReason | None:
    """The catalog reason for a billing-engine cancellation: the active reason whose billing
    mapping or subject is exactly the reason for reversal; else BILLING_DEFAULT_REASON_ID when
    it names an active reason; else the first active reason in catalog order."""
    active = CancellationReason.objects.active().in_catalog_order()
    text = (reason_of_reversal or "").strip()
    if text:
        matched = (
            active.filter(
                Q(subject=text)
                | Q(mappings__provider_kind=ProviderKind.BILLING, mappings__value=text)
            )
            .distinct()
            .first()
        )
        if matched:
            return matched
    default_id = getattr(settings, "BILLING_DEFAULT_REASON_ID", None)
    if default_id:
        configured = active.filter(pk=default_id).first()
        if configured:
            return configured
    return active.first()


def refused(item_ids, *, languages, message: Message) -> ServiceItemsResult:
    """A request refused as a whole before anything was looked at (e.g. not permitted)."""
    result = ServiceItemsResult(
        languages=result_languages(languages),
        items=[ItemResult(str(item_id)) for item_id in item_ids],
        messages=[message],
    )
    _explain_refusal(result)
    return result


def cancel_service_items(
    *,
    item_ids: list,
    actor,
    via: str,
    reason_of_reversal: str = "",
    languages=(SOURCE_LANGUAGE,),
    audit: AuditInfo = AuditInfo(),
) -> ServiceItemsResult:
    """Cancel each service item completely, with its settlement items, now.

    `item_ids` are the items' ids in the billing engine (OrderItem.billing_item_id), as AEB's
    itemId: a client of the engine sends Storno the same ids. All or nothing: when any item
    can't be cancelled, nothing is written and every item's messages say why (or that it was
    left alone because of the others)."""
    languages = result_languages(languages)
    results = [ItemResult(str(raw)) for raw in item_ids]
    result = ServiceItemsResult(languages=languages, items=results)
    wanted: dict[str, ItemResult] = {}
    for entry in results:
        if not entry.item_id:
            entry.messages.append(unknown_item(entry.item_id))
        elif entry.item_id in wanted:
            entry.messages.append(duplicate_item(entry.item_id))
        else:
            wanted[entry.item_id] = entry
    if not results:
        result.messages.append(Message(ERROR, "NO_ITEMS", gettext_noop("Send at least one item.")))
    reason = billing_reason(reason_of_reversal)
    if reason is None:
        result.messages.append(
            Message(
                ERROR,
                "NO_REASON",
                gettext_noop("No active cancellation reason is configured for billing."),
            )
        )

    # The services' own error messages come back in the caller's first language.
    with translation.override(languages[0]):
        try:
            with transaction.atomic():
                cancellations = _cancel(
                    wanted, result, reason, reason_of_reversal, actor, via, audit
                )
                if result.has_errors:
                    raise _Refused
        except _Refused:
            _explain_refusal(result)
            return result
        except DatabaseError:
            logger.exception("cancelServiceItems hit a database error")
            result.messages.append(
                Message(
                    ERROR,
                    LOCKED,
                    gettext_noop("The billing data is busy. Nothing was cancelled; try again."),
                    retryable=True,
                )
            )
            _explain_refusal(result)
            return result
    result.cancellations = cancellations
    return result


def _cancel(wanted, result, reason, reason_of_reversal, actor, via, audit) -> list[Cancellation]:
    """Inside the outer transaction: lock, diagnose, cancel order by order."""
    by_ref = OrderItem.objects.filter(billing_item_id__in=wanted)
    order_ids = set(by_ref.values_list("order_id", flat=True))
    # Lock in one order (by id) so two requests over the same orders queue instead of deadlock.
    orders = {
        order.pk: order
        for order in Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk")
    }
    items = {item.billing_item_id: item for item in by_ref.prefetch_related(present_settlements())}
    by_order: dict[int, list[OrderItem]] = defaultdict(list)
    reserved_by_order = {pk: quoting.scheduled_quantities(order) for pk, order in orders.items()}
    for ref, entry in wanted.items():
        item = items.get(ref)
        if item is None:
            entry.messages.append(unknown_item(entry.item_id))
            continue
        item.order = orders[item.order_id]
        entry.messages += diagnose(item, reserved_by_order[item.order_id].get(item.pk, 0))
        by_order[item.order_id].append(item)
    if result.has_errors:
        return []

    cancellations = []
    for order_id in sorted(by_order):
        order_items = by_order[order_id]
        try:
            with transaction.atomic():
                cancellations.append(
                    writing.cancel_order(
                        orders[order_id],
                        reason=reason,
                        items=[
                            quoting.ItemPick(item.pk, item.open_quantity) for item in order_items
                        ],
                        actor=actor,
                        via=via,
                        description=(reason_of_reversal or "").strip()[:BILLING_REASON_MAX_LENGTH],
                        audit=audit,
                    )
                )
        except CancellationError as exc:
            entries = [wanted[i.billing_item_id] for i in order_items]
            _attach_service_errors(exc, order_items, entries, result)
    if result.has_errors:
        return []
    for ref, entry in wanted.items():
        item = items[ref]
        count = len(item.present_settlement_items)
        if count:
            entry.messages.append(
                Message(
                    INFO,
                    "SERVICE_ITEM_CANCELLED",
                    gettext_noop(
                        "Service item %(item)s (%(sku)s) is cancelled; settlement items "
                        "removed: %(count)s."
                    ),
                    {**item_params(item), "count": count},
                )
            )
        else:
            entry.messages.append(
                Message(
                    WARNING,
                    "NO_SETTLEMENT_ITEMS",
                    gettext_noop(
                        "Service item %(item)s (%(sku)s) is cancelled; it had no settlement "
                        "items to remove."
                    ),
                    item_params(item),
                )
            )
    return cancellations


def _attach_service_errors(exc: CancellationError, order_items, entries, result) -> None:
    """cancel_order's errors, keyed by its argument names, onto the items they concern:
    `items.N.…` to the N-th item sent for that order, `order` to all of them, anything else
    (reason, description…) to the request."""
    language = translation.get_language() or SOURCE_LANGUAGE
    found = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    for key, texts in found.items():
        parts = key.split(".")
        targets = None
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            targets = [entries[int(parts[1])]]
        elif parts[0] in ("order", "items"):
            targets = entries
        for text in texts:
            message = Message(ERROR, "CANCELLATION_REFUSED", str(text), language=language)
            if targets is None:
                if all(m.text != message.text for m in result.messages):
                    result.messages.append(message)
            else:
                for entry in targets:
                    entry.messages.append(message)


def _explain_refusal(result: ServiceItemsResult) -> None:
    """Nothing was written: say so once, and tell each item without errors why it stayed."""
    failed = sum(1 for item in result.items if item.has_errors)
    retryable = result.has_only_retryable_errors
    result.messages.insert(
        0,
        Message(
            ERROR,
            "NOTHING_CANCELLED",
            gettext_noop(
                "Nothing was cancelled: %(failed)s of %(total)s items can't be cancelled."
            ),
            {"failed": failed, "total": len(result.items)},
            retryable=retryable,
        ),
    )
    for item in result.items:
        if not item.has_errors:
            item.messages = [
                Message(
                    INFO,
                    "NOT_PROCESSED",
                    gettext_noop(
                        "Service item %(item)s was left as it was because other items "
                        "can't be cancelled."
                    ),
                    {"item": item.item_id},
                    indentation=1,
                )
            ]
