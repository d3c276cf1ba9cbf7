"""The billing engine's rules: service items, settlement items, cancelServiceItems (seed 002)."""

import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cancellations import billing, service_items
from cancellations.errors import CancellationError
from cancellations.models import (
    AuditEntry,
    Cancellation,
    CancellationItem,
    OrderItem,
    SettlementItem,
    SettlementState,
)
from cancellations.services import effect, quoting, revoking, writing
from cancellations.states import CancellationStatus, OrderStatus
from reasons.models import ProviderKind, ReasonMapping
from tests.factories import (
    CancellationReasonFactory,
    OrderItemFactory,
    SettlementItemFactory,
)

API = AuditEntry.Via.API


@pytest.fixture
def service_item(db, reason):
    """An order item with two open settlement items."""
    item = OrderItemFactory(subscription=True, billed=True)
    SettlementItemFactory.create_batch(2, order_item=item)
    return item


def cancel(items, *, actor=None, **kwargs):
    """cancelServiceItems for these order items (by their billing item id) or raw itemIds."""
    item_ids = [i.billing_item_id if isinstance(i, OrderItem) else str(i) for i in items]
    return service_items.cancel_service_items(item_ids=item_ids, actor=actor, via=API, **kwargs)


def codes(messages):
    return [m.code for m in messages]


# --- cancel_order and the settlement rule ------------------------------------------------------


def test_cancel_order_refuses_an_item_with_a_settled_settlement_item(service_item, reason, agent):
    settled = SettlementItemFactory(order_item=service_item, state=SettlementState.SETTLED)

    with pytest.raises(CancellationError) as caught:
        writing.cancel_order(
            service_item.order,
            reason=reason,
            items=[quoting.ItemPick(service_item.pk, 1)],
            actor=agent,
            via=API,
        )

    message = caught.value.message_dict["items.0.quantity"][0]
    assert f"settlement item {settled.pk}" in message
    assert "settled" in message
    assert not Cancellation.objects.exists()


def test_cancel_order_refuses_a_whole_order_with_an_exported_settlement_item(
    service_item, reason, agent
):
    SettlementItemFactory(order_item=service_item, state=SettlementState.EXPORTED)

    with pytest.raises(CancellationError) as caught:
        writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)

    assert "exported" in caught.value.message_dict["order"][0]


def test_settlement_items_already_removed_do_not_block(service_item, reason, agent):
    SettlementItemFactory(
        order_item=service_item, state=SettlementState.SETTLED, removed_at=timezone.now()
    )

    writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)

    assert Cancellation.objects.count() == 1


def test_completing_a_cancellation_removes_the_settlement_items_of_fully_cancelled_items(
    service_item, reason, agent
):
    cancellation = writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)

    rows = SettlementItem.objects.filter(order_item=service_item)
    assert all(row.removed_at is not None for row in rows)
    assert {row.removed_by_cancellation_id for row in rows} == {cancellation.pk}
    assert rows.count() == 2  # logically removed, not deleted


def test_a_partial_quantity_cancellation_keeps_the_settlement_items(reason, agent):
    item = OrderItemFactory(quantity=2)
    SettlementItemFactory(order_item=item)

    writing.cancel_order(
        item.order, reason=reason, items=[quoting.ItemPick(item.pk, 1)], actor=agent, via=API
    )

    assert SettlementItem.objects.get().removed_at is None


def test_revoking_restores_the_removed_settlement_items(service_item, reason, agent):
    cancellation = writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)

    revoking.revoke_cancellation(cancellation, actor=agent, via=API)

    rows = SettlementItem.objects.filter(order_item=service_item)
    assert [(r.removed_at, r.removed_by_cancellation_id) for r in rows] == [(None, None)] * 2


