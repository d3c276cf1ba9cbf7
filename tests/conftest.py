import pytest

from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory


@pytest.fixture
def reason(db):
    return CancellationReasonFactory()


@pytest.fixture
def agent(db):
    """A customer-service user who may see, cancel and revoke."""
    return UserFactory(
        permissions=[
            "cancellations.view_order",
            "cancellations.cancel_order",
            "cancellations.view_cancellation",
            "cancellations.add_cancellation",
            "cancellations.change_cancellation",
            "cancellations.revoke_cancellation",
            "reasons.view_cancellationreason",
        ]
    )


@pytest.fixture
def order_with_items(db):
    """An open order: two units of a subscription with a service period and one plain item."""
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=2, subscription=True)
    OrderItemFactory(order=order, quantity=1, unit_price_amount="12.50")
    return order
