"""Each provider's verdict before confirming: will it be told of a planned cancellation (or a
revoke), and if not why. The same verdicts decide the rows the outbox writes."""

import pytest

from cancellations.services import verdicts
from cancellations.services.quoting import ItemPick, quote_cancellation
from providers import outbox
from providers.base import VerdictReason
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)
from tests.providers.outbox_support import cancel, revoke

pytestmark = pytest.mark.django_db
SALESFORCE_ID = "005000000000001AAA"


@pytest.fixture(autouse=True)
def providers_enabled(db):
    for kind in ("billing", "callisto", "js7", "rebilly"):
        ProviderSetting.objects.create(kind=kind, enabled=True, base_url=f"http://{kind}.invalid")


@pytest.fixture
def order(db):
    """An order every provider knows: two monthly plans, one with a billing engine id."""
    order = OrderFactory(
        external_ids={
            "callisto": "4711",
            "rebilly": "ord_1",
            "js7ControllerId": "controller",
            "js7OrderIds": ["#2026-12-06#T1"],
        }
    )
    SettlementItemFactory(order_item=OrderItemFactory(order=order, quantity=2, billed=True))
    SettlementItemFactory(order_item__order=order, order_item__billing_item_id="")
    return order


def planned(order, picks=None):
    quote = quote_cancellation(order, reason=CancellationReasonFactory(), items=picks)
    return {
        v.provider: v
        for v in verdicts.quote_verdicts(quote, actor=None, external_user_id=SALESFORCE_ID)
    }


def test_every_provider_will_be_told_of_a_whole_order_cancellation(order):
    found = planned(order)

    assert {kind: v.will_be_told for kind, v in found.items()} == {
        "billing": True,
        "callisto": True,
        "js7": True,
        "rebilly": True,
    }


def test_callisto_wont_be_told_of_a_partial_cancellation_and_staff_get_a_task(order):
    item = order.items.get(quantity=2)

    callisto = planned(order, [ItemPick(item.pk, 2)])["callisto"]

    assert (callisto.will_be_told, callisto.reason) == (False, VerdictReason.WHOLE_ORDERS_ONLY)
    assert callisto.needs_manual_action
    assert "Change the order in Callisto by hand" in callisto.message


def test_the_billing_engine_is_told_only_of_items_taken_away_completely(order):
    item = order.items.get(quantity=2)

    assert planned(order, [ItemPick(item.pk, 2)])["billing"].will_be_told
    part = planned(order, [ItemPick(item.pk, 1)])["billing"]
    assert (part.will_be_told, part.reason) == (False, VerdictReason.NOT_APPLICABLE)


def test_the_billing_engine_cant_be_told_of_an_item_without_its_id(order):
    unnamed = order.items.get(billing_item_id="")

    billing = planned(order, [ItemPick(unnamed.pk, 1)])["billing"]

    assert (billing.will_be_told, billing.reason) == (False, VerdictReason.NO_PROVIDER_ID)
    assert billing.needs_manual_action
    assert unnamed.sku in billing.message


def test_a_whole_order_notes_the_items_the_billing_engine_has_no_id_for(order):
    unnamed = order.items.get(billing_item_id="")

    billing = planned(order)["billing"]

    assert billing.will_be_told
    assert unnamed.sku in billing.message


def test_a_provider_the_order_has_no_reference_at_wont_be_told():
    order = OrderFactory(external_ids={"rebilly": "ord_2"})
    OrderItemFactory(order=order)

    found = planned(order)

    assert found["rebilly"].will_be_told
    assert found["callisto"].reason == VerdictReason.NOT_APPLICABLE
    assert found["js7"].reason == VerdictReason.NOT_APPLICABLE


def test_a_switched_off_provider_wont_be_told(order):
    ProviderSetting.objects.filter(kind="rebilly").update(enabled=False)
    outbox.forget_provider_settings()

    rebilly = planned(order)["rebilly"]

    assert (rebilly.will_be_told, rebilly.reason) == (False, VerdictReason.NOT_ENABLED)


def test_callisto_without_a_salesforce_user_says_the_cancellation_would_be_refused(order):
    quote = quote_cancellation(order, reason=CancellationReasonFactory())

    found = {v.provider: v for v in verdicts.quote_verdicts(quote, actor=UserFactory())}

    assert found["callisto"].reason == VerdictReason.PLAN_PROBLEM
    assert "externalUserId" in found["callisto"].message


def test_the_admin_action_asks_for_the_whole_open_order(order):
    found = {
        v.provider: v
        for v in verdicts.whole_order_verdicts(order, actor=None, external_user_id=SALESFORCE_ID)
    }

    assert all(v.will_be_told for v in found.values())


# --- revokes -------------------------------------------------------------------------------------


def delivered_adds(order):
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    Delivery.objects.filter(cancellation=cancellation).update(status=DeliveryStatus.DELIVERED)
    return cancellation


def test_js7_and_the_billing_engine_cant_be_told_of_a_revoke(order):
    found = {v.provider: v for v in verdicts.revoke_verdicts(delivered_adds(order))}

    assert {kind: v.will_be_told for kind, v in found.items()} == {
        "billing": False,
        "callisto": True,
        "js7": False,
        "rebilly": True,
    }
    assert found["js7"].reason == VerdictReason.NO_REVOKE
    assert "JOC Cockpit" in found["js7"].message
    assert "billing engine can't undo" in found["billing"].message


def test_a_revoke_tells_nobody_whose_add_never_got_there(order):
    cancellation = cancel(order, external_user_id=SALESFORCE_ID)
    Delivery.objects.filter(cancellation=cancellation, provider="rebilly").update(
        status=DeliveryStatus.FAILED, attempts=5
    )

    found = {v.provider: v for v in verdicts.revoke_verdicts(cancellation)}

    assert found["rebilly"].reason == VerdictReason.NOTHING_TO_REVOKE
    assert found["callisto"].reason == VerdictReason.NOTHING_TO_REVOKE  # never sent


def test_the_revoke_rows_follow_the_verdicts_shown(order):
    cancellation = delivered_adds(order)
    shown = {v.provider: v for v in verdicts.revoke_verdicts(cancellation)}

    revoke(cancellation)

    written = Delivery.objects.filter(cancellation=cancellation, action="revoke")
    for row in written:
        assert (row.status != DeliveryStatus.SKIPPED) == shown[row.provider].will_be_told
        assert row.last_error == shown[row.provider].message


# --- what is written -----------------------------------------------------------------------------


def test_a_partial_callisto_cancellation_is_written_as_a_skipped_staff_task(order):
    item = order.items.get(quantity=2)

    cancellation = cancel(order, items=[ItemPick(item.pk, 1)], external_user_id=SALESFORCE_ID)

    rows = {row.provider: row for row in cancellation.deliveries.all()}
    assert (rows["callisto"].status, rows["callisto"].needs_manual_action) == ("skipped", True)
    assert "whole orders" in rows["callisto"].last_error
    assert (rows["rebilly"].status, rows["rebilly"].needs_manual_action) == ("pending", False)


def test_a_skipped_delivery_without_a_task_is_not_a_staff_task(order):
    plain = OrderFactory(external_ids={"rebilly": "ord_3"})
    OrderItemFactory(order=plain)

    cancellation = cancel(plain)

    callisto = cancellation.deliveries.get(provider="callisto")
    assert (callisto.status, callisto.needs_manual_action) == ("skipped", False)