def test_a_scheduled_cancellation_fails_to_complete_when_an_item_got_settled_meanwhile(
    service_item, reason, agent
):
    cancellation = writing.cancel_order(
        service_item.order,
        reason=reason,
        churn_time=timezone.now() + timedelta(days=1),
        actor=agent,
        via=API,
    )
    SettlementItem.objects.filter(order_item=service_item).update(state=SettlementState.SETTLED)

    completed = effect.complete_due_cancellations(now=timezone.now() + timedelta(days=2))

    assert completed == 0
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.CONFIRMED
    assert AuditEntry.objects.filter(action="cancellation.completion_failed").exists()


def test_one_scheduled_cancellation_that_cant_complete_doesnt_hold_up_the_others(reason, agent):
    later = timezone.now() + timedelta(days=1)
    items = [OrderItemFactory(subscription=True, billed=True) for _ in range(3)]
    for item in items:
        SettlementItemFactory.create_batch(2, order_item=item)
    scheduled = [
        writing.cancel_order(item.order, reason=reason, churn_time=later, actor=agent, via=API)
        for item in items
    ]
    SettlementItem.objects.filter(order_item=items[1]).update(state=SettlementState.SETTLED)

    completed = effect.complete_due_cancellations(now=later + timedelta(hours=1))

    assert completed == 2
    statuses = [Cancellation.objects.get(pk=c.pk).status for c in scheduled]
    assert statuses == [
        CancellationStatus.COMPLETED,
        CancellationStatus.CONFIRMED,
        CancellationStatus.COMPLETED,
    ]
    failed = AuditEntry.objects.get(action="cancellation.completion_failed")
    assert failed.cancellation_id == scheduled[1].pk
    # Each completed one removed its own order's settlement items.
    for item, cancellation in zip(items, scheduled, strict=True):
        rows = SettlementItem.objects.filter(order_item=item)
        expected = None if cancellation is scheduled[1] else cancellation.pk
        assert {row.removed_by_cancellation_id for row in rows} == {expected}


# --- cancel_service_items ----------------------------------------------------------------------


def test_cancel_service_items_cancels_each_item_with_its_settlement_items(service_item, agent):
    other = OrderItemFactory(order=service_item.order, billed=True)
    SettlementItemFactory(order_item=other)

    result = cancel([service_item, other], actor=agent)

    assert not result.has_errors
    assert [codes(item.messages) for item in result.items] == [["SERVICE_ITEM_CANCELLED"]] * 2
    assert len(result.cancellations) == 1  # one cancellation per order
    assert OrderItem.objects.get(pk=service_item.pk).open_quantity == 0
    assert not SettlementItem.objects.present().exists()


def test_cancel_service_items_makes_one_cancellation_per_order_with_the_reason_text(
    service_item, agent
):
    elsewhere = SettlementItemFactory().order_item

    result = cancel([service_item, elsewhere], actor=agent, reason_of_reversal="Duplicate")

    assert {c.order_id for c in result.cancellations} == {
        service_item.order_id,
        elsewhere.order_id,
    }
    assert {c.description for c in Cancellation.objects.all()} == {"Duplicate"}
    assert set(Cancellation.objects.values_list("created_by", flat=True)) == {agent.pk}


def test_an_item_without_settlement_items_is_cancelled_with_a_warning(reason, agent):
    item = OrderItemFactory(billed=True)

    result = cancel([item], actor=agent)

    assert not result.has_errors
    assert result.has_warnings
    assert codes(result.items[0].messages) == ["NO_SETTLEMENT_ITEMS"]


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (
            lambda item: SettlementItemFactory(order_item=item, state="settled"),
            "SETTLEMENT_ITEM_SETTLED",
        ),
        (
            lambda item: SettlementItemFactory(order_item=item, state="exported"),
            "SETTLEMENT_ITEM_EXPORTED",
        ),
        (
            lambda item: OrderItem.objects.filter(pk=item.pk).update(cancelled_quantity=1),
            "ITEM_RETRANSMISSION_ERROR",
        ),
        (
            lambda item: (
                type(item.order)
                .objects.filter(pk=item.order_id)
                .update(status=OrderStatus.COMPLETED)
            ),
            "ORDER_NOT_CANCELLABLE",
        ),
    ],
    ids=["settled", "exported", "already-cancelled", "order-completed"],
)
def test_an_item_that_cannot_be_cancelled_is_named_with_why(service_item, agent, setup, code):
    setup(service_item)

    result = cancel([service_item], actor=agent)

    assert result.has_errors
    assert code in codes(result.items[0].messages)


