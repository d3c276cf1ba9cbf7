"""A strict fake of the billing engine's cancelServiceItems (seed 002, specs/billing), on loopback.

    POST {prefix}/BillingBFBean/cancelServiceItems      prefix "/billing/rest" by default

It checks HTTP Basic credentials (401 with `WWW-Authenticate: Basic`), an Accept that allows JSON
(406), a JSON body (415; 400 when it is not an object), and the request DTO's limits:
clientSystemId ≤ 20 (required), clientIdentCode ≤ 10, userName, resultLanguageIsoCodes
(2-letter codes), reasonOfReversal ≤ 250, items 1–50 of {itemId ≤ 50}, no other fields (400,
`{"status", "detail", "errors": [{"field", "message"}]}`).

Then it behaves like the engine: every item is processed in one transaction, all or nothing.
An item it doesn't know, one cancelled already, one listed twice, or one with a settlement item
that is settled or exported is an ERROR, and then nothing changes (`hasErrors` true). Otherwise
each service item is cancelled and its settlement items removed. Texts come in the requested
languages it speaks (en, de), falling back to the next and to English.

Service items: `fake.add_service_item("17", ["open", "settled"])`. With `known_ids=None` (the
default) an item never seen is an open service item with one open settlement item; give
`known_ids` to make unknown ids errors. Faults from faults.ControlledFake (fail, delay, drop),
plus `fake.retryable_next(n)`: answer hasErrors with hasOnlyRetryableErrors (a locked record).

    POST /_fake/service-items  {"itemId": "17", "settlementStates": ["open", "settled"]}
    POST /_fake/faults         {"kind": "retryable", "count": 1}  (and fail / delay / drop)

Run it for a demo: `python -m providers.fakes.billing --port 8104`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac

from .faults import ControlledFake
from .server import FakeRequest, FakeResponse

DEFAULT_USERNAME = "billing-fake"
DEFAULT_PASSWORD = "billing-fake-password"  # noqa: S105 - a fake's well-known test credential
DEFAULT_PREFIX = "/billing/rest"
OPERATION = "/BillingBFBean/cancelServiceItems"
JSON_TYPES = {"application/json", "application/*", "*/*"}
FIELDS = {
    "clientSystemId",
    "clientIdentCode",
    "userName",
    "resultLanguageIsoCodes",
    "reasonOfReversal",
    "items",
}
SETTLEMENT_STATES = ("open", "settled", "exported")

TEXTS = {
    "SERVICE_ITEM_NOT_FOUND": {
        "en": "Service item {item} was not found.",
        "de": "Leistungsposition {item} wurde nicht gefunden.",
    },
    "ALREADY_CANCELLED": {
        "en": "Service item {item} is already cancelled.",
        "de": "Leistungsposition {item} ist bereits storniert.",
    },
    "ITEM_RETRANSMISSION_ERROR": {
        "en": "Service item {item} was sent more than once.",
        "de": "Leistungsposition {item} wurde mehrfach übermittelt.",
    },
    "SETTLEMENT_ITEM_SETTLED": {
        "en": "Settlement item {settlement} of service item {item} is already settled.",
        "de": "Abrechnungsposition {settlement} von {item} ist bereits abgerechnet.",
    },
    "SETTLEMENT_ITEM_EXPORTED": {
        "en": "Settlement item {settlement} of service item {item} is already exported.",
        "de": "Abrechnungsposition {settlement} von {item} ist bereits exportiert.",
    },
    "NOTHING_CANCELLED": {
        "en": "Nothing was cancelled.",
        "de": "Es wurde nichts storniert.",
    },
    "NOT_PROCESSED": {
        "en": "Service item {item} was not processed because of other errors.",
        "de": "Leistungsposition {item} wurde wegen anderer Fehler nicht verarbeitet.",
    },
    "RECORD_LOCKED": {
        "en": "The service items are locked by another process; try again later.",
        "de": "Die Leistungspositionen sind gesperrt; bitte später erneut versuchen.",
    },
    "SERVICE_ITEM_CANCELLED": {
        "en": "Service item {item} cancelled; {count} settlement items removed.",
        "de": "Leistungsposition {item} storniert; {count} Abrechnungspositionen entfernt.",
    },
}


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    return any(_media_type(part) in JSON_TYPES for part in accept.split(","))


def validate(body: dict) -> list[dict]:
    """The request DTO's limits, as [{field, message}]."""
    errors = []

    def error(field, message):
        errors.append({"field": field, "message": message})

    for name in sorted(set(body) - FIELDS):
        error(name, "Unknown field.")

    def string(name, max_length=None, required=False):
        value = body.get(name)
        if value is None:
            if required:
                error(name, "Required.")
            return
        if not isinstance(value, str):
            error(name, "Must be a string.")
        elif max_length is not None and len(value) > max_length:
            error(name, f"Maximum length: {max_length}.")

    string("clientSystemId", 20, required=True)
    string("clientIdentCode", 10)
    string("userName")
    string("reasonOfReversal", 250)
    languages = body.get("resultLanguageIsoCodes")
    if languages is not None:
        if not isinstance(languages, list):
            error("resultLanguageIsoCodes", "Must be an array.")
        else:
            for index, code in enumerate(languages):
                if not (isinstance(code, str) and len(code) == 2 and code.isalpha()):
                    error(f"resultLanguageIsoCodes.{index}", "A 2-letter ISO code.")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        error("items", "At least one item.")
    elif len(items) > 50:
        error("items", "At most 50 items.")
    else:
        for index, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != {"itemId"}:
                error(f"items.{index}", "An object with itemId only.")
            elif not isinstance(item["itemId"], str) or not 0 < len(item["itemId"]) <= 50:
                error(f"items.{index}.itemId", "A string of 1 to 50 characters.")
    return errors


