"""What Storno sends to JS7's POST /joc/api/orders/cancel (providers/js7.py sends it).

The body validates against docs/contracts/js7/cancelOrders.resolved.json (no other keys):
controllerId and orderIds from Order.external_ids (cancellations/external_ids.py), `deep`
always true (child orders forked from them go with them), `kill` only when the cancellation has
`kill_running`, and the auditLog.

The auditLog is the caller's (the cancellation's audit_comment, audit_time_spent and
audit_ticket_link), passed on, not replaced. JOC allows 255 characters for comment and for
ticketLink and no < or > (those become ‹ ›). Storno adds itself only where that fits:
  comment     the caller's comment (the reason's subject when there is none), then
              " (Storno <id>)" if the whole stays within 255; a subject is cut to make room,
              a caller's comment never is.
  ticketLink  the caller's link; without one, the cancellation's staff page
              (STORNO_PUBLIC_URL + its path) when that fits whole. With a caller's link, the
              staff page goes into the comment's suffix " (Storno <id>: <url>)" if it fits.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.urls import NoReverseMatch

from cancellations.external_ids import JS7_CONTROLLER, JS7_ORDERS

AUDIT_TEXT_MAX = 255  # auditLog.comment and ticketLink (raw/api/schemas/audit/auditParams)
DEFAULT_PUBLIC_URL = "http://localhost:8000"
_ANGLE_BRACKETS = re.compile(r"[<>]")  # JOC's "string without < and >"
_BRACKET_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a"})  # ‹ ›


def public_url() -> str:
    return (getattr(settings, "STORNO_PUBLIC_URL", "") or DEFAULT_PUBLIC_URL).rstrip("/")


def clean_text(text: str) -> str:
    """JOC's "string without < and >": the brackets become look-alikes, nothing is lost."""
    return (text or "").translate(_BRACKET_LOOKALIKES).strip()


def cancel_body(cancellation) -> dict:
    external_ids = cancellation.order.external_ids
    body = {
        "controllerId": external_ids[JS7_CONTROLLER],
        "orderIds": list(dict.fromkeys(external_ids[JS7_ORDERS])),
        "deep": True,  # child orders of a cancelled workflow order go with it
    }
    if cancellation.kill_running:  # only when forced: a bulk job with kill
        body["kill"] = True
    body["auditLog"] = audit_log(cancellation)
    return body


def audit_log(cancellation) -> dict:
    """The caller's auditLog, with Storno's id and link only where JOC's lengths allow."""
    caller_link = clean_text(cancellation.audit_ticket_link)[:AUDIT_TEXT_MAX]
    storno_link = staff_link(cancellation)
    audit = {"comment": _comment(cancellation, storno_link if caller_link else "")}
    if cancellation.audit_time_spent is not None:
        audit["timeSpent"] = int(cancellation.audit_time_spent)
    if caller_link or storno_link:
        audit["ticketLink"] = caller_link or storno_link
    return audit


def _comment(cancellation, link: str) -> str:
    suffixes = [f" (Storno {cancellation.pk}: {link})"] if link else []
    suffixes.append(f" (Storno {cancellation.pk})")
    comment = clean_text(cancellation.audit_comment)[:AUDIT_TEXT_MAX]
    if not comment:  # no caller's words: the reason's subject, cut to leave room for the id
        subject = clean_text(cancellation.reason.subject)
        return subject[: AUDIT_TEXT_MAX - len(suffixes[-1])] + suffixes[-1]
    fitting = [s for s in suffixes if len(comment) + len(s) <= AUDIT_TEXT_MAX]
    return comment + (fitting[0] if fitting else "")


def staff_link(cancellation) -> str:
    """The cancellation's staff page, or "" when it has none or it doesn't fit whole."""
    try:
        link = public_url() + cancellation.get_absolute_url()
    except NoReverseMatch:
        return ""
    # A cut link is a broken link: leave it out when it doesn't fit.
    return link if len(link) <= AUDIT_TEXT_MAX and not _ANGLE_BRACKETS.search(link) else ""
