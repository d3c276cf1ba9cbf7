import pytest
from django.core.cache import caches
from django.utils import translation
from rest_framework.throttling import SimpleRateThrottle

from backoffice import throttling
from backoffice.auth_backends import forget_permissions
from backoffice.broker import resume_publishing
from providers.http import close_pools
from providers.js7 import forget_tokens
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


def _forget_process_state() -> None:
    # A test whose broker failed leaves this process publishing nothing for a while
    # (backoffice.broker): the next test starts with a broker that works.
    resume_publishing()
    # Permissions kept by user id (backoffice.auth_backends), JS7 sessions kept by base URL
    # and account (a later fake may get the same port), the providers' pooled connections.
    forget_permissions()
    forget_tokens()
    close_pools()
    # The test client's LocaleMiddleware activates a request's language in this thread and
    # leaves it active: after a German request the next test's messages would be German.
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """What this process keeps between requests starts as the first test found it. The
    suite runs in random order (pytest-randomly): no test may depend on what ran before."""
    _forget_process_state()
    yield
    _forget_process_state()


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


# 30 s into a minute: a test's requests all fall into one throttle window, never across two.
THROTTLE_NOW = 1_800_000_030.0


@pytest.fixture
def rates(monkeypatch):
    """rates(user="2/min", failed_auth="3/min"): lower throttle rates for this test only, and
    the throttles' clock stopped in the middle of a minute (a limit reached just before a
    window ends would be lifted by the next one)."""
    monkeypatch.setattr(throttling.AtomicRateThrottle, "timer", staticmethod(lambda: THROTTLE_NOW))

    def set_rates(**changes):
        for scope, rate in changes.items():
            monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope.replace("_", "-"), rate)

    return set_rates


def pytest_terminal_summary(terminalreporter, config):
    """The random order's seed also under the results (the header, which has it too, is left
    out with -q): a failure that only one order shows can be run again in that order."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(
            f"Tests ran in random order: repeat it with --randomly-seed={seed}"
        )