def test_the_message_names_the_settled_settlement_item(service_item, agent):
    settled = SettlementItemFactory(order_item=service_item, state="settled")

    result = cancel([service_item], actor=agent)

    text = result.items[0].messages[0].render("en")
    assert text == (
        f"Settlement item {settled.pk} of service item {service_item.billing_item_id} "
        f"({service_item.sku}) is already settled and can't be removed."
    )


def test_an_unknown_item_id_is_not_found(service_item, agent):
    result = cancel(["999999", "abc", service_item], actor=agent)

    assert [codes(item.messages) for item in result.items] == [
        ["ITEM_NOT_FOUND_ERROR"],
        ["ITEM_NOT_FOUND_ERROR"],
        ["NOT_PROCESSED"],
    ]


def test_storno_s_own_order_item_id_is_not_an_item_id(service_item, agent):
    result = cancel([service_item.pk], actor=agent)

    assert codes(result.items[0].messages) == ["ITEM_NOT_FOUND_ERROR"]
    assert not Cancellation.objects.exists()


def test_an_item_cancelled_already_is_a_retransmission_as_aeb_says(service_item, agent):
    cancel([service_item], actor=agent)

    again = cancel([service_item], actor=agent)

    assert codes(again.items[0].messages) == ["ITEM_RETRANSMISSION_ERROR"]
    assert Cancellation.objects.count() == 1


def test_an_item_listed_twice_is_an_error(service_item, agent):
    result = cancel([service_item, service_item], actor=agent)

    assert codes(result.items[1].messages) == ["ITEM_RETRANSMISSION_ERROR"]
    assert not Cancellation.objects.exists()


def test_an_item_with_a_scheduled_cancellation_is_refused(service_item, reason, agent):
    writing.cancel_order(
        service_item.order,
        reason=reason,
        items=[quoting.ItemPick(service_item.pk, 1)],
        churn_time=timezone.now() + timedelta(days=3),
        actor=agent,
        via=API,
    )

    result = cancel([service_item], actor=agent)

    assert codes(result.items[0].messages) == ["ALREADY_SCHEDULED"]


def test_one_bad_item_leaves_every_item_as_it_was(service_item, agent):
    good = SettlementItemFactory().order_item
    SettlementItemFactory(order_item=service_item, state="settled")

    result = cancel([good, service_item], actor=agent)

    assert result.has_errors
    assert not result.has_only_retryable_errors
    assert codes(result.messages) == ["NOTHING_CANCELLED"]
    assert codes(result.items[0].messages) == ["NOT_PROCESSED"]
    assert not Cancellation.objects.exists()
    assert OrderItem.objects.get(pk=good.pk).cancelled_quantity == 0
    assert not SettlementItem.objects.filter(removed_at__isnull=False).exists()


def test_a_refusal_from_cancel_order_is_attached_to_the_request_and_rolls_back(agent):
    good = SettlementItemFactory().order_item
    CancellationReasonFactory(extra_information_needed=True, ordering=1)

    result = cancel([good], actor=agent)  # the chosen reason needs a description

    assert result.has_errors
    assert "CANCELLATION_REFUSED" in codes(result.messages)
    assert not Cancellation.objects.exists()


def test_without_any_active_reason_nothing_is_cancelled(agent):
    item = SettlementItemFactory().order_item

    result = cancel([item], actor=agent)

    assert "NO_REASON" in codes(result.messages)
    assert not Cancellation.objects.exists()


