"""The provider references of an order, kept together in Order.external_ids.

    {"callisto": "4711", "rebilly": "ord_1", "js7ControllerId": "jobs", "js7OrderIds": ["#1"]}

Each adapter reads its own key; a missing key means "nothing to do at that provider".
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CALLISTO = "callisto"
REBILLY = "rebilly"
JS7_CONTROLLER = "js7ControllerId"
JS7_ORDERS = "js7OrderIds"
KNOWN_KEYS = (CALLISTO, REBILLY, JS7_CONTROLLER, JS7_ORDERS)

_REBILLY_ID = re.compile(r"^[@~\-.\w]{1,50}$", re.ASCII)
# JOC's controllerId: 1-100 characters, none of / \ < > ? ! & : ; ( ) " | * ^
_JS7_CONTROLLER = re.compile(r'^[^/\\<>?!&:;()"|*^]{1,100}$')


def _callisto_error(item) -> str:
    text = str(item)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # not "²"
        return _("Callisto order ids are whole numbers.")
    return ""


def _rebilly_error(item) -> str:
    if not isinstance(item, str) or not _REBILLY_ID.match(item):
        return _("Use at most 50 letters, digits and @ ~ - . _.")
    return ""


def _js7_controller_error(item) -> str:
    if not isinstance(item, str) or not _JS7_CONTROLLER.match(item):
        return _('Use 1-100 characters without / \\ < > ? ! & : ; ( ) " | * ^.')
    return ""


def _js7_orders_error(item) -> str:
    if not isinstance(item, list) or not all(
        isinstance(i, str) and i and "\x00" not in i for i in item
    ):
        return _("Must be a list of workflow order ids.")
    if len(set(item)) != len(item):
        return _("Workflow order ids must be unique.")
    return ""


# What is wrong with a reference, per provider key ("" when nothing).
_CHECKS = {
    CALLISTO: _callisto_error,
    REBILLY: _rebilly_error,
    JS7_CONTROLLER: _js7_controller_error,
    JS7_ORDERS: _js7_orders_error,
}


def clean_external_ids(value) -> dict:
    """Validate and normalise; raises ValidationError naming the offending key."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError({"external_ids": _("Must be an object.")}, code="invalid")
    errors, cleaned = {}, {}
    for key, item in value.items():
        field = f"external_ids.{key}"
        if key not in KNOWN_KEYS:
            errors[field] = _("Unknown provider key. Known: %(keys)s.") % {
                "keys": ", ".join(KNOWN_KEYS)
            }
        elif item not in (None, "", []):
            error = _CHECKS[key](item)
            if error:
                errors[field] = error
            else:
                cleaned[key] = str(item) if key == CALLISTO else item
    if JS7_ORDERS in cleaned and JS7_CONTROLLER not in cleaned and not errors:
        errors[f"external_ids.{JS7_CONTROLLER}"] = _("Needed with js7OrderIds.")
    if errors:
        raise ValidationError(errors, code="invalid")
    return cleaned
