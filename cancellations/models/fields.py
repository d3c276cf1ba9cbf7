"""What the models' fields share: money's digits, the cancellation id's pattern and the
validators of currencies and channels."""

import re
import uuid
from decimal import Decimal
from typing import TypedDict

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _


class MoneyDigits(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: MoneyDigits = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")
BILLING_ITEM_ID_MAX_LENGTH = 50  # AEB's BServiceItemReferenceDTO.itemId: length=50

# Rebilly's id pattern for order cancellations: the same id travels to Rebilly unchanged.
CANCELLATION_ID_RE = re.compile(r"^[@~\-.A-Za-z0-9_]+$")
cancellation_id_validator = RegexValidator(
    CANCELLATION_ID_RE, _("Use only letters, digits and @ ~ - . _ (at most 50).")
)
currency_validator = RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 code."))
channel_validator = RegexValidator(
    r"^(/[A-Za-z0-9_.-]+)+$", _("Use an absolute folder path like /shop/de.")
)


def new_cancellation_id() -> str:
    return f"cnl_{uuid.uuid4().hex[:24]}"
