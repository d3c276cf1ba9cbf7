"""A bulk job's per-order messages are stored as a code and its parameters and shown in the
reader's language, in staff words (cancellations/target_messages.py, bulk_batch.py)."""

import pytest
from django.db import DatabaseError
from django.urls import reverse
from django.utils import translation

from cancellations import bulk_batch, target_messages
from cancellations.bulk_runner import _write_targets
from cancellations.models import BulkCancellationTarget, TargetOutcome
from cancellations.services.refusals import ORDER_REFUSALS
from cancellations.states import OrderStatus
from tests.cancellations.test_bulk import shop_order, start, start_and_run
from tests.factories import SettlementItemFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(UserFactory(permissions=["cancellations.view_bulkcancellation"]))
    return client


def target_of(job, order) -> BulkCancellationTarget:
    return job.targets.get(order=order)


class TestCodesWritten:
    def test_the_batch_path_stores_the_refusal_code_and_its_facts(
        self, django_capture_on_commit_callbacks
    ):
        running = shop_order(status=OrderStatus.IN_PROGRESS)
        completed = shop_order(status=OrderStatus.COMPLETED)
        cancelled = shop_order(status=OrderStatus.CANCELLED)
        open_order = shop_order()
        job = start_and_run(
            {"orderIds": [running.pk, completed.pk, cancelled.pk, open_order.pk]},
            django_capture_on_commit_callbacks,
        )

        skipped = target_of(job, running)
        assert (skipped.outcome, skipped.message_code) == ("skipped", "in_progress")
        assert skipped.message_params["number"] == running.number
        # The API's words stay as they were.
        assert skipped.message == "The order is in progress; set kill to cancel it anyway."
        done = target_of(job, completed)
        assert done.message_code == "order_not_cancellable"
        assert done.message_params["order_status"] == "completed"
        assert target_of(job, cancelled).message_code == "nothing_left"
        assert target_of(job, cancelled).message == "The order is already cancelled."
        made = target_of(job, open_order)
        assert (made.outcome, made.message_code) == ("cancelled", "")

    def test_a_quote_refusal_keeps_its_code_and_params(self, django_capture_on_commit_callbacks):
        blocked = shop_order()
        SettlementItemFactory(order_item=blocked.items.get(), state="settled")
        job = start_and_run({"orderIds": [blocked.pk]}, django_capture_on_commit_callbacks)

        target = target_of(job, blocked)
        assert (target.outcome, target.message_code) == ("failed", "settlement_blocked")
        assert target.message_params["settlement_state"] == "settled"
        assert "instance" not in target.message_params  # only facts that can be stored
        assert target.message_text == target.message  # the same words in English

    def test_the_careful_path_stores_codes_too(self):
        running = shop_order(status=OrderStatus.IN_PROGRESS)
        job = start({"orderIds": [running.pk]})
        _write_targets(job)

        bulk_batch.BatchRunner(job)._run_one(running.pk)

        target = target_of(job, running)
        assert (target.outcome, target.message_code) == ("skipped", "in_progress")

    def test_a_database_error_on_the_careful_path_is_coded_with_its_error(self, monkeypatch):
        order = shop_order()
        job = start({"orderIds": [order.pk]})
        _write_targets(job)

        def broken(*args, **kwargs):
            raise DatabaseError("disk full")

        monkeypatch.setattr(bulk_batch.writing, "cancel_order", broken)
        bulk_batch.BatchRunner(job)._run_one(order.pk)

        target = target_of(job, order)
        assert (target.outcome, target.message_code) == ("failed", "database_error")
        assert target.message_params == {"error": "disk full"}

    def test_orders_sharing_a_message_are_settled_by_one_update_per_code(
        self, django_capture_on_commit_callbacks
    ):
        completed = [shop_order(status=OrderStatus.COMPLETED) for _ in range(3)]
        job = start_and_run(
            {"orderIds": [order.pk for order in completed]}, django_capture_on_commit_callbacks
        )
        numbers = {target.message_params["number"] for target in job.targets.all()}
        assert numbers == {order.number for order in completed}  # each its own facts


class TestRendering:
    @pytest.mark.parametrize(
        ("language", "words"),
        [("de", "ist abgeschlossen und kann nicht storniert werden"), ("tr", "Tamamlandı")],
    )
    def test_in_the_readers_language_with_the_status_named_in_it(self, language, words):
        params = {"number": "SO-1", "status": "completed", "order_status": "completed"}
        with translation.override(language):
            text = target_messages.target_text("order_not_cancellable", params, "stored")
        assert "SO-1" in text
        assert words.lower() in text.lower()

    @pytest.mark.parametrize("language", ["de", "tr"])
    def test_item_refusals_follow_the_reader(self, language):
        params = {"sku": "ROUTER", "available": 0, "scheduled": 0}
        with translation.override(language):
            text = target_messages.render("already_cancelled", params)
            translated = translation.gettext(
                "Only %(available)s of %(sku)s can still be cancelled."
            )
        assert text == translated % params
        assert text != "Only 0 of ROUTER can still be cancelled."

    def test_a_settlement_state_is_named_in_the_readers_language(self):
        params = {"sku": "ROUTER", "settlement": 4, "state": "settled"}
        params["settlement_state"] = "settled"
        with translation.override("de"):
            text = target_messages.render("settlement_blocked", params)
        assert "abgerechnet" in text

    def test_staff_words_for_an_order_in_progress(self):
        text = target_messages.render("in_progress", {"number": "SO-7"})
        assert text == "Order SO-7 is in progress: tick “Also orders in progress” to cancel it."
        assert "kill" not in text

    def test_a_cancelled_order_reads_naturally(self):
        text = target_messages.render(
            "nothing_left", {"number": "SO-7", "order_status": "cancelled"}
        )
        assert text == "Order SO-7 is already cancelled."
        assert target_messages.render("nothing_left") == "Nothing is left to cancel on this order."

    def test_an_old_row_without_a_code_shows_its_text(self):
        assert target_messages.target_text("", {}, "Old English words.") == "Old English words."

    def test_an_unknown_code_or_missing_params_fall_back_to_the_text(self):
        assert target_messages.target_text("no_such_code", {}, "As stored.") == "As stored."
        assert target_messages.target_text("in_progress", {}, "As stored.") == "As stored."

    def test_every_refusal_of_a_whole_order_has_staff_words(self):
        params = {"number": "SO-1", "order_status": "completed"}
        for code in ORDER_REFUSALS:
            assert target_messages.render(code, params), code


class TestPages:
    def test_the_results_table_shows_the_message_in_the_readers_language(
        self, viewer_client, django_capture_on_commit_callbacks
    ):
        completed = shop_order(status=OrderStatus.COMPLETED)
        job = start_and_run({"orderIds": [completed.pk]}, django_capture_on_commit_callbacks)
        url = reverse("staff:bulk-detail", args=[job.pk])

        response = viewer_client.get(
            url, {"outcome": TargetOutcome.SKIPPED}, HTTP_ACCEPT_LANGUAGE="de"
        )

        content = response.content.decode()
        assert f"Bestellung {completed.number} ist abgeschlossen" in content
        assert "can&#x27;t be cancelled" not in content
