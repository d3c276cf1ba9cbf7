"""A strict fake of AEB's cancelServiceItems (seed 002), on loopback, answering only as the
contract says: docs/contracts/billing/aeb-lcm-cancelServiceItems.openapi-subset.json (the
operation, BReverseServiceItemsRequestDTO in, BReverseServiceItemsResponseDTO out). What the
contract leaves open is written down in docs/contracts/billing/GUESSES.md.

    POST {prefix}/BillingBFBean/cancelServiceItems      prefix "/billing/rest" by default

Before the engine looks at anything: HTTP Basic (401 with `WWW-Authenticate: Basic`), an Accept
that allows JSON (406), a JSON body (415), and the body against the request DTO (the OpenAPI
schema, plus the lengths its descriptions give and no keys it doesn't define), else 400 in the
shape of AEB's problem object (`AebProblem`: status, title, detail, errors[{code, message, field
as a JSON pointer, value}]).

Then it behaves like the engine, all or nothing, answering 200 with the response DTO:
- `userName` must be a user it knows (AEB: an unknown user runs with the basic I_EVERYONE role,
  which may not cancel), and `clientIdentCode` its client (else INVALID_DATA_ERROR, "one of the
  ident codes sent was not recognized"): a request-level ERROR, nothing done;
- an itemId it doesn't know is an item ERROR ITEM_NOT_FOUND_ERROR; one cancelled already, or
  listed twice, ITEM_RETRANSMISSION_ERROR (the documented code); a settled or exported
  settlement item is an item ERROR with no code (the contract documents none);
- any ERROR: nothing changes, `hasErrors` true. Otherwise each service item is cancelled and its
  settlement items removed. Texts come in the requested languages it speaks (en, de), falling
  back to the next and to English.

Service items must be known: `fake.add_service_item("SI-17", ["open", "settled"])`, or
`POST /_fake/service-items {"itemId": "SI-17", "settlementStates": ["open"]}`. Faults from
faults.ControlledFake (fail, delay, drop), plus `fake.retryable_next(n)` (or
`POST /_fake/faults {"kind": "retryable", "count": 1}`): every item LOCK_ERROR with
`hasOnlyRetryableErrors`.

Run it for a demo: `python -m providers.fakes.billing --port 8104`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac

from providers.contracts import openapi_schema, schema_errors

from .faults import ControlledFake
from .server import FakeRequest, FakeResponse

CONTRACT = "billing/aeb-lcm-cancelServiceItems.openapi-subset.json"
DEFAULT_USERNAME = "billing-fake"
DEFAULT_PASSWORD = "billing-fake-password"  # noqa: S105 - a fake's well-known test credential
DEFAULT_USER_NAME = "STORNO_API"  # the technical user requests run as (userName)
DEFAULT_CLIENT = "STORNO"  # the client identification code it serves (clientIdentCode)
DEFAULT_PREFIX = "/billing/rest"
OPERATION = "/BillingBFBean/cancelServiceItems"
JSON_TYPES = {"application/json", "application/*", "*/*"}
# The lengths the request DTO's descriptions give ("Maximum length: 20", "length=250").
MAX_LENGTHS = {"clientSystemId": 20, "clientIdentCode": 10, "reasonOfReversal": 250}
ITEM_ID_MAX_LENGTH = 50
SETTLEMENT_STATES = ("open", "settled", "exported")

TEXTS = {
    "unknown_user": {
        "en": "User {user} is not known; the role I_EVERYONE may not cancel service items.",
        "de": "Benutzer {user} ist unbekannt; die Rolle I_EVERYONE darf nicht stornieren.",
    },
    "unknown_client": {
        "en": "Client {client} was not recognized.",
        "de": "Mandant {client} wurde nicht erkannt.",
    },
    "not_found": {
        "en": "Service item {item} was not found.",
        "de": "Leistungsposition {item} wurde nicht gefunden.",
    },
    "retransmission": {
        "en": "Retransmission of service item {item} was detected.",
        "de": "Erneute Übertragung der Leistungsposition {item} erkannt.",
    },
    "settled": {
        "en": "Settlement item {settlement} of service item {item} can no longer be removed.",
        "de": "Abrechnungsposition {settlement} von {item} kann nicht mehr entfernt werden.",
    },
    "locked": {
        "en": "Service item {item} is locked by another process.",
        "de": "Leistungsposition {item} ist durch einen anderen Vorgang gesperrt.",
    },
}


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    return any(_media_type(part) in JSON_TYPES for part in accept.split(","))


def request_problems(body) -> list[dict]:
    """Where the body breaks the request DTO, as AebProblemError objects."""
    schema = openapi_schema(CONTRACT, "BReverseServiceItemsRequestDTO")
    problems = [
        {"code": "INVALID_VALUE", "message": text, "field": _pointer(path)}
        for path, _sep, text in (e.partition(": ") for e in schema_errors(body, schema))
    ]
    if problems or not isinstance(body, dict):
        return problems
    known = set(schema["properties"])
    problems += [
        {"code": "UNKNOWN_FIELD", "message": "Unknown field.", "field": f"/{name}"}
        for name in body
        if name not in known
    ]
    for name, limit in MAX_LENGTHS.items():
        if len(body.get(name) or "") > limit:
            problems.append(_too_long(f"/{name}", body[name], limit))
    item_keys = set(openapi_schema(CONTRACT, "BServiceItemReferenceDTO")["properties"])
    for index, item in enumerate(body.get("items") or []):
        problems += [
            {"code": "UNKNOWN_FIELD", "message": "Unknown field.", "field": f"/items/{index}/{k}"}
            for k in item
            if k not in item_keys
        ]
        if len(item.get("itemId") or "") > ITEM_ID_MAX_LENGTH:
            problems.append(_too_long(f"/items/{index}/itemId", item["itemId"], 50))
    return problems


def _pointer(dotted: str) -> str:
    """schema_errors' "items.0.itemId" as a JSON pointer, the way AebProblemError names fields."""
    return "" if dotted == "(body)" else "/" + dotted.replace(".", "/")


