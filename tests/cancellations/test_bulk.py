"""Bulk cancellation: preview, start, run, resume (cancellations/bulk*.py, tasks.py)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cancellations import bulk, bulk_batch, bulk_runner, tasks
from cancellations.errors import CancellationError
from cancellations.filter_parsing import parse_order_filter
from cancellations.models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    Cancellation,
    SettlementItem,
    TargetOutcome,
)
from cancellations.services import quoting, writing
from cancellations.states import CancellationStatus, OrderStatus
from providers.models import Delivery, ProviderSetting
from providers.states import DeliveryStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)
from tests.providers.outbox_support import make_provider_fixture  # noqa: F401

EVERYTHING = {"folders": [{"folder": "/"}]}  # a bulk job needs a filter

pytestmark = pytest.mark.django_db


def shop_order(channel="/shop/de", status=OrderStatus.OPEN, quantity=2, **kwargs):
    order = OrderFactory(channel=channel, status=status, **kwargs)
    OrderItemFactory(order=order, quantity=quantity)
    return order


def start(filter_data, *, reason=None, actor=None, **kwargs):
    return bulk.start_bulk_cancellation(
        parse_order_filter(filter_data),
        reason=reason or CancellationReasonFactory(),
        actor=actor,
        via=AuditEntry.Via.API,
        **kwargs,
    )


def start_and_run(filter_data, django_capture_on_commit_callbacks, **kwargs):
    """Start a job; the commit queues it and the eager Celery task runs it."""
    with django_capture_on_commit_callbacks(execute=True):
        job = start(filter_data, **kwargs)
    job.refresh_from_db()
    return job


class TestPreview:
    def test_counts_what_would_be_cancelled_and_skipped_and_writes_nothing(self):
        for _ in range(3):
            shop_order()
        shop_order(status=OrderStatus.IN_PROGRESS)
        shop_order(status=OrderStatus.COMPLETED)
        shop_order(channel="/shop/tr")

        preview = bulk.preview_bulk_cancellation(
            parse_order_filter({"folders": [{"folder": "/shop/de"}]})
        )

        assert preview.total == 5
        assert preview.to_cancel == 3
        assert preview.to_skip == 2
        assert preview.by_status == {"open": 3, "in_progress": 1, "completed": 1}
        reasons = {order.status: why for order, why in preview.sample}
        assert reasons["open"] == ""
        assert "kill" in reasons["in_progress"]
        assert Cancellation.objects.count() == 0
        assert BulkCancellation.objects.count() == 0

    def test_kill_counts_orders_in_progress_as_cancelled(self):
        shop_order(status=OrderStatus.IN_PROGRESS)
        preview = bulk.preview_bulk_cancellation(parse_order_filter({"kill": True}))
        assert (preview.to_cancel, preview.to_skip) == (1, 0)

    def test_names_order_ids_that_match_nothing(self):
        order = shop_order()
        preview = bulk.preview_bulk_cancellation(
            parse_order_filter({"orderIds": [order.pk, 99999]})
        )
        assert preview.total == 1
        assert preview.missing_order_refs == [99999]

    def test_sample_is_capped_and_queries_are_constant(self, django_assert_max_num_queries):
        for _ in range(bulk.SAMPLE_SIZE + 5):
            shop_order()
        with django_assert_max_num_queries(3):
            preview = bulk.preview_bulk_cancellation(parse_order_filter({}))
        assert len(preview.sample) == bulk.SAMPLE_SIZE
        assert preview.total == bulk.SAMPLE_SIZE + 5


class TestStart:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"reason": None}, "reason"),
            ({"churn_time": timezone.now() - timedelta(hours=1)}, "churn_time"),
            ({"description": "x" * 256}, "description"),
            ({"canceled_by": "somebody"}, "canceled_by"),
        ],
    )
    def test_refuses_bad_cancellation_fields_and_writes_nothing(self, kwargs, field):
        shop_order()
        reason = kwargs.pop("reason", CancellationReasonFactory())
        with pytest.raises(CancellationError) as error:
            bulk.start_bulk_cancellation(
                parse_order_filter(EVERYTHING), reason=reason, actor=None, via="api", **kwargs
            )
        assert field in error.value.message_dict
        assert BulkCancellation.objects.count() == 0

    def test_refuses_a_reason_that_needs_a_description_without_one(self):
        shop_order()
        reason = CancellationReasonFactory(extra_information_needed=True)
        with pytest.raises(CancellationError) as error:
            start(EVERYTHING, reason=reason)
        assert "description" in error.value.message_dict

    def test_refuses_an_empty_filter_which_would_take_every_order(self):
        shop_order()
        with pytest.raises(CancellationError) as error:
            start({})
        assert error.value.codes == {"no_filter"}
        assert "“/”" in error.value.message_dict["filter"][0]
        assert BulkCancellation.objects.count() == 0

    def test_refuses_a_filter_that_matches_nothing(self):
        shop_order(channel="/shop/tr")
        with pytest.raises(CancellationError) as error:
            start({"folders": [{"folder": "/shop/de"}]})
        assert error.value.codes == {"no_match"}
        assert BulkCancellation.objects.count() == 0

    def test_writes_a_queued_job_with_the_filter_and_an_audit_entry(self):
        shop_order()
        user = UserFactory()
        job = start(
            {"folders": [{"folder": "/shop/de"}], "auditLog": {"comment": "fraud wave"}},
            actor=user,
        )
        assert job.status == BulkCancellationStatus.QUEUED
        assert job.filter["folders"] == [{"folder": "/shop/de", "recursive": True}]
        assert job.audit_comment == "fraud wave"
        entry = AuditEntry.objects.get(action="bulk_cancellation.started")
        assert entry.data["bulkCancellation"] == job.pk
        assert entry.actor == user
        assert entry.comment == "fraud wave"


class TestRun:
    def test_cancels_every_matching_order_and_reports_the_others(
        self, django_capture_on_commit_callbacks
    ):
        cancellable = [shop_order() for _ in range(3)]
        in_progress = shop_order(status=OrderStatus.IN_PROGRESS)
        done = shop_order(status=OrderStatus.COMPLETED)
        other_channel = shop_order(channel="/shop/tr")

        job = start_and_run(
            {
                "folders": [{"folder": "/shop/de"}],
                "auditLog": {"comment": "outage", "ticketLink": "https://t/1", "timeSpent": 5},
            },
            django_capture_on_commit_callbacks,
        )

        assert job.status == BulkCancellationStatus.FINISHED
        assert (job.total, job.cancelled_count, job.skipped_count, job.failed_count) == (5, 3, 2, 0)
        assert job.progress_percent == 100
        for order in cancellable:
            order.refresh_from_db()
            assert order.status == OrderStatus.CANCELLED
            assert order.items.get().cancelled_quantity == 2
            cancellation = order.cancellations.get()
            assert cancellation.bulk_cancellation == job
            assert cancellation.status == CancellationStatus.COMPLETED
            assert cancellation.audit_comment == "outage"
        for order in (in_progress, done, other_channel):
            order.refresh_from_db()
            assert not order.cancellations.exists()
        skipped = dict(
            job.targets.filter(outcome=TargetOutcome.SKIPPED).values_list("order_id", "message")
        )
        assert set(skipped) == {in_progress.pk, done.pk}
        assert "kill" in skipped[in_progress.pk]
        # The job's auditLog is on every audit entry it wrote.
        entries = AuditEntry.objects.filter(order__in=cancellable)
        assert {e.action for e in entries} == {
            "cancellation.created",
            "cancellation.completed",
            "order.status_changed",
        }
        assert entries.count() == 9
        assert {(e.comment, e.ticket_link, e.time_spent, e.via) for e in entries} == {
            ("outage", "https://t/1", 5, "api")
        }

    def test_writes_what_a_single_cancellation_writes(self, django_capture_on_commit_callbacks):
        """The batch path and cancel_order leave the same trail for the same order."""
        reason = CancellationReasonFactory()
        by_bulk = shop_order(channel="/a")
        SettlementItemFactory(order_item=by_bulk.items.get())
        by_service = shop_order(channel="/b")
        SettlementItemFactory(order_item=by_service.items.get())

        start_and_run(
            {"folders": [{"folder": "/a"}]}, django_capture_on_commit_callbacks, reason=reason
        )
        writing.cancel_order(by_service, reason=reason, actor=None, via="api")

        def trail(order):
            order.refresh_from_db()
            cancellation = order.cancellations.get()
            return {
                "order": order.status,
                "cancellation": (
                    cancellation.status,
                    cancellation.is_whole_order,
                    cancellation.order_status_before,
                    cancellation.currency,
                    cancellation.completed_time is not None,
                ),
                "items": list(cancellation.items.values_list("quantity", "prorated_credit_amount")),
                "audit": sorted(
                    (e.action, str(e.data.get("to", "")))
                    for e in AuditEntry.objects.filter(order=order)
                ),
                "settlement_removed": list(
                    SettlementItem.objects.filter(order_item__order=order).values_list(
                        "removed_by_cancellation", flat=True
                    )
                )
                == [cancellation.pk],
            }

        assert trail(by_bulk) == trail(by_service)

    def test_cancels_what_scheduled_cancellations_left_and_skips_what_they_took(
        self, django_capture_on_commit_callbacks
    ):
        later = timezone.now() + timedelta(days=3)
        half_reserved = shop_order(quantity=2)
        writing.cancel_order(
            half_reserved,
            reason=CancellationReasonFactory(),
            actor=None,
            via="api",
            items=[quoting.ItemPick(half_reserved.items.get().pk, 1)],
            churn_time=later,
        )
        all_reserved = shop_order(quantity=1)
        writing.cancel_order(
            all_reserved,
            reason=CancellationReasonFactory(),
            actor=None,
            via="api",
            churn_time=later,
        )

        job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)

        assert (job.cancelled_count, job.skipped_count) == (1, 1)
        half_reserved.refresh_from_db()
        assert half_reserved.status == OrderStatus.PARTIALLY_CANCELLED
        assert half_reserved.items.get().cancelled_quantity == 1
        assert job.targets.get(order=all_reserved).message == (
            "Nothing is left to cancel on this order."
        )

    def test_a_settled_billing_item_fails_its_order_only(self, django_capture_on_commit_callbacks):
        blocked = shop_order()
        SettlementItemFactory(order_item=blocked.items.get(), state="settled")
        fine = shop_order()

        job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)

        assert (job.cancelled_count, job.failed_count) == (1, 1)
        failure = job.targets.get(outcome=TargetOutcome.FAILED)
        assert failure.order_id == blocked.pk
        assert "settled" in failure.message
        fine.refresh_from_db()
        assert fine.status == OrderStatus.CANCELLED

    def test_an_order_callisto_must_hear_of_without_a_salesforce_user_fails_its_order_only(
        self, django_capture_on_commit_callbacks
    ):
        ProviderSetting.objects.create(
            kind="callisto", enabled=True, base_url="http://callisto.invalid"
        )
        known = shop_order(external_ids={"callisto": "4711"})
        unknown = shop_order()

        job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks, actor=UserFactory())

        assert (job.cancelled_count, job.failed_count) == (1, 1)
        failure = job.targets.get(outcome=TargetOutcome.FAILED)
        assert failure.order_id == known.pk
        assert "externalUserId" in failure.message
        known.refresh_from_db()
        assert known.status == OrderStatus.OPEN
        assert not Cancellation.objects.filter(order=known).exists()
        assert Cancellation.objects.filter(order=unknown).exists()

    def test_a_future_effective_time_schedules_the_cancellations(
        self, django_capture_on_commit_callbacks
    ):
        order = shop_order()
        later = timezone.now() + timedelta(days=2)
        job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks, churn_time=later)
        cancellation = order.cancellations.get()
        assert cancellation.status == CancellationStatus.CONFIRMED
        assert cancellation.churn_time == later
        order.refresh_from_db()
        assert order.status == OrderStatus.OPEN
        assert job.cancelled_count == 1

    def test_deep_takes_child_orders_and_kill_marks_running_workflows(
        self, django_capture_on_commit_callbacks
    ):
        parent = shop_order(channel="/a")
        child = shop_order(channel="/elsewhere", parent=parent, status=OrderStatus.IN_PROGRESS)

        start_and_run(
            {"folders": [{"folder": "/a"}], "deep": True, "kill": True},
            django_capture_on_commit_callbacks,
        )

        assert child.cancellations.get().kill_running is True
        assert parent.cancellations.get().kill_running is True

    def test_enqueues_one_delivery_per_provider_and_cancellation(
        self, make_provider, django_capture_on_commit_callbacks, settings
    ):
        make_provider("alpha")
        make_provider("beta", applies=False)
        orders = [shop_order() for _ in range(3)]

        start_and_run(EVERYTHING, django_capture_on_commit_callbacks)

        rows = Delivery.objects.filter(cancellation__order__in=orders)
        assert rows.filter(provider="alpha").count() == 3
        assert set(rows.filter(provider="alpha").values_list("status", flat=True)) == {
            DeliveryStatus.DELIVERED  # the sweep the job asked for ran (eager Celery)
        }
        assert set(rows.filter(provider="beta").values_list("status", flat=True)) == {
            DeliveryStatus.SKIPPED
        }

    def test_queries_per_batch_do_not_grow_with_the_orders(
        self, settings, make_provider, monkeypatch
    ):
        make_provider("alpha")
        monkeypatch.setattr(
            bulk_runner, "kick_sweep", lambda: None
        )  # count the job, not deliveries
        settings.BULK_CANCELLATION_BATCH_SIZE = 100
        reason = CancellationReasonFactory()

        def queries_for(n):
            channel = f"/n{n}"
            for _ in range(n):
                shop_order(channel=channel)
            job = start({"folders": [{"folder": channel}]}, reason=reason)
            with CaptureQueriesContext(connection) as captured:
                bulk_runner.run_bulk_cancellation(job.pk)
            job.refresh_from_db()
            assert job.cancelled_count == n
            return len(captured)

        queries_for(1)  # the first run also writes the provider settings rows
        assert queries_for(3) == queries_for(30)

    def test_a_batch_of_500_orders_makes_as_many_queries_as_a_batch_of_5(
        self, settings, monkeypatch
    ):
        settings.BULK_CANCELLATION_BATCH_SIZE = 500
        if connection.vendor == "sqlite":
            # Django splits an INSERT for SQLite's old limit of 999 parameters; the SQLite
            # these tests run on (3.32 or later) takes 32,766.
            monkeypatch.setattr(type(connection.features), "max_query_params", 32766)
        settings.CALLISTO_DEFAULT_USER_ID = "005000000000000DEF"
        for kind in ("callisto", "rebilly"):
            ProviderSetting.objects.create(kind=kind, base_url="http://127.0.0.1:9/organizations/o")
        reason = CancellationReasonFactory()

        def queries_for(n):
            channel = f"/n{n}"
            for number in range(n):
                order = shop_order(
                    channel=channel, external_ids={"callisto": str(number + 1), "rebilly": "o"}
                )
                SettlementItemFactory(order_item=order.items.get())
            runner = bulk_batch.BatchRunner(
                start({"folders": [{"folder": channel}]}, reason=reason)
            )
            bulk_runner._write_targets(runner.job)
            with CaptureQueriesContext(connection) as captured:
                runner.run_next()
            cancelled = Cancellation.objects.filter(order__channel=channel)
            assert cancelled.filter(status=CancellationStatus.COMPLETED).count() == n
            assert Delivery.objects.filter(cancellation__in=cancelled).count() == 2 * n
            # Each settlement item goes with its own order's cancellation.
            settlements = SettlementItem.objects.filter(order_item__order__channel=channel)
            assert (
                settlements.filter(
                    removed_at__isnull=False, removed_by_cancellation__order=F("order_item__order")
                ).count()
                == n
            )
            return len(captured)

        assert queries_for(5) == queries_for(500)


class TestResume:
    def test_a_second_runner_joins_a_running_job_and_takes_what_is_left(self, settings):
        settings.BULK_CANCELLATION_BATCH_SIZE = 2
        orders = [shop_order() for _ in range(5)]
        job = start(EVERYTHING)
        first = bulk_batch.BatchRunner(bulk_runner._join(job.pk, "first:1"))
        bulk_runner._write_targets(first.job)
        assert first.run_next() is not None  # one batch, then this runner stops

        job = bulk_runner.run_bulk_cancellation(job.pk, worker="second:2")

        assert job.status == BulkCancellationStatus.FINISHED
        assert (job.total, job.cancelled_count) == (5, 5)
        assert all(order.cancellations.count() == 1 for order in orders)

    def test_a_finished_job_is_not_run_again(self, django_capture_on_commit_callbacks):
        shop_order()
        job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)
        assert bulk_runner.run_bulk_cancellation(job.pk) is None
        assert Cancellation.objects.count() == 1

    def test_a_job_cut_off_mid_run_resumes_without_cancelling_twice(self, settings, monkeypatch):
        settings.BULK_CANCELLATION_BATCH_SIZE = 2
        orders = [shop_order() for _ in range(5)]
        job = start(EVERYTHING)
        real_run = bulk_batch.BatchRunner.run
        calls = []

        def dies_on_the_second_batch(self, order_ids):
            calls.append(order_ids)
            if len(calls) == 2:
                raise SystemExit("worker killed")
            return real_run(self, order_ids)

        monkeypatch.setattr(bulk_batch.BatchRunner, "run", dies_on_the_second_batch)
        with pytest.raises(SystemExit):
            bulk_runner.run_bulk_cancellation(job.pk)
        job.refresh_from_db()
        assert job.status == BulkCancellationStatus.RUNNING
        assert (job.total, job.cancelled_count) == (5, 2)

        monkeypatch.setattr(bulk_batch.BatchRunner, "run", real_run)
        job = bulk_runner.run_bulk_cancellation(job.pk)

        assert job.status == BulkCancellationStatus.FINISHED
        assert (job.total, job.cancelled_count) == (5, 5)
        for order in orders:
            assert order.cancellations.count() == 1

    def test_a_batch_that_fails_in_the_database_goes_order_by_order(self, monkeypatch):
        orders = [shop_order() for _ in range(3)]
        job = start(EVERYTHING)
        monkeypatch.setattr(
            bulk_batch.BatchRunner,
            "_write",
            lambda self, planned, now: (_ for _ in ()).throw(IntegrityError("boom")),
        )
        real_cancel = writing.cancel_order

        def fails_for_the_second(order, **kwargs):
            if order.pk == orders[1].pk:
                raise IntegrityError("this one is broken")
            return real_cancel(order, **kwargs)

        monkeypatch.setattr(writing, "cancel_order", fails_for_the_second)

        job = bulk_runner.run_bulk_cancellation(job.pk)

        assert (job.cancelled_count, job.failed_count) == (2, 1)
        failed = job.targets.get(outcome=TargetOutcome.FAILED)
        assert failed.order_id == orders[1].pk
        assert "this one is broken" in failed.message
        assert orders[0].cancellations.get().bulk_cancellation == job
        assert not orders[1].cancellations.exists()

    def test_the_beat_restarts_lost_and_abandoned_jobs_only(self, monkeypatch):
        shop_order()
        now = timezone.now()
        lost = start(EVERYTHING)
        BulkCancellation.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=5))
        fresh = start(EVERYTHING)
        abandoned = start(EVERYTHING)
        BulkCancellation.objects.filter(pk=abandoned.pk).update(
            status=BulkCancellationStatus.RUNNING, lease_until=now - timedelta(seconds=1)
        )
        alive = start(EVERYTHING)
        BulkCancellation.objects.filter(pk=alive.pk).update(
            status=BulkCancellationStatus.RUNNING, lease_until=now + timedelta(minutes=1)
        )
        queued = []
        monkeypatch.setattr(tasks, "queue_bulk_cancellation", queued.append)

        assert tasks.resume_stalled_bulk_cancellations(now=now) == 2
        assert sorted(queued) == sorted([lost.pk, abandoned.pk])
        assert fresh.pk not in queued
