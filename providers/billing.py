"""The billing engine's cancelServiceItems (seed 002, specs/billing: AEB Logistics Cost
Management), as a provider.

    ADD    → POST {base}/BillingBFBean/cancelServiceItems   HTTP Basic, JSON
    REVOKE → nothing to send: the engine has no un-cancel (SKIPPED, with a message for staff)

{base} is the engine's REST root, e.g. https://rz3.aeb.de/demo1billing/rest. The service items
sent are the order items the cancellation takes away completely that have settlement items
(cancellations.billing.service_item_ids); a cancellation without any is skipped.

The engine answers 200 with AEB's response body whatever it decided: `hasErrors` false is
DELIVERED; `hasErrors` true means it refused the whole request (all or nothing) and is FAILED
with the engine's messages, or RETRY when `hasOnlyRetryableErrors` is true. When the only errors
are "already cancelled" the service items are gone already (an earlier try got through but its
answer was lost), so that counts as DELIVERED.

Environment: BILLING_BASE_URL, BILLING_USERNAME, BILLING_PASSWORD (providers.registry), and
BILLING_CLIENT_SYSTEM_ID (≤ 20), BILLING_CLIENT_IDENT_CODE (≤ 10) read here.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests.auth import HTTPBasicAuth

from cancellations.billing import MAX_ITEMS, service_item_ids
from cancellations.models import SettlementItem
from cancellations.states import CancellationStatus
from reasons.models import ProviderKind
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, ProviderConfig, Result
from .exchange import TRANSIENT_STATUSES, describe_request, send_json
from .http import build_session

PATH = "/BillingBFBean/cancelServiceItems"
CLIENT_SYSTEM_ID_MAX = 20
CLIENT_IDENT_CODE_MAX = 10
REASON_MAX = 250
# The engine's own words for "this service item is cancelled already". An assumption about
# the real engine (its documentation lists no codes for this): the fake uses the same.
ALREADY_CANCELLED_CODES = {"ALREADY_CANCELLED"}


def _setting(name: str) -> str:
    return str(getattr(settings, name, "") or os.environ.get(name, "")).strip()


def config_from_env() -> ProviderConfig:
    """For using the adapter without providers.registry (demos, the shell)."""
    return ProviderConfig(
        kind=ProviderKind.BILLING.value,
        base_url=_setting("BILLING_BASE_URL"),
        username=_setting("BILLING_USERNAME"),
        password=os.environ.get("BILLING_PASSWORD", ""),
    )


def result_languages() -> list[str]:
    """The languages staff read the engine's messages in: the site's, then English, German."""
    languages = []
    for code in (settings.LANGUAGE_CODE.split("-")[0], "en", "de"):
        if code not in languages:
            languages.append(code)
    return languages


class BillingAdapter(ProviderAdapter):
    kind = ProviderKind.BILLING.value
    label = gettext_lazy("Billing engine")
    supports_revoke = False

    def __init__(self, config: ProviderConfig | None = None):
        super().__init__(config or config_from_env())

    @property
    def client_system_id(self) -> str:
        return self.config.extra.get("client_system_id") or _setting("BILLING_CLIENT_SYSTEM_ID")

    @property
    def client_ident_code(self) -> str:
        return self.config.extra.get("client_ident_code") or _setting("BILLING_CLIENT_IDENT_CODE")

    def applies_to(self, cancellation) -> bool:
        return bool(service_item_ids(cancellation))

    def applicable(self, cancellations) -> set[str]:
        # An effective cancellation concerns the engine when it removed settlement items: one
        # query for all of them. Scheduled ones are few; they take the per-row rule.
        effective = [c.pk for c in cancellations if c.status == CancellationStatus.COMPLETED]
        found = set(
            SettlementItem.objects.filter(removed_by_cancellation__in=effective)
            .values_list("removed_by_cancellation_id", flat=True)
            .distinct()
        )
        return found | {
            c.pk
            for c in cancellations
            if c.status != CancellationStatus.COMPLETED and self.applies_to(c)
        }

    def build_payload(self, cancellation, item_ids: list[int]) -> dict:
        creator = cancellation.created_by
        return {
            "clientSystemId": self.client_system_id,
            "clientIdentCode": self.client_ident_code,
            "userName": creator.get_username() if creator else self.config.username,
            "resultLanguageIsoCodes": result_languages(),
            "reasonOfReversal": mapped_reason(cancellation.reason, self.kind)[:REASON_MAX],
            "items": [{"itemId": str(pk)} for pk in item_ids],
        }

    def deliver(self, cancellation, action: Action) -> Result:
        if action == Action.REVOKE:
            return Result(
                Outcome.SKIPPED,
                message=_(
                    "The billing engine can't undo a cancellation of service items; "
                    "re-create them there if needed."
                ),
            )
        item_ids = service_item_ids(cancellation)
        if not item_ids:
            return Result(
                Outcome.SKIPPED,
                message=_("The cancellation takes away no service item with settlement items."),
            )
        problem = self._configuration_problem()
        if problem:
            return Result(Outcome.FAILED, message=problem, credentials_problem=True)
        url = self.config.base_url.rstrip("/") + PATH
        payload = self.build_payload(cancellation, item_ids)
        if len(item_ids) > MAX_ITEMS:
            return Result(
                Outcome.FAILED,
                message=_(
                    "%(count)s service items, but the billing engine takes at most %(max)s "
                    "per request; cancel them there by hand."
                )
                % {"count": len(item_ids), "max": MAX_ITEMS},
                request_excerpt=describe_request("POST", url, payload),
            )
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        auth = HTTPBasicAuth(self.config.username, self.config.password)
        with build_session(timeout=self.config.timeout, auth=auth, headers=headers) as session:
            exchange = send_json(session, "POST", url, payload)
        if exchange.status_code is None:
            return exchange.transport_result()
        return self.interpret(exchange)

    def _configuration_problem(self) -> str:
        missing = [
            name
            for name, value in (
                ("BILLING_BASE_URL", self.config.base_url),
                ("BILLING_USERNAME", self.config.username),
                ("BILLING_PASSWORD", self.config.password),
                ("BILLING_CLIENT_SYSTEM_ID", self.client_system_id),
            )
            if not value
        ]
        if missing:
            return _("Set %(names)s.") % {"names": ", ".join(missing)}
        if len(self.client_system_id) > CLIENT_SYSTEM_ID_MAX:
            return _("BILLING_CLIENT_SYSTEM_ID is longer than 20 characters.")
        if len(self.client_ident_code) > CLIENT_IDENT_CODE_MAX:
            return _("BILLING_CLIENT_IDENT_CODE is longer than 10 characters.")
        return ""

    def interpret(self, exchange) -> Result:
        status = exchange.status_code
        if status == 200:
            return self._decision(exchange)
        detail = _short_body(exchange)
        if status in (401, 403):
            return exchange.result(
                Outcome.FAILED,
                _("The billing engine refused our credentials (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
                credentials_problem=True,
            )
        if status in (400, 406, 415):
            return exchange.result(
                Outcome.FAILED,
                _("The billing engine did not accept our request (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
                bug=True,
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            return exchange.result(
                Outcome.RETRY,
                _("The billing engine is unavailable (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": detail},
            )
        return exchange.result(
            Outcome.FAILED,
            _("Unexpected answer from the billing engine (HTTP %(status)s): %(detail)s")
            % {"status": status, "detail": detail},
        )

    def _decision(self, exchange) -> Result:
        data = exchange.data
        if not isinstance(data, dict) or not isinstance(data.get("hasErrors"), bool):
            return exchange.result(
                Outcome.RETRY,
                _("The billing engine's answer is not its response body: %(detail)s")
                % {"detail": _short_body(exchange)},
            )
        messages = list(_messages(data))
        errors = [(item, m) for item, m in messages if m.get("messageType") == "ERROR"]
        if not data["hasErrors"]:
            warnings = [_line(item, m) for item, m in messages if m.get("messageType") == "WARNING"]
            return exchange.result(Outcome.DELIVERED, "; ".join(warnings))
        if _all_cancelled_already(data):
            return exchange.result(
                Outcome.DELIVERED,
                _("The billing engine had cancelled these service items already."),
            )
        text = "; ".join(_line(item, m) for item, m in errors) or _(
            "The billing engine refused the request without saying why."
        )
        if data.get("hasOnlyRetryableErrors") is True:
            return exchange.result(Outcome.RETRY, text)
        return exchange.result(Outcome.FAILED, text)


def _messages(data: dict):
    """(itemId or None, message) for the request's messages, then each item's."""
    for message in data.get("messages") or []:
        if isinstance(message, dict):
            yield None, message
    for item in data.get("itemResponses") or []:
        if not isinstance(item, dict):
            continue
        for message in item.get("messages") or []:
            if isinstance(message, dict):
                yield item.get("itemId"), message


def _all_cancelled_already(data: dict) -> bool:
    """Every item refused only because it is cancelled already: an earlier try got through
    (the engine is all or nothing, so one that got through cancelled them all)."""
    items = [item for item in data.get("itemResponses") or [] if isinstance(item, dict)]

    def only_already(item) -> bool:
        codes = [
            m.get("messageIdentCode")
            for m in item.get("messages") or []
            if isinstance(m, dict) and m.get("messageType") == "ERROR"
        ]
        return bool(codes) and all(code in ALREADY_CANCELLED_CODES for code in codes)

    return bool(items) and all(only_already(item) for item in items)


def _line(item_id, message: dict) -> str:
    """The message's first text (the engine puts our first language first)."""
    texts = [t for t in message.get("messageTexts") or [] if isinstance(t, dict)]
    text = str(texts[0].get("text", "")) if texts else ""
    text = text or str(message.get("messageIdentCode") or "")
    return f"{item_id}: {text}" if item_id is not None else text


def _short_body(exchange) -> str:
    return exchange.body_text[:500].strip() or _("(no details)")
