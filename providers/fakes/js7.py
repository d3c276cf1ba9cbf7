"""A strict fake of JS7's JOC API for cancelling workflow orders (docs/contracts/js7/), on loopback.

    POST /joc/api/authentication/login    HTTP Basic → 200 with the token in the X-Access-Token
                                          header and the body's accessToken; 401 otherwise
    POST /joc/api/authentication/logout   ends the session
    POST /joc/api/orders/cancel           200 {deliveryDate, surveyDate, ok: true} (ok.resolved)

As JOC does (raw/api/resourceTypes/common/error.raml, NOTES.md): 406 to an Accept without JSON,
415 to a body that isn't JSON; 401/403/440 in the security shape (security401_403.resolved.json)
for a missing or unknown X-Access-Token, a forbidden account, a session idle for longer than
`session_timeout`; 433 with `four_eyes`; 420 {deliveryDate, error: {code, message}}
(error420.resolved.json) for a body that breaks cancelOrders.resolved.json (JOC-420, checked
through providers/contracts.py), dateFrom not older than dateTo (JOC-400), and when no live order
matches (JOC-161 "No orders found.": unknown ids, or orders cancelled already).

It knows workflow orders per controller (`seed_orders`, workflow_order): a JOC state, a workflow
path (and versionId), the time it is scheduled for. js7_orders.py says which of them a body
selects (orderIds beat the filters; workflowIds beat folders; states; dateFrom/dateTo in
timeZone) plus, with `deep`, their child orders (`<parent>|<branch>`). An order seeded with
`refuse="…"` stays and turns the answer into 419. Requests are kept (`received`,
`cancel_bodies()`); faults.ControlledFake's faults apply. What JOC's docs leave open: GUESSES.md.

Control API (besides /_fake/faults, /_fake/requests, /_fake/state, /_fake/reset):

    GET  /_fake/orders             {"controllers": {controllerId: {orderId: order}}}
    POST /_fake/orders             {"controllerId": "c", "orders": ["#1", {"orderId": "#2",
                                    "state": "RUNNING", "workflowPath": "/shop/x",
                                    "scheduledFor": "2027-01-15T08:00:00Z"}]}
    POST /_fake/config             {"sessionTimeout": 1800, "fourEyes": false,
                                    "forbiddenAccounts": [], "accounts": {"user": "pw"}}
    POST /_fake/sessions/expire    every current session answers 440 from now on

Run one: `python -m providers.fakes.js7 --port 8105`, then JS7_BASE_URL=http://127.0.0.1:8105
JS7_USERNAME=storno JS7_PASSWORD=js7-fake-password.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from providers.contracts import schema, schema_errors

from .faults import ControlledFake
from .js7_orders import (  # noqa: F401 - STATES and workflow_order: the fake's API
    CANCEL_SCHEMA,
    STATES,
    BadRequest,
    as_workflow_order,
    cancel_orders,
    date_bounds,
    refusals,
    stamp,
    targets,
    workflow_order,
)
from .server import FakeRequest, FakeResponse

DEFAULT_USERNAME = "storno"
DEFAULT_PASSWORD = "js7-fake-password"  # noqa: S105 - a fake's well-known test credential
DEFAULT_CONTROLLER = "storno-controller"
DEFAULT_SESSION_TIMEOUT = 1800.0  # JOC's default sessionTimeout, seconds
LOGIN_PATH = "/joc/api/authentication/login"
LOGOUT_PATH = "/joc/api/authentication/logout"
CANCEL_PATH = "/joc/api/orders/cancel"
TOKEN_HEADER = "X-Access-Token"  # noqa: S105 - a header name
JSON_TYPES = {"application/json", "application/*", "*/*"}


def validate_cancel_body(body) -> list[str]:
    """Schema violations as `path: message`, sorted; empty when the body is valid."""
    return schema_errors(body, schema(CANCEL_SCHEMA))


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class Js7Fake(ControlledFake):
    def __init__(
        self,
        *,
        port: int = 0,
        accounts: dict[str, str] | None = None,
        orders: dict[str, Iterable] | None = None,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        super().__init__(port=port)
        self.accounts = dict(accounts or {DEFAULT_USERNAME: DEFAULT_PASSWORD})
        self.session_timeout = session_timeout
        self.clock = clock  # sessions' idle time
        self.wall_clock = wall_clock  # "now" of relative dateFrom/dateTo values
        self.forbidden_accounts: set[str] = set()
        self.four_eyes = False
        self._initial_orders = {c: list(o) for c, o in (orders or {}).items()}
        self.reset_state()

    # --- what it holds ------------------------------------------------------------------------
    @property
    def username(self) -> str:
        return next(iter(self.accounts))

    @property
    def password(self) -> str:
        return self.accounts[self.username]

    def reset_state(self) -> None:
        """Forget sessions and cancellations; the orders given to the constructor come back."""
        with self.lock:
            self.controllers: dict[str, dict[str, dict]] = {}
            self.sessions: dict[str, dict] = {}
            self.cancellations: list[dict] = []  # what each accepted cancel call did
            for controller_id, orders in self._initial_orders.items():
                self._seed(controller_id, orders)

    def state(self) -> dict:
        with self.lock:
            return {
                "controllers": copy.deepcopy(self.controllers),
                "sessions": len(self.sessions),
                "cancellations": copy.deepcopy(self.cancellations),
            }

    def seed_orders(self, controller_id: str, orders: Iterable) -> None:
        """Add workflow orders: ids (PENDING) or dicts from workflow_order()."""
        with self.lock:
            self._seed(controller_id, orders)

    def _seed(self, controller_id: str, orders: Iterable) -> None:
        known = self.controllers.setdefault(controller_id, {})
        for item in orders:
            order = as_workflow_order(item, now=self.wall_clock())
            known[order["orderId"]] = order

    def order(self, controller_id: str, order_id: str) -> dict | None:
        with self.lock:
            found = self.controllers.get(controller_id, {}).get(order_id)
            return copy.deepcopy(found)

    def expire_sessions(self) -> None:
        """Every current session times out now (440 on its next call)."""
        with self.lock:
            for session in self.sessions.values():
                session["expired"] = True

    def cancel_bodies(self) -> list[dict]:
        """The bodies of every /orders/cancel request received, oldest first."""
        bodies = []
        for request in self.received:
            if request.path == CANCEL_PATH:
                try:
                    bodies.append(request.json())
                except ValueError:
                    bodies.append(None)
        return bodies

    # --- answers in JOC's shapes --------------------------------------------------------------
    def error_response(self, status: int, detail: str = "") -> FakeResponse:
        if status in (401, 403, 440):
            return self._security(status, detail or "Access denied")
        return self._error(status, f"JOC-{status}", detail or "Request failed!")

    @staticmethod
    def _error(status: int, code: str, message: str) -> FakeResponse:
        body = {"deliveryDate": stamp(), "surveyDate": stamp(), "error": {"code": code}}
        body["error"]["message"] = message
        return FakeResponse.json(body, status=status)

    @staticmethod
    def _security(status: int, message: str, *, account: str = "", **flags) -> FakeResponse:
        body = {
            "account": account,
            "enableTouch": True,
            "forcePasswordChange": False,
            "hasRole": bool(flags.get("isAuthenticated")),
            "isApprovalRequestor": False,
            "isApprover": False,
            "isAuthenticated": False,
            "isPermitted": False,
            "message": message,
            **flags,
        }
        if not account:
            body.pop("account")
        return FakeResponse.json(body, status=status)

    # --- the API ------------------------------------------------------------------------------
    def handle_api(self, request: FakeRequest) -> FakeResponse:
        routes = {LOGIN_PATH: self._login, LOGOUT_PATH: self._logout, CANCEL_PATH: self._cancel}
        route = routes.get(request.path.rstrip("/"))
        if route is None:
            return FakeResponse.raw(b"Not Found", status=404, content_type="text/plain")
        if request.method != "POST":
            response = FakeResponse.raw(b"", status=405, content_type="text/plain")
            response.headers["Allow"] = "POST"
            return response
        accept = request.headers.get("accept")
        if accept and not any(_media_type(part) in JSON_TYPES for part in accept.split(",")):
            return FakeResponse.raw(b"Not Acceptable", status=406, content_type="text/plain")
        if route is self._cancel or request.body:
            content_type = _media_type(request.headers.get("content-type", ""))
            if content_type != "application/json":
                return FakeResponse.raw(
                    b"Unsupported Media Type", status=415, content_type="text/plain"
                )
        return route(request)

    def _login(self, request: FakeRequest) -> FakeResponse:
        account = self._basic_account(request.headers.get("authorization", ""))
        if account is None:
            return self._security(401, "Access denied")
        token = str(uuid.uuid4())
        with self.lock:
            self.sessions[token] = {
                "account": account,
                "lastTouch": self.clock(),
                "expired": False,
            }
        response = self._security(
            200,
            "",
            account=account,
            accessToken=token,
            isAuthenticated=True,
            isPermitted=True,
            role="storno",
            sessionTimeout=int(self.session_timeout),
        )
        response.headers[TOKEN_HEADER] = token
        return response

    def _basic_account(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        with self.lock:
            expected = self.accounts.get(user)
        if expected is None or not hmac.compare_digest(password, expected):
            return None
        return user

    def _session(self, request: FakeRequest) -> tuple[str | None, FakeResponse | None]:
        """The account behind the request's token, or the 401/440 to answer."""
        token = request.headers.get(TOKEN_HEADER.lower(), "")
        with self.lock:
            session = self.sessions.get(token) if token else None
            if session is None:
                return None, self._security(401, "Access denied")
            now = self.clock()
            if session["expired"] or now - session["lastTouch"] >= self.session_timeout:
                session["expired"] = True
                return None, self._security(
                    440,
                    "SessionNotExistException: Session is broken and no longer valid. "
                    "New login is neccessary",
                )
            session["lastTouch"] = now  # JOC sessions time out after idleness
            return session["account"], None

    def _logout(self, request: FakeRequest) -> FakeResponse:
        account, refusal = self._session(request)
        if refusal:
            return refusal
        with self.lock:
            self.sessions.pop(request.headers.get(TOKEN_HEADER.lower(), ""), None)
        return self._security(200, "Session was successfully closed", account=account)

    def _cancel(self, request: FakeRequest) -> FakeResponse:
        account, refusal = self._session(request)
        if refusal:
            return refusal
        try:
            body = request.json()
        except ValueError as exc:
            return self._error(420, "JOC-420", f"The request body is not valid JSON: {exc}")
        problems = validate_cancel_body(body)
        if problems:
            return self._error(420, "JOC-420", "Invalid request: " + "; ".join(problems))
        with self.lock:
            if account in self.forbidden_accounts:
                return self._security(
                    403,
                    "Access denied",
                    account=account,
                    accessToken=request.headers.get(TOKEN_HEADER.lower(), ""),  # as JOC does
                    isAuthenticated=True,
                    isPermitted=False,
                    role="no_cancel",
                )
            if self.four_eyes:
                return self._four_eyes(account, body)
            controller_id = body["controllerId"]
            if controller_id not in self.controllers:
                return self._error(420, "JOC-420", f"Unknown controller '{controller_id}'.")
            try:
                bounds = date_bounds(body, self.wall_clock())
            except BadRequest as exc:
                return self._error(420, "JOC-400", str(exc))
            chosen = targets(self.controllers[controller_id], body, bounds)
            if not chosen:
                return self._error(420, "JOC-161", "No orders found.")
            effect, refused = cancel_orders(chosen, kill=bool(body.get("kill")), account=account)
            self.cancellations.append(
                {"controllerId": controller_id, "cancelled": effect, "body": body}
            )
        if refused:
            return FakeResponse.json(refusals(refused), status=419)
        return FakeResponse.json({"deliveryDate": stamp(), "surveyDate": stamp(), "ok": True})

    def _four_eyes(self, account: str, body: dict) -> FakeResponse:
        return FakeResponse.json(
            {
                "deliveryDate": stamp(),
                "message": "The request needs the approval of another person.",
                "accountName": account,
                "request": "./orders/cancel",
                "requestBody": body,
                "category": "CONTROLLER",
                "objectType": "ORDER",
                "numOfObjects": len(body.get("orderIds") or []),
                "action": "cancel orders",
                "approvers": [{"accountName": "approver", "firstName": "Ada"}],
            },
            status=433,
        )

    # --- control API --------------------------------------------------------------------------
    def _control(self, request: FakeRequest) -> FakeResponse:
        action = request.path[len("/_fake/") :].strip("/")
        if action == "orders" and request.method == "GET":
            with self.lock:
                return FakeResponse.json({"controllers": copy.deepcopy(self.controllers)})
        if action in ("orders", "config", "sessions/expire") and request.method == "POST":
            try:
                data = request.json() or {}
            except ValueError:
                return FakeResponse.json({"detail": "Send JSON."}, status=400)
            if not isinstance(data, dict):
                return FakeResponse.json({"detail": "Send a JSON object."}, status=400)
            try:
                if action == "orders":
                    self.seed_orders(data["controllerId"], data.get("orders") or [])
                elif action == "config":
                    self._configure(data)
                else:
                    self.expire_sessions()
            except (KeyError, TypeError, ValueError) as exc:
                return FakeResponse.json({"detail": f"Bad control request: {exc}"}, status=400)
            return FakeResponse.json({"ok": True})
        return super()._control(request)

    def _configure(self, data: dict) -> None:
        with self.lock:
            if "sessionTimeout" in data:
                self.session_timeout = float(data["sessionTimeout"])
            if "fourEyes" in data:
                self.four_eyes = bool(data["fourEyes"])
            if "forbiddenAccounts" in data:
                self.forbidden_accounts = set(data["forbiddenAccounts"])
            if "accounts" in data:
                self.accounts = {str(k): str(v) for k, v in dict(data["accounts"]).items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake JS7 JOC API on a fixed port.")
    parser.add_argument("--port", type=int, default=8105)
    parser.add_argument("--controller", default=DEFAULT_CONTROLLER)
    parser.add_argument(
        "--order", action="append", default=[], help="a PENDING workflow order id (repeatable)"
    )
    args = parser.parse_args(argv)
    fake = Js7Fake(port=args.port, orders={args.controller: args.order})
    print(
        f"Fake JS7 on {fake.url} (controller {args.controller}): JS7_BASE_URL={fake.url} "
        f"JS7_USERNAME={fake.username} JS7_PASSWORD={fake.password}"
    )
    fake.serve_forever()


if __name__ == "__main__":
    main()
