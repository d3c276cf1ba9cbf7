"""The Django admin of bulk cancellations and their orders (cancellations/admin/bulk.py)."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cancellations import bulk
from cancellations.filter_parsing import parse_order_filter
from cancellations.models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
)
from cancellations.states import OrderStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SuperUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

JOBS_URL = reverse("admin:cancellations_bulkcancellation_changelist")
TARGETS_URL = reverse("admin:cancellations_bulkcancellationtarget_changelist")


@pytest.fixture
def admin_client(client):
    client.force_login(SuperUserFactory())
    return client


def shop_order(channel="/shop/de", status=OrderStatus.OPEN):
    order = OrderFactory(channel=channel, status=status)
    OrderItemFactory(order=order, quantity=1)
    return order


def queued_job(**filter_data):
    """Written, not run: the on-commit queueing never fires inside a test transaction."""
    return bulk.start_bulk_cancellation(
        parse_order_filter(filter_data or {"folders": [{"folder": "/"}]}),
        reason=CancellationReasonFactory(),
        actor=UserFactory(),
        via=AuditEntry.Via.API,
    )


def finished_job(django_capture_on_commit_callbacks, **filter_data):
    with django_capture_on_commit_callbacks(execute=True):
        job = queued_job(**filter_data)
    job.refresh_from_db()
    assert job.status == BulkCancellationStatus.FINISHED
    return job


def change_url(job):
    return reverse("admin:cancellations_bulkcancellation_change", args=[job.pk])


def count_queries(client, url) -> int:
    """Queries of one GET, after a first one has filled the per-process caches (content
    types, permissions of the session's user)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def texts(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def resume(client, *jobs):
    return client.post(
        JOBS_URL,
        {"action": "resume_jobs", ACTION_CHECKBOX_NAME: [job.pk for job in jobs]},
        follow=True,
    )


# --- pages --------------------------------------------------------------------------------------


def test_the_job_list_shows_status_progress_and_counts(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order()
    shop_order(status=OrderStatus.COMPLETED)
    job = finished_job(django_capture_on_commit_callbacks)

    response = admin_client.get(JOBS_URL)

    content = response.content.decode()
    assert response.status_code == 200
    assert "2 / 2 (100 %)" in content
    assert f'href="{change_url(job)}"' in content


def test_the_job_list_queries_do_not_grow_with_the_jobs(admin_client):
    shop_order()
    queued_job()
    one = count_queries(admin_client, JOBS_URL)
    for _ in range(19):
        queued_job()

    assert count_queries(admin_client, JOBS_URL) == one


def test_the_job_list_filters_by_status_and_finds_a_job_by_id(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order()
    finished = finished_job(django_capture_on_commit_callbacks)
    queued = queued_job()

    by_status = admin_client.get(JOBS_URL, {"status__exact": "queued"})
    by_id = admin_client.get(JOBS_URL, {"q": str(finished.pk)})
    by_text = admin_client.get(JOBS_URL, {"q": "not a number"})

    assert list(by_status.context["cl"].result_list) == [queued]
    assert list(by_id.context["cl"].result_list) == [finished]
    assert by_text.status_code == 200


def test_the_job_page_is_read_only_and_links_to_the_staff_page_and_its_orders(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order()
    job = finished_job(django_capture_on_commit_callbacks)

    response = admin_client.get(change_url(job))

    content = response.content.decode()
    assert response.status_code == 200
    assert f'href="{job.get_absolute_url()}"' in content
    assert f'href="{TARGETS_URL}?bulk_cancellation__id__exact={job.pk}"' in content
    assert 'name="_save"' not in content
    assert admin_client.get(reverse("admin:cancellations_bulkcancellation_add")).status_code == 403


def test_the_job_page_queries_do_not_grow_with_the_orders(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order(channel="/one")
    small = finished_job(django_capture_on_commit_callbacks, folders=["/one"])
    for _ in range(20):
        shop_order(channel="/many")
    large = finished_job(django_capture_on_commit_callbacks, folders=["/many"])

    assert count_queries(admin_client, change_url(small)) == count_queries(
        admin_client, change_url(large)
    )


def test_the_orders_of_one_job_are_listed_with_their_outcome(
    admin_client, django_capture_on_commit_callbacks
):
    cancelled = shop_order(channel="/a")
    skipped = shop_order(channel="/a", status=OrderStatus.COMPLETED)
    job = finished_job(django_capture_on_commit_callbacks, folders=["/a"])
    shop_order(channel="/b")
    finished_job(django_capture_on_commit_callbacks, folders=["/b"])

    of_job = admin_client.get(TARGETS_URL, {"bulk_cancellation__id__exact": job.pk})
    skipped_only = admin_client.get(
        TARGETS_URL, {"bulk_cancellation__id__exact": job.pk, "outcome__exact": "skipped"}
    )
    by_number = admin_client.get(TARGETS_URL, {"q": cancelled.number})

    assert {t.order for t in of_job.context["cl"].result_list} == {cancelled, skipped}
    assert [t.order for t in skipped_only.context["cl"].result_list] == [skipped]
    assert [t.order for t in by_number.context["cl"].result_list] == [cancelled]
    target = BulkCancellationTarget.objects.get(order=skipped)
    page = admin_client.get(
        reverse("admin:cancellations_bulkcancellationtarget_change", args=[target.pk])
    )
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_the_order_list_queries_do_not_grow_with_the_orders(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order(channel="/one")
    finished_job(django_capture_on_commit_callbacks, folders=["/one"])
    one = count_queries(admin_client, TARGETS_URL)
    for _ in range(20):
        shop_order(channel="/many")
    finished_job(django_capture_on_commit_callbacks, folders=["/many"])

    assert count_queries(admin_client, TARGETS_URL) == one


def test_a_viewer_sees_the_jobs_but_is_offered_no_resume(client):
    shop_order()
    queued_job()
    client.force_login(UserFactory(permissions=["cancellations.view_bulkcancellation"]))

    response = client.get(JOBS_URL)

    assert response.status_code == 200
    assert response.context["action_form"] is None


# --- resuming -----------------------------------------------------------------------------------


def test_resume_runs_queued_jobs_and_jobs_whose_worker_died(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order(channel="/a")
    shop_order(channel="/b")
    queued = queued_job(folders=["/a"])
    abandoned = queued_job(folders=["/b"])
    BulkCancellation.objects.filter(pk=abandoned.pk).update(
        status=BulkCancellationStatus.RUNNING,
        worker="gone:1",
        lease_until=timezone.now() - timedelta(minutes=5),
    )

    response = resume(admin_client, queued, abandoned)

    assert "Resumed 2 jobs." in texts(response)
    for job in (queued, abandoned):
        job.refresh_from_db()
        assert job.status == BulkCancellationStatus.FINISHED
        assert job.cancelled_count == 1


def test_resume_leaves_finished_jobs_and_jobs_with_a_live_worker_alone(
    admin_client, django_capture_on_commit_callbacks
):
    shop_order()
    finished = finished_job(django_capture_on_commit_callbacks)
    shop_order()
    busy = queued_job()
    lease = timezone.now() + timedelta(minutes=2)
    BulkCancellation.objects.filter(pk=busy.pk).update(
        status=BulkCancellationStatus.RUNNING, worker="alive:1", lease_until=lease
    )

    response = resume(admin_client, finished, busy)

    assert texts(response) == ["2 jobs were left alone: finished, or a worker is on them."]
    busy.refresh_from_db()
    assert (busy.status, busy.worker, busy.cancelled_count) == ("running", "alive:1", 0)


def test_resume_reports_a_broker_that_is_down(admin_client, monkeypatch):
    from cancellations import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.run_bulk_cancellation, "delay", broker_down)
    shop_order()
    job = queued_job()

    response = resume(admin_client, job)

    assert response.status_code == 200
    assert texts(response) == [f"Job {job.pk} could not be queued: broker unreachable"]
