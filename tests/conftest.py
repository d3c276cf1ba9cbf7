import pytest
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from backoffice.broker import resume_publishing
from providers.outbox import forget_provider_settings
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory, UserFactory


@pytest.fixture(autouse=True)
def _empty_caches():
    """API throttles count in the cache: each test starts with none of another test's requests.
    Nor with the provider settings another test's database had (providers.outbox keeps them)."""
    for cache in caches.all():
        cache.clear()
    forget_provider_settings()
    yield
    for cache in caches.all():
        cache.clear()
    forget_provider_settings()


@pytest.fixture(autouse=True)
def _broker_not_paused():
    """A test whose broker failed leaves this process publishing nothing for a while
    (backoffice.broker): the next test starts with a broker that works."""
    resume_publishing()
    yield
    resume_publishing()


@pytest.fixture
def reason(db):
    return CancellationReasonFactory()


@pytest.fixture
def agent(db):
    """A customer-service user who may see (audit trail and deliveries too), cancel and
    revoke."""
    return UserFactory(
        permissions=[
            "cancellations.view_order",
            "cancellations.cancel_order",
            "cancellations.view_cancellation",
            "cancellations.add_cancellation",
            "cancellations.change_cancellation",
            "cancellations.revoke_cancellation",
            "cancellations.view_auditentry",
            "reasons.view_cancellationreason",
            "providers.view_delivery",
            "providers.view_deliveryattempt",
        ]
    )


@pytest.fixture
def order_with_items(db):
    """An open order: two units of a subscription with a service period and one plain item."""
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=2, subscription=True)
    OrderItemFactory(order=order, quantity=1, unit_price_amount="12.50")
    return order


@pytest.fixture
def rates(monkeypatch):
    """rates(user="2/min", failed_auth="3/min"): lower throttle rates for this test only."""

    def set_rates(**changes):
        for scope, rate in changes.items():
            monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope.replace("_", "-"), rate)

    return set_rates
