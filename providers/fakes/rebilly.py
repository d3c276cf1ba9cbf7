"""A strict fake of Rebilly's order-cancellation upsert (seed 001, specs/rebilly), on loopback.

    PUT /organizations/{organizationId}/order-cancellations/{id}   201 created, 200 updated
    GET /organizations/{organizationId}/order-cancellations/{id}   200, 404

It checks what the OpenAPI definition says: the `REB-APIKEY` header (401), an Accept that allows
JSON (406), a JSON body (415/400), the id pattern `^[@~\\-.\\w]+$` (≤50), and the body's
required fields, types, enums and lengths; problems are 422 RFC 7807 objects with
`invalidFields: [{field, message}]` (dot notation for nested fields). An `orderId` it doesn't
know is a 422 on `orderId` (every id is known unless `known_ids` is given).

State follows the spec: `completed` is read-only (set by Rebilly when churnTime is reached —
`auto_complete=True` imitates that on the first PUT whose churnTime has passed), a completed or
revoked cancellation can't be changed, and the same PUT twice is an idempotent upsert.
`fake.cancellations[id]` is the resource as it stands; `fake.history[id]` each PUT received.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import re
from datetime import UTC, datetime
from decimal import Decimal

from .faults import ControlledFake
from .server import FakeRequest, FakeResponse

DEFAULT_API_KEY = "rebilly-fake-api-key"
DEFAULT_ORGANIZATION = "org_storno_demo"
PATH = re.compile(r"^/organizations/(?P<org>[^/]+)/order-cancellations/(?P<id>[^/]+)$")
ID_PATTERN = re.compile(r"^[@~\-.\w]+$")
DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
CANCELED_BY = ("merchant", "customer", "rebilly")
REASONS = (
    "did-not-use",
    "did-not-want",
    "missing-features",
    "bugs-or-problems",
    "do-not-remember",
    "risk-warning",
    "contract-expired",
    "too-expensive",
    "other",
    "billing-failure",
)
WRITABLE_STATUSES = ("draft", "confirmed", "revoked")  # completed is set by Rebilly only
CHURN_TIME_POLICIES = (None, "now", "at-next-renewal")
LINE_TYPES = ("debit", "credit")
JSON_TYPES = {"application/json", "application/*", "*/*", "application/problem+json"}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    415: "Unsupported Media Type",
    422: "Validation error",
    429: "Rate Limit Exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not DATE_TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_string(errors, field, value, *, max_length=None, choices=None, required=False):
    if value is None:
        if required:
            errors.append((field, f"{field} is required."))
        return
    if not isinstance(value, str):
        errors.append((field, f"{field} must be a string."))
    elif required and not value:
        errors.append((field, f"{field} must not be empty."))
    elif max_length is not None and len(value) > max_length:
        errors.append((field, f"{field} must be at most {max_length} characters long."))
    elif choices is not None and value not in choices:
        errors.append((field, f"{field} must be one of: {', '.join(choices)}."))


def _check_time(errors, field, value):
    if value is not None and _parse_time(value) is None:
        errors.append(
            (field, f"{field} must be a date-time (RFC 3339), e.g. 2025-01-31T10:00:00Z.")
        )


def validate(body: dict) -> list[tuple[str, str]]:
    """[(field, message)] for every problem in a PUT body; empty when valid."""
    errors: list[tuple[str, str]] = []
    _check_string(errors, "orderId", body.get("orderId"), max_length=50, required=True)
    _check_string(errors, "canceledBy", body.get("canceledBy"), choices=CANCELED_BY)
    _check_string(errors, "reason", body.get("reason"), choices=REASONS)
    _check_string(errors, "description", body.get("description"), max_length=255)
    status = body.get("status")
    if status == "completed":
        errors.append(("status", "status completed is set by Rebilly when churnTime is reached."))
    else:
        _check_string(errors, "status", status, choices=WRITABLE_STATUSES)
    if "prorated" in body and not isinstance(body["prorated"], bool):
        errors.append(("prorated", "prorated must be a boolean."))
    _check_time(errors, "churnTime", body.get("churnTime"))
    if body.get("churnTimePolicy") not in CHURN_TIME_POLICIES:
        errors.append(("churnTimePolicy", "churnTimePolicy must be null, now or at-next-renewal."))

    items = body.get("lineItems")
    if items is None:
        return errors
    if not isinstance(items, list):
        errors.append(("lineItems", "lineItems must be an array."))
        return errors
    for index, item in enumerate(items):
        prefix = f"lineItems.{index}"
        if not isinstance(item, dict):
            errors.append((prefix, f"{prefix} must be an object."))
            continue
        _check_string(errors, f"{prefix}.type", item.get("type"), choices=LINE_TYPES, required=True)
        amount = item.get("unitPriceAmount")
        if amount is None:
            errors.append((f"{prefix}.unitPriceAmount", "unitPriceAmount is required."))
        elif not _is_number(amount):
            errors.append((f"{prefix}.unitPriceAmount", "unitPriceAmount must be a number."))
        currency = item.get("unitPriceCurrency")
        if currency is None:
            errors.append((f"{prefix}.unitPriceCurrency", "unitPriceCurrency is required."))
        elif not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(
                (f"{prefix}.unitPriceCurrency", "unitPriceCurrency must be an ISO 4217 code.")
            )
        quantity = item.get("quantity")
        if quantity is None:
            errors.append((f"{prefix}.quantity", "quantity is required."))
        elif isinstance(quantity, bool) or not isinstance(quantity, int):
            errors.append((f"{prefix}.quantity", "quantity must be an integer."))
        _check_string(errors, f"{prefix}.description", item.get("description"), max_length=1000)
        _check_time(errors, f"{prefix}.periodStartTime", item.get("periodStartTime"))
        _check_time(errors, f"{prefix}.periodEndTime", item.get("periodEndTime"))
    return errors


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invoice_id(*parts: str) -> str:
    return "in_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:26].upper()


class RebillyFake(ControlledFake):
    def __init__(
        self,
        *,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        organization_id: str = DEFAULT_ORGANIZATION,
        known_ids=None,
        auto_complete: bool = False,
    ):
        super().__init__(port=port, known_ids=known_ids)
        self.api_key = api_key
        self.organization_id = organization_id
        self.auto_complete = auto_complete
        self.reset_state()

    @property
    def base_url(self) -> str:
        """What REBILLY_BASE_URL should be to reach this fake."""
        return f"{self.url}/organizations/{self.organization_id}"

    # --- what it holds ------------------------------------------------------------------------
    def reset_state(self) -> None:
        with self.lock:
            self.cancellations: dict[str, dict] = {}
            self.history: dict[str, list[dict]] = {}

    def state(self) -> dict:
        with self.lock:
            return {"cancellations": self.cancellations, "history": self.history}

    def effects(self, cancellation_id: str) -> list[str]:
        """What each PUT did to the resource: "created", "updated" or "unchanged"."""
        with self.lock:
            return [h["effect"] for h in self.history.get(cancellation_id, [])]

    # --- the API ------------------------------------------------------------------------------
    def error_response(self, status: int, detail: str = "", invalid_fields=None) -> FakeResponse:
        body = {
            "type": "about:blank",
            "title": TITLES.get(status, "Error"),
            "status": status,
            "detail": detail or TITLES.get(status, "Error"),
        }
        if invalid_fields is not None:
            body["invalidFields"] = [{"field": f, "message": m} for f, m in invalid_fields]
        headers = {"Content-Type": "application/problem+json"}
        if status == 429:
            headers["X-RateLimit-Retry-After"] = str(int(datetime.now(UTC).timestamp()) + 60)
        return FakeResponse.json(body, status=status, headers=headers)

    def handle_api(self, request: FakeRequest) -> FakeResponse:
        match = PATH.match(request.path)
        if not match or match.group("org") != self.organization_id:
            return self.error_response(404, "Not found.")
        key = request.headers.get("reb-apikey", "")
        if not (key and hmac.compare_digest(key, self.api_key)):
            return self.error_response(401, "Invalid authentication credentials.")
        accept = request.headers.get("accept")
        if accept and not any(_media_type(p) in JSON_TYPES for p in accept.split(",")):
            return self.error_response(406, "Only application/json is available.")
        cancellation_id = match.group("id")
        if request.method == "GET":
            with self.lock:
                found = copy.deepcopy(self.cancellations.get(cancellation_id))
            if found is None:
                return self.error_response(404, f"Order cancellation {cancellation_id} not found.")
            return FakeResponse.json(found)
        if request.method != "PUT":
            response = self.error_response(405, f"{request.method} is not allowed here.")
            response.headers["Allow"] = "GET, PUT"
            return response
        if _media_type(request.headers.get("content-type", "")) != "application/json":
            return self.error_response(415, "Send application/json.")
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error_response(400, "The request body must be a JSON object.")

        errors = []
        if len(cancellation_id) > 50 or not ID_PATTERN.match(cancellation_id):
            errors.append(("id", "id must match ^[@~\\-.\\w]+$ and be at most 50 characters."))
        errors += validate(body)
        if not errors and not self.is_known(body["orderId"]):
            errors.append(("orderId", f"Order {body['orderId']} not found."))
        if errors:
            return self.error_response(422, "Invalid data sent.", errors)
        return self._upsert(cancellation_id, body, request)

    def _upsert(self, cancellation_id: str, body: dict, request: FakeRequest) -> FakeResponse:
        now = datetime.now(UTC)
        with self.lock:
            current = self.cancellations.get(cancellation_id)
            wanted = self._resource(cancellation_id, body, current, now, request)
            if current is not None:
                problem = self._refuse_change(current, wanted)
                if problem:
                    return self.error_response(422, "Invalid data sent.", [problem])
            if current is None:
                effect = "created"
            elif _comparable(current) == _comparable(wanted):
                effect, wanted = "unchanged", current
            else:
                effect = "updated"
                wanted["updatedTime"] = _stamp(now)
            self.cancellations[cancellation_id] = wanted
            self.history.setdefault(cancellation_id, []).append({"effect": effect, "body": body})
            resource = copy.deepcopy(wanted)
        if effect == "created":
            return FakeResponse.json(
                resource, status=201, headers={"Location": resource["_links"][0]["href"]}
            )
        return FakeResponse.json(resource)

    def _refuse_change(self, current: dict, wanted: dict) -> tuple[str, str] | None:
        if wanted["orderId"] != current["orderId"]:
            return ("orderId", "orderId of an existing cancellation can't be changed.")
        if current["status"] == "completed" and _comparable(current) != _comparable(wanted):
            return ("status", "A completed cancellation may not be changed.")
        if current["status"] == "revoked" and wanted["status"] != "revoked":
            return ("status", "A revoked cancellation can't be confirmed again.")
        return None

    def _resource(self, cancellation_id, body, current, now, request) -> dict:
        status = body.get("status", "confirmed")
        policy = body.get("churnTimePolicy")
        churn = _parse_time(body.get("churnTime")) if body.get("churnTime") else None
        if policy == "now" or churn is None:
            churn = now if current is None else _parse_time(current["churnTime"])
        due = self.auto_complete and churn <= now
        was_completed = current is not None and current["status"] == "completed"
        if status == "confirmed" and (due or was_completed):
            status = "completed"
        items = body.get("lineItems") or []
        subtotal = sum(
            (
                Decimal(str(i["unitPriceAmount"]))
                * i["quantity"]
                * (1 if i["type"] == "debit" else -1)
                for i in items
            ),
            Decimal(0),
        )
        prorated = body.get("prorated", False)
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        return {
            "id": cancellation_id,
            "orderId": body["orderId"],
            "canceledBy": body.get("canceledBy", "customer"),
            "reason": body.get("reason", "other"),
            "description": body.get("description", ""),
            "prorated": prorated,
            "status": status,
            "churnTime": _stamp(churn),
            "churnTimePolicy": policy,
            "canceledTime": (current or {}).get("canceledTime")
            or (_stamp(now) if status != "draft" else None),
            "proratedInvoiceId": _invoice_id("prorated", cancellation_id) if prorated else None,
            "appliedInvoiceId": _invoice_id("applied", cancellation_id) if items else None,
            "lineItems": copy.deepcopy(items),
            "lineItemSubtotal": {
                "amount": float(subtotal),
                "currency": items[0]["unitPriceCurrency"] if items else None,
            },
            "createdTime": (current or {}).get("createdTime") or _stamp(now),
            "updatedTime": (current or {}).get("updatedTime") or _stamp(now),
            "_links": [
                {
                    "rel": "self",
                    "href": f"http://{host}/organizations/{self.organization_id}"
                    f"/order-cancellations/{cancellation_id}",
                }
            ],
        }


def _comparable(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("updatedTime", "canceledTime")}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake Rebilly on a fixed port.")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--auto-complete", action="store_true")
    args = parser.parse_args(argv)
    fake = RebillyFake(port=args.port, auto_complete=args.auto_complete)
    print(f"Fake Rebilly on {fake.base_url} (REB-APIKEY {fake.api_key})")
    fake.serve_forever()


if __name__ == "__main__":
    main()
