"""A strict fake of Rebilly's order cancellations and reactivations, on loopback.

    PUT  /organizations/{org}/order-cancellations/{id}   201 created, 200 updated, 422
    GET  /organizations/{org}/order-cancellations/{id}   200, 404
    POST /organizations/{org}/order-reactivations        201, 409, 422
    GET  /organizations/{org}/order-reactivations        200 (filter, limit, offset), Pagination-*
    GET  /organizations/{org}/order-reactivations/{id}   200, 404

It answers as docs/contracts/rebilly/ says (order-cancellations.paths.resolved.json,
order-reactivations.paths.resolved.json): every body is validated against
OrderCancellation.resolved.json / OrderReactivation.resolved.json and refused with a 422 RFC 7807
problem carrying `invalidFields: [{field, message}]`; the `REB-APIKEY` header is checked (401),
a key used for another organization is 403; 429 carries `X-RateLimit-Retry-After`, a UTC Unix
timestamp (raw/openapi/components/headers/X-RateLimit-Retry-After.yaml). It knows its orders: an
`orderId` it wasn't given (`orders=`, `add_orders`) is a 422 on `orderId`. Cancellations complete
at their churnTime (`auto_complete=False` keeps them confirmed) and a completed one can't be
changed; the rules are in rebilly_store.py, the guesses in docs/contracts/rebilly/GUESSES.md.

`fake.cancellations[id]` / `fake.reactivations[id]` are the resources as they stand (read
through `fake.cancellation(id)` to see them settled); `fake.history[id]` each PUT received.
"""

from __future__ import annotations

import argparse
import copy
import hmac
import re
from datetime import UTC, datetime

from . import rebilly_store as store
from .faults import ControlledFake
from .server import FakeRequest, FakeResponse

DEFAULT_API_KEY = "rebilly-fake-api-key"
DEFAULT_ORGANIZATION = "org_storno_demo"
ROUTE = re.compile(
    r"^/organizations/(?P<org>[^/]+)/(?P<collection>order-cancellations|order-reactivations)"
    r"(?:/(?P<id>[^/]+))?$"
)
ID_PATTERN = re.compile(r"^[@~\-.\w]+$")  # raw/openapi/components/parameters/resourceId.yaml
JSON_TYPES = {"application/json", "application/*", "*/*", "application/problem+json"}
# Titles as the ProblemTypes define them (raw/openapi/components/schemas/ProblemTypes/).
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
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


