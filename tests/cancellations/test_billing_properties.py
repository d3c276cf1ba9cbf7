"""cancelServiceItems is all or nothing, for any mix of items (property-based)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancellations import service_items
from cancellations.models import AuditEntry, Cancellation, Order, OrderItem, SettlementItem
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)

VALID = ("open", "plain", "partly-removed")
INVALID = ("settled", "exported", "cancelled", "unknown", "duplicate", "storno-id")


def make_item_id(kind: str, order: Order, earlier: list[str]) -> str:
    """An itemId as a caller sends it: the service item's billing item id."""
    if kind == "unknown":
        return "NO-SUCH-ITEM"
    if kind == "duplicate":
        return earlier[0] if earlier else "SI-dup"
    item = OrderItemFactory(order=order, quantity=2, billed=True)
    if kind == "storno-id":  # Storno's own id of an item is not the engine's
        return str(item.pk)
    if kind == "cancelled":
        OrderItem.objects.filter(pk=item.pk).update(cancelled_quantity=2)
    if kind in ("open", "settled", "exported", "partly-removed"):
        SettlementItemFactory(order_item=item)
    if kind in ("settled", "exported"):
        SettlementItemFactory(order_item=item, state=kind)
    if kind == "partly-removed":
        # removed earlier, and settled since: it no longer counts
        SettlementItemFactory(order_item=item, state="settled", removed_at=order.placed_at)
    return item.billing_item_id


def snapshot() -> dict:
    return {
        "items": sorted(OrderItem.objects.values_list("pk", "cancelled_quantity")),
        "settlements": sorted(
            SettlementItem.objects.values_list("pk", "removed_at", "removed_by_cancellation")
        ),
        "orders": sorted(Order.objects.values_list("pk", "status")),
        "cancellations": Cancellation.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


@pytest.fixture
def setup(db):
    CancellationReasonFactory()
    return UserFactory(permissions=["cancellations.cancel_order"])


@settings(
    max_examples=40,
    database=None,  # no .hypothesis folder in the working tree
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    picks=st.lists(
        st.tuples(st.sampled_from(VALID + INVALID), st.integers(min_value=0, max_value=2)),
        min_size=1,
        max_size=8,
    )
)
def test_every_item_changes_or_none_does(setup, picks):
    orders = [OrderFactory() for _ in range(3)]
    item_ids: list[str] = []
    for kind, order_index in picks:
        item_ids.append(make_item_id(kind, orders[order_index], item_ids))
    before = snapshot()

    result = service_items.cancel_service_items(
        item_ids=item_ids, actor=setup, via=AuditEntry.Via.API, languages=["de", "en"]
    )

    expect_success = all(kind in VALID for kind, _index in picks)
    assert result.has_errors is not expect_success
    assert len(result.items) == len(item_ids)
    if expect_success:
        cancelled = OrderItem.objects.filter(billing_item_id__in=item_ids)
        assert all(item.open_quantity == 0 for item in cancelled)
        assert not SettlementItem.objects.present().filter(order_item__in=cancelled).exists()
    else:
        assert snapshot() == before
        assert result.cancellations == []
        assert all(
            item.has_errors or item.messages[0].code == "NOT_PROCESSED" for item in result.items
        )
