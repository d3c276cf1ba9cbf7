"""The cancellation core's models, one module per thing they hold. Import them from here:
`from cancellations.models import Order` (Django finds the models through this package)."""

from ..states import CancellationStatus, OrderStatus
from .audit_trail import AuditEntry
from .bulk import BulkCancellation, BulkCancellationStatus, BulkCancellationTarget, TargetOutcome
from .cancellations import (
    CanceledBy,
    Cancellation,
    CancellationItem,
    CancellationLine,
    ChurnTimePolicy,
    LineType,
)
from .fields import (
    BILLING_ITEM_ID_MAX_LENGTH,
    CANCELLATION_ID_RE,
    MONEY,
    ZERO,
    MoneyDigits,
    cancellation_id_validator,
    channel_validator,
    currency_validator,
    new_cancellation_id,
)
from .orders import Order, OrderItem
from .settlement import SettlementItem, SettlementItemQuerySet, SettlementState

__all__ = [
    "BILLING_ITEM_ID_MAX_LENGTH",
    "CANCELLATION_ID_RE",
    "MONEY",
    "ZERO",
    "AuditEntry",
    "BulkCancellation",
    "BulkCancellationStatus",
    "BulkCancellationTarget",
    "CanceledBy",
    "Cancellation",
    "CancellationItem",
    "CancellationLine",
    "CancellationStatus",
    "ChurnTimePolicy",
    "LineType",
    "MoneyDigits",
    "Order",
    "OrderItem",
    "OrderStatus",
    "SettlementItem",
    "SettlementItemQuerySet",
    "SettlementState",
    "TargetOutcome",
    "cancellation_id_validator",
    "channel_validator",
    "currency_validator",
    "new_cancellation_id",
]
