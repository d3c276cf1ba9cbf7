"""Callisto, the order system Salesforce talks to (seed 000, specs/callisto).

    ADD    → PUT    {base}/callisto/cancel  {"Id", "CancelDate", "CancelTimestamp",
                                             "CancelReason", "UserId", "Action": "Add"}
    REVOKE → DELETE {base}/callisto/cancel  the same fields with "Action": "Delete"

CancelDate is the effective date (churn_time) as `Y-m-d` in UTC: the documentation only says
"Datum" (a date, unlike CancelTimestamp, whose format it gives), and `Y-m-d` is the default
format of the framework's date validator (Laminas\\Validator\\Date). Storno's own
Callisto-compatible endpoint reads it back the same way (a future date means 00:00 UTC).
CancelTimestamp is when the cancellation was entered (canceled_time) as `Y-m-d H:i:s` in UTC.

Callisto's API has no items: it cancels whole orders. A partial cancellation of an order that
Callisto knows is therefore refused here (FAILED, with a message for staff) rather than sent as
a whole-order cancellation.
"""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests.auth import HTTPBasicAuth

from cancellations.external_ids import CALLISTO
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, Result
from .exchange import TRANSIENT_STATUSES, flatten_messages, send_json
from .http import build_session

DATE_FORMAT = "%Y-%m-%d"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def salesforce_user_id(user) -> str:
    if user is None:
        return ""
    try:
        return user.staff_profile.salesforce_user_id or ""
    except ObjectDoesNotExist:
        return ""


def acting_user_id(cancellation, action: Action) -> str:
    """Who asked, as Salesforce knows them: for a revoke whoever revoked it if they have a
    Salesforce id, else whoever created it, else the external user id the caller gave."""
    if action == Action.REVOKE:
        revoker = salesforce_user_id(cancellation.revoked_by)
        if revoker:
            return revoker
    return salesforce_user_id(cancellation.created_by) or cancellation.external_user_id


class CallistoAdapter(ProviderAdapter):
    kind = CALLISTO
    label = gettext_lazy("Callisto")
    supports_revoke = True
    # PUT replaces: an Add with another CancelDate reschedules (as the strict fake models it).
    supports_update = True

    def applies_to(self, cancellation) -> bool:
        return bool((cancellation.order.external_ids or {}).get(CALLISTO))

    def build_payload(self, cancellation, action: Action) -> dict:
        return {
            "Id": int(cancellation.order.external_ids[CALLISTO]),
            "CancelDate": cancellation.churn_time.astimezone(UTC).strftime(DATE_FORMAT),
            "CancelTimestamp": cancellation.canceled_time.astimezone(UTC).strftime(
                TIMESTAMP_FORMAT
            ),
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
        return build_session(timeout=self.config.timeout, auth=auth, headers=headers)

    def deliver(self, cancellation, action: Action) -> Result:
        if not cancellation.is_whole_order:
            return Result(
                Outcome.FAILED,
                message=_(
                    "Callisto can only cancel whole orders, and this cancellation covers some "
                    "items only. Change the order in Callisto by hand."
                ),
            )
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
        method = "PUT" if action == Action.ADD else "DELETE"
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
