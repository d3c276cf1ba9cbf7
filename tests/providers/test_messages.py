"""What Storno says about a delivery is stored as a code and its parameters and shown in the
reader's language; a provider's own words stay verbatim (providers/messages.py)."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from providers import dispatch, messages
from providers.base import Outcome, ProviderConfig
from providers.models import Delivery
from providers.outbox_bulk import enqueue_new_adds
from providers.states import DeliveryStatus
from tests.factories import DeliveryFactory
from tests.providers.outbox_support import (
    cancel,
    make_provider_fixture,  # noqa: F401 - the fixture
    revoke,
)

pytestmark = pytest.mark.django_db


def row(cancellation, action="add", provider="alpha") -> Delivery:
    return Delivery.objects.get(cancellation=cancellation, action=action, provider=provider)


def make_due():
    Delivery.objects.update(next_attempt_at=timezone.now())


class TestCodesWritten:
    def test_an_add_the_provider_has_nothing_for_is_coded(self, make_provider):
        make_provider("alpha", applies=False)
        add = row(cancel())
        assert (add.status, add.message_code) == (DeliveryStatus.SKIPPED, "not_applicable")
        assert add.last_error == "The order has no reference at this provider."

    def test_the_bulk_path_codes_its_skipped_adds_too(self, make_provider):
        cancellation = cancel()  # no provider enabled yet: no rows
        alpha = make_provider("alpha", applies=False)

        enqueue_new_adds([cancellation], [alpha(ProviderConfig("alpha", "http://alpha.invalid"))])

        add = row(cancellation)
        assert (add.message_code, add.message_params) == ("not_applicable", {})
        assert add.last_error == "The order has no reference at this provider."

    def test_a_revoke_before_the_add_was_sent_codes_both(self, make_provider):
        make_provider("alpha")
        cancellation = cancel()
        revoke(cancellation)
        assert row(cancellation).message_code == "revoked_before_sent"
        assert row(cancellation, "revoke").message_code == "add_never_sent"

    def test_a_provider_that_cannot_revoke_is_coded(self, make_provider):
        make_provider("alpha", supports_revoke=False)
        cancellation = cancel()
        dispatch.deliver_due()
        revoke(cancellation)
        assert row(cancellation, "revoke").message_code == "no_revoke"

    def test_a_waiting_revoke_of_an_add_that_failed_is_coded(self, make_provider):
        alpha = make_provider("alpha")
        alpha.script.extend([Outcome.RETRY, Outcome.FAILED])
        cancellation = cancel()
        dispatch.deliver_due()
        revoke(cancellation)
        make_due()
        dispatch.deliver_due()
        assert row(cancellation, "revoke").message_code == "add_never_reached"

    def test_a_providers_answer_is_kept_verbatim_without_a_code(self, make_provider):
        alpha = make_provider("alpha")
        alpha.script.append(Outcome.FAILED)
        add = row(cancel())
        dispatch.deliver_due()
        add.refresh_from_db()
        assert (add.message_code, add.last_error) == ("", "alpha said failed")
        with translation.override("de"):
            assert add.message_text == "alpha said failed"

    @override_settings(DELIVERY_MAX_ATTEMPTS=2)
    def test_giving_up_is_coded_with_the_providers_last_answer_as_it_was(self, make_provider):
        alpha = make_provider("alpha")
        alpha.script.extend([Outcome.RETRY] * 2)
        cancellation = cancel()
        for _ in range(2):
            make_due()
            dispatch.deliver_due()
        add = row(cancellation)
        assert add.status == DeliveryStatus.FAILED
        assert add.message_code == "gave_up"
        assert add.message_params == {"count": 2, "error": "alpha said retry"}
        with translation.override("de"):
            assert add.message_text == (
                "Nach 2 Versuchen aufgegeben. Letzter Fehler: alpha said retry"
            )

    @override_settings(DELIVERY_MAX_ATTEMPTS=2)
    def test_an_abandoned_last_attempt_is_coded(self, make_provider):
        make_provider("alpha")
        cancellation = cancel()
        Delivery.objects.update(attempts=1)
        dispatch.claim(worker="dead:1")
        Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        dispatch.deliver()
        add = row(cancellation)
        assert (add.status, add.message_code) == (DeliveryStatus.FAILED, "worker_stopped")
        assert add.message_params == {"count": 2}


class TestRendering:
    @pytest.mark.parametrize(
        ("language", "words"),
        [
            ("de", "Diesem Anbieter können Widerrufe nicht mitgeteilt werden."),
            ("tr", "Bu sağlayıcıya geri almalar bildirilemez."),
        ],
    )
    def test_a_coded_message_is_shown_in_the_readers_language(self, language, words):
        delivery = DeliveryFactory.build(
            status="skipped",
            last_error="This provider can't be told about revokes.",
            message_code="no_revoke",
        )
        with translation.override(language):
            assert delivery.message_text == words

    def test_an_old_row_without_a_code_shows_its_text(self):
        delivery = DeliveryFactory.build(last_error="Revoked before it was sent.")
        with translation.override("de"):
            assert delivery.message_text == "Revoked before it was sent."

    def test_an_unknown_code_or_missing_params_fall_back_to_the_text(self):
        assert messages.delivery_text("no_such_code", {}, "As stored.") == "As stored."
        assert messages.delivery_text("gave_up", {"count": 3}, "As stored.") == "As stored."

    @pytest.mark.parametrize("language", ["en", "de", "tr"])
    def test_each_fixed_text_is_recognised_in_the_language_it_was_written_in(self, language):
        with translation.override(language):
            for code in messages.FIXED:
                assert messages.coded(messages.render(code)) == code
            assert messages.coded("HTTP 500 from the provider") == ""


class TestPages:
    def test_the_deliveries_section_shows_the_answer_in_the_readers_language(
        self, client, make_provider
    ):
        from tests.factories import SuperUserFactory

        make_provider("alpha", supports_revoke=False)
        cancellation = cancel()
        dispatch.deliver_due()
        revoke(cancellation)
        client.force_login(SuperUserFactory())

        response = client.get(cancellation.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="tr")

        content = response.content.decode()
        assert "Bu sağlayıcıya geri almalar bildirilemez." in content
        assert "can&#x27;t be told about revokes" not in content