class RebillyFake(ControlledFake):
    def __init__(
        self,
        *,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        organization_id: str = DEFAULT_ORGANIZATION,
        orders=(),
        auto_complete: bool = True,
    ):
        super().__init__(port=port, known_ids=set(orders))
        self.api_key = api_key
        self.organization_id = organization_id
        self.auto_complete = auto_complete
        self.retry_after_seconds = 60  # a 429's X-RateLimit-Retry-After: now + this
        self.clock = lambda: datetime.now(UTC)  # tests move time on by replacing it
        self.renewal_times: dict[str, datetime] = {}
        self.reset_state()

    @property
    def base_url(self) -> str:
        """What REBILLY_BASE_URL should be to reach this fake."""
        return f"{self.url}/organizations/{self.organization_id}"

    # --- what it holds ------------------------------------------------------------------------
    def add_orders(self, order_ids, *, renewal_time: datetime | None = None) -> None:
        """Orders Rebilly knows; they renew at `renewal_time` (by default the next first of a
        month), which is when a cancellation `at-next-renewal` takes effect."""
        with self.lock:
            if self.known_ids is None:
                return  # accepts any order already
            for order_id in order_ids:
                self.known_ids.add(order_id)
                if renewal_time is not None:
                    self.renewal_times[order_id] = renewal_time

    def reset_state(self) -> None:
        with self.lock:
            self.cancellations: dict[str, dict] = {}
            self.reactivations: dict[str, dict] = {}
            self.history: dict[str, list[dict]] = {}

    def state(self) -> dict:
        with self.lock:
            self._settle_all()
            return {
                "cancellations": self.cancellations,
                "reactivations": self.reactivations,
                "history": self.history,
            }

    def cancellation(self, cancellation_id: str) -> dict | None:
        """The cancellation as Rebilly would show it now."""
        with self.lock:
            self._settle_all()
            return copy.deepcopy(self.cancellations.get(cancellation_id))

    def effects(self, cancellation_id: str) -> list[str]:
        """What each PUT did to the resource: "created", "updated" or "unchanged"."""
        with self.lock:
            return [h["effect"] for h in self.history.get(cancellation_id, [])]

    def _settle_all(self) -> None:
        now = self.clock()
        for resource in self.cancellations.values():
            store.settle(resource, now, auto_complete=self.auto_complete)

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
        headers = {}
        if status == 429:
            reset = int(datetime.now(UTC).timestamp()) + self.retry_after_seconds
            headers["X-RateLimit-Retry-After"] = str(reset)
        # The responses are documented as application/json (raw/openapi/components/responses).
        return FakeResponse.json(body, status=status, headers=headers)

    def handle_api(self, request: FakeRequest) -> FakeResponse:
        route = ROUTE.match(request.path)
        if not route:
            return self.error_response(404, "Not found.")
        key = request.headers.get("reb-apikey", "")
        if not (key and hmac.compare_digest(key, self.api_key)):
            return self.error_response(401, "Invalid authentication credentials.")
        if route.group("org") != self.organization_id:
            return self.error_response(403, "This API key has no access to that organization.")
        accept = request.headers.get("accept")
        if accept and not any(_media_type(p) in JSON_TYPES for p in accept.split(",")):
            return self.error_response(406, "Only application/json is available.")
        handler, allowed = self._route(route.group("collection"), route.group("id"), request)
        if handler is None:
            response = self.error_response(405, f"{request.method} is not allowed here.")
            response.headers["Allow"] = allowed
            return response
        try:
            with self.lock:
                self._settle_all()
                return handler()
        except store.Refused as refused:
            return self.error_response(refused.status, refused.detail, refused.invalid_fields)

    def _route(self, collection: str, resource_id: str | None, request: FakeRequest):
        """(the handler for this method, the methods allowed here)."""
        if collection == "order-cancellations":
            if resource_id is None:
                return None, "GET, PUT"  # the collection isn't served by this fake
            handlers = {
                "GET": lambda: self._get(self.cancellations, resource_id, "Order cancellation"),
                "PUT": lambda: self._put(resource_id, request),
            }
            return handlers.get(request.method), "GET, PUT"
        if resource_id is None:
            handlers = {
                "GET": lambda: self._list_reactivations(request),
                "POST": lambda: self._reactivate(request),
            }
            return handlers.get(request.method), "GET, POST"
        handlers = {"GET": lambda: self._get(self.reactivations, resource_id, "Reactivation")}
        return handlers.get(request.method), "GET"

    def _body(self, request: FakeRequest) -> dict:
        if _media_type(request.headers.get("content-type", "")) != "application/json":
            raise store.Refused(415, "Send application/json.")
        try:
            body = request.json()
        except ValueError as exc:
            raise store.Refused(400, "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise store.Refused(400, "The request body must be a JSON object.")
        return body

    def _check_order(self, body: dict, problems: list) -> None:
        if problems:
            raise store.Refused(422, "Invalid data sent.", problems)
        if not self.is_known(body["orderId"]):
            problem = ("orderId", f"Order {body['orderId']} not found.")
            raise store.Refused(422, "Invalid data sent.", [problem])

    def _href(self, request: FakeRequest, collection: str, resource_id: str) -> str:
        host = request.headers.get("host") or f"{self.host}:{self.port}"
        return f"http://{host}/organizations/{self.organization_id}/{collection}/{resource_id}"

    def _get(self, resources: dict, resource_id: str, what: str) -> FakeResponse:
        found = resources.get(resource_id)
        if found is None:
            return self.error_response(404, f"{what} {resource_id} not found.")
        return FakeResponse.json(copy.deepcopy(found))

    def _put(self, cancellation_id: str, request: FakeRequest) -> FakeResponse:
        body = self._body(request)
        problems = []
        if len(cancellation_id) > 50 or not ID_PATTERN.match(cancellation_id):
            problems.append(("id", "id must match ^[@~\\-.\\w]+$ and be at most 50 characters."))
        self._check_order(body, problems + store.cancellation_problems(body))
        now = self.clock()
        current = self.cancellations.get(cancellation_id)
        renewal = self.renewal_times.get(body["orderId"]) or store.next_month(now)
        href = self._href(request, "order-cancellations", cancellation_id)
        wanted = store.cancellation_resource(
            cancellation_id, body, current, now=now, renewal=renewal, self_href=href
        )
        if current is None:
            effect = "created"
        else:
            store.refuse_change(current, wanted)
            if store.comparable(current) == store.comparable(wanted):
                effect, wanted = "unchanged", current
            else:
                effect = "updated"
                wanted["updatedTime"] = store.stamp(now)
        store.settle(wanted, now, auto_complete=self.auto_complete)
        self.cancellations[cancellation_id] = wanted
        self.history.setdefault(cancellation_id, []).append({"effect": effect, "body": body})
        if effect == "created":
            return FakeResponse.json(copy.deepcopy(wanted), status=201, headers={"Location": href})
        return FakeResponse.json(copy.deepcopy(wanted))

    def _reactivate(self, request: FakeRequest) -> FakeResponse:
        body = self._body(request)
        self._check_order(body, store.invalid_fields(body, store.REACTIVATION_SCHEMA))
        undo = store.cancellation_to_undo(
            self.cancellations.values(), self.reactivations.values(), body["orderId"]
        )
        if undo is None:
            raise store.Refused(409, f"Order {body['orderId']} is active: nothing to reactivate.")
        if undo["status"] == "confirmed":
            undo["status"] = (
                "revoked"  # "If the order had a … confirmed cancellation, it is revoked."
            )
        now = self.clock()
        new_id = store.reactivation_id(len(self.reactivations) + 1)
        href = self._href(request, "order-reactivations", new_id)
        resource = store.reactivation_resource(new_id, body, undo, now=now, self_href=href)
        self.reactivations[new_id] = resource
        return FakeResponse.json(copy.deepcopy(resource), status=201, headers={"Location": href})

    def _list_reactivations(self, request: FakeRequest) -> FakeResponse:
        try:
            limit = int(request.param("limit", "100"))
            offset = int(request.param("offset", "0"))
        except ValueError as exc:
            problem = ("limit", "limit and offset must be integers.")
            raise store.Refused(422, "Invalid data sent.", [problem]) from exc
        found = [
            r
            for r in self.reactivations.values()
            if store.matches_filter(r, request.param("filter"))
        ]
        found.sort(key=lambda r: r["createdTime"], reverse=request.param("sort") == "-createdTime")
        page = found[offset : offset + limit]
        headers = {
            "Pagination-Total": str(len(found)),
            "Pagination-Limit": str(limit),
            "Pagination-Offset": str(offset),
        }
        return FakeResponse.json(copy.deepcopy(page), headers=headers)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the fake Rebilly on a fixed port.")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--order", action="append", default=[], help="An order id it knows.")
    parser.add_argument("--no-auto-complete", action="store_true")
    args = parser.parse_args(argv)
    fake = RebillyFake(port=args.port, orders=args.order, auto_complete=not args.no_auto_complete)
    print(f"Fake Rebilly on {fake.base_url} (REB-APIKEY {fake.api_key})")
    fake.serve_forever()


if __name__ == "__main__":
    main()
