"""Every body the Rebilly adapter sends validates against Rebilly's own schemas
(docs/contracts/rebilly/OrderCancellation.resolved.json, OrderReactivation.resolved.json) and
carries only fields those schemas let a client write."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cancellations.models import AuditEntry
from cancellations.services import quoting, writing
from providers.base import Action, ProviderConfig
from providers.contracts import schema, schema_errors
from providers.rebilly import RebillyAdapter
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory

CANCELLATION = schema("rebilly/OrderCancellation.resolved.json")
REACTIVATION = schema("rebilly/OrderReactivation.resolved.json")
ADAPTER = RebillyAdapter(ProviderConfig(kind="rebilly", base_url="http://rebilly.invalid"))
LONG = "Ünïcödé — 取消 " * 80  # non-ASCII, longer than any limit


def not_writable(body: dict, json_schema: dict, prefix: str = "") -> list[str]:
    """Fields of `body` the schema doesn't define, or defines as readOnly."""
    found = []
    properties = json_schema.get("properties", {})
    for name, value in body.items():
        definition = properties.get(name)
        if definition is None or definition.get("readOnly"):
            found.append(prefix + name)
        elif isinstance(value, list) and isinstance(definition.get("items"), dict):
            for index, item in enumerate(value):
                found += not_writable(item, definition["items"], f"{prefix}{name}.{index}.")
    return found


def cancellation(**kwargs):
    order = OrderFactory(external_ids={"rebilly": "ord_01HRF27SATGE"})
    items = [
        OrderItemFactory(order=order, quantity=3, subscription=True),
        OrderItemFactory(order=order),
    ]
    if kwargs.pop("partial", False):
        kwargs["items"] = [quoting.ItemPick(order_item_id=items[0].pk, quantity=1)]
    return writing.cancel_order(
        order,
        reason=CancellationReasonFactory(),
        actor=None,
        via=AuditEntry.Via.API,
        **kwargs,
    )


def line(kind="debit", **changes):
    values = {
        "type": kind,
        "unit_price_amount": Decimal("9.95"),
        "unit_price_currency": "EUR",
        "quantity": 2,
    }
    return quoting.ExtraLine(**{**values, **changes})


CASES = {
    "confirmed now": {},
    "scheduled": {"churn_time": timezone.now() + timedelta(days=30)},
    "at next renewal": {"churn_time_policy": "at-next-renewal", "prorated": True},
    "partial": {"partial": True, "canceled_by": "customer"},
    "line items": {
        "lines": [
            line(description="Early termination fee"),
            line(
                "credit",
                unit_price_amount=Decimal("0.01"),
                quantity=1,
                period_start=datetime(2030, 2, 1, tzinfo=UTC),
                period_end=datetime(2030, 3, 1, tzinfo=UTC),
            ),
        ]
    },
    "long non-ASCII texts": {
        "description": LONG[:255],
        "lines": [line(description=LONG[:1000])],
    },
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("action", [Action.ADD, Action.REVOKE], ids=["add", "revoke"])
def test_every_cancellation_body_validates_against_rebillys_schema(case, action):
    body = ADAPTER.build_payload(cancellation(**CASES[case]), action)

    assert schema_errors(body, CANCELLATION) == []
    assert not_writable(body, CANCELLATION) == []
    assert body["status"] == ("confirmed" if action == Action.ADD else "revoked")


@pytest.mark.django_db
@pytest.mark.parametrize("comment", ["", "Kunde bleibt", LONG[:255]], ids=["none", "short", "long"])
def test_every_reactivation_body_validates_against_rebillys_schema(comment):
    undone = cancellation()
    undone.revoke_comment = comment

    body = ADAPTER.build_reactivation(undone)

    assert schema_errors(body, REACTIVATION) == []
    assert not_writable(body, REACTIVATION) == []
