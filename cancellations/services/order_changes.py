"""Orders taken in from other systems (create_order) and corrections of their details
(update_order_details). Status, items and money only change through cancellations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import audit as audit_log
from ..errors import CancellationError
from ..external_ids import clean_external_ids
from ..models import (
    Order,
    OrderItem,
)
from ..states import (
    OrderStatus,
)
from .locks import lock_order

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _cleaned_external_ids(external_ids: object, errors: dict[str, str]) -> dict[str, Any]:
    """The validated provider references; problems go into `errors` under their key."""
    try:
        return clean_external_ids(external_ids)
    except ValidationError as exc:
        errors.update({key: messages[0] for key, messages in exc.message_dict.items()})
        return {}


def _check_billing_item_ids(items: Sequence[NewOrderItem], errors: dict[str, str]) -> None:
    """A billing item id names one service item in the engine: once per order, and not one
    another order's item has already."""
    given = [(index, item.billing_item_id) for index, item in enumerate(items)]
    given = [(index, ref) for index, ref in given if ref]
    taken = set(
        OrderItem.objects.filter(billing_item_id__in=[ref for _i, ref in given]).values_list(
            "billing_item_id", flat=True
        )
    )
    seen = set()
    for index, ref in given:
        if ref in taken or ref in seen:
            errors[f"items.{index}.billing_item_id"] = _(
                "Another order item has this billing item id already."
            )
        seen.add(ref)


@dataclass(frozen=True)
class NewOrderItem:
    sku: str
    quantity: int
    unit_price_amount: Decimal
    description: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    billing_item_id: str = ""  # the billing engine's itemId for it, if it is billed there


def create_order(
    *,
    number: str,
    customer_name: str,
    channel: str,
    currency: str,
    items: list[NewOrderItem],
    actor: User | None,
    via: str,
    customer_email: str = "",
    placed_at: datetime | None = None,
    status: str = OrderStatus.OPEN,
    parent: Order | None = None,
    external_ids: dict | None = None,
) -> Order:
    """Take in an order from another system. A number seen before is refused."""
    errors = {}
    if status not in {
        OrderStatus.OPEN,
        OrderStatus.IN_PROGRESS,
        OrderStatus.ON_HOLD,
        OrderStatus.COMPLETED,
    }:
        errors["status"] = _("New orders are open, in progress, on hold or completed.")
    if not items:
        errors["items"] = _("An order needs at least one item.")
    for index, item in enumerate(items):
        if item.period_start and item.period_end and item.period_end <= item.period_start:
            errors[f"items.{index}.period_end"] = _("The period must end after it starts.")
    _check_billing_item_ids(items, errors)
    external_ids = _cleaned_external_ids(external_ids, errors)
    if errors:
        raise CancellationError(errors, code="invalid")
    try:
        with transaction.atomic():
            if Order.objects.filter(number=number).exists():
                raise IntegrityError
            order = Order.objects.create(
                number=number,
                customer_name=customer_name,
                customer_email=customer_email,
                channel=channel,
                currency=currency,
                placed_at=placed_at or timezone.now(),
                status=status,
                parent=parent,
                external_ids=external_ids,
            )
            OrderItem.objects.bulk_create(
                OrderItem(
                    order=order,
                    sku=item.sku,
                    description=item.description,
                    quantity=item.quantity,
                    unit_price_amount=item.unit_price_amount,
                    unit_price_currency=currency,
                    period_start=item.period_start,
                    period_end=item.period_end,
                    billing_item_id=item.billing_item_id,
                )
                for item in items
            )
            audit_log.record(
                "order.created",
                order=order,
                actor=actor,
                via=via,
                data={"number": number, "items": len(items)},
            )
    except IntegrityError as exc:
        _check_billing_item_ids(items, errors)  # a concurrent order took one of them
        raise CancellationError(
            errors
            or {
                "number": _("An order with number %(number)s exists already.") % {"number": number}
            },
            code="duplicate",
        ) from exc
    return order


def update_order_details(
    order: Order,
    *,
    actor: User | None,
    via: str,
    customer_name: str,
    customer_email: str = "",
    external_ids: dict[str, Any] | None = None,
) -> Order:
    """Correct an order's customer details or provider references (the admin's order form).
    Status, items and money only change through cancellations."""
    errors = {}
    customer_name = (customer_name or "").strip()
    if not customer_name:
        errors["customer_name"] = _("Enter the customer's name.")
    external_ids = _cleaned_external_ids(external_ids, errors)
    if errors:
        raise CancellationError(errors, code="invalid")
    wanted = {
        "customer_name": customer_name,
        "customer_email": (customer_email or "").strip(),
        "external_ids": external_ids,
    }
    with transaction.atomic():
        order = lock_order(order)
        changed = sorted(name for name, value in wanted.items() if getattr(order, name) != value)
        if changed:
            for name in changed:
                setattr(order, name, wanted[name])
            order.save(update_fields=[*changed, "updated_at"])
            audit_log.record(
                "order.updated", order=order, actor=actor, via=via, data={"changed": changed}
            )
    return order
