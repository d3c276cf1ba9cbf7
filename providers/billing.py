"""AEB Logistics Cost Management's cancelServiceItems (seed 002) as a provider, following
docs/contracts/billing/aeb-lcm-cancelServiceItems.openapi-subset.json (and GUESSES.md there).

    ADD    → POST {base}/BillingBFBean/cancelServiceItems   HTTP Basic, JSON
    REVOKE → nothing to send: the engine has no un-cancel (SKIPPED, with a message for staff)

{base} is the engine's REST root, e.g. https://rz3.aeb.de/demo1billing/rest.

What is sent (BReverseServiceItemsRequestDTO):
- `items[].itemId`: the engine's id of each service item the cancellation takes away completely
  (cancellations.billing.engine_items), i.e. the order item's billing item id, the id the client
  system gave the engine. An item without one is not sent, and the delivery names it for staff
  to cancel in the engine by hand; a cancellation where no item has one is SKIPPED so.
- `userName`: BILLING_USER_NAME, the technical user the engine runs the request as (AEB: an
  unknown user gets only the basic I_EVERYONE role). The staff login goes into the one free
  text the DTO has: `reasonOfReversal` = "<reason> (by <login>)", at most 250 characters, the
  reason shortened so the login always fits.
- `clientSystemId` (≤ 20) and `clientIdentCode` (≤ 10) from the settings, both required.

The engine answers 200 with BReverseServiceItemsResponseDTO whatever it decided: `hasErrors`
false is DELIVERED; true means it refused the whole request (all or nothing) and is FAILED with
the engine's messages, or RETRY when `hasOnlyRetryableErrors` is true. AEB's documented
ITEM_RETRANSMISSION_ERROR on an item means the engine has it cancelled already (an earlier try
got through but its answer was lost): when that is the only complaint, those items are done and
the others, if any, are sent once more without them.

Environment: BILLING_BASE_URL, BILLING_USERNAME, BILLING_PASSWORD (providers.registry), and
BILLING_CLIENT_SYSTEM_ID, BILLING_CLIENT_IDENT_CODE, BILLING_USER_NAME read here.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests.auth import HTTPBasicAuth

from cancellations.billing import EngineItems, engine_items, service_item_ids
from cancellations.models import SettlementItem
from cancellations.states import CancellationStatus
from reasons.models import ProviderKind
from reasons.services import mapped_reason

from .base import Action, Outcome, ProviderAdapter, ProviderConfig, Result, Verdict, VerdictReason
from .exchange import TRANSIENT_STATUSES, send_json
from .http import provider_session

PATH = "/BillingBFBean/cancelServiceItems"
CLIENT_SYSTEM_ID_MAX = 20
CLIENT_IDENT_CODE_MAX = 10
REASON_MAX = 250
# AEB's documented code for an item the engine has seen already (BReverseServiceItemResultDTO).
RETRANSMISSION_CODES = {"ITEM_RETRANSMISSION_ERROR"}


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


def reason_of_reversal(reason: str, login: str) -> str:
    """The reason, and who cancelled: "Too expensive (by jdoe)", within AEB's 250 characters."""
    by = f" (by {login})" if login else ""
    return (reason[: max(REASON_MAX - len(by), 0)] + by).strip()[:REASON_MAX]


