"""What Storno itself says about a delivery, stored as a code and its parameters so that every
reader sees it in their own language (Delivery.message_code, message_params).

Delivery.last_error keeps the text as it was written (the API's `lastError`, and old rows
without a code); `delivery_text` renders the code in the active language and falls back to
that text for an unknown code. A provider's own answer is never translated: it is kept
verbatim, as the `error` parameter of "gave up" or as the text of a row without a code.
The templates are the msgids the adapters and the outbox use, so their translations apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

# The fields a writer of a delivery's message sets together.
MESSAGE_FIELDS = ["last_error", "message_code", "message_params"]

NOT_APPLICABLE = "not_applicable"
NO_REVOKE = "no_revoke"
REVOKED_BEFORE_SENT = "revoked_before_sent"
ADD_NEVER_SENT = "add_never_sent"
ADD_NEVER_REACHED = "add_never_reached"
GAVE_UP = "gave_up"
WORKER_STOPPED = "worker_stopped"

TEMPLATES = {
    NOT_APPLICABLE: _("The order has no reference at this provider."),
    NO_REVOKE: _("This provider can't be told about revokes."),
    REVOKED_BEFORE_SENT: _("Revoked before it was sent."),
    ADD_NEVER_SENT: _("The add was never sent, so there is nothing to revoke."),
    ADD_NEVER_REACHED: _("The add never reached the provider, so there is nothing to revoke."),
    # `error` is the provider's last answer, verbatim.
    GAVE_UP: _("Gave up after %(count)s attempts. Last error: %(error)s"),
    WORKER_STOPPED: _(
        "Gave up after %(count)s attempts; the last one never finished (its worker stopped)."
    ),
}
# Codes whose text needs no parameters: a text written from one of them is recognised.
FIXED = [code for code in TEMPLATES if "%(" not in str(TEMPLATES[code])]


def render(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The message in the active language ("" for an unknown code or missing parameters)."""
    template = TEMPLATES.get(code)
    if template is None:
        return ""
    try:
        return str(template) % dict(params or {})
    except (KeyError, TypeError, ValueError):
        return ""


def coded(text: str) -> str:
    """The code of a text Storno wrote from one of the fixed templates (in the active
    language), or "" when it is something else, such as a provider's own words."""
    for code in FIXED:
        if text == str(TEMPLATES[code]):
            return code
    return ""


def delivery_text(code: str, params: Mapping[str, Any] | None, stored: str) -> str:
    """What a delivery's message says in the reader's language: the code rendered, else the
    text as stored (old rows, a provider's answer)."""
    return (render(code, params) if code else "") or stored
