"""The outbox in the admin: the list, its filters and search, attempts, the attention list,
the retry action, provider settings."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from providers import dispatch
from providers.base import Outcome
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.factories import SuperUserFactory, UserFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:providers_delivery_changelist")
ATTENTION_URL = reverse("admin:providers_deliveryneedingattention_changelist")


@pytest.fixture
def admin_client(client):
    client.force_login(SuperUserFactory())
    return client


def failed_and_delivered(make_provider):
    alpha = make_provider("alpha")
    alpha.script.append(Outcome.FAILED)
    failed, delivered = cancel(), cancel()
    dispatch.deliver_due()
    return failed, delivered


def listed_ids(response):
    return {row.pk for row in response.context["cl"].result_list}


def test_the_delivery_list_costs_the_same_queries_for_4_or_20_rows(
    admin_client, make_provider, django_assert_max_num_queries
):
    make_provider("alpha")
    make_provider("beta")
    for _ in range(2):
        cancel()
    with django_assert_max_num_queries(8) as few:
        assert admin_client.get(LIST_URL).status_code == 200

    for _ in range(8):
        cancel()
    with django_assert_max_num_queries(len(few)):
        response = admin_client.get(LIST_URL)

    assert response.context["cl"].result_count == 20


def test_the_list_filters_by_status_provider_and_action(admin_client, make_provider):
    failed, _delivered = failed_and_delivered(make_provider)

    response = admin_client.get(LIST_URL, {"status__exact": "failed", "action__exact": "add"})

    assert listed_ids(response) == {Delivery.objects.get(cancellation=failed).pk}
    response = admin_client.get(LIST_URL, {"provider__exact": "beta"})
    assert listed_ids(response) == set()


def test_the_list_finds_deliveries_by_order_number_or_cancellation_id(admin_client, make_provider):
    _failed, delivered = failed_and_delivered(make_provider)
    wanted = Delivery.objects.get(cancellation=delivered).pk

    by_number = admin_client.get(LIST_URL, {"q": delivered.order.number})
    by_id = admin_client.get(LIST_URL, {"q": delivered.pk})

    assert listed_ids(by_number) == listed_ids(by_id) == {wanted}


def test_the_list_links_each_delivery_to_its_cancellation_whatever_its_id(
    admin_client, make_provider
):
    make_provider("alpha")
    # A bulk job's id: the admin would read an unquoted "_23" as "#".
    cancellation = cancel(cancellation_id="cnl_bulk1_2301")

    listed = admin_client.get(LIST_URL).content.decode()
    link = re.search(r'href="([^"]*/cancellations/cancellation/[^"/]+/change/)"', listed).group(1)

    assert admin_client.get(link).status_code == 200
    assert cancellation.pk in admin_client.get(link).content.decode()


def test_a_delivery_shows_its_attempts_read_only(admin_client, make_provider):
    failed, _ = failed_and_delivered(make_provider)
    delivery = Delivery.objects.get(cancellation=failed)

    response = admin_client.get(reverse("admin:providers_delivery_change", args=[delivery.pk]))

    assert response.status_code == 200
    assert b"alpha said failed" in response.content
    assert b'name="_save"' not in response.content  # nothing to edit
    assert b'name="attempt_log-0-error"' not in response.content


def test_the_attention_list_shows_failed_and_stuck_deliveries_only(admin_client, make_provider):
    failed, _delivered = failed_and_delivered(make_provider)
    stuck_in_flight = cancel()
    dispatch.claim()
    Delivery.objects.filter(cancellation=stuck_in_flight).update(
        next_attempt_at=timezone.now() - timedelta(minutes=1)
    )
    overdue = cancel()
    Delivery.objects.filter(cancellation=overdue).update(
        next_attempt_at=timezone.now() - timedelta(hours=1)
    )
    cancel()  # pending and due just now: the sweep will get to it

    response = admin_client.get(ATTENTION_URL)

    assert listed_ids(response) == set(
        Delivery.objects.filter(cancellation__in=[failed, stuck_in_flight, overdue]).values_list(
            "pk", flat=True
        )
    )


def test_the_retry_action_retries_failed_deliveries_and_reports_the_refused(
    admin_client, make_provider
):
    failed, _delivered = failed_and_delivered(make_provider)
    ids = [str(pk) for pk in Delivery.objects.values_list("pk", flat=True)]

    response = admin_client.post(
        LIST_URL, {"action": "retry_selected", "_selected_action": ids}, follow=True
    )

    assert Delivery.objects.get(cancellation=failed).status == DeliveryStatus.PENDING
    texts = [str(m) for m in response.context["messages"]]
    assert "1 delivery will be sent again." in texts
    assert any("this one is delivered" in text for text in texts)


def test_the_retry_action_needs_the_retry_permission(client, make_provider):
    _failed, _ = failed_and_delivered(make_provider)
    viewer = UserFactory(permissions=["providers.view_delivery"])
    client.force_login(viewer)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert "retry_selected" not in response.context["cl"].model_admin.get_actions(
        response.wsgi_request
    )


def test_the_attention_list_is_open_to_whoever_may_see_deliveries(client, make_provider):
    failed_and_delivered(make_provider)
    client.force_login(UserFactory(permissions=["providers.view_delivery"]))

    assert client.get(ATTENTION_URL).status_code == 200


def test_provider_settings_show_whether_credentials_are_set_never_their_values(
    admin_client, monkeypatch
):
    monkeypatch.setenv("REBILLY_BASE_URL", "https://api.example.com/organizations/o1")
    monkeypatch.setenv("REBILLY_API_KEY", "sk_live_very_secret")
    setting = ProviderSetting.objects.create(kind="rebilly")

    response = admin_client.get(
        reverse("admin:providers_providersetting_change", args=[setting.pk])
    )

    assert b"credentials set" in response.content
    assert b"sk_live_very_secret" not in response.content