class BillingAdapter(ProviderAdapter):
    kind = ProviderKind.BILLING.value
    label = gettext_lazy("Billing engine")
    supports_revoke = False

    def __init__(self, config: ProviderConfig | None = None):
        super().__init__(config or config_from_env())

    def _extra(self, key: str, name: str) -> str:
        return str(self.config.extra.get(key) or _setting(name)).strip()

    @property
    def client_system_id(self) -> str:
        return self._extra("client_system_id", "BILLING_CLIENT_SYSTEM_ID")

    @property
    def client_ident_code(self) -> str:
        return self._extra("client_ident_code", "BILLING_CLIENT_IDENT_CODE")

    @property
    def user_name(self) -> str:
        return self._extra("user_name", "BILLING_USER_NAME")

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

    def build_payload(self, cancellation, item_ids: list[str]) -> dict:
        creator = cancellation.created_by
        return {
            "clientSystemId": self.client_system_id,
            "clientIdentCode": self.client_ident_code,
            "userName": self.user_name,
            "resultLanguageIsoCodes": result_languages(),
            "reasonOfReversal": reason_of_reversal(
                mapped_reason(cancellation.reason, self.kind),
                creator.get_username() if creator else "",
            ),
            "items": [{"itemId": item_id} for item_id in item_ids],
        }

    @classmethod
    def revoke_refusal(cls) -> str:
        return _(
            "The billing engine can't undo a cancellation of service items; re-create them "
            "there if needed."
        )

    def add_verdict(self, cancellation, planned_items=None) -> Verdict:
        if planned_items is None:
            engine = engine_items(cancellation)
        else:
            engine = planned_engine_items(planned_items)
        left_out = _left_out(engine.unreferenced)
        if engine.item_ids:  # told; any item without an id is left to staff (the message)
            return self.verdict(True, VerdictReason.WILL_BE_TOLD, left_out)
        if left_out:
            return self.verdict(False, VerdictReason.NO_PROVIDER_ID, left_out, manual=True)
        return self.verdict(False, VerdictReason.NOT_APPLICABLE, _nothing_to_cancel())

    def deliver(self, cancellation, action: Action) -> Result:
        if action == Action.REVOKE:
            return Result(Outcome.SKIPPED, message=self.revoke_refusal())
        engine = engine_items(cancellation)
        left_out = _left_out(engine.unreferenced)
        if not engine.item_ids:
            return Result(
                Outcome.SKIPPED,
                message=left_out or _nothing_to_cancel(),
                needs_manual_action=bool(left_out),
            )
        problem = self._configuration_problem()
        if problem:
            return Result(Outcome.FAILED, message=problem, credentials_problem=True)
        result = self._send(cancellation, engine.item_ids)
        if left_out:
            result.message = " ".join(part for part in (result.message, left_out) if part)
        return result

    def _send(self, cancellation, item_ids: list[str]) -> Result:
        """One request; when the engine had some of the items cancelled already and says
        nothing else, one more without them."""
        url = self.config.base_url.rstrip("/") + PATH
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        auth = HTTPBasicAuth(self.config.username, self.config.password)
        with provider_session(
            self.kind, timeout=self.config.timeout, auth=auth, headers=headers
        ) as session:
            exchange = send_json(session, "POST", url, self.build_payload(cancellation, item_ids))
            done = retransmitted(exchange.data) if exchange.status_code == 200 else set()
            rest = [item_id for item_id in item_ids if item_id not in done]
            if done and rest:
                exchange = send_json(session, "POST", url, self.build_payload(cancellation, rest))
        if exchange.status_code is None:
            return exchange.transport_result()
        if done and not rest:
            return exchange.result(Outcome.DELIVERED, _cancelled_already(done))
        result = self.interpret(exchange)
        if done:
            result.message = " ".join(p for p in (_cancelled_already(done), result.message) if p)
        return result

    def _configuration_problem(self) -> str:
        missing = [
            name
            for name, value in (
                ("BILLING_BASE_URL", self.config.base_url),
                ("BILLING_USERNAME", self.config.username),
                ("BILLING_PASSWORD", self.config.password),
                ("BILLING_CLIENT_SYSTEM_ID", self.client_system_id),
                ("BILLING_CLIENT_IDENT_CODE", self.client_ident_code),
                ("BILLING_USER_NAME", self.user_name),
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


def _error_codes(messages) -> list:
    return [
        m.get("messageIdentCode")
        for m in messages or []
        if isinstance(m, dict) and m.get("messageType") == "ERROR"
    ]


def retransmitted(data) -> set[str]:
    """The itemIds the engine refused only as retransmissions (it has them cancelled already),
    when that is all it refused: no other error on the request or on any other item. Empty
    otherwise, and for anything that isn't the response DTO."""
    if not isinstance(data, dict) or data.get("hasErrors") is not True:
        return set()
    if any(code not in RETRANSMISSION_CODES for code in _error_codes(data.get("messages"))):
        return set()
    done = set()
    for item in data.get("itemResponses") or []:
        codes = _error_codes(item.get("messages")) if isinstance(item, dict) else [None]
        if any(code not in RETRANSMISSION_CODES for code in codes):
            return set()
        if codes:
            done.add(str(item.get("itemId")))
    return done


def planned_engine_items(planned_items) -> EngineItems:
    """engine_items for a planned (unsaved) cancellation's (order item, quantity) pairs: the
    items it takes away completely that have settlement items. One query."""
    whole = {item.pk: item for item, quantity in planned_items if quantity >= item.open_quantity}
    billed = set(
        SettlementItem.objects.present()
        .filter(order_item_id__in=whole)
        .values_list("order_item_id", flat=True)
    )
    items = [whole[pk] for pk in sorted(billed)]
    return EngineItems(
        item_ids=[item.billing_item_id for item in items if item.billing_item_id],
        unreferenced=[item for item in items if not item.billing_item_id],
    )


def _nothing_to_cancel() -> str:
    return _("The cancellation takes away no service item with settlement items.")


def _cancelled_already(item_ids) -> str:
    return _("The billing engine had cancelled %(items)s already.") % {
        "items": ", ".join(sorted(item_ids))
    }


def _left_out(items) -> str:
    """Staff's to-do for service items Storno can't name to the engine."""
    if not items:
        return ""
    return _(
        "Not sent, for want of a billing item id: %(items)s. Cancel them in the billing "
        "engine by hand."
    ) % {"items": ", ".join(f"{item.sku} (#{item.pk})" for item in items)}


def _line(item_id, message: dict) -> str:
    """The message's first text (the engine puts our first language first)."""
    texts = [t for t in message.get("messageTexts") or [] if isinstance(t, dict)]
    text = str(texts[0].get("text", "")) if texts else ""
    text = text or str(message.get("messageIdentCode") or "")
    return f"{item_id}: {text}" if item_id is not None else text


def _short_body(exchange) -> str:
    return exchange.body_text[:500].strip() or _("(no details)")
