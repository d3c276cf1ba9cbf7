"""The quote's refusals (cancellations/services/refusals.py): one coded answer to "why can't
this be cancelled", raised by the quote and read by the billing engine, the bulk filter and
the pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cancellations import billing
from cancellations.errors import CancellationError
from cancellations.models import AuditEntry
from cancellations.order_filter import OrderFilter
from cancellations.services import quoting, refusals, writing
from cancellations.services.refusals import Refusal
from cancellations.states import OrderStatus
from tests.factories import OrderFactory, OrderItemFactory, SettlementItemFactory


def codes_of(found) -> list[str]:
    return [refused.code for refused in found]


def quote_error(order, reason, **kwargs) -> dict[str, set]:
    with pytest.raises(CancellationError) as excinfo:
        quoting.quote_cancellation(order, reason=reason, **kwargs)
    return {
        field: {error.code for error in errors}
        for field, errors in excinfo.value.error_dict.items()
    }


@pytest.mark.parametrize(
    ("status", "kill", "code"),
    [
        (OrderStatus.OPEN, False, None),
        (OrderStatus.PARTIALLY_CANCELLED, False, None),
        (OrderStatus.IN_PROGRESS, True, None),
        (OrderStatus.IN_PROGRESS, False, Refusal.IN_PROGRESS),
        (OrderStatus.COMPLETED, True, Refusal.ORDER_NOT_CANCELLABLE),
        (OrderStatus.CANCELLED, True, Refusal.NOTHING_LEFT),
    ],
)
def test_an_orders_status_is_refused_with_its_code(status, kill, code):
    assert refusals.status_refusal(status, kill=kill) == code


@pytest.mark.django_db
def test_an_item_is_refused_for_what_is_no_longer_open():
    done = OrderItemFactory(quantity=2, cancelled_quantity=2)
    half = OrderItemFactory(quantity=2, cancelled_quantity=1)

    assert codes_of(refusals.item_refusals(done, wanted=None, reserved=0)) == [
        Refusal.ALREADY_CANCELLED
    ]
    assert codes_of(refusals.item_refusals(half, wanted=2, reserved=0)) == [Refusal.NOT_ENOUGH_LEFT]
    assert codes_of(refusals.item_refusals(half, wanted=1, reserved=1)) == [
        Refusal.ALREADY_SCHEDULED
    ]
    assert refusals.item_refusals(half, wanted=1, reserved=0) == []


@pytest.mark.django_db
def test_the_quote_raises_the_refusal_codes_under_their_fields(reason):
    order = OrderFactory()
    item = OrderItemFactory(order=order, quantity=2, cancelled_quantity=1)

    assert quote_error(order, reason, items=[quoting.ItemPick(item.pk, 2)]) == {
        "items.0.quantity": {Refusal.NOT_ENOUGH_LEFT}
    }
    item.cancelled_quantity = 2
    item.save()
    assert quote_error(order, reason) == {"order": {Refusal.NOTHING_LEFT}}


@pytest.mark.django_db
def test_a_scheduled_cancellation_leaves_nothing_for_a_second_whole_order_cancel(reason):
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=2)
    writing.cancel_order(
        order,
        reason=reason,
        actor=None,
        via=AuditEntry.Via.SYSTEM,
        churn_time=timezone.now() + timedelta(days=3),
    )

    assert quote_error(order, reason) == {"order": {Refusal.NOTHING_LEFT}}
    assert codes_of(billing_refusals(order)) == [Refusal.ALREADY_SCHEDULED]


def billing_refusals(order):
    _items, found = billing.refusals_of(order)
    return [refused for why in found.values() for refused in why]


@pytest.mark.django_db
def test_the_quote_refuses_an_order_in_progress_only_without_kill(reason):
    order = OrderFactory(status=OrderStatus.IN_PROGRESS)
    OrderItemFactory(order=order)

    assert quote_error(order, reason, kill=False) == {"order": {Refusal.IN_PROGRESS}}
    assert quoting.quote_cancellation(order, reason=reason).items


@pytest.mark.django_db
def test_the_bulk_filter_skips_for_the_quotes_refusal_in_its_own_words():
    completed = OrderFactory(status=OrderStatus.COMPLETED)
    running = OrderFactory(status=OrderStatus.IN_PROGRESS)

    assert OrderFilter().skip_reason(completed) == "The order is completed and can't be cancelled."
    assert OrderFilter().skip_reason(running) == (
        "The order is in progress; set kill to cancel it anyway."
    )
    assert OrderFilter(kill=True).skip_reason(running) == ""
    assert OrderFilter(kill=True).takes_status(OrderStatus.IN_PROGRESS)
    assert not OrderFilter().takes_status(OrderStatus.CANCELLED)


@pytest.mark.django_db
def test_the_billing_engine_words_a_settlement_refusal_as_aeb_does():
    settlement = SettlementItemFactory(state="exported")
    item = settlement.order_item

    found = billing_refusals(item.order)

    assert codes_of(found) == [Refusal.SETTLEMENT_BLOCKED]
    loaded, _found = billing.refusals_of(item.order)
    assert [m.code for m in billing.diagnose(loaded[0], 0)] == ["SETTLEMENT_ITEM_EXPORTED"]
    assert billing.diagnose(loaded[0], 0)[0].render() == (
        f"Settlement item {settlement.pk} of service item {item.billing_item_id} ({item.sku}) "
        "is already exported and can't be removed."
    )
    # The staff pages word the same refusal by SKU and billed period instead.
    assert "is already exported." in billing.blocked_items(item.order)[item.pk][0]
