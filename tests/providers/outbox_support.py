"""Test doubles for the outbox tests: a scripted in-test adapter registered under its own
provider kind, and helpers to set up enabled providers and cancellations."""

from __future__ import annotations

from collections import deque

import pytest
from django.db import connection

from cancellations.models import AuditEntry
from cancellations.services import revoking, writing
from providers import registry
from providers.base import Outcome, ProviderAdapter, Result
from providers.models import ProviderSetting
from tests.factories import CancellationReasonFactory, OrderFactory, OrderItemFactory


class ScriptedAdapter(ProviderAdapter):
    """Answers with the outcomes queued in `script` (DELIVERED once it runs dry) and writes
    down every call. Subclassed per test, so the class attributes are the test's own."""

    kind = "scripted"
    label = "Scripted"
    supports_revoke = True
    supports_update = True
    applies = True
    calls: list
    script: deque
    in_transaction: list

    def applies_to(self, cancellation) -> bool:
        return self.applies

    def deliver(self, cancellation, action) -> Result:
        type(self).calls.append((cancellation.pk, str(action)))
        type(self).in_transaction.append(connection.in_atomic_block)
        step = type(self).script.popleft() if type(self).script else Outcome.DELIVERED
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Result):
            return step
        status = {Outcome.DELIVERED: 200, Outcome.RETRY: 503, Outcome.FAILED: 422}.get(step)
        return Result(
            step,
            status_code=status,
            message="" if step == Outcome.DELIVERED else f"{self.kind} said {step}",
            request_excerpt=f"PUT /{self.kind}/{cancellation.pk}",
            response_excerpt=f"HTTP {status}",
            duration_ms=7,
            references={"id": f"{self.kind}-{cancellation.pk}"}
            if step == Outcome.DELIVERED
            else {},
        )


@pytest.fixture(name="make_provider")
def make_provider_fixture(db, monkeypatch):
    """make_provider("alpha", applies=False, supports_update=False, enabled=True) → the
    adapter class, registered and with an enabled ProviderSetting."""

    def make(kind="alpha", *, enabled=True, timeout_seconds=10, **attributes):
        adapter_class = type(
            f"{kind.title()}Adapter",
            (ScriptedAdapter,),
            {"kind": kind, "calls": [], "script": deque(), "in_transaction": [], **attributes},
        )
        monkeypatch.setitem(registry.ADAPTERS, kind, adapter_class)
        ProviderSetting.objects.create(
            kind=kind,
            enabled=enabled,
            base_url=f"http://{kind}.invalid",
            timeout_seconds=timeout_seconds,
        )
        return adapter_class

    return make


def new_order():
    order = OrderFactory(external_ids={"callisto": "4711", "rebilly": "ord_1"})
    OrderItemFactory(order=order, quantity=2)
    return order


def cancel(order=None, **kwargs):
    """A cancellation through the real service (effective at once unless told otherwise)."""
    kwargs.setdefault("reason", CancellationReasonFactory())
    return writing.cancel_order(order or new_order(), actor=None, via=AuditEntry.Via.API, **kwargs)


def revoke(cancellation):
    return revoking.revoke_cancellation(cancellation, actor=None, via=AuditEntry.Via.API)
