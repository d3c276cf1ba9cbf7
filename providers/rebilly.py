"""Rebilly order cancellations (seed 001; docs/contracts/rebilly/).

    ADD    → PUT  {base}/order-cancellations/{cancellation.id}   status "confirmed"
    REVOKE → PUT  {base}/order-cancellations/{cancellation.id}   status "revoked"
             unless Rebilly has completed it (a completed cancellation "may not be changed",
             OrderCancellation.resolved.json): then the order is reactivated instead,
             GET  {base}/order-reactivations?filter=orderId:{order}   (done already?)
             POST {base}/order-reactivations  {orderId, description}
             (order-reactivations.paths.resolved.json, OrderReactivation.resolved.json)

{base} ends in /organizations/{organizationId}. The cancellation's own id is used as Rebilly's
id (it follows Rebilly's id pattern, at most 50 characters), so sending the same thing again
after a lost answer is an idempotent upsert, never a second cancellation. A reactivation is a
POST, so a repeat first looks for the reactivation it may already have made. `completed` is set
by Rebilly itself when churnTime is reached, so Storno always sends `confirmed` for a live one.
A 429 is retried not before its X-RateLimit-Retry-After. Guesses: docs/contracts/rebilly/GUESSES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cancellations.external_ids import REBILLY
from reasons.models import REBILLY_DEFAULT_REASON, REBILLY_REASONS
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, Result
from .exchange import TRANSIENT_STATUSES, Exchange, send_json
from .http import excerpt, provider_session

REFERENCE_FIELDS = ("id", "status", "proratedInvoiceId", "appliedInvoiceId", "lineItemSubtotal")
CANCELLATIONS = "order-cancellations"
REACTIVATIONS = "order-reactivations"
RETRY_AFTER = "X-RateLimit-Retry-After"
# A reset further away than this is not believed (a broken header must not park a delivery).
LONGEST_WAIT = timedelta(days=1)


def iso(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retry_after(value, now: datetime) -> datetime | None:
    """X-RateLimit-Retry-After as a moment. Rebilly documents "a UTC timestamp" of type integer
    (1713187500: Unix seconds); seconds to wait, milliseconds, an RFC 3339 or HTTP date are
    understood too. None when missing, unreadable or past; at most LONGEST_WAIT ahead."""
    text = str(value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 15:  # not "²", nor past year 9999
        number = int(text)
        if number >= 10**11:  # milliseconds
            moment = datetime.fromtimestamp(number / 1000, UTC)
        elif number >= 10**9:  # Unix seconds: the documented form
            moment = datetime.fromtimestamp(number, UTC)
        else:  # a number of seconds to wait
            moment = now + timedelta(seconds=number)
    else:
        moment = parse_time(text)
        if moment is None:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
    if moment <= now:
        return None
    return min(moment, now + LONGEST_WAIT)


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

    def build_reactivation(self, cancellation) -> dict:
        """POST /order-reactivations: the order, and why (≤ 255). effectiveTime and
        renewalTime are left to Rebilly: it continues or restarts the order as of now."""
        words = f"Storno: undo of cancellation {cancellation.pk}"  # read at Rebilly, in English
        if cancellation.revoke_comment:
            words = f"{words}: {cancellation.revoke_comment}"
        return {"orderId": cancellation.order.external_ids[REBILLY], "description": words[:255]}

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

    # --- sending ------------------------------------------------------------------------------
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
        with provider_session(self.kind, timeout=self.config.timeout, headers=headers) as session:
            talk = _Conversation(session, self.config.base_url)
            put = talk.send(
                "PUT", CANCELLATIONS, cancellation.pk, self.build_payload(cancellation, action)
            )
            if action == Action.REVOKE:
                return talk.record(self._revoke(talk, cancellation, put))
            return talk.record(self.interpret(put))

    def _revoke(self, talk, cancellation, put: Exchange) -> Result:
        """PUT status revoked, unless Rebilly completed the cancellation: then reactivate."""
        resource = put.data if put.status_code in (200, 201) else None
        if put.status_code in (409, 422):  # refused: completed meanwhile? Ask.
            look = talk.send("GET", CANCELLATIONS, cancellation.pk)
            if look.status_code != 200:
                return self.interpret(look) if _worth_retry(look) else self.interpret(put)
            resource = look.data
        if isinstance(resource, dict) and resource.get("status") == "completed":
            return self._reactivate(talk, cancellation, resource)
        return self.interpret(put)

    def _reactivate(self, talk, cancellation, completed: dict) -> Result:
        order_id = cancellation.order.external_ids[REBILLY]
        churned_at = parse_time(completed.get("churnTime"))
        query = urlencode({"filter": f"orderId:{order_id}", "sort": "-createdTime", "limit": 100})
        listing = talk.send("GET", f"{REACTIVATIONS}?{query}")
        if listing.status_code != 200:
            return self.interpret(listing)
        done = _our_reactivation(listing.data, cancellation.pk, churned_at)
        if done is not None:
            return self._reactivated(listing, done)
        post = talk.send("POST", REACTIVATIONS, payload=self.build_reactivation(cancellation))
        if post.status_code == 201:
            return self._reactivated(post, post.data if isinstance(post.data, dict) else {})
        if post.status_code == 409:  # the order is active already: perhaps by our lost POST
            again = talk.send("GET", f"{REACTIVATIONS}?{query}")
            done = _our_reactivation(again.data, cancellation.pk, churned_at)
            if again.status_code == 200 and done is not None:
                return self._reactivated(again, done)
            return post.result(
                Outcome.FAILED,
                _("Rebilly would not reactivate order %(order)s (HTTP 409): %(detail)s")
                % {"order": order_id, "detail": self._problem_message(post)},
            )
        return self.interpret(post)

    @staticmethod
    def _reactivated(exchange: Exchange, reactivation: dict) -> Result:
        references = {"reactivationId": reactivation.get("id", ""), "status": "reactivated"}
        return exchange.result(Outcome.DELIVERED, references=references)

    # --- answers ------------------------------------------------------------------------------
    def interpret(self, exchange) -> Result:
        status = exchange.status_code
        if status is None:
            return exchange.transport_result()
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
        if status == 429:
            return exchange.result(
                Outcome.RETRY,
                _("Rebilly's rate limit is reached (HTTP 429): %(detail)s") % {"detail": detail},
                retry_after=retry_after(exchange.response_headers.get(RETRY_AFTER), timezone.now()),
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


def _worth_retry(exchange: Exchange) -> bool:
    status = exchange.status_code
    return status is None or status in TRANSIENT_STATUSES or status >= 500


def _our_reactivation(listing, cancellation_id: str, churned_at) -> dict | None:
    """The reactivation that undid our cancellation: the one naming it as its cancellationId,
    or, where Rebilly leaves cancellationId out, one made after it completed."""
    for reactivation in listing if isinstance(listing, list) else []:
        if not isinstance(reactivation, dict):
            continue
        named = reactivation.get("cancellationId")
        if named == cancellation_id:
            return reactivation
        created = parse_time(reactivation.get("createdTime"))
        if not named and churned_at and created and created >= churned_at:
            return reactivation
    return None


class _Conversation:
    """The requests of one delivery, kept so that the attempt's record shows all of them."""

    def __init__(self, session, base_url: str):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.exchanges: list[Exchange] = []

    def send(self, method: str, collection: str, resource_id: str = "", payload=None):
        url = "/".join(part for part in (self.base_url, collection, resource_id) if part)
        exchange = send_json(self.session, method, url, payload)
        self.exchanges.append(exchange)
        return exchange

    def record(self, result: Result) -> Result:
        """The result, with every request and answer of the delivery in its excerpts."""
        count = len(self.exchanges)
        if count > 1:
            share = 2000 // count
            result.request_excerpt = "\n\n".join(
                excerpt(e.request_excerpt, share) for e in self.exchanges
            )
            result.response_excerpt = "\n\n".join(
                excerpt(e.response_excerpt, share) for e in self.exchanges
            )
            result.duration_ms = sum(e.duration_ms for e in self.exchanges)
        return result
