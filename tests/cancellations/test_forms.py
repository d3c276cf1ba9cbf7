"""The staff forms turn what was typed into service arguments and put service errors in place."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from cancellations.audit import AuditInfo
from cancellations.errors import CancellationError
from cancellations.forms import CancelOrderForm, OrderFilterForm
from cancellations.services.quoting import ExtraLine, ItemPick
from tests.cancellations.test_views import cancel_data
from tests.factories import CancellationReasonFactory

pytestmark = pytest.mark.django_db


def bound_form(order, reason, **overrides):
    form = CancelOrderForm(cancel_data(order, reason, **overrides), order=order)
    assert form.is_valid(), form.errors
    return form


def items_of(order):
    subscription = order.items.get(quantity=2)
    plain = order.items.get(quantity=1)
    return subscription, plain


# --- cancel form: parsing ----------------------------------------------------------------------


def test_whole_order_scope_passes_no_items(order_with_items, reason):
    subscription, _plain = items_of(order_with_items)

    form = bound_form(order_with_items, reason, **{f"item_{subscription.pk}": "0"})

    assert form.service_arguments()["items"] is None


def test_quantities_typed_for_the_whole_order_are_refused_at_the_scope(order_with_items, reason):
    subscription, _plain = items_of(order_with_items)
    data = cancel_data(order_with_items, reason, **{f"item_{subscription.pk}": "1"})

    form = CancelOrderForm(data, order=order_with_items)

    assert not form.is_valid()
    assert "Some items" in form.errors["scope"][0]


def test_the_error_summary_links_each_problem_to_its_field_in_page_order(order_with_items, reason):
    subscription, _plain = items_of(order_with_items)
    data = cancel_data(
        order_with_items,
        reason,
        churn_time="2030-06-01T09:30",
        **{f"item_{subscription.pk}": "1", "lines-0-unit_price_amount": "abc"},
    )

    form = CancelOrderForm(data, order=order_with_items)
    form.is_valid()

    ids = [field_id for field_id, _message in form.error_summary()]
    assert ids == ["id_scope", "id_churn_time", "id_lines-0-unit_price_amount"]
    assert form.error_summary()[2][1].startswith("Line 1: Amount: ")


def test_item_scope_passes_only_the_items_with_a_quantity(order_with_items, reason):
    subscription, plain = items_of(order_with_items)

    form = bound_form(
        order_with_items,
        reason,
        scope="items",
        **{f"item_{subscription.pk}": "2", f"item_{plain.pk}": "0"},
    )

    assert form.service_arguments()["items"] == [ItemPick(subscription.pk, 2)]


def test_a_datetime_is_read_in_the_active_time_zone(order_with_items, reason):
    with timezone.override(ZoneInfo("Europe/Istanbul")):
        form = bound_form(
            order_with_items, reason, churn_time_policy="at-time", churn_time="2030-06-01T09:30"
        )

    arguments = form.service_arguments()
    assert arguments["churn_time"] == datetime(2030, 6, 1, 6, 30, tzinfo=ZoneInfo("UTC"))
    assert arguments["churn_time_policy"] == ""


@pytest.mark.parametrize("policy", ["now", "at-next-renewal"])
def test_a_policy_is_passed_on_without_a_time(order_with_items, reason, policy):
    form = bound_form(order_with_items, reason, churn_time_policy=policy)

    arguments = form.service_arguments()
    assert (arguments["churn_time_policy"], arguments["churn_time"]) == (policy, None)


@pytest.mark.parametrize("policy", ["now", "at-next-renewal"])
def test_a_time_typed_beside_another_policy_is_refused(order_with_items, reason, policy):
    data = cancel_data(
        order_with_items, reason, churn_time_policy=policy, churn_time="2030-06-01T09:30"
    )

    form = CancelOrderForm(data, order=order_with_items)

    assert not form.is_valid()
    assert list(form.errors) == ["churn_time"]


def test_at_a_time_without_a_time_asks_for_one(order_with_items, reason):
    form = CancelOrderForm(
        cancel_data(order_with_items, reason, churn_time_policy="at-time"), order=order_with_items
    )

    assert not form.is_valid()
    assert form.errors == {"churn_time": ["Give the date and time it takes effect."]}


def test_untouched_lines_are_left_out_and_filled_ones_use_the_orders_currency(
    order_with_items, reason
):
    form = bound_form(
        order_with_items,
        reason,
        **{
            "lines-1-type": "credit",
            "lines-1-description": "Goodwill",
            "lines-1-unit_price_amount": "3.00",
            "lines-1-quantity": "2",
        },
    )

    assert form.service_arguments()["lines"] == [
        ExtraLine("credit", Decimal("3.00"), "EUR", 2, "Goodwill")
    ]


def test_a_half_filled_line_asks_for_the_amount(order_with_items, reason):
    form = CancelOrderForm(
        cancel_data(order_with_items, reason, **{"lines-0-description": "Fee"}),
        order=order_with_items,
    )

    assert not form.is_valid()
    assert list(form.lines.forms[0].errors) == ["unit_price_amount"]


def test_the_audit_note_and_who_asked_are_passed_to_cancel_order(order_with_items, reason):
    form = bound_form(
        order_with_items,
        reason,
        canceled_by="customer",
        audit_comment="Called in",
        ticket_link="https://tickets.example/9",
        time_spent="12",
    )

    arguments = form.cancel_arguments()
    assert arguments["canceled_by"] == "customer"
    assert arguments["audit"] == AuditInfo("Called in", 12, "https://tickets.example/9")


def test_rebilly_is_not_offered_as_who_canceled(order_with_items, reason):
    form = CancelOrderForm(
        cancel_data(order_with_items, reason, canceled_by="rebilly"), order=order_with_items
    )

    assert not form.is_valid()
    assert list(form.errors) == ["canceled_by"]


def test_an_item_with_nothing_left_gets_no_quantity_input(order_with_items, reason):
    subscription, plain = items_of(order_with_items)
    plain.cancelled_quantity = 1
    plain.save()

    form = CancelOrderForm(order=order_with_items)

    assert f"item_{plain.pk}" not in form.fields
    assert f"item_{subscription.pk}" in form.fields


# --- cancel form: reasons ----------------------------------------------------------------------


def test_reason_choices_are_the_active_reasons_in_catalog_order(order_with_items):
    later = CancellationReasonFactory(ordering=20)
    first = CancellationReasonFactory(ordering=10)
    CancellationReasonFactory(ordering=1, is_active=False)

    form = CancelOrderForm(order=order_with_items)

    choices = [value for value, _label in form.fields["reason"].choices if value]
    assert [choice.value for choice in choices] == [first.pk, later.pk]


def test_a_retired_reason_still_reaches_the_service(order_with_items):
    retired = CancellationReasonFactory(is_active=False)

    form = bound_form(order_with_items, retired)

    assert form.service_arguments()["reason"] == retired


# --- cancel form: service errors ---------------------------------------------------------------


def test_service_errors_land_next_to_the_fields_they_name(order_with_items, reason):
    subscription, plain = items_of(order_with_items)
    form = bound_form(
        order_with_items,
        reason,
        scope="items",
        **{
            f"item_{subscription.pk}": "0",
            f"item_{plain.pk}": "4",
            "lines-1-unit_price_amount": "1.00",
            "lines-1-description": "Fee",
        },
    )

    form.add_service_errors(
        CancellationError(
            {
                "reason": "bad reason",
                "description": "bad description",
                "churn_time": "bad time",
                "churn_time_policy": "bad policy",
                "items.0.quantity": "too many",
                "lines.0.unit_price_amount": "bad amount",
                "lines.0.unit_price_currency": "bad currency",
                "order": "bad order",
            }
        )
    )

    assert form.errors["reason"] == ["bad reason"]
    assert form.errors["description"] == ["bad description"]
    assert form.errors["churn_time"] == ["bad time"]
    assert form.errors["churn_time_policy"] == ["bad policy"]
    assert form.errors[f"item_{plain.pk}"] == ["too many"]
    assert form.non_field_errors() == ["bad order"]
    second_line = form.lines.forms[1]
    assert second_line.errors["unit_price_amount"] == ["bad amount"]
    assert second_line.non_field_errors() == ["bad currency"]


# --- order filters -----------------------------------------------------------------------------


def test_order_filter_refuses_an_end_date_before_the_start_date():
    form = OrderFilterForm({"placed_from": "2026-03-02", "placed_to": "2026-03-01"})

    assert not form.is_valid()
    assert list(form.errors) == ["placed_to"]
    assert form.cleaned_data["placed_from"] == date(2026, 3, 2)


def test_order_filter_offers_the_given_channels():
    form = OrderFilterForm({}, channels=["/shop/de", "/shop/tr"])

    assert [value for value, _label in form.fields["channel"].choices] == [
        "",
        "/shop/de",
        "/shop/tr",
    ]
    assert not form.is_filtering


@pytest.mark.parametrize("field", ["placed_from", "placed_to"])
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_order_filter_refuses_dates_no_order_can_have(field, day):
    form = OrderFilterForm({field: day})

    assert not form.is_valid()
    assert list(form.errors) == [field]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_a_time_no_cancellation_can_have_is_refused_before_any_time_zone_math(
    order_with_items, reason, moment
):
    with timezone.override(ZoneInfo("America/New_York")):
        form = CancelOrderForm(
            cancel_data(order_with_items, reason, churn_time_policy="at-time", churn_time=moment),
            order=order_with_items,
        )
        assert not form.is_valid()

    assert list(form.errors) == ["churn_time"]
