"""JS7 JobScheduler: cancel the workflow orders behind a Storno order (seed 003, specs/js7).

    login  → POST {base}/joc/api/authentication/login   HTTP Basic → X-Access-Token
    ADD    → POST {base}/joc/api/orders/cancel          {"controllerId", "orderIds", "deep",
                                                         ["kill"], "auditLog"}
    REVOKE → nothing: JS7 can't bring a cancelled workflow order back (SKIPPED, with a message)

Every body validates against docs/contracts/js7/cancelOrders.resolved.json (the contract test
tests/providers/test_contract_js7.py checks it). The order's workflow orders are in
Order.external_ids ("js7ControllerId", "js7OrderIds", see cancellations/external_ids.py). `deep`
is always true, so child orders forked from them are cancelled too ("deep: if true then child
orders are also processed"); `kill` (SIGTERM to a running job) only when the cancellation asks
for it with a truthy `kill_running`.

The auditLog is the caller's, passed on (js7_body.py says what Storno adds where it fits).

Answers (docs/contracts/js7/NOTES.md): 200 {ok: true} → DELIVERED; 420 {error: {code,
message}} → FAILED with JOC's code and message, except JOC-161 "No orders found." → DELIVERED,
but marked: the message says "JS7 had no such orders" and references["js7NoSuchOrders"] is true
(the ids Storno sent are unknown to JS7: a repeat after a lost answer, cancelled in JOC, or ids
JS7 never had; not a failure a retry could mend); 401/403 → FAILED, a credentials problem; 433
(four-eyes approval) and 419 (per-order errors) → FAILED; 408/429/5xx, timeouts and dropped
connections → RETRY.

The access token is cached per base URL and account for the process (JOC sessions last 30
minutes of idleness by default). A cached token answered with 440 (login timed out) or 401
(session gone) is dropped and the adapter logs in again, once.

Configuration (environment, via providers/registry.py): JS7_BASE_URL (e.g. http://host:4446;
the API lies under /joc/api/), JS7_USERNAME, JS7_PASSWORD, PROVIDER_TIMEOUT.
"""

from __future__ import annotations

import re
import threading
import time

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from requests.auth import HTTPBasicAuth

from cancellations.external_ids import JS7_CONTROLLER, JS7_ORDERS

from .base import Action, Outcome, ProviderAdapter, ProviderConfig, Result
from .exchange import TRANSIENT_STATUSES, Exchange, send_json
from .http import excerpt, provider_session
from .js7_body import cancel_body
from .registry import config_from_env

KIND = "js7"
API_PREFIX = "/joc/api"
LOGIN_PATH = API_PREFIX + "/authentication/login"
LOGOUT_PATH = API_PREFIX + "/authentication/logout"
CANCEL_PATH = API_PREFIX + "/orders/cancel"
TOKEN_HEADER = "X-Access-Token"  # noqa: S105 - a header name, not a secret
NO_ORDERS_FOUND = "JOC-161"
NO_SUCH_ORDERS = "js7NoSuchOrders"  # the reference flag on a JOC-161 delivery
_TOKEN_IN_JSON = re.compile(r'("accessToken"\s*:\s*")[^"]*(")')

# One JOC session per base URL and account, shared by the threads of this process.
_tokens: dict[tuple[str, str], str] = {}
_tokens_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached access token (tests; or after changing credentials)."""
    with _tokens_lock:
        _tokens.clear()


def _cached_token(key) -> str | None:
    with _tokens_lock:
        return _tokens.get(key)


def _store_token(key, token: str) -> None:
    with _tokens_lock:
        _tokens[key] = token


def _drop_token(key, token: str) -> None:
    with _tokens_lock:
        if _tokens.get(key) == token:  # another thread may have logged in again already
            del _tokens[key]


def api_root(base_url: str) -> str:
    """The base URL without a trailing slash or a trailing /joc/api (both are accepted)."""
    root = base_url.strip().rstrip("/")
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)]
    return root


class _LoginFailed(Exception):
    """Raised inside deliver() to return the login's Result."""

    def __init__(self, result: Result):
        super().__init__(result.message)
        self.result = result