def test_there_is_no_cap_on_the_number_of_items(reason, agent):
    items = OrderItemFactory.create_batch(60, billed=True)

    result = cancel(items, actor=agent)

    assert not result.has_errors
    assert len(result.cancellations) == 60


def test_a_database_error_is_a_retryable_refusal(service_item, agent, monkeypatch):
    from django.db import OperationalError

    def busy(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(writing, "cancel_order", busy)

    result = cancel([service_item], actor=agent)

    assert result.has_errors
    assert result.has_only_retryable_errors
    assert "LOCK_ERROR" in codes(result.messages)


# --- which reason ------------------------------------------------------------------------------


def test_the_reason_is_the_one_whose_subject_or_billing_mapping_is_the_reason_text(db):
    CancellationReasonFactory(ordering=1)
    by_subject = CancellationReasonFactory(subject="Customer moved", ordering=5)
    by_mapping = CancellationReasonFactory(ordering=6)
    ReasonMapping.objects.create(
        reason=by_mapping, provider_kind=ProviderKind.BILLING, value="STORNO-DUP"
    )

    assert service_items.billing_reason("Customer moved") == by_subject
    assert service_items.billing_reason("STORNO-DUP") == by_mapping


def test_the_reason_falls_back_to_the_setting_then_the_first_active_in_catalog_order(db, settings):
    first = CancellationReasonFactory(ordering=1)
    configured = CancellationReasonFactory(ordering=9)
    CancellationReasonFactory(ordering=0, is_active=False)

    assert service_items.billing_reason("no such text") == first
    settings.BILLING_DEFAULT_REASON_ID = configured.pk
    assert service_items.billing_reason("") == configured


# --- languages ---------------------------------------------------------------------------------


def test_result_languages_keep_the_callers_order_and_drop_unknown_ones():
    assert billing.result_languages(["tr", "xx", "DE-de", "de"]) == ["tr", "de"]


def test_result_languages_fall_back_to_english():
    assert billing.result_languages(["xx", "fr"]) == ["en"]
    assert billing.result_languages([]) == ["en"]


def test_a_message_without_translations_is_given_in_english_only(service_item, settings, tmp_path):
    settings.LOCALE_PATHS = [tmp_path]  # no catalogs at all
    message = billing.unknown_item("42")

    assert message.texts(["de", "tr"]) == [
        {"languageISOCode": "en", "text": "There is no service item 42."}
    ]


def test_the_shipped_catalogs_answer_in_german_and_turkish_in_the_asked_order(service_item):
    message = billing.unknown_item("42")

    assert message.texts(["tr", "de"]) == [
        {"languageISOCode": "tr", "text": "42 hizmet kalemi yok."},
        {"languageISOCode": "de", "text": "Es gibt keine Leistungsposition 42."},
    ]


@pytest.fixture
def german_catalog(tmp_path, settings):
    """A German catalog with one billing message, compiled with msgfmt."""
    if not shutil.which("msgfmt"):
        pytest.skip("needs GNU gettext's msgfmt")
    folder = tmp_path / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "django.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "There is no service item %(item)s."\n'
        'msgstr "Es gibt keine Leistungsposition %(item)s."\n',
        encoding="utf-8",
    )
    subprocess.run(
        ["msgfmt", "-o", str(folder / "django.mo"), str(folder / "django.po")],  # noqa: S607
        check=True,
    )
    settings.LOCALE_PATHS = [tmp_path]  # resets Django's translation caches (and back after)


def test_a_message_is_given_in_each_requested_language_that_has_it_in_order(german_catalog):
    message = billing.unknown_item("42")

    assert message.texts(["tr", "de", "en"]) == [
        {"languageISOCode": "de", "text": "Es gibt keine Leistungsposition 42."},
        {"languageISOCode": "en", "text": "There is no service item 42."},
    ]
    assert message.texts(["en", "de"])[0]["languageISOCode"] == "en"


# --- selectors ---------------------------------------------------------------------------------