def _too_long(field: str, value: str, limit: int) -> dict:
    return {
        "code": "INVALID_VALUE",
        "message": f"Maximum length: {limit}.",
        "field": field,
        "value": value,
    }


class BillingFake(ControlledFake):
    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        users=(DEFAULT_USER_NAME,),
        client_ident_code: str = DEFAULT_CLIENT,
        prefix: str = DEFAULT_PREFIX,
        port: int = 0,
    ):
        super().__init__(port=port)
        self.username = username
        self.password = password
        self.users = set(users)
        self.client_ident_code = client_ident_code
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
            self.calls: list[dict] = []  # the bodies that passed validation
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
            return self.service_items[item_id]

    def retryable_next(self, count: int = 1) -> None:
        with self.lock:
            self._retryable += count

    # --- HTTP ---------------------------------------------------------------------------------
    def error_response(self, status: int, detail: str = "", errors=None) -> FakeResponse:
        """AEB's problem object (AebProblem in the full LCM specification)."""
        body = {"status": status, "title": _TITLES.get(status, "Error"), "detail": detail}
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
        problems = request_problems(body)
        if problems:
            return self.error_response(400, "Invalid request.", problems)
        with self.lock:
            self.calls.append(copy.deepcopy(body))
            return FakeResponse.json(self._cancel(body))

    # --- the engine ---------------------------------------------------------------------------
    def _cancel(self, body: dict) -> dict:
        texts = _Texts(body.get("resultLanguageIsoCodes"))
        item_ids = [entry.get("itemId") or "" for entry in body.get("items") or []]
        if body.get("userName") not in self.users:
            refusal = texts.message("ERROR", "", "unknown_user", user=body.get("userName"))
            return _response([refusal], [(item_id, []) for item_id in item_ids])
        if body.get("clientIdentCode") != self.client_ident_code:
            refusal = texts.message(
                "ERROR", "INVALID_DATA_ERROR", "unknown_client", client=body.get("clientIdentCode")
            )
            return _response([refusal], [(item_id, []) for item_id in item_ids])
        if self._retryable:
            self._retryable -= 1
            locked = [
                (i, [texts.message("ERROR", "LOCK_ERROR", "locked", item=i)]) for i in item_ids
            ]
            return _response([], locked, retryable=True)
        per_item = [(item_id, []) for item_id in item_ids]
        seen = set()
        for item_id, found in per_item:
            item = self.service_items.get(item_id)
            if item_id in seen or (item is not None and item["cancelled"]):
                found.append(
                    texts.message(
                        "ERROR", "ITEM_RETRANSMISSION_ERROR", "retransmission", item=item_id
                    )
                )
            elif item is None:
                found.append(
                    texts.message("ERROR", "ITEM_NOT_FOUND_ERROR", "not_found", item=item_id)
                )
            else:
                found += [
                    texts.message("ERROR", "", "settled", item=item_id, settlement=s["id"])
                    for s in item["settlements"]
                    if not s["removed"] and s["state"] != "open"
                ]
            seen.add(item_id)
        if any(found for _item_id, found in per_item):
            return _response([], per_item)  # all or nothing: nothing was persisted
        for item_id in item_ids:
            item = self.service_items[item_id]
            item["cancelled"] = True
            for settlement in item["settlements"]:
                settlement["removed"] = True
        return _response([], per_item)


class _Texts:
    """Messages in the requested languages the fake speaks, in order; English otherwise."""

    def __init__(self, requested):
        chosen = [c.lower() for c in requested or [] if c.lower() in ("en", "de")]
        self.languages = list(dict.fromkeys(chosen)) or ["en"]

    def message(self, kind: str, code: str, text: str, **params) -> dict:
        message = {
            "messageType": kind,
            "messageTexts": [
                {"languageISOCode": lang, "text": TEXTS[text][lang].format(**params)}
                for lang in self.languages
            ],
            "indentationLevel": 0,
        }
        if code:  # "Optional identification code": absent where AEB documents none
            message["messageIdentCode"] = code
        return message


_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 406: "Not Acceptable"}


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
    parser.add_argument("--service-item", action="append", default=[], help="an itemId it knows")
    args = parser.parse_args(argv)
    fake = BillingFake(port=args.port)
    for item_id in args.service_item:
        fake.add_service_item(item_id)
    print(f"Fake billing engine on {fake.base_url} (Basic {fake.username}:{fake.password})")
    fake.serve_forever()


if __name__ == "__main__":
    main()
