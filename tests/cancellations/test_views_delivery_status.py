"""The cancellation page's deliveries, live: the JSON the page polls (who may read it, what it
says, in how many queries) and an attempt count that matches the history, staff retries too."""

import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from backoffice.templatetags.moments import moment
from cancellations.models import AuditEntry
from providers import dispatch
from providers.base import Outcome
from providers.models import Delivery
from providers.services import retry_delivery
from providers.states import DeliveryStatus
from tests.factories import UserFactory
from tests.providers.outbox_support import cancel, make_provider_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

VIEWER = [
    "cancellations.view_cancellation",
    "cancellations.view_order",
    "providers.view_delivery",
    "providers.view_deliveryattempt",
]


def status_url(cancellation):
    return reverse("staff:cancellation-deliveries", args=[cancellation.pk])


def retried_by_staff(make_provider):
    """Failed once (a retry), failed for good, retried by staff, then delivered: 3 attempts
    in the history, while the delivery's own counter started afresh at the staff retry."""
    alpha = make_provider("alpha")
    alpha.script.extend([Outcome.RETRY, Outcome.FAILED])
    cancellation = cancel()
    dispatch.deliver()
    Delivery.objects.update(next_attempt_at=timezone.now())
    dispatch.deliver()
    retry_delivery(Delivery.objects.get(), actor=None, via=AuditEntry.Via.WEB)
    dispatch.deliver()
    return cancellation


def test_the_status_of_each_delivery_is_given_as_the_page_shows_it(client, make_provider):
    make_provider("alpha")
    cancellation = cancel()
    next_try = timezone.now() + timedelta(seconds=20)
    Delivery.objects.update(
        attempts=1, next_attempt_at=next_try, last_status_code=503, last_error="Busy"
    )
    client.force_login(UserFactory(permissions=VIEWER))

    response = client.get(status_url(cancellation))

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert body["live"] is True
    (delivery,) = body["deliveries"]
    assert delivery | {"history": None} == {
        "id": Delivery.objects.get().pk,
        "status": "pending",
        "badge": "in_progress",
        "label": "Retrying",
        "attempts": 0,  # the history's count: no attempt was recorded
        "whenLabel": "Next try",
        "when": moment(next_try),
        "whenIso": next_try.isoformat(),
        "lastAnswer": "HTTP 503 Busy",
        "credentialsProblem": False,
        "retryable": True,
        "history": None,
    }


def test_nothing_is_live_once_every_delivery_is_settled(client, make_provider):
    make_provider("alpha")
    cancellation = cancel()
    dispatch.deliver()
    client.force_login(UserFactory(permissions=VIEWER))

    body = client.get(status_url(cancellation)).json()

    assert body["live"] is False
    (delivery,) = body["deliveries"]
    assert (delivery["status"], delivery["label"], delivery["whenLabel"]) == (
        "delivered",
        "Delivered",
        "Delivered",
    )
    assert delivery["retryable"] is False
    assert "1 attempt" in delivery["history"]


def test_the_attempts_match_the_history_after_a_staff_retry(client, make_provider):
    cancellation = retried_by_staff(make_provider)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)
    client.force_login(UserFactory(permissions=VIEWER))

    data = client.get(status_url(cancellation)).json()["deliveries"][0]
    page = client.get(cancellation.get_absolute_url()).content.decode()

    assert data["attempts"] == 3
    assert data["history"].count("<li>") == 3
    assert re.search(r'class="delivery-attempts"[^>]*>3</td>', page)
    assert "3 attempts" in page


def test_the_attempts_are_counted_for_someone_who_may_not_see_the_history(client, make_provider):
    cancellation = retried_by_staff(make_provider)
    client.force_login(UserFactory(permissions=VIEWER[:3]))

    data = client.get(status_url(cancellation)).json()["deliveries"][0]
    page = client.get(cancellation.get_absolute_url()).content.decode()

    assert data["attempts"] == 3
    assert "history" not in data
    assert re.search(r'class="delivery-attempts"[^>]*>3</td>', page)
    assert "3 attempts" not in page


@pytest.mark.parametrize(
    "permissions",
    [
        ["cancellations.view_cancellation"],  # not the deliveries
        ["providers.view_delivery"],  # not the cancellation
    ],
)
def test_the_status_needs_both_view_permissions(client, make_provider, permissions):
    make_provider("alpha")
    cancellation = cancel()
    client.force_login(UserFactory(permissions=permissions))

    assert client.get(status_url(cancellation)).status_code == 403


