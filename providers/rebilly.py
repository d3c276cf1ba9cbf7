"""Rebilly order cancellations (seed 001, specs/rebilly).

    ADD    → PUT {base}/order-cancellations/{cancellation.id}   status "confirmed"
    REVOKE → PUT {base}/order-cancellations/{cancellation.id}   status "revoked"

{base} ends in /organizations/{organizationId}. The cancellation's own id is used as Rebilly's
id (it follows Rebilly's id pattern, at most 50 characters), so sending the same thing again
after a lost answer is an idempotent upsert, never a second cancellation. `completed` is set by
Rebilly itself when churnTime is reached, so Storno always sends `confirmed` for a live one.
"""

from __future__ import annotations

from datetime import UTC

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cancellations.external_ids import REBILLY
from reasons.models import REBILLY_DEFAULT_REASON, REBILLY_REASONS
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, Result
from .exchange import TRANSIENT_STATUSES, send_json
from .http import build_session

REFERENCE_FIELDS = ("id", "status", "proratedInvoiceId", "appliedInvoiceId", "lineItemSubtotal")


def iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RebillyAdapter(ProviderAdapter):
    kind = REBILLY
    label = gettext_lazy("Rebilly")
    supports_revoke = True
    supports_update = True  # PUT is an upsert: a re-planned cancellation is sent again

    def applies_to(self, cancellation) -> bool:
        return bool((cancellation.order.external_ids or {}).get(REBILLY))

    def build_payload(self, cancellation, action: Action) -> dict:
        reason = mapped_reason(cancellation.reason, REBILLY)
        payload = {
            "orderId": cancellation.order.external_ids[REBILLY],
            "churnTime": iso(cancellation.churn_time),
            "prorated": bool(cancellation.prorated),
            "reason": reason if reason in REBILLY_REASONS else REBILLY_DEFAULT_REASON,
            "canceledBy": cancellation.canceled_by,
            "status": "confirmed" if action == Action.ADD else "revoked",
            "lineItems": [self._line(line) for line in cancellation.lines.all()],
        }
        if cancellation.churn_time_policy:
            payload["churnTimePolicy"] = cancellation.churn_time_policy
        if cancellation.description:
            payload["description"] = cancellation.description[:255]
        return payload

    @staticmethod
    def _line(line) -> dict:
        item = {
            "type": line.type,
            "unitPriceAmount": float(line.unit_price_amount),  # a JSON number, two decimals
            "unitPriceCurrency": line.unit_price_currency,
            "quantity": line.quantity,
        }
        if line.description:
            item["description"] = line.description[:1000]
        if line.period_start:
            item["periodStartTime"] = iso(line.period_start)
        if line.period_end:
            item["periodEndTime"] = iso(line.period_end)
        return item

    def deliver(self, cancellation, action: Action) -> Result:
        if not self.config.token:
            return Result(
                Outcome.FAILED, message=_("Set REBILLY_API_KEY."), credentials_problem=True
            )
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "REB-APIKEY": self.config.token,
        }
        url = f"{self.config.base_url.rstrip('/')}/order-cancellations/{cancellation.pk}"
        payload = self.build_payload(cancellation, action)
        with build_session(timeout=self.config.timeout, headers=headers) as session:
            exchange = send_json(session, "PUT", url, payload)
        if exchange.status_code is None:
            return exchange.transport_result()
        return self.interpret(exchange)

    def interpret(self, exchange) -> Result:
        status = exchange.status_code
        if status in (200, 201):
            data = exchange.data if isinstance(exchange.data, dict) else {}
            references = {name: data[name] for name in REFERENCE_FIELDS if name in data}
            return exchange.result(Outcome.DELIVERED, references=references)
        detail = self._problem_message(exchange)
        if status in (401, 403):
            return exchange.result(
                Outcome.FAILED,
                _("Rebilly refused our API key (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
                credentials_problem=True,
            )
        if status in (406, 415):
            return exchange.result(
                Outcome.FAILED,
                _("Rebilly did not accept our request's format (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
                bug=True,
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            return exchange.result(
                Outcome.RETRY,
                _("Rebilly is unavailable (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
            )
        return exchange.result(Outcome.FAILED, detail)

    @staticmethod
    def _problem_message(exchange) -> str:
        """RFC 7807: detail (or title), then each invalid field as `field: message`."""
        data = exchange.data
        if not isinstance(data, dict):
            return exchange.body_text[:500].strip() or _("(no details)")
        parts = [str(data.get("detail") or data.get("title") or "")]
        for problem in data.get("invalidFields") or []:
            if isinstance(problem, dict):
                parts.append(f"{problem.get('field', '')}: {problem.get('message', '')}")
        return "; ".join(part for part in parts if part) or exchange.body_text[:500]
