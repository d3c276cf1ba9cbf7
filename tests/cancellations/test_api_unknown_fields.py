"""Storno's own API refuses fields it doesn't know, naming each with its close match (issue 12).

A misspelt field used to vanish: `placedAt` → placed now, `externalId` → no provider told,
`periodStart` → no proration, `churn_time` → completed at once. Now each is a 400 that changes
nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from cancellations.models import AuditEntry, Cancellation, Order
from cancellations.services import writing
from cancellations.states import CancellationStatus, OrderStatus
from providers.models import Delivery
from tests.factories import UserFactory

ORDERS = "/api/v1/orders/"
CANCELLATIONS = "/api/v1/order-cancellations/"


def problems(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return {error["field"]: error["message"] for error in response.json()["invalidFields"]}


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(
        UserFactory(
            permissions=[
                "cancellations.add_order",
                "cancellations.add_cancellation",
                "cancellations.revoke_cancellation",
            ]
        )
    )
    return client


def order_body(**overrides) -> dict:
    return {
        "number": "SO-1001",
        "customerName": "Ayşe Yılmaz",
        "channel": "/shop/tr",
        "currency": "EUR",
        "items": [{"sku": "PLAN-M", "quantity": 1, "unitPriceAmount": "30.00"}],
        **overrides,
    }


def cancellation_body(order, reason, **overrides) -> dict:
    return {"orderId": order.pk, "reasonId": reason.pk, **overrides}


# --- orders --------------------------------------------------------------------------------------


def test_a_misspelt_order_field_is_refused_with_its_close_match(api):
    response = api.post(ORDERS, order_body(placedAt="2026-03-01T10:00:00Z"), format="json")

    assert response.status_code == 400
    assert problems(response) == {"placedAt": "unknown field; did you mean placedTime?"}
    assert response.json()["detail"] == "placedAt: unknown field; did you mean placedTime?"
    assert not Order.objects.exists()


def test_external_id_in_the_singular_is_refused(api):
    response = api.post(ORDERS, order_body(externalId={"rebilly": "ord_1"}), format="json")

    assert response.status_code == 400
    assert problems(response) == {"externalId": "unknown field; did you mean externalIds?"}
    assert not Order.objects.exists()


def test_an_unknown_item_field_is_named_in_dot_notation(api):
    items = [
        {"sku": "A", "quantity": 1, "unitPriceAmount": "1.00"},
        {"sku": "B", "quantity": 1, "unitPriceAmount": "1.00", "periodStart": "2026-03-01T00:00Z"},
    ]

    response = api.post(ORDERS, order_body(items=items), format="json")

    assert response.status_code == 400
    assert problems(response) == {
        "items.1.periodStart": "unknown field; did you mean periodStartTime?"
    }
    assert not Order.objects.exists()


def test_every_unknown_field_is_named_as_sent_even_in_snake_case(api):
    response = api.post(ORDERS, order_body(placed_at="2026-03-01T10:00:00Z", zz=1), format="json")

    assert problems(response) == {
        "placed_at": "unknown field; did you mean placedTime?",
        "zz": "unknown field",
    }


# --- order cancellations -------------------------------------------------------------------------


def test_churn_time_in_snake_case_is_refused_and_nothing_is_cancelled(
    api, order_with_items, reason
):
    later = (timezone.now() + timedelta(days=3)).isoformat()

    response = api.post(
        CANCELLATIONS, cancellation_body(order_with_items, reason, churn_time=later), format="json"
    )

    assert response.status_code == 400
    assert problems(response) == {"churn_time": "unknown field; did you mean churnTime?"}
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.OPEN
    assert not Cancellation.objects.exists()
    assert not AuditEntry.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("nested", "field", "message"),
    [
        (
            {
                "lineItems": [
                    {
                        "type": "debit",
                        "unitPriceAmount": 1,
                        "unitPriceCurrency": "EUR",
                        "quantity": 1,
                        "periodStart": "2026-03-01T00:00:00Z",
                    }
                ]
            },
            "lineItems.0.periodStart",
            "unknown field; did you mean periodStartTime?",
        ),
        (
            {"items": [{"itemId": 1, "quantity": 1, "quantiy": 2}]},
            "items.0.quantiy",
            "unknown field; did you mean quantity?",
        ),
        (
            {"auditLog": {"comment": "By phone", "ticketUrl": "T-1"}},
            "auditLog.ticketUrl",
            "unknown field; did you mean ticketLink?",
        ),
    ],
)
def test_an_unknown_nested_field_is_named_in_dot_notation(
    api, order_with_items, reason, nested, field, message
):
    body = cancellation_body(order_with_items, reason, **nested)

    response = api.post(CANCELLATIONS, body, format="json")

    assert response.status_code == 400
    assert problems(response) == {field: message}
    assert not Cancellation.objects.exists()


def test_status_is_refused_on_post_rather_than_confirming_a_draft(api, order_with_items, reason):
    body = cancellation_body(order_with_items, reason, status="draft")

    response = api.post(CANCELLATIONS, body, format="json")

    assert response.status_code == 400
    assert set(problems(response)) == {"status"}
    assert not Cancellation.objects.exists()


def test_rebillys_read_only_fields_echoed_back_are_ignored(api, order_with_items, reason):
    echoed = {
        "id": "cnl_mine",
        "canceledTime": "2020-01-01T00:00:00Z",
        "createdTime": "2020-01-01T00:00:00Z",
        "updatedTime": "2020-01-01T00:00:00Z",
        "proratedInvoiceId": "in_1",
        "appliedInvoiceId": None,
        "lineItemSubtotal": {"amount": 1, "currency": "EUR"},
        "_links": [{"rel": "self", "href": "https://example.com"}],
    }

    response = api.post(
        CANCELLATIONS, cancellation_body(order_with_items, reason, **echoed), format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["id"] != "cnl_mine"
    assert response.json()["proratedInvoiceId"] is None


# --- revoke --------------------------------------------------------------------------------------


def test_an_unknown_revoke_field_is_refused_and_nothing_is_revoked(api, order_with_items, reason):
    cancellation = writing.cancel_order(
        order_with_items, reason=reason, actor=None, via=AuditEntry.Via.SYSTEM
    )

    response = api.post(
        f"{CANCELLATIONS}{cancellation.pk}/revoke/", {"comments": "stays"}, format="json"
    )

    assert response.status_code == 400
    assert problems(response) == {"comments": "unknown field; did you mean comment?"}
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.COMPLETED
