"""A strict fake of Callisto's cancel service, on loopback.

Contract: docs/contracts/seeds/000_75d496570d9fe2c2.txt (fields, headers, status codes),
docs/contracts/callisto/NOTES.md (the Laminas API Tools framework behind it) and
docs/contracts/callisto/cancel.schema.json (the seed's field table as JSON Schema, which every
body is checked against). Where the contract is silent the fake answers what
docs/contracts/callisto/GUESSES.md says, and nothing else.

    PUT    /callisto/cancel[/{cancel_id}]   Action Add (default) or Delete → 200 + JSON
    DELETE /callisto/cancel[/{cancel_id}]   removes the order's cancellation → 204

Like Laminas API Tools it answers every request with `Allow: PUT, DELETE`, 405 for other
methods, 401 without the right Basic credentials or Bearer token, 406 for an Accept header that
rules out JSON, 415 for a non-empty body that isn't declared application/json (laminas-api-tools/
api-tools-content-negotiation ContentTypeFilterListener: an empty body is not checked), 400 for
broken JSON and 422 `application/problem+json` {type, title, status, detail: "Failed
Validation", validation_messages: {Field: {rule: message}}} for missing, malformed or unknown
fields (laminas-api-tools/api-tools-content-validation).

It knows its orders: `CallistoFake(known_ids={4711})`; any other Id is 404 (GUESSES.md).
An Add for an order it holds a cancellation for changes nothing: the same CancelDate again is
200 (PUT is idempotent), another CancelDate is refused, 422 on Id `recordFound` — or, with
`existing_add="replace"`, replaces it (GUESSES.md: which one the real service does is unknown).

It remembers what it was told, per Callisto order id: `fake.orders[4711]` is the current state,
`fake.history[4711]` every Add/Delete received with whether it changed anything. A Delete of
nothing changes nothing (204, but is counted).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac
import re
from datetime import datetime

from providers.contracts import schema, schema_errors

from .faults import ControlledFake
from .server import FakeRequest, FakeResponse

SCHEMA = "callisto/cancel.schema.json"

DEFAULT_USERNAME = "storno"
DEFAULT_PASSWORD = "callisto-fake-password"  # noqa: S105 - a fake's well-known test credential
DEFAULT_TOKEN = "callisto-fake-token"  # noqa: S105 - a fake's well-known test credential
ALLOW = "PUT, DELETE"
PATH = re.compile(r"^/callisto/cancel(?:/(?P<cancel_id>[^/]+))?/?$")
PROBLEM_TYPE = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
JSON_TYPES = {"application/json", "application/*", "*/*", "application/problem+json"}
# A Salesforce record id: 15 case-sensitive or 18 case-insensitive characters.
SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
ACTIONS = ("Add", "Delete")
IS_EMPTY = {"isEmpty": "Value is required and can't be empty"}
# Laminas\Validator\Db\NoRecordExists's message: how Laminas refuses a record that exists.
RECORD_FOUND = {"recordFound": "A record matching the input was found"}
EXISTING_ADD_MODES = ("refuse", "replace")
# The Callisto ids the demo data gives its orders (backoffice demo_data: 400000 + n).
DEMO_ORDER_IDS = range(400000, 410000)


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def accepts_json(accept: str | None) -> bool:
    if not accept:
        return True  # no Accept header: anything goes
    return any(media_type(part) in JSON_TYPES for part in accept.split(","))


def _valid_datetime(value, fmt: str) -> bool:
    try:
        return datetime.strptime(value, fmt).strftime(fmt) == value  # noqa: DTZ007 - format check
    except (TypeError, ValueError):
        return False


def validate(body: dict, *, delete: bool) -> dict:
    """Laminas-style messages {Field: {rule: message}}; empty when the body is valid."""
    errors: dict[str, dict[str, str]] = {}
    order_id = body.get("Id")
    if order_id in (None, ""):
        errors["Id"] = dict(IS_EMPTY)
    elif isinstance(order_id, bool) or not isinstance(order_id, int) or order_id < 1:
        errors["Id"] = {"notInt": "The input does not appear to be an integer"}

    cancel_date = body.get("CancelDate")
    if cancel_date in (None, ""):
        errors["CancelDate"] = dict(IS_EMPTY)
    elif not isinstance(cancel_date, str) or not _valid_datetime(cancel_date, "%Y-%m-%d"):
        errors["CancelDate"] = {"dateFalseFormat": "The input does not fit the date format 'Y-m-d'"}

    stamp = body.get("CancelTimestamp")
    if stamp in (None, ""):
        errors["CancelTimestamp"] = dict(IS_EMPTY)
    elif not isinstance(stamp, str) or not _valid_datetime(stamp, "%Y-%m-%d %H:%M:%S"):
        errors["CancelTimestamp"] = {
            "dateFalseFormat": "The input does not fit the date format 'Y-m-d H:i:s'"
        }

    reason = body.get("CancelReason")
    if reason in (None, "") or (isinstance(reason, str) and not reason.strip()):
        errors["CancelReason"] = dict(IS_EMPTY)
    elif not isinstance(reason, str):
        errors["CancelReason"] = {"stringInvalid": "Invalid type given. String expected"}

    user_id = body.get("UserId")
    if user_id in (None, ""):
        errors["UserId"] = dict(IS_EMPTY)
    elif not isinstance(user_id, str) or not SALESFORCE_ID.match(user_id):
        errors["UserId"] = {
            "regexNotMatch": "The input does not match against pattern "
            "'/^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$/'"
        }

    action = body.get("Action", "Delete" if delete else "Add")
    if action not in ACTIONS or (delete and action != "Delete"):
        allowed = "'Delete'" if delete else "'Add', 'Delete'"
        errors["Action"] = {
            "notInArray": f"The input was not found in the haystack ({allowed})",
        }
    return {**errors, **_schema_messages(body, errors)}


def _schema_messages(body: dict, found: dict) -> dict:
    """What the contract's schema finds beyond the rules above: fields the seed doesn't
    define, and anything else the rules missed (so no body the schema refuses gets through)."""
    known = schema(SCHEMA)["properties"]
    messages = {
        name: {"unknownField": "The field is not part of the Cancel service"}
        for name in body
        if name not in known
    }
    for error in schema_errors(body, schema(SCHEMA)):
        field, _, text = error.partition(": ")
        field = field.split(".")[0]
        if field in known and field not in found and field not in messages:
            messages[field] = {"schema": text}
    return messages


class CallistoFake(ControlledFake):
    def __init__(
        self,
        *,
        port: int = 0,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        token: str = DEFAULT_TOKEN,
        known_ids=(),
        existing_add: str = "refuse",
    ):
        super().__init__(port=port, known_ids=known_ids)
        if existing_add not in EXISTING_ADD_MODES:
            raise ValueError(f"existing_add: one of {EXISTING_ADD_MODES}")
        self.username, self.password, self.token = username, password, token
        self.existing_add = existing_add
        self.reset_state()

    # --- what it holds ------------------------------------------------------------------------
    def reset_state(self) -> None:
        with self.lock:
            self.orders: dict[int, dict] = {}
            self.history: dict[int, list[dict]] = {}

    def state(self) -> dict:
        with self.lock:
            return {
                "orders": {str(k): v for k, v in self.orders.items()},
                "history": {str(k): v for k, v in self.history.items()},
            }

    def is_cancelled(self, order_id: int) -> bool:
        with self.lock:
            return bool(self.orders.get(order_id, {}).get("cancelled"))

    def effects(self, order_id: int) -> list[str]:
        """The actions that changed something for this order, in order: ["Add", "Delete"]."""
        with self.lock:
            return [h["Action"] for h in self.history.get(order_id, []) if h["changed"]]

    def received_count(self, order_id: int) -> int:
        with self.lock:
            return len(self.history.get(order_id, []))

    # --- the API ------------------------------------------------------------------------------
    def error_response(self, status: int, detail: str = "", **extra) -> FakeResponse:
        body = {
            "type": PROBLEM_TYPE,
            "title": TITLES.get(status, "Error"),
            "status": status,
            "detail": detail or TITLES.get(status, "Error"),
            **extra,
        }
        headers = {"Allow": ALLOW}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="api"'
        return FakeResponse.json(
            body,
            status=status,
            headers={"Content-Type": "application/problem+json", **headers},
        )

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return bool(self.token) and hmac.compare_digest(value.strip(), self.token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            expected = f"{self.username}:{self.password}"
            return bool(self.username) and hmac.compare_digest(decoded, expected)
        return False

    def handle_api(self, request: FakeRequest) -> FakeResponse:
        match = PATH.match(request.path)
        if not match:
            return self.error_response(404, "Page not found.")
        refused = self._refused_request(request)
        if refused is not None:
            return refused
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return self.error_response(400, "JSON decoding error")
        if not isinstance(body, dict):
            return self.error_response(400, "The request body must be a JSON object")

        delete = request.method == "DELETE"
        messages = validate(body, delete=delete)
        if messages:
            return self.error_response(422, "Failed Validation", validation_messages=messages)
        if not self.is_known(body["Id"]):
            return self.error_response(404, "Entity not found.")

        action = body.get("Action", "Delete" if delete else "Add")
        if action == "Add" and self._refuses_add(body):
            return self.error_response(
                422, "Failed Validation", validation_messages={"Id": dict(RECORD_FOUND)}
            )
        entry = self._apply(body, action, match.group("cancel_id"))
        if delete:
            return FakeResponse(status=204, headers={"Allow": ALLOW})
        return FakeResponse.json(entry, headers={"Allow": ALLOW})

    def _refused_request(self, request: FakeRequest) -> FakeResponse | None:
        """Laminas' answer to a request it refuses before reading the body, if any."""
        if request.method not in ("PUT", "DELETE"):
            return self.error_response(405, "Method Not Allowed")
        if not self._authorized(request.headers.get("authorization")):
            return self.error_response(401)
        if not accepts_json(request.headers.get("accept")):
            return self.error_response(406, "Cannot honor Accept type specified")
        if request.body:  # Laminas checks the type of a body only, on any method
            content_type = media_type(request.headers.get("content-type", ""))
            if content_type != "application/json":
                return self.error_response(415, "Invalid content-type specified")
        return None

    def _refuses_add(self, body: dict) -> bool:
        """An Add for an order holding another cancellation, when the fake refuses those."""
        with self.lock:
            current = self.orders.get(body["Id"], {})
            return (
                self.existing_add == "refuse"
                and bool(current.get("cancelled"))
                and current["CancelDate"] != body["CancelDate"]
            )

    def _apply(self, body: dict, action: str, cancel_id: str | None) -> dict:
        order_id = body["Id"]
        with self.lock:
            current = self.orders.get(order_id, {"Id": order_id, "cancelled": False})
            if action == "Add":
                changed = not current["cancelled"] or current["CancelDate"] != body["CancelDate"]
                if changed:
                    current = {
                        "Id": order_id,
                        "cancelled": True,
                        "CancelDate": body["CancelDate"],
                        "CancelTimestamp": body["CancelTimestamp"],
                        "CancelReason": body["CancelReason"],
                        "UserId": body["UserId"],
                    }
            else:
                changed = current["cancelled"]
                if changed:
                    current = {**current, "cancelled": False}
            self.orders[order_id] = current
            self.history.setdefault(order_id, []).append(
                {"Action": action, "changed": changed, "cancelId": cancel_id, "body": body}
            )
            return copy.deepcopy(current)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake Callisto on a fixed port.")
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args(argv)
    fake = CallistoFake(port=args.port, known_ids=DEMO_ORDER_IDS)
    print(f"Fake Callisto on {fake.url} (user {fake.username}, token {fake.token})")
    fake.serve_forever()


if __name__ == "__main__":
    main()
