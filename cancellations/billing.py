"""The billing engine's view of an order (seed 002, specs/billing): every order item is a
service item, billed through its settlement items (amount, period, open / settled / exported).

cancellations/service_items.py serves AEB's cancelServiceItems with these rules. The messages
here (AEB's ResponseMessageDTO) are English msgids rendered in the caller's languages in order
of preference (see `Message.texts`), the same for the staff pages and that service.

The selectors (`settlement_items`, `blocked_items`, `service_item_ids`, `engine_items`) let the
staff pages, the admin and the billing adapter show the same answer before anyone tries. The
engine knows a service item by the client system's id for it (AEB's itemId), kept as
OrderItem.billing_item_id; an item without one can't be named to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext as _

from . import audit as audit_log
from .errors import CancellationError
from .models import Cancellation, Order, OrderItem, SettlementItem, SettlementState
from .services import quoting, refusals
from .services.refusals import Refusal, Refused
from .states import CancellationStatus, OrderStatus

ERROR, WARNING, INFO = "ERROR", "WARNING", "INFO"
SOURCE_LANGUAGE = "en"  # msgids are English: English text is always there
# AEB's documented messageIdentCodes (BReverseServiceItemResultDTO, BServiceItemResultDTO in
# docs/contracts/billing/): an item cancelled already is a retransmission, an unknown one is
# not found (the code getServiceItems documents), a locked one may be sent again.
RETRANSMISSION = "ITEM_RETRANSMISSION_ERROR"
NOT_FOUND = "ITEM_NOT_FOUND_ERROR"
LOCKED = "LOCK_ERROR"


# --- messages in the caller's languages --------------------------------------------------------


def result_languages(requested) -> list[str]:
    """The requested languages Storno speaks, in the caller's order (`de-DE` counts as `de`);
    English when none of them is spoken."""
    spoken = {code for code, _name in settings.LANGUAGES}
    chosen: list[str] = []
    for raw in requested or ():
        code = str(raw).strip().lower().replace("_", "-").split("-")[0]
        if code in spoken and code not in chosen:
            chosen.append(code)
    return chosen or [SOURCE_LANGUAGE]


def has_translation(msgid: str, language: str) -> bool:
    if language == SOURCE_LANGUAGE:
        return True
    with translation.override(language):
        return gettext(msgid) != msgid


@dataclass
class Message:
    """One message of the response (AEB's ResponseMessageDTO). `text` is an English msgid
    with %(name)s placeholders, translated when rendered; or, with `language` set, a text that
    was rendered already (the cancellation services' own error messages)."""

    type: str
    code: str
    text: str
    params: dict = field(default_factory=dict)
    language: str = ""
    retryable: bool = False
    indentation: int = 0

    def render(self, language: str | None = None) -> str:
        if self.language:
            return self.text
        with translation.override(language or translation.get_language() or SOURCE_LANGUAGE):
            # Params may be lazy (a state's label): str() renders them in this language too.
            return gettext(self.text) % {name: str(value) for name, value in self.params.items()}

    def texts(self, languages: list[str]) -> list[dict]:
        """The text in each requested language that has a translation of it, in the caller's
        order; a language without one falls back to the next, and English comes last."""
        if self.language:
            return [{"languageISOCode": self.language, "text": self.text}]
        found = [
            {"languageISOCode": code, "text": self.render(code)}
            for code in languages
            if has_translation(self.text, code)
        ]
        return found or [{"languageISOCode": SOURCE_LANGUAGE, "text": self.render(SOURCE_LANGUAGE)}]

    def as_dict(self, languages: list[str]) -> dict:
        return {
            "messageType": self.type,
            "messageIdentCode": self.code,
            "messageTexts": self.texts(languages),
            "indentationLevel": self.indentation,
        }


def item_params(item: OrderItem) -> dict:
    # The id the engine (and a caller of Storno's cancelServiceItems) knows the item by.
    return {"item": item.billing_item_id or item.pk, "sku": item.sku}


def unknown_item(item_id) -> Message:
    return Message(
        ERROR,
        NOT_FOUND,
        gettext_noop("There is no service item %(item)s."),
        {"item": item_id},
    )


def duplicate_item(item_id) -> Message:
    return Message(
        ERROR,
        RETRANSMISSION,
        gettext_noop("Service item %(item)s is listed more than once."),
        {"item": item_id},
    )


def not_permitted(user_name: str) -> Message:
    return Message(
        ERROR,
        "NOT_AUTHORIZED",
        gettext_noop("User %(user)s may not cancel service items."),
        {"user": user_name},
    )


def _settlement_blocked(item: OrderItem, settlement: SettlementItem) -> Message:
    params = {**item_params(item), "settlement": settlement.pk}
    if settlement.state == SettlementState.EXPORTED:
        return Message(
            ERROR,
            "SETTLEMENT_ITEM_EXPORTED",
            gettext_noop(
                "Settlement item %(settlement)s of service item %(item)s (%(sku)s) is already "
                "exported and can't be removed."
            ),
            params,
        )
    return Message(
        ERROR,
        "SETTLEMENT_ITEM_SETTLED",
        gettext_noop(
            "Settlement item %(settlement)s of service item %(item)s (%(sku)s) is already "
            "settled and can't be removed."
        ),
        params,
    )


def _order_not_cancellable(item: OrderItem) -> Message:
    order = item.order
    return Message(
        ERROR,
        "ORDER_NOT_CANCELLABLE",
        gettext_noop(
            "Service item %(item)s (%(sku)s) belongs to order %(order)s, which is "
            "%(status)s and can't be cancelled."
        ),
        {
            **item_params(item),
            "order": order.number,
            "status": dict(OrderStatus.choices)[order.status],
        },
    )


def refusal_message(item: OrderItem, refused: Refused) -> Message:
    """A refusal of the quote (services.refusals) in AEB's words."""
    code = refused.code
    if code == Refusal.ALREADY_CANCELLED:
        text = gettext_noop("Service item %(item)s (%(sku)s) is already cancelled.")
        return Message(ERROR, RETRANSMISSION, text, item_params(item))
    if code == Refusal.SETTLEMENT_BLOCKED:
        return _settlement_blocked(item, refused.params["instance"])
    if code in refusals.ORDER_REFUSALS:
        return _order_not_cancellable(item)
    text = gettext_noop("Service item %(item)s (%(sku)s) already has a scheduled cancellation.")
    return Message(ERROR, "ALREADY_SCHEDULED", text, item_params(item))


def blocking_of(item: OrderItem) -> list[SettlementItem]:
    """The item's settled or exported settlement items (present_settlements prefetched)."""
    return [settlement for settlement in item.present_settlement_items if settlement.is_blocking]


def diagnose(item: OrderItem, reserved: int) -> list[Message]:
    """Why this service item can't be cancelled as a whole, now. Empty when it can.

    The quote's refusals (services.refusals.whole_item_refusals), in AEB's words and the
    caller's languages; item.order and its present_settlement_items must be loaded."""
    found = refusals.whole_item_refusals(
        item, order=item.order, reserved=reserved, blocking=blocking_of(item)
    )
    return [refusal_message(item, refused) for refused in found]


# --- selectors ---------------------------------------------------------------------------------


def present_settlements() -> Prefetch:
    return Prefetch(
        "settlement_items",
        queryset=SettlementItem.objects.present().order_by("period_start", "id"),
        to_attr="present_settlement_items",
    )


def settlement_items(order: Order) -> QuerySet[SettlementItem]:
    """Every settlement item of the order, removed ones too, for the staff page and admin."""
    return (
        SettlementItem.objects.filter(order_item__order=order)
        .select_related("order_item", "removed_by_cancellation")
        .order_by("order_item_id", "period_start", "id")
    )


def refusals_of(order: Order) -> tuple[list[OrderItem], dict[int, list[Refused]]]:
    """The order's items and, for those that can't be cancelled as a whole right now, the
    quote's refusals (services.refusals) with their codes. Three queries."""
    items = list(order.items.prefetch_related(present_settlements()).order_by("id"))
    for item in items:
        item.order = order
    found = refusals.refusals(
        order,
        reserved=quoting.scheduled_quantities(order),
        blocking={item.pk: blocking_of(item) for item in items},
        items=items,
    )
    return items, found


def blocked_items(order: Order) -> dict[int, list[str]]:
    """{order item id: [why it can't be cancelled, …]} in the active language, for the items
    that can't be cancelled as a whole right now (refusals_of, in staff words: by SKU and
    description, never an id)."""
    return rendered(*refusals_of(order))


def rendered(items: list[OrderItem], found: dict[int, list[Refused]]) -> dict[int, list[str]]:
    """refusals_of's answer as blocked_items gives it."""
    return {
        item.pk: [refusals.for_staff(item, refused) for refused in found[item.pk]]
        for item in items
        if item.pk in found
    }


def service_item_ids(cancellation: Cancellation) -> list[int]:
    """The service items a cancellation takes away as a whole: what the billing engine must
    cancel. Effective: the items whose settlement items it removed. Scheduled: the items it
    will cancel completely that have settlement items. A partial cancellation of an item
    leaves the engine's service item alone."""
    if cancellation.status == CancellationStatus.COMPLETED:
        rows = cancellation.removed_settlement_items.values_list("order_item_id", flat=True)
        return sorted(set(rows))
    if cancellation.status != CancellationStatus.CONFIRMED:
        return []
    return sorted(
        row.order_item_id
        for row in cancellation.items.select_related("order_item")
        .filter(order_item__settlement_items__isnull=False)
        .distinct()
        if row.quantity >= row.order_item.open_quantity
    )


@dataclass(frozen=True)
class EngineItems:
    """What the billing engine is told about a cancellation (providers/billing.py)."""

    item_ids: list[str]  # the engine's ids of the service items to cancel there
    unreferenced: list[OrderItem]  # service items Storno has no engine id for: cancel by hand


def engine_items(cancellation: Cancellation) -> EngineItems:
    """service_item_ids as the engine knows them, and the ones it can't be told about."""
    items = list(OrderItem.objects.filter(pk__in=service_item_ids(cancellation)).order_by("pk"))
    return EngineItems(
        item_ids=[item.billing_item_id for item in items if item.billing_item_id],
        unreferenced=[item for item in items if not item.billing_item_id],
    )


# --- settlement items --------------------------------------------------------------------------

# A settlement item only moves forward: billed (settled), then handed to accounting (exported).
SETTLEMENT_TRANSITIONS = {
    SettlementState.OPEN: {SettlementState.SETTLED, SettlementState.EXPORTED},
    SettlementState.SETTLED: {SettlementState.EXPORTED},
    SettlementState.EXPORTED: set(),
}


def add_settlement_item(
    order_item: OrderItem,
    *,
    amount: Decimal,
    period_start: datetime,
    period_end: datetime,
    actor,
    via: str,
    state: str = SettlementState.OPEN,
) -> SettlementItem:
    """Record one billed period of a service item, in the order item's currency."""
    errors = {}
    if not isinstance(amount, Decimal) or not amount.is_finite():
        errors["amount"] = _("Give the amount as a decimal number.")
    elif amount.as_tuple().exponent < -2:
        errors["amount"] = _("Use at most two decimal places.")
    if timezone.is_naive(period_start) or timezone.is_naive(period_end):
        errors["period_start"] = _("Give the times with their time zone or offset.")
    elif period_end <= period_start:
        errors["period_end"] = _("The period must end after it starts.")
    if state not in SettlementState.values:
        errors["state"] = _("Use open, settled or exported.")
    if errors:
        raise CancellationError(errors, code="invalid")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_item.order_id)
        settlement = SettlementItem.objects.create(
            order_item=order_item,
            amount=amount,
            currency=order_item.unit_price_currency,
            period_start=period_start,
            period_end=period_end,
            state=state,
        )
        audit_log.record(
            "settlement_item.created",
            order=order,
            actor=actor,
            via=via,
            data={"settlementItem": settlement.pk, "orderItem": order_item.pk, "state": state},
        )
    return settlement


def change_settlement_state(settlement: SettlementItem, *, state: str, actor, via: str):
    """Mark a settlement item settled or exported (forward only; not once removed)."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=settlement.order_item.order_id)
        settlement = SettlementItem.objects.select_for_update().get(pk=settlement.pk)
        if settlement.is_removed:
            raise CancellationError(
                {"state": _("A removed settlement item can't change.")}, code="invalid"
            )
        if state not in SETTLEMENT_TRANSITIONS.get(settlement.state, set()):
            raise CancellationError(
                {
                    "state": _("A %(current)s settlement item can't become %(target)s.")
                    % {"current": settlement.state, "target": state}
                },
                code="invalid_transition",
            )
        before, settlement.state = settlement.state, state
        settlement.save(update_fields=["state"])
        audit_log.record(
            "settlement_item.state_changed",
            order=order,
            actor=actor,
            via=via,
            data={"settlementItem": settlement.pk, "from": before, "to": state},
        )
    return settlement