def test_blocked_items_names_each_item_that_cannot_be_cancelled_and_why(
    service_item, django_assert_num_queries
):
    order = service_item.order
    free = OrderItemFactory(order=order)
    settled = SettlementItemFactory(order_item=service_item, state="settled")
    gone = OrderItemFactory(order=order, cancelled_quantity=1)

    with django_assert_num_queries(3):
        blocked = billing.blocked_items(order)

    assert set(blocked) == {service_item.pk, gone.pk}
    assert free.pk not in blocked
    # In staff words: by SKU and description and the billed period, never an internal id.
    assert blocked[service_item.pk][0].startswith(f"{service_item.sku} (")
    assert "billed period" in blocked[service_item.pk][0]
    assert f"Settlement item {settled.pk}" not in blocked[service_item.pk][0]
    assert blocked[gone.pk] == [f"{gone.sku} ({gone.description}) is already cancelled."]


def test_settlement_items_lists_removed_ones_too(service_item, reason, agent):
    writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)
    SettlementItemFactory(order_item=OrderItemFactory(order=service_item.order))

    rows = list(billing.settlement_items(service_item.order))

    assert [row.is_removed for row in rows] == [True, True, False]


def test_service_item_ids_of_an_effective_cancellation_are_those_it_removed(
    service_item, reason, agent
):
    plain = OrderItemFactory(order=service_item.order)

    cancellation = writing.cancel_order(service_item.order, reason=reason, actor=agent, via=API)

    assert billing.service_item_ids(cancellation) == [service_item.pk]
    assert plain.pk not in billing.service_item_ids(cancellation)


def test_service_item_ids_of_a_scheduled_cancellation_are_the_items_it_will_end(
    service_item, reason, agent
):
    partly = OrderItemFactory(order=service_item.order, quantity=2)
    SettlementItemFactory(order_item=partly)

    cancellation = writing.cancel_order(
        service_item.order,
        reason=reason,
        items=[quoting.ItemPick(service_item.pk, 1), quoting.ItemPick(partly.pk, 1)],
        churn_time=timezone.now() + timedelta(days=1),
        actor=agent,
        via=API,
    )

    assert billing.service_item_ids(cancellation) == [service_item.pk]
    assert CancellationItem.objects.filter(cancellation=cancellation).count() == 2


# --- settlement-item services ------------------------------------------------------------------


def test_add_settlement_item_records_a_period_in_the_items_currency(agent):
    item = OrderItemFactory(unit_price_currency="USD", order__currency="USD")
    start = timezone.now()

    settlement = billing.add_settlement_item(
        item,
        amount=Decimal("19.99"),
        period_start=start,
        period_end=start + timedelta(days=30),
        actor=agent,
        via=API,
    )

    assert (settlement.currency, settlement.state) == ("USD", "open")
    assert AuditEntry.objects.filter(action="settlement_item.created").count() == 1


def test_add_settlement_item_names_each_bad_argument(agent):
    item = OrderItemFactory()
    start = timezone.now()

    with pytest.raises(CancellationError) as caught:
        billing.add_settlement_item(
            item,
            amount=Decimal("1.001"),
            period_start=start,
            period_end=start,
            state="paid",
            actor=agent,
            via=API,
        )

    assert set(caught.value.message_dict) == {"amount", "period_end", "state"}
    assert not SettlementItem.objects.exists()


def test_a_settlement_item_moves_forward_only(agent):
    settlement = SettlementItemFactory()

    billing.change_settlement_state(settlement, state="settled", actor=agent, via=API)
    with pytest.raises(CancellationError):
        billing.change_settlement_state(settlement, state="open", actor=agent, via=API)

    settlement.refresh_from_db()
    assert settlement.state == "settled"


def test_a_removed_settlement_item_cannot_change(agent):
    settlement = SettlementItemFactory(removed_at=timezone.now())

    with pytest.raises(CancellationError):
        billing.change_settlement_state(settlement, state="settled", actor=agent, via=API)
