"""What the body fuzz tests share: every endpoint that reads a body, its dialect, the caller
(a superuser with a token, throttles off), and what an error must look like in each dialect."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from cancellations.models import AuditEntry
from cancellations.services.writing import cancel_order
from providers import inbound_callisto
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
)

STORNO, JOC, CALLISTO = "storno", "joc", "callisto"
CANCELLATION_ID = "fuzz-cancellation"

# (method, path, dialect): every endpoint that takes a body. {cancellation} is a real one.
WRITE_ENDPOINTS = [
    ("post", "/api/v1/orders/", STORNO),
    ("post", "/api/v1/order-cancellations/", STORNO),
    ("put", "/api/v1/order-cancellations/fuzz-new", STORNO),  # Rebilly's upsert
    ("put", "/api/v1/order-cancellations/{cancellation}/", STORNO),
    ("post", "/api/v1/order-cancellations/{cancellation}/revoke/", STORNO),
    ("post", "/api/v1/service-items/cancel/", STORNO),  # AEB's cancelServiceItems
    ("post", "/api/v1/orders/cancel/", JOC),
    ("put", "/callisto/cancel", CALLISTO),
    ("delete", "/callisto/cancel", CALLISTO),
    ("put", "/callisto/cancel/{cancellation}", CALLISTO),
    ("delete", "/callisto/cancel/{cancellation}", CALLISTO),
]
DIALECTS = {(method, path): dialect for method, path, dialect in WRITE_ENDPOINTS}
JSON_TYPE = "application/json"
KNOWN_FIELDS = ("lineItems", "items", "auditLog", "folders", "orderIds", "Id", "CancelReason")


def superuser_api(monkeypatch) -> APIClient:
    """A superuser's token client, with an order (Callisto id 4711) and its cancellation
    CANCELLATION_ID. Hundreds of requests from one user in seconds: throttles are off (the
    limits are tested elsewhere)."""
    monkeypatch.setattr(APIView, "get_throttles", lambda self: [])
    user = SuperUserFactory()
    reason = CancellationReasonFactory()
    order = OrderFactory(external_ids={"callisto": "4711"})
    OrderItemFactory(order=order, quantity=2, subscription=True)
    cancel_order(
        order, reason=reason, actor=user, via=AuditEntry.Via.WEB, cancellation_id=CANCELLATION_ID
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def send(api, method: str, path: str, body, content_type: str):
    body = body.encode() if isinstance(body, str) else body
    return api.generic(
        method.upper(), path.format(cancellation=CANCELLATION_ID), body, content_type
    )


def assert_dialect_shape(response, dialect: str) -> None:
    """An error in the endpoint's own words; a success is the view's business."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code < 400:
        return
    body = response.json()
    if dialect == JOC and response.status_code == 420:
        assert set(body) == {"deliveryDate", "error"}
        assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
        return
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    if dialect == CALLISTO:
        assert body["type"] == inbound_callisto.PROBLEM_TYPE
    else:
        assert body["type"].startswith("urn:storno:problem:")
        if response.status_code in (400, 422):  # invalid input names what is invalid
            assert body["invalidFields"] and all(e["field"] for e in body["invalidFields"])


def dialect_shape_problem(response, dialect: str) -> str | None:
    try:
        assert_dialect_shape(response, dialect)
    except AssertionError as exc:
        return f"{response.status_code} {exc}"
    return None
