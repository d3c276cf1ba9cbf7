"""What a bulk job says about one of its orders, stored as a code and its parameters
(BulkCancellationTarget.message_code, message_params) and shown in the reader's language, in
staff words: the form's checkbox "Also orders in progress", not the API's `kill`.

BulkCancellationTarget.message keeps the text as written, in the API's words (JOC's skip
reasons); `target_text` renders the code and falls back to that text for old rows and codes
it doesn't know. The codes are the quote's refusals (services.refusals.Refusal) and a few of
the job's own. Order statuses and settlement states are stored as values (`order_status`,
`settlement_state`) and named in the reader's language when shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

from .states import OrderStatus

ORDER_GONE = "order_gone"
DATABASE_ERROR = "database_error"
PLAN_PROBLEM = "plan_problem"  # a provider can't take it; its words are the stored text

_ONLY_LEFT = _("Only %(available)s of %(sku)s can still be cancelled.")
TEMPLATES = {
    "in_progress": _(
        "Order %(number)s is in progress: tick “Also orders in progress” to cancel it."
    ),
    "order_not_cancellable": _("Order %(number)s is %(status)s and can't be cancelled."),
    "already_cancelled": _ONLY_LEFT,
    "already_scheduled": _ONLY_LEFT,
    "not_enough_left": _ONLY_LEFT,
    "settlement_blocked": _(
        "%(sku)s can't be cancelled: its settlement item %(settlement)s is already %(state)s."
    ),
    ORDER_GONE: _("The order no longer exists."),
    DATABASE_ERROR: _("Database error: %(error)s"),
}
# nothing_left: a cancelled order (its number is known), or an order with nothing open.
ALREADY_CANCELLED_ORDER = _("Order %(number)s is already cancelled.")
NOTHING_LEFT = _("Nothing is left to cancel on this order.")

# Values named in the reader's language (the same msgids as the models' choices).
_ORDER_STATUSES = dict(OrderStatus.choices)
_SETTLEMENT_STATES = {"open": _("Open"), "settled": _("Settled"), "exported": _("Exported")}


def _template(code: str, params: Mapping[str, Any]) -> Any:
    if code == "nothing_left":
        return ALREADY_CANCELLED_ORDER if "number" in params else NOTHING_LEFT
    return TEMPLATES.get(code)


def _named(params: Mapping[str, Any]) -> dict[str, Any]:
    named = dict(params)
    if named.get("order_status") in _ORDER_STATUSES:
        named["status"] = str(_ORDER_STATUSES[named["order_status"]]).lower()
    if named.get("settlement_state") in _SETTLEMENT_STATES:
        named["state"] = str(_SETTLEMENT_STATES[named["settlement_state"]]).lower()
    return named


def render(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The message in the active language ("" for an unknown code or missing parameters)."""
    params = params or {}
    template = _template(code, params)
    if template is None:
        return ""
    try:
        return str(template) % _named(params)
    except (KeyError, TypeError, ValueError):
        return ""


def target_text(code: str, params: Mapping[str, Any] | None, stored: str) -> str:
    """What a bulk job's order result says in the reader's language: the code rendered, else
    the text as stored."""
    return (render(code, params) if code else "") or stored
