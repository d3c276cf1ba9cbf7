"""What the fake Rebilly holds, and Rebilly's rules for changing it (docs/contracts/rebilly/).

    orders          the order ids Rebilly knows (ControlledFake.known_ids) and their renewal
    cancellations   OrderCancellation resources (OrderCancellation.resolved.json)
    reactivations   OrderReactivation resources (OrderReactivation.resolved.json)

Time moves on its own: a `confirmed` cancellation is `completed` once its churnTime has passed
("a read-only status that is set when the churnTime is reached"), settled whenever it is read
or changed. "The cancellation may not be changed or deleted when the status is completed."
A reactivation of an order revokes its `confirmed` cancellation (order-reactivations.paths
.resolved.json, POST 201) or, after completion, makes the order active again.
Everything Rebilly's documents leave open is in docs/contracts/rebilly/GUESSES.md.
"""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal

from providers.contracts import schema, schema_errors

CANCELLATION_SCHEMA = "rebilly/OrderCancellation.resolved.json"
REACTIVATION_SCHEMA = "rebilly/OrderReactivation.resolved.json"
DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


class Refused(Exception):
    """Rebilly refuses the request: `status` with a detail and, for 422, invalid fields."""

    def __init__(self, status: int, detail: str, invalid_fields=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.invalid_fields = invalid_fields


# --- bodies -------------------------------------------------------------------------------------
def parse_time(value) -> datetime | None:
    if not isinstance(value, str) or not DATE_TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invalid_fields(body, schema_file: str) -> list[tuple[str, str]]:
    """[(field, message)] for everything in `body` the schema forbids, field in dot notation
    (InvalidFields.yaml). The schema's date-time formats are checked here too, as jsonschema
    checks them only where rfc3339-validator is installed."""
    json_schema = schema(schema_file)
    problems = []
    for line in schema_errors(body, json_schema):
        field, _, message = line.partition(": ")
        required = REQUIRED.match(message)
        if required:
            name = required.group("name")
            field = name if field == "(body)" else f"{field}.{name}"
        problems.append((field, message))
    flagged = {field for field, _message in problems}
    return problems + [p for p in _date_time_problems(body, json_schema, "") if p[0] not in flagged]


def _date_time_problems(value, node: dict, path: str):
    if node.get("format") == "date-time" and isinstance(value, str) and not parse_time(value):
        yield (path, f"{value!r} is not a date-time (RFC 3339), e.g. 2025-01-31T10:00:00Z.")
    if isinstance(value, dict):
        for name, child in (node.get("properties") or {}).items():
            if name in value:
                yield from _date_time_problems(value[name], child, f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from _date_time_problems(item, node["items"], f"{path}.{index}")


def cancellation_problems(body: dict) -> list[tuple[str, str]]:
    """The schema, plus what its descriptions say: `completed` is read-only, currencies are
    ISO 4217 codes."""
    problems = invalid_fields(body, CANCELLATION_SCHEMA)
    if body.get("status") == "completed":
        problems.append(
            ("status", "completed is a read-only status, set when churnTime is reached.")
        )
    for index, item in enumerate(body.get("lineItems") or []):
        currency = item.get("unitPriceCurrency") if isinstance(item, dict) else None
        if isinstance(currency, str) and len(currency) == 3 and not CURRENCY.match(currency):
            field = f"lineItems.{index}.unitPriceCurrency"
            problems.append((field, f"{currency!r} is not an ISO 4217 currency code."))
    return problems


# --- time ---------------------------------------------------------------------------------------
def next_month(moment: datetime) -> datetime:
    """The first of the next month, 00:00 UTC: the fake's renewal time for an order."""
    moment = moment.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def settle(resource: dict, now: datetime, *, auto_complete: bool) -> dict:
    """A confirmed cancellation whose churnTime has passed is completed (in place)."""
    churn = parse_time(resource["churnTime"])
    if auto_complete and resource["status"] == "confirmed" and churn <= now:
        resource["status"] = "completed"
        resource["updatedTime"] = resource["churnTime"]
    return resource


# --- cancellations ------------------------------------------------------------------------------
def cancellation_resource(cancellation_id, body, current, *, now, renewal, self_href) -> dict:
    """The resource a PUT asks for. Read-only fields in the body are ignored."""
    status = body.get("status", "confirmed")
    policy = body.get("churnTimePolicy")
    if policy == "at-next-renewal":
        churn = renewal
    elif policy == "now" or not body.get("churnTime"):
        churn = now if current is None else parse_time(current["churnTime"])
    else:
        churn = parse_time(body["churnTime"])
    if status == "confirmed" and current is not None and current["status"] == "completed":
        status = "completed"  # the same confirmed body again: nothing to change
    items = copy.deepcopy(body.get("lineItems") or [])
    prorated = body.get("prorated", False)
    resource = {
        "id": cancellation_id,
        "orderId": body["orderId"],
        "canceledBy": body.get("canceledBy", "customer"),
        "reason": body.get("reason", "other"),
        "description": body.get("description", ""),
        "prorated": prorated,
        "status": status,
        "churnTime": stamp(churn),
        "churnTimePolicy": policy,
        "canceledTime": (current or {}).get("canceledTime")
        or (stamp(now) if status != "draft" else None),
        "proratedInvoiceId": _invoice_id("prorated", cancellation_id) if prorated else None,
        "appliedInvoiceId": _invoice_id("applied", cancellation_id) if items else None,
        "lineItems": items,
        "lineItemSubtotal": _subtotal(items),
        "createdTime": (current or {}).get("createdTime") or stamp(now),
        "updatedTime": (current or {}).get("updatedTime") or stamp(now),
        "_links": [{"rel": "self", "href": self_href}],
    }
    return resource


def refuse_change(current: dict, wanted: dict) -> None:
    """Raise Refused (422: the only refusal PUT documents) for a change Rebilly doesn't allow."""
    if wanted["orderId"] != current["orderId"]:
        raise Refused(422, "Invalid data sent.", [("orderId", "orderId can't be changed.")])
    if current["status"] == "completed" and comparable(current) != comparable(wanted):
        problem = ("status", "The cancellation may not be changed when the status is completed.")
        raise Refused(422, "Invalid data sent.", [problem])
    if current["status"] == "revoked" and wanted["status"] != "revoked":
        problem = ("status", "A revoked cancellation can't be confirmed again.")
        raise Refused(422, "Invalid data sent.", [problem])


def comparable(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("updatedTime", "canceledTime")}


def _subtotal(items: list[dict]) -> dict:
    amount = sum(
        (
            Decimal(str(i["unitPriceAmount"])) * i["quantity"] * (1 if i["type"] == "debit" else -1)
            for i in items
        ),
        Decimal(0),
    )
    subtotal = {"amount": float(amount)}
    if items:
        subtotal["currency"] = items[0]["unitPriceCurrency"]
    return subtotal


def _invoice_id(*parts: str) -> str:
    return "in_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:26].upper()


# --- reactivations ------------------------------------------------------------------------------
def cancellation_to_undo(cancellations, reactivations, order_id: str) -> dict | None:
    """The order's latest confirmed or completed cancellation that no reactivation has undone
    yet; None when the order is active with nothing to undo."""
    undone = {r["cancellationId"] for r in reactivations if r.get("cancellationId")}
    live = [
        c
        for c in cancellations
        if c["orderId"] == order_id
        and c["status"] in ("confirmed", "completed")
        and c["id"] not in undone
    ]
    return max(live, key=lambda c: (c["churnTime"], c["createdTime"]), default=None)


def reactivation_resource(reactivation_id, body, cancellation, *, now, self_href) -> dict:
    """The resource a POST creates; the write-only effectiveTime and paymentInstrumentId are
    not shown."""
    effective = parse_time(body.get("effectiveTime")) or now
    renewal = body.get("renewalTime") or stamp(next_month(effective))
    return {
        "id": reactivation_id,
        "orderId": body["orderId"],
        "cancellationId": cancellation["id"],
        "description": body.get("description"),
        "renewalTime": renewal,
        "createdTime": stamp(now),
        "updatedTime": stamp(now),
        "_links": [{"rel": "self", "href": self_href}],
    }


def reactivation_id(number: int) -> str:
    return f"ord_rct_{number:026d}"


def matches_filter(resource: dict, expression: str | None) -> bool:
    """Rebilly's search filter `field:value[,value][;field:value]` (collectionFilter.yaml),
    exact matches only."""
    for clause in filter(None, (expression or "").split(";")):
        field, _, values = clause.partition(":")
        if str(resource.get(field.strip())) not in values.split(","):
            return False
    return True
