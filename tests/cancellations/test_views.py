"""The staff pages: find an order, read it, cancel it, undo a cancellation."""

import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.models import StaffProfile
from cancellations.audit import AuditInfo
from cancellations.models import AuditEntry, Cancellation, CancellationLine, ChurnTimePolicy
from cancellations.services import quoting, revoking, writing
from cancellations.services.quoting import ItemPick
from cancellations.states import CancellationStatus, OrderStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
WEB = AuditEntry.Via.WEB
ORDER_LIST = reverse("staff:order-list")


@pytest.fixture
def staff_client(client, agent):
    client.force_login(agent)
    return client


def cancel_url(order):
    return reverse("staff:order-cancel", args=[order.pk])


def revoke_url(cancellation):
    return reverse("staff:cancellation-revoke", args=[cancellation.pk])


def listed_numbers(response) -> list[str]:
    return [order.number for order in response.context["orders"]]


def cancel_data(order, reason, **overrides):
    """A complete POST body of the cancel form: whole order, now, no lines."""
    data = {
        "reason": reason.pk,
        "description": "",
        "scope": "whole",
        "churn_time_policy": "now",
        "churn_time": "",
        "canceled_by": "merchant",
        "audit_comment": "",
        "ticket_link": "",
        "time_spent": "",
        "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "10",
        "lines-0-type": "debit",
        "lines-0-description": "",
        "lines-0-unit_price_amount": "",
        "lines-0-quantity": "1",
        "lines-1-type": "debit",
        "lines-1-description": "",
        "lines-1-unit_price_amount": "",
        "lines-1-quantity": "1",
        "action": "confirm",
    }
    for item in order.items.all():
        data[f"item_{item.pk}"] = "0"
    data.update(overrides)
    return data


def field_errors(response, name) -> list[str]:
    return response.context["form"].errors.get(name, [])