class Js7Adapter(ProviderAdapter):
    kind = KIND
    label = gettext_lazy("JS7 JobScheduler")
    supports_revoke = False

    def __init__(self, config: ProviderConfig | None = None):
        if config is None:
            config = config_from_env(KIND)
        super().__init__(config)
        self.root = api_root(config.base_url)
        self._token_key = (self.root, config.username)

    @classmethod
    def revoke_refusal(cls) -> str:
        return _(
            "JS7 can't undo the cancellation of workflow orders. If they are needed again, add "
            "them anew in JOC Cockpit."
        )

    # --- what to send -------------------------------------------------------------------------
    def applies_to(self, cancellation) -> bool:
        external_ids = cancellation.order.external_ids or {}
        order_ids = external_ids.get(JS7_ORDERS)
        return (
            bool(order_ids)
            and isinstance(order_ids, list)
            and bool(external_ids.get(JS7_CONTROLLER))
        )

    def build_payload(self, cancellation) -> dict:
        """The /orders/cancel body (js7_body.cancel_body)."""
        return cancel_body(cancellation)

    # --- sending ------------------------------------------------------------------------------
    def deliver(self, cancellation, action: Action) -> Result:
        if action == Action.REVOKE:
            return Result(Outcome.SKIPPED, message=self.revoke_refusal())
        if not self.applies_to(cancellation):
            return Result(Outcome.SKIPPED, message=_("The order has no workflow orders in JS7."))
        if not self.config.is_configured or not self.config.username:
            return Result(
                Outcome.FAILED,
                message=_("Set JS7_BASE_URL, JS7_USERNAME and JS7_PASSWORD."),
                credentials_problem=True,
            )
        payload = self.build_payload(cancellation)
        started = time.monotonic()
        headers = {"Accept": "application/json"}
        with provider_session(KIND, timeout=self.config.timeout, headers=headers) as session:
            try:
                result = self._cancel_with_session(session, payload)
            except _LoginFailed as failure:
                result = failure.result
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    def _cancel_with_session(self, session, payload: dict) -> Result:
        token = _cached_token(self._token_key)
        fresh = token is None
        if fresh:
            token = self._login(session)
        exchange = self._post_cancel(session, payload, token)
        if not fresh and exchange.status_code in (401, 440):
            # The cached session timed out or was ended: log in again, once.
            _drop_token(self._token_key, token)
            token = self._login(session)
            exchange = self._post_cancel(session, payload, token)
        return self.interpret(exchange, payload, token=token)

    def _post_cancel(self, session, payload: dict, token: str) -> Exchange:
        session.headers[TOKEN_HEADER] = token
        return send_json(session, "POST", self.root + CANCEL_PATH, payload)

    def _login(self, session) -> str:
        """A new access token, cached; raises _LoginFailed with the Result to report."""
        header_token = []

        def remember_header(response, *args, **kwargs):
            header_token.append(response.headers.get(TOKEN_HEADER, ""))

        session.headers.pop(TOKEN_HEADER, None)
        session.auth = HTTPBasicAuth(self.config.username, self.config.password)
        session.hooks["response"].append(remember_header)
        try:
            exchange = send_json(session, "POST", self.root + LOGIN_PATH)
        finally:
            session.auth = None
            session.hooks["response"].remove(remember_header)
        exchange.request_excerpt += "\n" + _("(HTTP Basic as %(user)s, password ***)") % {
            "user": self.config.username
        }
        if exchange.status_code is None:
            raise _LoginFailed(self._masked(exchange.transport_result(), ""))
        data = exchange.data if isinstance(exchange.data, dict) else {}
        status = exchange.status_code
        if status == 200:
            # JOC sends the token as a header and as accessToken in the body; either will do.
            token = (header_token[-1] if header_token else "") or str(data.get("accessToken") or "")
            if token:
                _store_token(self._token_key, token)
                return token
            result = exchange.result(
                Outcome.FAILED, _("JS7 accepted the login but sent no access token."), bug=True
            )
        elif status in (401, 403):
            result = exchange.result(
                Outcome.FAILED,
                _("JS7 refused the login of %(user)s (HTTP %(status)s): %(detail)s")
                % {
                    "user": self.config.username,
                    "status": status,
                    "detail": data.get("message") or _("(no details)"),
                },
                credentials_problem=True,
            )
        elif status in TRANSIENT_STATUSES or status >= 500:
            result = exchange.result(
                Outcome.RETRY,
                _("JS7 could not log us in (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": self._detail(exchange)},
            )
        else:
            result = exchange.result(
                Outcome.FAILED,
                _("JS7 answered the login with HTTP %(status)s: %(detail)s")
                % {"status": status, "detail": self._detail(exchange)},
            )
        raise _LoginFailed(self._masked(result, ""))

    def logout(self) -> bool:
        """End the cached JOC session, if any (JOC would end it after its idle timeout)."""
        token = _cached_token(self._token_key)
        if not token:
            return False
        _drop_token(self._token_key, token)
        headers = {"Accept": "application/json", TOKEN_HEADER: token}
        with provider_session(KIND, timeout=self.config.timeout, headers=headers) as session:
            exchange = send_json(session, "POST", self.root + LOGOUT_PATH)
        return exchange.status_code == 200

    # --- reading the answer -------------------------------------------------------------------
    def interpret(self, exchange: Exchange, payload: dict, *, token: str = "") -> Result:
        result = self._interpret(exchange, payload)
        return self._masked(result, token)

    def _interpret(self, exchange: Exchange, payload: dict) -> Result:
        if exchange.status_code is None:
            return exchange.transport_result()
        status = exchange.status_code
        data = exchange.data if isinstance(exchange.data, dict) else {}
        where = {
            "orders": ", ".join(payload["orderIds"]),
            "controller": payload["controllerId"],
        }
        if status == 200 and data.get("ok") is True:
            return exchange.result(
                Outcome.DELIVERED,
                _("JS7 cancelled the workflow orders %(orders)s on controller %(controller)s.")
                % where,
                references={NO_SUCH_ORDERS: False},  # an earlier JOC-161 no longer holds
            )
        if status == 420:
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            code, message = str(error.get("code") or ""), str(error.get("message") or "")
            if code == NO_ORDERS_FOUND:
                # Not plain success: JS7 doesn't know the ids Storno sent. Nothing a retry
                # would change, so delivered, but marked for staff to look at.
                return exchange.result(
                    Outcome.DELIVERED,
                    _(
                        "JS7 had no such orders: controller %(controller)s has none of the "
                        "workflow orders %(orders)s (%(code)s %(message)s), so nothing was "
                        "cancelled there. They may have been cancelled or finished in JS7 "
                        "already, or by an earlier attempt whose answer was lost; if not, "
                        "check the order's JS7 references."
                    )
                    % {**where, "code": code, "message": message},
                    references={NO_SUCH_ORDERS: True},
                )
            return exchange.result(
                Outcome.FAILED,
                _("JS7 refused to cancel the workflow orders: %(code)s %(message)s")
                % {"code": code or "HTTP 420", "message": message or self._detail(exchange)},
            )
        if status in (401, 403):
            return exchange.result(
                Outcome.FAILED,
                _("JS7 refused account %(user)s (HTTP %(status)s): %(detail)s")
                % {
                    "user": self.config.username,
                    "status": status,
                    "detail": data.get("message") or _("(no details)"),
                },
                credentials_problem=True,
            )
        if status == 433:
            return exchange.result(
                Outcome.FAILED,
                _(
                    "JS7 requires four-eyes approval to cancel orders (HTTP 433): approve the "
                    "request in JOC Cockpit, or exempt Storno's account %(user)s from the "
                    "approval process. %(detail)s"
                )
                % {"user": self.config.username, "detail": data.get("message") or ""},
            )
        if status == 419:
            return exchange.result(
                Outcome.FAILED,
                _("JS7 could not cancel some workflow orders: %(errors)s")
                % {"errors": self._bulk_errors(data) or self._detail(exchange)},
            )
        if status == 440:
            return exchange.result(
                Outcome.RETRY,
                _("JS7 ended the new session at once (HTTP 440); trying again later."),
            )
        if status in (406, 415):
            return exchange.result(
                Outcome.FAILED,
                _("JS7 did not accept our request's format (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": self._detail(exchange)},
                bug=True,
            )
        if status in TRANSIENT_STATUSES or status >= 500:
            return exchange.result(
                Outcome.RETRY,
                _("JS7 is unavailable (HTTP %(status)s): %(detail)s")
                % {"status": status, "detail": self._detail(exchange)},
            )
        return exchange.result(
            Outcome.FAILED,
            _("JS7 answered HTTP %(status)s: %(detail)s")
            % {"status": status, "detail": self._detail(exchange)},
        )

    @staticmethod
    def _bulk_errors(data: dict) -> str:
        parts = []
        for error in data.get("errors") or []:
            if isinstance(error, dict):
                path = f" ({error['path']})" if error.get("path") else ""
                parts.append(f"{error.get('code', '')}{path}: {error.get('message', '')}".strip())
        return "; ".join(parts)

    @staticmethod
    def _detail(exchange: Exchange) -> str:
        data = exchange.data if isinstance(exchange.data, dict) else {}
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        text = " ".join(str(part) for part in (error.get("code"), error.get("message")) if part)
        text = text or str(data.get("message") or "")
        return text or excerpt(exchange.body_text, 300).strip() or _("(no details)")

    def _masked(self, result: Result, token: str) -> Result:
        """No password or access token in what is stored about the attempt."""
        secrets = [s for s in (token, self.config.password) if s and len(s) >= 4]
        for name in ("request_excerpt", "response_excerpt", "message"):
            text = _TOKEN_IN_JSON.sub(r"\1***\2", getattr(result, name) or "")
            for secret in secrets:
                text = text.replace(secret, "***")
            setattr(result, name, text)
        return result