class BillingFake(ControlledFake):
    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        prefix: str = DEFAULT_PREFIX,
        known_ids=None,
        port: int = 0,
    ):
        super().__init__(port=port, known_ids=known_ids)
        self.username = username
        self.password = password
        self.prefix = prefix.rstrip("/")
        self.reset_state()

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    # --- state --------------------------------------------------------------------------------
    def reset_state(self) -> None:
        with self.lock:
            # itemId → {"cancelled": bool, "settlements": [{"id", "state", "removed"}]}
            self.service_items: dict[str, dict] = {}
            self.calls: list[dict] = []  # the cancelServiceItems bodies that passed validation
            self._retryable = 0

    def state(self) -> dict:
        return {"serviceItems": copy.deepcopy(self.service_items)}

    def add_service_item(self, item_id, settlement_states=("open",)) -> dict:
        item_id = str(item_id)
        with self.lock:
            self.service_items[item_id] = {
                "cancelled": False,
                "settlements": [
                    {"id": f"{item_id}-{n}", "state": state, "removed": False}
                    for n, state in enumerate(settlement_states, start=1)
                ],
            }
            if self.known_ids is not None:
                self.known_ids.add(item_id)
            return self.service_items[item_id]

    def retryable_next(self, count: int = 1) -> None:
        with self.lock:
            self._retryable += count

    def _item(self, item_id: str) -> dict | None:
        if item_id not in self.service_items and self.known_ids is None:
            self.add_service_item(item_id)
        return self.service_items.get(item_id)

    # --- HTTP ---------------------------------------------------------------------------------
    def error_response(self, status: int, detail: str = "", errors=None) -> FakeResponse:
        body = {"status": status, "detail": detail}
        if errors is not None:
            body["errors"] = errors
        headers = {"WWW-Authenticate": 'Basic realm="billing"'} if status == 401 else {}
        return FakeResponse.json(body, status=status, headers=headers)

    def _control(self, request: FakeRequest) -> FakeResponse:
        action = request.path.strip("/").split("/", 1)[-1]
        if request.method == "POST" and action in ("service-items", "faults"):
            try:
                data = request.json() or {}
            except ValueError:
                return FakeResponse.json({"detail": "Send JSON."}, status=400)
            if action == "service-items":
                states = data.get("settlementStates", ["open"])
                if not isinstance(data.get("itemId"), str) or any(
                    s not in SETTLEMENT_STATES for s in states
                ):
                    return FakeResponse.json(
                        {"detail": "itemId: a string; settlementStates: open/settled/exported."},
                        status=400,
                    )
                return FakeResponse.json(self.add_service_item(data["itemId"], states))
            if data.get("kind") == "retryable":
                count = data.get("count", 1)
                if not isinstance(count, int) or count < 1:
                    return FakeResponse.json({"detail": "count: a whole number ≥ 1."}, status=400)
                self.retryable_next(count)
                return FakeResponse.json({"ok": True})
        return super()._control(request)

    def _authorized(self, request: FakeRequest) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _sep, password = decoded.partition(":")
        return hmac.compare_digest(username, self.username) and hmac.compare_digest(
            password, self.password
        )

    def handle_api(self, request: FakeRequest) -> FakeResponse:
        if request.path != self.prefix + OPERATION:
            return self.error_response(404, "Not found.")
        if request.method != "POST":
            return self.error_response(405, "Use POST.")
        if not self._authorized(request):
            return self.error_response(401, "Authentication required.")
        if not _accepts_json(request.headers.get("accept")):
            return self.error_response(406, "This operation answers application/json.")
        if _media_type(request.headers.get("content-type", "")) != "application/json":
            return self.error_response(415, "Send application/json.")
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "The body is not JSON.")
        if not isinstance(body, dict):
            return self.error_response(400, "The body must be an object.")
        errors = validate(body)
        if errors:
            return self.error_response(400, "Invalid request.", errors)
        with self.lock:
            self.calls.append(copy.deepcopy(body))
            return FakeResponse.json(self._cancel(body))

    # --- the engine ---------------------------------------------------------------------------
    def _cancel(self, body: dict) -> dict:
        languages = _languages(body.get("resultLanguageIsoCodes"))

        def message(kind, code, indentation=0, **params):
            return {
                "messageType": kind,
                "messageIdentCode": code,
                "messageTexts": [
                    {"languageISOCode": lang, "text": TEXTS[code][lang].format(**params)}
                    for lang in languages
                ],
                "indentationLevel": indentation,
            }

        item_ids = [entry["itemId"] for entry in body["items"]]
        if self._retryable:
            self._retryable -= 1
            return _response(
                [message("ERROR", "RECORD_LOCKED")],
                [(item_id, []) for item_id in item_ids],
                retryable=True,
            )
        problems: list[tuple[str, list]] = []
        seen = set()
        for item_id in item_ids:
            found: list = []
            problems.append((item_id, found))
            if item_id in seen:
                found.append(message("ERROR", "ITEM_RETRANSMISSION_ERROR", item=item_id))
                continue
            seen.add(item_id)
            item = self._item(item_id)
            if item is None:
                found.append(message("ERROR", "SERVICE_ITEM_NOT_FOUND", item=item_id))
            elif item["cancelled"]:
                found.append(message("ERROR", "ALREADY_CANCELLED", item=item_id))
            else:
                for settlement in item["settlements"]:
                    if not settlement["removed"] and settlement["state"] != "open":
                        code = f"SETTLEMENT_ITEM_{settlement['state'].upper()}"
                        found.append(
                            message("ERROR", code, item=item_id, settlement=settlement["id"])
                        )
        if any(found for _item_id, found in problems):
            for item_id, found in problems:
                if not found:
                    found.append(message("INFO", "NOT_PROCESSED", 1, item=item_id))
            return _response([message("ERROR", "NOTHING_CANCELLED")], problems)
        done = []
        for item_id in item_ids:
            item = self.service_items[item_id]
            item["cancelled"] = True
            removed = [s for s in item["settlements"] if not s["removed"]]
            for settlement in removed:
                settlement["removed"] = True
            done.append(
                (
                    item_id,
                    [message("INFO", "SERVICE_ITEM_CANCELLED", item=item_id, count=len(removed))],
                )
            )
        return _response([], done)


def _languages(requested) -> list[str]:
    chosen = [code.lower() for code in requested or [] if code.lower() in ("en", "de")]
    return list(dict.fromkeys(chosen)) or ["en"]


def _response(messages, per_item: list[tuple[str, list]], *, retryable: bool = False) -> dict:
    def has(found, kind):
        return any(m["messageType"] == kind for m in found)

    every = messages + [m for _item_id, found in per_item for m in found]
    return {
        "hasErrors": has(every, "ERROR"),
        "hasOnlyRetryableErrors": retryable,
        "hasWarnings": has(every, "WARNING"),
        "messages": messages,
        "itemResponses": [
            {
                "itemId": item_id,
                "hasErrors": has(found, "ERROR"),
                "hasWarnings": has(found, "WARNING"),
                "messages": found,
            }
            for item_id, found in per_item
        ],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake billing engine on a fixed port.")
    parser.add_argument("--port", type=int, default=8104)
    args = parser.parse_args(argv)
    fake = BillingFake(port=args.port)
    print(f"Fake billing engine on {fake.base_url} (Basic {fake.username}:{fake.password})")
    fake.serve_forever()


if __name__ == "__main__":
    main()
