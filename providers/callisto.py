"""Callisto, the order system Salesforce talks to.

Contract: docs/contracts/seeds/000_75d496570d9fe2c2.txt and docs/contracts/callisto/NOTES.md;
what it leaves open, and what Storno assumes: docs/contracts/callisto/GUESSES.md.

    ADD    → PUT    {base}/callisto/cancel  {"Id", "CancelDate", "CancelTimestamp",
                                             "CancelReason", "UserId", "Action": "Add"}
    REVOKE → DELETE {base}/callisto/cancel  the same fields with "Action": "Delete"

Dates are Callisto's, in its zone (CALLISTO_TIME_ZONE, Europe/Berlin by default): CancelDate is
the effective day (churn_time) as `Y-m-d` — the page only says "Datum", and `Y-m-d` is the
default format of the framework's date validator (Laminas\\Validator\\Date) — and
CancelTimestamp is when the cancellation was entered (canceled_time) as `Y-m-d H:i:s`, the
format the page gives. A cancellation at 2027-01-15 00:00 Europe/Berlin is CancelDate 2027-01-15.

UserId is the Salesforce id of whoever asked (their staff profile, else externalUserId), else
CALLISTO_DEFAULT_USER_ID. A cancellation without one is refused when it is made (plan_problems).

A re-plan (update_cancellation) is sent only with what the contract shows: a Delete of the
cancellation Callisto has (the fields of our last delivered Add, kept in the delivery's
references under "delivered"), then an Add of the new plan. No document shows an Add changing
an existing cancellation, so none is relied on (GUESSES.md).

Callisto's API has no items: it cancels whole orders. A partial cancellation of an order that
Callisto knows is therefore not sent (it would cancel the whole order there): its verdict says so
before confirming, and its delivery is SKIPPED with a task for staff to change the order in
Callisto by hand.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests.auth import HTTPBasicAuth

from cancellations.external_ids import CALLISTO
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, Result, Verdict, VerdictReason
from .exchange import TRANSIENT_STATUSES, flatten_messages, send_json
from .http import provider_session

DATE_FORMAT = "%Y-%m-%d"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# Delivery.references key: the fields Callisto holds after our last Add (None once deleted).
DELIVERED = "delivered"


def callisto_time_zone() -> ZoneInfo:
    """The zone of Callisto's dates (CALLISTO_TIME_ZONE, checked at startup)."""
    return ZoneInfo(settings.CALLISTO_TIME_ZONE)


def callisto_date(moment) -> str:
    return moment.astimezone(callisto_time_zone()).strftime(DATE_FORMAT)


def callisto_timestamp(moment) -> str:
    return moment.astimezone(callisto_time_zone()).strftime(TIMESTAMP_FORMAT)


def salesforce_user_id(user) -> str:
    if user is None:
        return ""
    try:
        return user.staff_profile.salesforce_user_id or ""
    except ObjectDoesNotExist:
        return ""


def acting_user_id(cancellation, action: Action) -> str:
    """Who asked, as Salesforce knows them: for a revoke whoever revoked it if they have a
    Salesforce id, else whoever created it, else the external user id the caller gave, else
    CALLISTO_DEFAULT_USER_ID."""
    if action == Action.REVOKE:
        revoker = salesforce_user_id(cancellation.revoked_by)
        if revoker:
            return revoker
    return (
        salesforce_user_id(cancellation.created_by)
        or cancellation.external_user_id
        or settings.CALLISTO_DEFAULT_USER_ID
    )