def test_the_status_is_for_staff_only(client, make_provider):
    make_provider("alpha")
    cancellation = cancel()
    client.force_login(UserFactory(permissions=VIEWER, is_staff=False))
    assert client.get(status_url(cancellation)).status_code == 403
    client.logout()
    assert client.get(status_url(cancellation)).status_code == 302  # to the login page


def test_an_unknown_cancellation_is_a_404(client, db):
    client.force_login(UserFactory(permissions=VIEWER))

    response = client.get(reverse("staff:cancellation-deliveries", args=["NOPE"]))

    assert response.status_code == 404


def test_the_status_takes_few_queries_whatever_the_number_of_deliveries(
    client, make_provider, django_assert_max_num_queries
):
    make_provider("alpha")
    cancellation = cancel()
    client.force_login(UserFactory(permissions=VIEWER))
    with django_assert_max_num_queries(7) as few:  # session, user, profile, 2 × permissions
        client.get(status_url(cancellation))
    for kind in ("beta", "gamma"):
        make_provider(kind)
    more = cancel()
    dispatch.deliver_due()

    with django_assert_max_num_queries(len(few)):
        body = client.get(status_url(more)).json()

    assert len(body["deliveries"]) == 3


def test_the_page_polls_only_while_a_delivery_can_change(client, make_provider):
    make_provider("alpha")
    cancellation = cancel()
    client.force_login(UserFactory(permissions=VIEWER))

    with override_settings(DELIVERY_STATUS_POLL_SECONDS=0.5):
        pending = client.get(cancellation.get_absolute_url()).content.decode()
    dispatch.deliver()
    settled = client.get(cancellation.get_absolute_url()).content.decode()

    assert "js/delivery_status.js" in pending
    assert f'"url": "{status_url(cancellation)}", "interval": 500' in pending
    assert 'aria-live="polite"' in pending
    assert "js/delivery_status.js" not in settled
    assert "http-equiv" not in settled


# --- the order page ------------------------------------------------------------------------


def order_status_url(order):
    return reverse("staff:order-deliveries", args=[order.pk])


def test_the_order_gives_the_deliveries_of_all_its_cancellations(client, make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.RETRY)
    cancellation = cancel()
    dispatch.deliver()
    client.force_login(UserFactory(permissions=VIEWER))

    body = client.get(order_status_url(cancellation.order)).json()

    assert body["live"] is True
    (delivery,) = body["deliveries"]
    assert (delivery["label"], delivery["attempts"]) == ("Retrying", 1)
    assert "history" not in delivery  # the order page shows none


def test_the_order_page_shows_each_cancellations_deliveries_and_polls_while_they_can_change(
    client, make_provider
):
    make_provider("alpha")
    cancellation = cancel()
    order = cancellation.order
    client.force_login(UserFactory(permissions=VIEWER))

    pending = client.get(order.get_absolute_url()).content.decode()
    dispatch.deliver()
    settled = client.get(order.get_absolute_url()).content.decode()

    delivery = Delivery.objects.get()
    assert f'<span data-delivery="{delivery.pk}">' in pending
    assert "js/delivery_status.js" in pending
    assert f'"url": "{order_status_url(order)}"' in pending
    assert "js/delivery_status.js" not in settled
    assert f'<span data-delivery="{delivery.pk}">' in settled


def test_the_order_page_shows_no_deliveries_without_their_permission(client, make_provider):
    make_provider("alpha")
    order = cancel().order
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    page = client.get(order.get_absolute_url()).content.decode()

    assert "data-delivery=" not in page
    assert "delivery_status.js" not in page
    assert client.get(order_status_url(order)).status_code == 403


def test_the_order_status_takes_few_queries_whatever_the_number_of_cancellations(
    client, make_provider, django_assert_max_num_queries
):
    make_provider("alpha")
    order = cancel().order
    client.force_login(UserFactory(permissions=VIEWER))
    with django_assert_max_num_queries(7) as few:  # session, user, profile, 2 × permissions
        client.get(order_status_url(order))
    make_provider("beta")
    bigger = cancel().order

    with django_assert_max_num_queries(len(few)):
        body = client.get(order_status_url(bigger)).json()

    assert len(body["deliveries"]) == 2


def test_an_unknown_order_is_a_404(client, db):
    client.force_login(UserFactory(permissions=VIEWER))

    assert client.get(reverse("staff:order-deliveries", args=[999999])).status_code == 404