# --- logging in and permissions ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name, needs",
    [
        ("staff:order-list", None),
        ("staff:order-detail", "order"),
        ("staff:order-cancel", "order"),
        ("staff:cancellation-detail", "cancellation"),
        ("staff:cancellation-revoke", "cancellation"),
    ],
)
def test_every_staff_page_sends_anonymous_visitors_to_the_login_page(client, url_name, needs):
    cancellation = writing.cancel_order(
        OrderItemFactory().order, reason=CancellationReasonFactory(), actor=None, via=WEB
    )
    args = {None: [], "order": [cancellation.order_id], "cancellation": [cancellation.pk]}[needs]
    url = reverse(url_name, args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_the_root_address_leads_to_the_dashboard(staff_client):
    response = staff_client.get("/")

    assert response.status_code == 302
    assert response.url == reverse("staff:dashboard")


def test_the_login_page_labels_its_inputs(client):
    response = client.get(reverse("login"))

    content = response.content.decode()
    assert '<label for="id_username"' in content
    assert '<label for="id_password"' in content


def test_logging_in_leads_to_the_dashboard(client, agent):
    response = client.post(
        reverse("login"), {"username": agent.username, "password": "correct horse battery staple"}
    )

    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.get(response.url).url == reverse("staff:dashboard")


def test_without_cancellation_rights_the_root_address_leads_to_the_orders(client):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    response = client.get("/")

    assert response.url == reverse("staff:order-list")
    assert client.get(response.url).status_code == 200


def test_order_pages_are_forbidden_without_the_view_permission(client, order_with_items):
    client.force_login(UserFactory())

    assert client.get(ORDER_LIST).status_code == 403
    assert client.get(order_with_items.get_absolute_url()).status_code == 403


def test_cancel_page_is_forbidden_without_the_cancel_permission(client, order_with_items, reason):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    assert client.get(cancel_url(order_with_items)).status_code == 403
    response = client.post(cancel_url(order_with_items), cancel_data(order_with_items, reason))
    assert response.status_code == 403
    assert Cancellation.objects.count() == 0


def test_revoke_page_is_forbidden_without_the_revoke_permission(client, order_with_items, reason):
    cancellation = writing.cancel_order(order_with_items, reason=reason, actor=None, via=WEB)
    client.force_login(
        UserFactory(permissions=["cancellations.view_order", "cancellations.view_cancellation"])
    )

    assert client.get(revoke_url(cancellation)).status_code == 403
    assert client.post(revoke_url(cancellation)).status_code == 403
    cancellation.refresh_from_db()
    assert cancellation.status == CancellationStatus.COMPLETED


# --- the page frame ----------------------------------------------------------------------------


def test_pages_offer_a_language_switcher_and_a_logout_form(staff_client):
    content = staff_client.get(ORDER_LIST).content.decode()

    assert f'action="{reverse("set_language")}" method="post"' in content
    for code in ("en", "de", "tr"):
        assert f'<option value="{code}"' in content
    assert f'action="{reverse("logout")}" method="post"' in content


def test_pages_name_the_time_zone_of_the_user(staff_client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Istanbul")

    response = staff_client.get(ORDER_LIST)

    assert "Times in Europe/Istanbul" in response.content.decode()


def test_staff_pages_are_for_staff_users_only(client):
    permissions = ["cancellations.view_order"]
    client.force_login(UserFactory(is_staff=False, permissions=permissions))
    assert client.get(ORDER_LIST).status_code == 403

    client.force_login(UserFactory(is_staff=True, permissions=permissions))
    response = client.get(ORDER_LIST)
    assert response.status_code == 200
    assert reverse("admin:index") in response.content.decode()


# --- order list --------------------------------------------------------------------------------


@pytest.mark.parametrize("term", ["ORD-77", "hopper", "GRACE@EXAMPLE"])
def test_order_list_searches_number_customer_and_email(staff_client, term):
    OrderFactory(
        number="ORD-7788", customer_name="Grace Hopper", customer_email="grace@example.com"
    )
    OrderFactory(number="ORD-1000", customer_name="Ada Lovelace", customer_email="ada@example.org")

    response = staff_client.get(ORDER_LIST, {"q": term})

    assert listed_numbers(response) == ["ORD-7788"]


def test_order_list_filters_by_status(staff_client):
    OrderFactory(number="OPEN-1")
    OrderFactory(number="HOLD-1", status=OrderStatus.ON_HOLD)

    response = staff_client.get(ORDER_LIST, {"status": OrderStatus.ON_HOLD})

    assert listed_numbers(response) == ["HOLD-1"]


def test_order_list_filters_by_channel_chosen_from_the_known_channels(staff_client):
    OrderFactory(number="DE-1", channel="/shop/de")
    OrderFactory(number="DE-2", channel="/shop/de")
    OrderFactory(number="TR-1", channel="/shop/tr")

    response = staff_client.get(ORDER_LIST, {"channel": "/shop/tr"})

    assert listed_numbers(response) == ["TR-1"]
    offered = [value for value, _label in response.context["form"].fields["channel"].choices]
    assert offered == ["", "/shop/de", "/shop/tr"]


def test_order_list_filters_by_placed_dates_as_days_in_the_users_time_zone(staff_client, agent):
    StaffProfile.objects.create(user=agent, time_zone="Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    # 00:30 on 2 March in Berlin is 23:30 UTC on 1 March: the day is the user's, not UTC's.
    OrderFactory(number="LATE-1-MARCH", placed_at=datetime(2026, 3, 1, 23, 30, tzinfo=berlin))
    OrderFactory(number="EARLY-2-MARCH", placed_at=datetime(2026, 3, 2, 0, 30, tzinfo=berlin))
    OrderFactory(number="28-FEB", placed_at=datetime(2026, 2, 28, 12, 0, tzinfo=berlin))

    response = staff_client.get(
        ORDER_LIST, {"placed_from": "2026-03-01", "placed_to": "2026-03-01"}
    )

    assert listed_numbers(response) == ["LATE-1-MARCH"]


def test_order_list_ignores_an_invalid_filter_and_says_so(staff_client):
    OrderFactory(number="ORD-1")

    response = staff_client.get(ORDER_LIST, {"status": "nonsense", "placed_from": "yesterday"})

    assert response.status_code == 200
    assert listed_numbers(response) == ["ORD-1"]
    assert set(response.context["form"].errors) == {"status", "placed_from"}


def test_order_list_shows_fifty_per_page_and_keeps_the_filters_in_page_links(staff_client):
    now = timezone.now()
    for index in range(51):
        OrderFactory(number=f"HOLD-{index:03d}", status=OrderStatus.ON_HOLD, placed_at=now)
    OrderFactory(number="OPEN-1")

    first = staff_client.get(ORDER_LIST, {"status": OrderStatus.ON_HOLD})
    second = staff_client.get(ORDER_LIST, {"status": OrderStatus.ON_HOLD, "page": 2})

    assert len(listed_numbers(first)) == 50
    assert "?status=on_hold&amp;page=2" in first.content.decode()
    assert len(listed_numbers(second)) == 1
    assert set(listed_numbers(first) + listed_numbers(second)) == {
        f"HOLD-{index:03d}" for index in range(51)
    }


def test_order_list_treats_a_page_number_out_of_range_as_the_last_page(staff_client):
    OrderFactory(number="ORD-1")

    response = staff_client.get(ORDER_LIST, {"page": "99"})

    assert response.status_code == 200
    assert listed_numbers(response) == ["ORD-1"]


def test_order_list_explains_an_empty_search(staff_client):
    OrderFactory(number="ORD-1")

    response = staff_client.get(ORDER_LIST, {"q": "nobody"})

    assert listed_numbers(response) == []
    assert "No orders match" in response.content.decode()


def test_order_list_shows_status_badges(staff_client):
    OrderFactory(status=OrderStatus.PARTIALLY_CANCELLED)

    content = staff_client.get(ORDER_LIST).content.decode()

    assert '<span class="badge badge-partially_cancelled">Partially cancelled</span>' in content


def test_order_list_needs_the_same_queries_for_many_orders(
    staff_client, django_assert_max_num_queries
):
    OrderFactory.create_batch(2)
    with django_assert_max_num_queries(8) as few:
        staff_client.get(ORDER_LIST, {"q": "ORD"})
    OrderFactory.create_batch(60, channel="/shop/tr")

    with django_assert_max_num_queries(len(few)):
        response = staff_client.get(ORDER_LIST, {"q": "ORD"})

    assert len(listed_numbers(response)) == 50


# --- order detail ------------------------------------------------------------------------------


def test_order_detail_shows_customer_items_and_external_ids(staff_client, order_with_items):
    order_with_items.external_ids = {"callisto": "4711", "js7OrderIds": ["#1", "#2"]}
    order_with_items.save()

    content = staff_client.get(order_with_items.get_absolute_url()).content.decode()

    assert order_with_items.customer_name in content
    for item in order_with_items.items.all():
        assert item.sku in content
    assert "30.00 EUR" in content
    assert "4711" in content
    assert "#1, #2" in content


def test_order_detail_shows_the_total_and_after_a_cancellation_what_is_open(
    staff_client, order_with_items, reason
):
    order = order_with_items  # 2 x 30.00 + 1 x 12.50
    url = order.get_absolute_url()
    assert "72.50 EUR" in staff_client.get(url).content.decode()
    plain = order.items.get(quantity=1)

    writing.cancel_order(order, reason=reason, actor=None, via="web", items=[ItemPick(plain.pk, 1)])

    content = staff_client.get(url).content.decode()
    assert "72.50 EUR" in content
    assert "(12.50 EUR cancelled, 60.00 EUR open)" in content


def test_order_detail_links_parent_and_child_orders(staff_client):
    parent = OrderFactory(number="PARENT-1")
    child = OrderFactory(number="CHILD-1", parent=parent)

    parent_page = staff_client.get(parent.get_absolute_url()).content.decode()
    child_page = staff_client.get(child.get_absolute_url()).content.decode()

    assert f'href="{child.get_absolute_url()}"' in parent_page
    assert f'href="{parent.get_absolute_url()}"' in child_page


def test_order_detail_lists_cancellations_with_links(staff_client, order_with_items, reason):
    cancellation = writing.cancel_order(order_with_items, reason=reason, actor=None, via=WEB)

    response = staff_client.get(order_with_items.get_absolute_url())

    assert f'href="{cancellation.get_absolute_url()}"' in response.content.decode()


def test_order_detail_highlights_scheduled_cancellations(staff_client, order_with_items, reason):
    subscription = order_with_items.items.get(quantity=2)
    writing.cancel_order(
        order_with_items,
        reason=reason,
        items=[ItemPick(subscription.pk, 1)],
        churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
        actor=None,
        via=WEB,
    )

    content = staff_client.get(order_with_items.get_absolute_url()).content.decode()

    assert "Scheduled: will be cancelled on" in content
    assert "1 will be cancelled on" in content
    assert 'class="row-scheduled"' in content


def test_order_detail_shows_the_audit_trail_newest_first(staff_client, order_with_items, reason):
    cancellation = writing.cancel_order(order_with_items, reason=reason, actor=None, via=WEB)

    entries = staff_client.get(order_with_items.get_absolute_url()).context["audit_entries"]

    assert [entry.action for entry in entries] == [
        "order.status_changed",
        "cancellation.completed",
        "cancellation.created",
    ]
    assert all(entry.cancellation_id == cancellation.pk for entry in entries)


def test_order_detail_shows_the_latest_fifty_audit_entries_with_the_total(
    staff_client, order_with_items
):
    AuditEntry.objects.bulk_create(
        AuditEntry(order=order_with_items, action=f"test.{n}", actor_label="x") for n in range(55)
    )

    response = staff_client.get(order_with_items.get_absolute_url())

    assert len(response.context["audit_entries"]) == 50
    assert "The latest 50 of 55 entries" in response.content.decode()


def test_order_detail_offers_cancelling_to_users_who_may(staff_client, order_with_items):
    response = staff_client.get(order_with_items.get_absolute_url())

    assert f'href="{cancel_url(order_with_items)}"' in response.content.decode()


def test_order_detail_hides_cancelling_without_the_permission(client, order_with_items):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    response = client.get(order_with_items.get_absolute_url())

    assert cancel_url(order_with_items) not in response.content.decode()


def test_order_detail_hides_cancelling_for_a_completed_order(staff_client):
    order = OrderFactory(status=OrderStatus.COMPLETED)

    response = staff_client.get(order.get_absolute_url())

    assert cancel_url(order) not in response.content.decode()


def test_order_detail_of_an_unknown_order_is_not_found(staff_client):
    assert staff_client.get(reverse("staff:order-detail", args=[999999])).status_code == 404


def test_order_detail_needs_the_same_queries_for_many_rows(
    staff_client, django_assert_max_num_queries, reason
):
    order = OrderFactory()
    OrderItemFactory(order=order, quantity=3, subscription=True)
    writing.cancel_order(order, reason=reason, items=None, actor=None, via=WEB)
    with django_assert_max_num_queries(20) as few:
        staff_client.get(order.get_absolute_url())

    big = OrderFactory()
    OrderFactory.create_batch(5, parent=big)
    items = OrderItemFactory.create_batch(12, order=big, quantity=5, subscription=True)
    for item in items[:6]:
        writing.cancel_order(big, reason=reason, items=[ItemPick(item.pk, 2)], actor=None, via=WEB)
    for item in items[6:]:
        writing.cancel_order(
            big,
            reason=reason,
            items=[ItemPick(item.pk, 1)],
            churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
            actor=None,
            via=WEB,
        )

    with django_assert_max_num_queries(len(few)):
        response = staff_client.get(big.get_absolute_url())

    assert len(response.context["cancellations"]) == 12


# --- cancel form: showing it -------------------------------------------------------------------


def test_cancel_form_offers_active_reasons_in_catalog_order(staff_client, order_with_items):
    CancellationReasonFactory(subject="Second", ordering=20)
    CancellationReasonFactory(subject="First", ordering=10)
    CancellationReasonFactory(subject="Retired", ordering=5, is_active=False)

    content = staff_client.get(cancel_url(order_with_items)).content.decode()

    offered = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', content)
    assert offered == ["First", "Second"]


def test_cancel_form_marks_reasons_that_need_a_description(staff_client, order_with_items):
    needy = CancellationReasonFactory(subject="Other", extra_information_needed=True)

    content = staff_client.get(cancel_url(order_with_items)).content.decode()

    assert f'<option value="{needy.pk}" data-needs-description="true">Other *</option>' in content


def test_cancel_form_has_one_quantity_input_per_open_item(staff_client, order_with_items):
    content = staff_client.get(cancel_url(order_with_items)).content.decode()

    for item in order_with_items.items.all():
        assert f'name="item_{item.pk}"' in content
        assert f'max="{item.quantity}"' in content


def test_cancel_form_of_a_cancelled_order_sends_back_to_the_order(staff_client, reason):
    order = OrderFactory(status=OrderStatus.CANCELLED)

    response = staff_client.get(cancel_url(order), follow=True)

    assert response.redirect_chain == [(order.get_absolute_url(), 302)]
    # Natural words, not "is cancelled and can't be cancelled".
    assert f"Order {order.number} is already cancelled." in response.content.decode()


# --- cancel form: preview ----------------------------------------------------------------------


def test_preview_shows_the_prorated_credit_and_saves_nothing(
    staff_client, order_with_items, reason
):
    data = cancel_data(order_with_items, reason, action="preview", prorated="on")

    response = staff_client.post(cancel_url(order_with_items), data)

    quote = response.context["quote"]
    assert quote.prorated_credit > 0
    content = response.content.decode()
    assert f"{quote.prorated_credit} EUR" in content
    assert f"{quote.net_amount} EUR" in content
    assert 'value="confirm"' in content
    assert Cancellation.objects.count() == 0


def test_preview_of_a_later_cancellation_says_it_is_scheduled(
    staff_client, order_with_items, reason
):
    data = cancel_data(
        order_with_items, reason, action="preview", churn_time_policy="at-next-renewal"
    )

    response = staff_client.post(cancel_url(order_with_items), data)

    assert response.context["quote"].is_scheduled
    assert "Scheduled: nothing changes until" in response.content.decode()


def test_preview_carries_every_answer_in_hidden_fields(staff_client, order_with_items, reason):
    data = cancel_data(
        order_with_items,
        reason,
        action="preview",
        audit_comment="Customer called",
        **{"lines-0-unit_price_amount": "5.00", "lines-0-description": "Fee"},
    )

    content = staff_client.post(cancel_url(order_with_items), data).content.decode()

    assert '<input type="hidden" name="audit_comment" value="Customer called"' in content
    assert '<input type="hidden" name="lines-0-unit_price_amount" value="5.00"' in content
    assert '<input type="hidden" name="lines-TOTAL_FORMS" value="2"' in content


# --- cancel form: confirming -------------------------------------------------------------------


def test_confirming_cancels_the_whole_order_and_shows_the_cancellation(
    staff_client, agent, order_with_items, reason
):
    data = cancel_data(
        order_with_items,
        reason,
        audit_comment="Customer called",
        ticket_link="https://tickets.example/1",
        time_spent="7",
    )

    response = staff_client.post(cancel_url(order_with_items), data, follow=True)

    cancellation = Cancellation.objects.get()
    assert response.redirect_chain == [(cancellation.get_absolute_url(), 302)]
    assert "is done" in response.content.decode()
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.CANCELLED
    assert cancellation.created_by == agent
    assert (cancellation.audit_comment, cancellation.audit_time_spent) == ("Customer called", 7)
    created = AuditEntry.objects.get(action="cancellation.created")
    assert (created.via, created.actor) == (WEB, agent)


def test_confirming_with_quantities_cancels_part_of_the_order(
    staff_client, order_with_items, reason
):
    subscription = order_with_items.items.get(quantity=2)
    data = cancel_data(order_with_items, reason, scope="items", **{f"item_{subscription.pk}": "1"})

    staff_client.post(cancel_url(order_with_items), data)

    cancellation = Cancellation.objects.get()
    assert not cancellation.is_whole_order
    assert [(row.order_item_id, row.quantity) for row in cancellation.items.all()] == [
        (subscription.pk, 1)
    ]
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.PARTIALLY_CANCELLED


def test_confirming_at_a_time_schedules_it_in_the_users_time_zone(
    staff_client, agent, order_with_items, reason
):
    StaffProfile.objects.create(user=agent, time_zone="America/New_York")
    local = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("America/New_York"))
    data = cancel_data(
        order_with_items,
        reason,
        churn_time_policy="at-time",
        churn_time=local.strftime("%Y-%m-%dT%H:%M"),
    )

    response = staff_client.post(cancel_url(order_with_items), data, follow=True)

    cancellation = Cancellation.objects.get()
    assert cancellation.status == CancellationStatus.CONFIRMED
    assert cancellation.churn_time == local.replace(second=0, microsecond=0)
    assert "is scheduled for" in response.content.decode()
    order_with_items.refresh_from_db()
    assert order_with_items.status == OrderStatus.OPEN


def test_confirming_at_the_end_of_the_service_period_schedules_it_then(
    staff_client, order_with_items, reason
):
    subscription = order_with_items.items.get(quantity=2)
    data = cancel_data(
        order_with_items,
        reason,
        scope="items",
        churn_time_policy="at-next-renewal",
        **{f"item_{subscription.pk}": "2"},
    )

    staff_client.post(cancel_url(order_with_items), data)

    cancellation = Cancellation.objects.get()
    assert cancellation.status == CancellationStatus.CONFIRMED
    assert cancellation.churn_time_policy == ChurnTimePolicy.AT_NEXT_RENEWAL
    assert cancellation.churn_time == subscription.period_end


def test_confirming_with_a_fee_line_bills_it_in_the_orders_currency(
    staff_client, order_with_items, reason
):
    data = cancel_data(
        order_with_items,
        reason,
        **{
            "lines-0-type": "debit",
            "lines-0-description": "Handling",
            "lines-0-unit_price_amount": "4.50",
            "lines-0-quantity": "2",
        },
    )

    staff_client.post(cancel_url(order_with_items), data)

    line = CancellationLine.objects.get()
    assert (line.unit_price_amount, line.unit_price_currency, line.quantity) == (
        Decimal("4.50"),
        "EUR",
        2,
    )
    assert Cancellation.objects.get().line_item_subtotal_amount == Decimal("9.00")


# --- cancel form: errors -----------------------------------------------------------------------


def assert_nothing_saved(order):
    assert Cancellation.objects.count() == 0
    assert AuditEntry.objects.count() == 0
    order.refresh_from_db()
    assert order.status == OrderStatus.OPEN
    assert all(item.cancelled_quantity == 0 for item in order.items.all())


@pytest.mark.parametrize("action", ["preview", "confirm"])
def test_a_retired_reason_is_refused_next_to_the_reason(staff_client, order_with_items, action):
    retired = CancellationReasonFactory(subject="Old", is_active=False)

    response = staff_client.post(
        cancel_url(order_with_items), cancel_data(order_with_items, retired, action=action)
    )

    assert response.status_code == 200
    assert field_errors(response, "reason") == ["The reason “Old” is no longer offered."]
    assert_nothing_saved(order_with_items)


def test_a_reason_that_needs_a_description_refuses_an_empty_one(staff_client, order_with_items):
    needy = CancellationReasonFactory(extra_information_needed=True)

    response = staff_client.post(cancel_url(order_with_items), cancel_data(order_with_items, needy))

    assert field_errors(response, "description") == ["This reason needs a description."]
    assert 'id="id_description_error"' in response.content.decode()
    assert_nothing_saved(order_with_items)


def test_too_large_a_quantity_is_refused_next_to_that_item(staff_client, order_with_items, reason):
    plain = order_with_items.items.get(quantity=1)
    data = cancel_data(order_with_items, reason, scope="items", **{f"item_{plain.pk}": "5"})

    response = staff_client.post(cancel_url(order_with_items), data)

    assert field_errors(response, f"item_{plain.pk}") == [
        f"Only 1 of {plain.sku} can still be cancelled."
    ]
    assert_nothing_saved(order_with_items)


def test_picking_no_item_is_refused_at_the_top_of_the_form(staff_client, order_with_items, reason):
    response = staff_client.post(
        cancel_url(order_with_items), cancel_data(order_with_items, reason, scope="items")
    )

    assert response.context["form"].non_field_errors() == [
        "Pick at least one item, or cancel the whole order."
    ]
    assert_nothing_saved(order_with_items)


def test_a_time_in_the_past_is_refused_next_to_the_time(staff_client, order_with_items, reason):
    data = cancel_data(
        order_with_items, reason, churn_time_policy="at-time", churn_time="2020-01-01T10:00"
    )

    response = staff_client.post(cancel_url(order_with_items), data)

    assert field_errors(response, "churn_time") == ["The effective time can't be in the past."]
    assert_nothing_saved(order_with_items)


def test_end_of_period_without_a_service_period_is_refused_next_to_when(
    staff_client, order_with_items, reason
):
    plain = order_with_items.items.get(quantity=1)
    data = cancel_data(
        order_with_items,
        reason,
        scope="items",
        churn_time_policy="at-next-renewal",
        **{f"item_{plain.pk}": "1"},
    )

    response = staff_client.post(cancel_url(order_with_items), data)

    assert field_errors(response, "churn_time_policy") == [
        "None of the cancelled items has a service period to run out."
    ]
    assert_nothing_saved(order_with_items)


def test_a_line_with_too_precise_an_amount_is_refused_next_to_that_amount(
    staff_client, order_with_items, reason
):
    data = cancel_data(
        order_with_items,
        reason,
        **{"lines-1-unit_price_amount": "1.005", "lines-1-description": "Fee"},
    )

    response = staff_client.post(cancel_url(order_with_items), data)

    second_line = response.context["form"].lines.forms[1]
    assert second_line.errors == {"unit_price_amount": ["Use at most two decimal places."]}
    assert_nothing_saved(order_with_items)


def test_a_tampered_form_gets_an_error_not_a_crash(staff_client, order_with_items, reason):
    data = cancel_data(order_with_items, reason)
    del data["lines-TOTAL_FORMS"]
    data["reason"] = "not-a-number"

    response = staff_client.post(cancel_url(order_with_items), data)

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert_nothing_saved(order_with_items)


def test_changing_after_preview_shows_the_form_again_with_the_answers(
    staff_client, order_with_items, reason
):
    data = cancel_data(order_with_items, reason, action="edit", audit_comment="Keep me")

    response = staff_client.post(cancel_url(order_with_items), data)

    assert response.templates[0].name == "cancellations/order_cancel.html"
    assert 'value="Keep me"' in response.content.decode()
    assert Cancellation.objects.count() == 0


# --- cancellation detail -----------------------------------------------------------------------


@pytest.fixture
def scheduled_cancellation(order_with_items, reason, agent):
    return writing.cancel_order(
        order_with_items,
        reason=reason,
        churn_time_policy=ChurnTimePolicy.AT_NEXT_RENEWAL,
        prorated=True,
        lines=[quoting.ExtraLine("debit", Decimal("5.00"), "EUR", 1, "Handling")],
        description="Moved abroad",
        actor=agent,
        via=WEB,
    )


def test_cancellation_detail_shows_items_lines_money_and_audit(
    staff_client, scheduled_cancellation
):
    cancellation = scheduled_cancellation

    response = staff_client.get(cancellation.get_absolute_url())

    content = response.content.decode()
    assert "Moved abroad" in content
    assert "Handling" in content
    assert f"{cancellation.prorated_credit_amount} EUR" in content
    assert f"{cancellation.net_amount} EUR" in content
    assert "Scheduled: will be cancelled on" in content
    assert [entry.action for entry in response.context["audit_entries"]] == ["cancellation.created"]


def test_cancellation_detail_links_ticket_only_when_it_is_a_web_address(
    staff_client, order_with_items, reason
):
    cancellation = writing.cancel_order(
        order_with_items,
        reason=reason,
        audit=AuditInfo(ticket_link="javascript:alert(1)"),
        actor=None,
        via=WEB,
    )

    content = staff_client.get(cancellation.get_absolute_url()).content.decode()

    assert "javascript:alert(1)" in content
    assert 'href="javascript:' not in content


def test_cancellation_detail_offers_undo_to_users_who_may(staff_client, scheduled_cancellation):
    content = staff_client.get(scheduled_cancellation.get_absolute_url()).content.decode()

    assert f'href="{revoke_url(scheduled_cancellation)}"' in content


def test_cancellation_detail_hides_undo_without_the_permission(client, scheduled_cancellation):
    client.force_login(UserFactory(permissions=["cancellations.view_cancellation"]))

    content = client.get(scheduled_cancellation.get_absolute_url()).content.decode()

    assert revoke_url(scheduled_cancellation) not in content


def test_cancellation_detail_hides_undo_once_revoked(staff_client, scheduled_cancellation):
    revoking.revoke_cancellation(scheduled_cancellation, actor=None, via=WEB)

    content = staff_client.get(scheduled_cancellation.get_absolute_url()).content.decode()

    assert revoke_url(scheduled_cancellation) not in content


def test_cancellation_detail_needs_the_same_queries_for_many_rows(
    staff_client, django_assert_max_num_queries, reason
):
    small = writing.cancel_order(OrderItemFactory().order, reason=reason, actor=None, via=WEB)
    with django_assert_max_num_queries(20) as few:
        staff_client.get(small.get_absolute_url())

    order = OrderFactory()
    OrderItemFactory.create_batch(15, order=order, quantity=2, subscription=True)
    lines = [quoting.ExtraLine("credit", Decimal("1.00"), "EUR", 1) for _ in range(10)]
    big = writing.cancel_order(order, reason=reason, lines=lines, actor=None, via=WEB)

    with django_assert_max_num_queries(len(few)):
        staff_client.get(big.get_absolute_url())


# --- revoke ------------------------------------------------------------------------------------


def test_revoke_page_asks_before_undoing(staff_client, scheduled_cancellation):
    response = staff_client.get(revoke_url(scheduled_cancellation))

    assert response.status_code == 200
    assert "Yes, undo it" in response.content.decode()
    scheduled_cancellation.refresh_from_db()
    assert scheduled_cancellation.status == CancellationStatus.CONFIRMED


def test_confirming_the_revoke_undoes_the_cancellation_with_the_comment(
    staff_client, agent, order_with_items, reason
):
    cancellation = writing.cancel_order(order_with_items, reason=reason, actor=None, via=WEB)

    response = staff_client.post(revoke_url(cancellation), {"comment": "By mistake"}, follow=True)

    assert response.redirect_chain == [(cancellation.get_absolute_url(), 302)]
    assert "is undone" in response.content.decode()
    cancellation.refresh_from_db()
    order_with_items.refresh_from_db()
    assert cancellation.status == CancellationStatus.REVOKED
    assert (cancellation.revoked_by, cancellation.revoke_comment) == (agent, "By mistake")
    assert order_with_items.status == OrderStatus.OPEN
    revoked = AuditEntry.objects.get(action="cancellation.revoked")
    assert revoked.via == WEB


def test_too_long_a_revoke_comment_is_refused_next_to_it(staff_client, scheduled_cancellation):
    response = staff_client.post(revoke_url(scheduled_cancellation), {"comment": "x" * 256})

    assert response.context["form"].errors == {"comment": ["Use at most 255 characters."]}
    scheduled_cancellation.refresh_from_db()
    assert scheduled_cancellation.status == CancellationStatus.CONFIRMED


def test_a_revoked_cancellation_cannot_be_revoked_again(staff_client, scheduled_cancellation):
    revoking.revoke_cancellation(scheduled_cancellation, actor=None, via=WEB)

    response = staff_client.post(revoke_url(scheduled_cancellation), follow=True)

    assert response.redirect_chain == [(scheduled_cancellation.get_absolute_url(), 302)]
    assert "can&#x27;t be undone" in response.content.decode()
    assert AuditEntry.objects.filter(action="cancellation.revoked").count() == 1