class CallistoAdapter(ProviderAdapter):
    kind = CALLISTO
    label = gettext_lazy("Callisto")
    supports_revoke = True
    # A re-plan is delivered again, as a Delete of what Callisto has and an Add (deliver_again).
    supports_update = True

    def applies_to(self, cancellation) -> bool:
        return bool((cancellation.order.external_ids or {}).get(CALLISTO))

    def plan_problems(self, cancellation) -> dict[str, str]:
        if acting_user_id(cancellation, Action.ADD):
            return {}
        return {
            "external_user_id": _(
                "Callisto needs the Salesforce user id of whoever asks (externalUserId): give "
                "one, set it on the staff user's profile, or set CALLISTO_DEFAULT_USER_ID."
            )
        }

    def add_verdict(self, cancellation, planned_items=None) -> Verdict:
        verdict = super().add_verdict(cancellation, planned_items)
        if verdict.will_be_told and not cancellation.is_whole_order:
            return self.verdict(
                False, VerdictReason.WHOLE_ORDERS_ONLY, whole_orders_only(), manual=True
            )
        return verdict

    def build_payload(self, cancellation, action: Action) -> dict:
        return {
            "Id": int(cancellation.order.external_ids[CALLISTO]),
            "CancelDate": callisto_date(cancellation.churn_time),
            "CancelTimestamp": callisto_timestamp(cancellation.canceled_time),
            "CancelReason": mapped_reason(cancellation.reason, CALLISTO) or "",
            "UserId": acting_user_id(cancellation, action),
            "Action": "Add" if action == Action.ADD else "Delete",
        }

    def _session(self):
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        auth = None
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        else:
            auth = HTTPBasicAuth(self.config.username, self.config.password)
        return provider_session(self.kind, timeout=self.config.timeout, auth=auth, headers=headers)

    def deliver(self, cancellation, action: Action) -> Result:
        payload = self._payload_or_refusal(cancellation, action)
        if isinstance(payload, Result):
            return payload
        result = self._send(payload)
        if action == Action.ADD and result.outcome == Outcome.DELIVERED:
            result.references = {DELIVERED: _held_fields(payload)}
        return result

    def deliver_again(self, cancellation, references: dict) -> Result:
        """A re-plan of a cancellation Callisto was told of: Delete what Callisto holds (the
        fields of our last delivered Add, its CancelDate included), then Add the new plan.
        Nothing is sent when Callisto holds the new plan already."""
        held = references.get(DELIVERED)
        if held is None:  # never held, or removed by an earlier try: only the Add is left
            return self.deliver(cancellation, Action.ADD)
        payload = self._payload_or_refusal(cancellation, Action.ADD)
        if isinstance(payload, Result):
            return payload
        if _held_fields(payload) == held:
            return Result(Outcome.DELIVERED, message=_("Callisto holds this plan already."))
        removed = self._send({**held, "UserId": payload["UserId"], "Action": "Delete"})
        if removed.outcome != Outcome.DELIVERED and removed.status_code != 404:
            removed.message = _(
                "Removing the earlier cancellation (CancelDate %(date)s) at Callisto: %(error)s"
            ) % {"date": held.get("CancelDate"), "error": removed.message}
            return removed
        added = self._send(payload)
        if added.outcome == Outcome.DELIVERED:
            added.references = {DELIVERED: _held_fields(payload)}
        else:
            added.references = {DELIVERED: None}
            added.message = _(
                "The earlier cancellation was removed at Callisto, the new one not yet: %(error)s"
            ) % {"error": added.message}
        return _combined(removed, added)

    def _payload_or_refusal(self, cancellation, action: Action) -> dict | Result:
        """The request body, or the result that says why none can be sent."""
        if not cancellation.is_whole_order:
            return Result(Outcome.SKIPPED, message=whole_orders_only(), needs_manual_action=True)
        if not self.config.token and not self.config.username:
            return Result(
                Outcome.FAILED,
                message=_("Set CALLISTO_TOKEN, or CALLISTO_USERNAME and CALLISTO_PASSWORD."),
                credentials_problem=True,
            )
        if not str(cancellation.order.external_ids[CALLISTO]).isdigit():
            return Result(
                Outcome.FAILED,
                message=_("The order's Callisto id %(id)r is not a whole number.")
                % {"id": cancellation.order.external_ids[CALLISTO]},
            )
        payload = self.build_payload(cancellation, action)
        if not payload["UserId"]:
            return Result(
                Outcome.FAILED,
                message=_(
                    "Callisto needs the Salesforce user id (UserId), but neither the staff "
                    "user's profile nor the cancellation has one."
                ),
            )
        return payload

    def _send(self, payload: dict) -> Result:
        method = "PUT" if payload["Action"] == "Add" else "DELETE"
        url = f"{self.config.base_url.rstrip('/')}/callisto/cancel"
        with self._session() as session:
            exchange = send_json(session, method, url, payload)
        if exchange.status_code is None:
            return exchange.transport_result()
        return self.interpret(exchange)

    def interpret(self, exchange) -> Result:
        status = exchange.status_code
        if status in (200, 204):
            return exchange.result(Outcome.DELIVERED)
        if status in (400, 422):
            return exchange.result(Outcome.FAILED, self._problem_message(exchange))
        if status in (401, 403):
            return exchange.result(
                Outcome.FAILED,
                _("Callisto refused our credentials (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": self._problem_message(exchange)},
                credentials_problem=True,
            )
        if status == 404:
            return exchange.result(
                Outcome.FAILED,
                _("Unknown order in Callisto: %(detail)s")
                % {"detail": self._problem_message(exchange)},
            )
        if status in (406, 415):
            return exchange.result(
                Outcome.FAILED,
                _("Callisto did not accept our request's format (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": self._problem_message(exchange)},
                bug=True,
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            return exchange.result(
                Outcome.RETRY,
                _("Callisto is unavailable (HTTP %(status)s).") % {"status": status},
            )
        return exchange.result(
            Outcome.FAILED,
            _("Unexpected answer from Callisto (HTTP %(status)s): %(detail)s")
            % {"status": status, "detail": self._problem_message(exchange)},
        )

    @staticmethod
    def _problem_message(exchange) -> str:
        """Laminas problem+json: detail, then each validation message as `Field: message`."""
        data = exchange.data
        if not isinstance(data, dict):
            return exchange.body_text[:500].strip() or _("(no details)")
        parts = [str(data.get("detail") or data.get("title") or "")]
        parts += flatten_messages(data.get("validation_messages"))
        return "; ".join(part for part in parts if part) or exchange.body_text[:500]


def whole_orders_only() -> str:
    return _(
        "Callisto can only cancel whole orders, and this cancellation covers some items only. "
        "Change the order in Callisto by hand."
    )


def _held_fields(payload: dict) -> dict:
    """What Callisto holds after an Add of `payload` (and a Delete must name)."""
    return {name: value for name, value in payload.items() if name != "Action"}


def _combined(first: Result, second: Result) -> Result:
    """Two requests of one delivery attempt as one record: the second's outcome, both sides."""
    second.request_excerpt = f"{first.request_excerpt}\n\n{second.request_excerpt}"
    second.response_excerpt = f"{first.response_excerpt}\n\n{second.response_excerpt}"
    second.duration_ms = (first.duration_ms or 0) + (second.duration_ms or 0)
    return second
