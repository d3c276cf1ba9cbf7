"""The staff pages of bulk cancellations: list, new (form → preview → confirm), detail,
progress JSON (cancellations/bulk_views.py, bulk_forms.py)."""

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backoffice.models import StaffProfile
from cancellations import bulk
from cancellations.bulk_forms import BulkCancelForm
from cancellations.errors import CancellationError
from cancellations.filter_parsing import parse_order_filter
from cancellations.models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    Cancellation,
    TargetOutcome,
)
from cancellations.states import OrderStatus
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    SettlementItemFactory,
    UserFactory,
)

EVERYTHING = {"folders": [{"folder": "/"}]}  # a bulk job needs a filter

pytestmark = pytest.mark.django_db

LIST_URL = reverse("staff:bulk-list")
NEW_URL = reverse("staff:bulk-new")
VIEW = "cancellations.view_bulkcancellation"
RUN = "cancellations.run_bulk_cancellation"


@pytest.fixture
def runner(db):
    """May start bulk cancellations and look at orders and cancellations."""
    return UserFactory(
        permissions=[RUN, "cancellations.view_order", "cancellations.view_cancellation"]
    )


@pytest.fixture
def runner_client(client, runner):
    client.force_login(runner)
    return client


@pytest.fixture
def viewer_client(client):
    client.force_login(UserFactory(permissions=[VIEW]))
    return client


def shop_order(channel="/shop/de", status=OrderStatus.OPEN, **kwargs):
    order = OrderFactory(channel=channel, status=status, **kwargs)
    OrderItemFactory(order=order, quantity=2)
    return order


def form_data(reason, /, **overrides):
    """A complete POST body of the form: every order (the folder "/"), now, no record fields."""
    data = {
        "order_numbers": "",
        "folder": "/",
        "recursive": "on",
        "date_from": "",
        "date_to": "",
        "time_zone": "UTC",
        "reason": reason.pk if reason else "",
        "description": "",
        "churn_time": "",
        "audit_comment": "",
        "ticket_link": "",
        "time_spent": "",
        "action": "preview",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def confirm_data(reason, /, **overrides):
    return form_data(reason, confirm="1", **overrides)


def error_next_to(response, field) -> str:
    """The text of the error list rendered with the field (Django's id_<field>_error)."""
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', response.content.decode(), re.S
    )
    assert match, f"no error shown next to {field}"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def nothing_written():
    return (
        BulkCancellation.objects.count() == 0
        and Cancellation.objects.count() == 0
        and AuditEntry.objects.count() == 0
    )


def start_and_run(filter_data, django_capture_on_commit_callbacks, **kwargs):
    kwargs.setdefault("reason", CancellationReasonFactory())
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk.start_bulk_cancellation(
            parse_order_filter(filter_data), actor=None, via=AuditEntry.Via.API, **kwargs
        )
    job.refresh_from_db()
    return job


def queued_job(**filter_data):
    """A job written but not run (its on-commit queueing never fires in a test transaction)."""
    return bulk.start_bulk_cancellation(
        parse_order_filter(filter_data or EVERYTHING),
        reason=CancellationReasonFactory(),
        actor=None,
        via=AuditEntry.Via.API,
    )


def count_queries(client, url) -> int:
    """Queries of one GET, after a first one has filled the per-process caches (content
    types, permissions of the session's user)."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


# --- the form and its preview --------------------------------------------------------------------


def test_the_form_offers_existing_channels_cancellable_statuses_and_the_date_formats(
    runner_client,
):
    shop_order(channel="/shop/de")
    shop_order(channel="/shop/tr")
    CancellationReasonFactory(subject="Fraud", subject_de="Betrug")

    response = runner_client.get(NEW_URL)

    form = response.context["form"]
    assert [value for value, _label in form.fields["channels"].choices] == ["/shop/de", "/shop/tr"]
    assert {value for value, _label in form.fields["states"].choices} == OrderStatus.cancellable
    content = response.content.decode()
    assert "such as 1d (since yesterday 00:00)" in content  # a short help, not JOC's grammar
    assert 'type="datetime-local"' in content
    assert "Fraud" in content


def test_the_reasons_are_offered_in_the_users_language(client, runner):
    CancellationReasonFactory(subject="Fraud", subject_de="Betrug")
    client.force_login(runner)

    response = client.get(NEW_URL, headers={"accept-language": "de"})

    assert "Betrug" in response.content.decode()


def test_the_time_zone_defaults_to_the_users_own(client, runner):
    StaffProfile.objects.create(user=runner, time_zone="America/Argentina/Cordoba")
    client.force_login(runner)

    response = client.get(NEW_URL)

    field = response.context["form"]["time_zone"]
    assert field.value() == "America/Argentina/Cordoba"
    assert 'value="America/Argentina/Cordoba" selected' in response.content.decode()


def test_preview_shows_the_counts_and_a_sample_and_writes_nothing(runner_client, reason):
    open_orders = [shop_order() for _ in range(3)]
    in_progress = shop_order(status=OrderStatus.IN_PROGRESS)
    shop_order(status=OrderStatus.COMPLETED)
    shop_order(channel="/shop/tr")

    response = runner_client.post(NEW_URL, form_data(reason, folder="/shop"))

    assert response.status_code == 200
    preview = response.context["preview"]
    assert (preview.total, preview.to_cancel, preview.to_skip) == (6, 4, 2)
    content = response.content.decode()
    assert re.search(r'id="preview-total">6<', content)
    assert re.search(r'id="preview-to-cancel"><strong>4<', content)
    assert re.search(r'id="preview-to-skip">2<', content)
    for order in open_orders:
        assert f'href="{order.get_absolute_url()}">{order.number}</a>' in content
    # why the one in progress is skipped, in the form's words (the API's `kill` is not shown)
    assert "is in progress: tick “Also orders in progress” to cancel it." in content
    assert "set kill" not in content
    assert in_progress.number in content
    assert "Cancel 4 orders" in content
    assert "cannot be undone in one step" in content
    assert nothing_written()


def test_preview_narrows_by_picked_channel_status_and_period(runner_client, reason):
    wanted = shop_order(channel="/shop/de", placed_at=timezone.now() - timedelta(hours=3))
    shop_order(channel="/shop/de/b2b", placed_at=timezone.now() - timedelta(hours=3))
    shop_order(channel="/shop/de", status=OrderStatus.ON_HOLD)
    shop_order(channel="/shop/de", placed_at=timezone.now() - timedelta(days=3))

    response = runner_client.post(
        NEW_URL,
        form_data(
            reason, folder="", channels=["/shop/de"], states=["open"], date_from="1d", date_to="0"
        ),
    )

    assert [order for order, _why in response.context["preview"].sample] == [wanted]


def test_preview_says_what_relative_dates_mean_even_when_nothing_matches(runner_client, reason):
    response = runner_client.post(
        NEW_URL, form_data(reason, date_from="1d", date_to="0", time_zone="Europe/Istanbul")
    )

    content = response.content.decode()
    assert "No order matches this filter" in content
    assert "1d: since yesterday 00:00 in Europe/Istanbul (" in content
    assert "0: " in content


def test_the_folder_takes_its_sub_folders_unless_told_not_to(runner_client, reason):
    shop_order(channel="/shop/de")
    shop_order(channel="/shop/de/b2b")

    with_subfolders = runner_client.post(NEW_URL, form_data(reason, folder="/shop/de"))
    without = runner_client.post(NEW_URL, form_data(reason, folder="/shop/de", recursive=None))

    assert with_subfolders.context["preview"].total == 2
    assert without.context["preview"].total == 1


def test_preview_names_the_order_numbers_that_match_nothing(runner_client, reason):
    order = shop_order()

    response = runner_client.post(
        NEW_URL, form_data(reason, order_numbers=f"{order.number}, NOPE-1\nNOPE-2")
    )

    preview = response.context["preview"]
    assert preview.total == 1
    assert preview.missing_order_refs == ["NOPE-1", "NOPE-2"]
    assert "<code>NOPE-2</code>" in response.content.decode()


def test_a_filter_that_matches_nothing_says_so_and_offers_no_confirm_button(runner_client, reason):
    shop_order(channel="/shop/tr")

    response = runner_client.post(NEW_URL, form_data(reason, folder="/shop/de"))

    content = response.content.decode()
    assert response.context["preview"].total == 0
    assert "No order matches this filter" in content
    assert 'name="confirm"' not in content
    assert nothing_written()


def test_confirming_a_filter_that_matches_nothing_shows_the_error_and_writes_nothing(
    runner_client, reason
):
    response = runner_client.post(NEW_URL, confirm_data(reason, folder="/shop/de"))

    assert response.status_code == 200
    assert "No order matches this filter." in response.content.decode()
    assert response.context["form"].non_field_errors() == ["No order matches this filter."]
    assert nothing_written()


def test_only_skipped_orders_offer_no_confirm_button(runner_client, reason):
    shop_order(status=OrderStatus.COMPLETED)

    response = runner_client.post(NEW_URL, form_data(reason))

    assert response.context["preview"].to_cancel == 0
    assert 'name="confirm"' not in response.content.decode()


def test_the_confirm_button_sends_again_exactly_what_was_previewed(runner_client, reason):
    shop_order()

    response = runner_client.post(
        NEW_URL,
        form_data(reason, channels=["/shop/de"], states=["open", "on_hold"], date_from="2d"),
    )

    confirm_form = re.search(
        r'<form method="post"[^>]*class="bulk-confirm">(.*?)</form>',
        response.content.decode(),
        re.S,
    ).group(1)
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirm_form)
    assert ("channels", "/shop/de") in hidden
    assert ("states", "open") in hidden and ("states", "on_hold") in hidden
    assert ("date_from", "2d") in hidden
    assert ("reason", str(reason.pk)) in hidden
    assert ("confirm", "1") in hidden


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", [False, True], ids=["preview", "confirm"])
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"date_from": "yesterday"}, "date_from", "is not a valid date"),
        ({"date_to": "2024-13-01T00:00:00"}, "date_to", "is not a valid date"),
        (
            {"date_from": "2024-05-02T00:00:00", "date_to": "2024-05-01T00:00:00"},
            "date_from",
            "must be older than",
        ),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "Unknown time zone"),
        ({"reason": ""}, "reason", "This field is required."),
        ({"folder": "shop/de"}, "folder", "absolute folder path"),
        ({"states": ["completed"]}, "states", "not one of the available choices"),
        ({"channels": ["/nowhere"]}, "channels", "not one of the available choices"),
        ({"time_spent": "-5"}, "time_spent", "greater than or equal to 0"),
        ({"churn_time": "2001-01-01T10:00"}, "churn_time", "can't be in the past"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_writes_nothing(
    runner_client, reason, overrides, field, message, confirm, django_capture_on_commit_callbacks
):
    shop_order()
    data = (confirm_data if confirm else form_data)(reason, **overrides)

    with django_capture_on_commit_callbacks(execute=True):
        response = runner_client.post(NEW_URL, data)

    assert response.status_code == 200
    assert message in error_next_to(response, field)
    assert response.context["preview"] is None
    assert nothing_written()


def test_a_reason_that_needs_a_description_asks_for_one(runner_client):
    shop_order()
    reason = CancellationReasonFactory(extra_information_needed=True)

    response = runner_client.post(NEW_URL, form_data(reason))

    assert "needs a description" in error_next_to(response, "description")


def test_a_retired_reason_is_refused_next_to_the_reason(runner_client):
    shop_order()
    reason = CancellationReasonFactory(is_active=False)

    response = runner_client.post(NEW_URL, confirm_data(reason))

    assert "no longer offered" in error_next_to(response, "reason")
    assert nothing_written()


def test_filter_errors_of_folders_go_to_the_channels_or_the_folder_field():
    form = BulkCancelForm(
        form_data(CancellationReasonFactory(), channels=["/a"], folder="/b"), channels=["/a"]
    )
    assert form.is_valid(), form.errors

    form.add_service_errors(
        CancellationError(
            {
                "folders.0.folder": "bad channel",
                "folders.1.folder": "bad folder",
                "auditLog.timeSpent": "bad minutes",
                "filter": "bad filter",
            }
        )
    )

    assert form.errors["channels"] == ["bad channel"]
    assert form.errors["folder"] == ["bad folder"]
    assert form.errors["time_spent"] == ["bad minutes"]
    assert form.non_field_errors() == ["bad filter"]


# --- confirming ----------------------------------------------------------------------------------


def test_confirming_starts_and_runs_the_job_and_shows_its_result(
    runner_client, runner, reason, django_capture_on_commit_callbacks
):
    cancellable = [shop_order() for _ in range(3)]
    blocked = shop_order()
    SettlementItemFactory(order_item=blocked.items.get(), state="settled")
    shop_order(status=OrderStatus.COMPLETED)

    with django_capture_on_commit_callbacks(execute=True):
        response = runner_client.post(
            NEW_URL,
            confirm_data(
                reason,
                description="supplier gone",
                audit_comment="fraud wave",
                ticket_link="https://tickets.example/42",
                time_spent="7",
            ),
        )

    job = BulkCancellation.objects.get()
    assert response.status_code == 302
    assert response.url == job.get_absolute_url()
    assert job.status == BulkCancellationStatus.FINISHED
    assert (job.total, job.cancelled_count, job.skipped_count, job.failed_count) == (5, 3, 1, 1)
    assert (job.created_by, job.via, job.reason, job.description) == (
        runner,
        AuditEntry.Via.WEB,
        reason,
        "supplier gone",
    )
    assert (job.audit_comment, job.audit_ticket_link, job.audit_time_spent) == (
        "fraud wave",
        "https://tickets.example/42",
        7,
    )
    for order in cancellable:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    started = AuditEntry.objects.get(action="bulk_cancellation.started")
    assert (started.actor, started.via) == (runner, AuditEntry.Via.WEB)

    page = runner_client.get(response.url)
    content = page.content.decode()
    assert f"Bulk cancellation #{job.pk} has started" in content
    assert re.search(r'id="bulk-total">5<', content)
    assert re.search(r'id="bulk-cancelled">3<', content)
    assert re.search(r'id="bulk-skipped">1<', content)
    assert re.search(r'id="bulk-failed">1<', content)
    assert 'value="100"' in content
    assert "settled" in content  # why the blocked order failed
    assert "bulk_progress.js" not in content  # finished: nothing to poll


def test_a_future_effective_time_is_read_in_the_users_time_zone(
    client, runner, reason, django_capture_on_commit_callbacks
):
    StaffProfile.objects.create(user=runner, time_zone="Europe/Istanbul")
    client.force_login(runner)
    shop_order()
    local = (timezone.now() + timedelta(days=3)).astimezone(ZoneInfo("Europe/Istanbul"))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(NEW_URL, confirm_data(reason, churn_time=local.strftime("%Y-%m-%dT%H:%M")))

    job = BulkCancellation.objects.get()
    assert job.churn_time == local.replace(second=0, microsecond=0)


# --- the job page -------------------------------------------------------------------------------


def test_the_job_page_shows_the_filter_reason_and_who_started_it(
    viewer_client, django_capture_on_commit_callbacks
):
    shop_order(channel="/shop/de")
    user = UserFactory(username="carla")
    job = start_and_run(
        {
            "folders": [{"folder": "/shop/de"}],
            "states": ["open"],
            "dateFrom": "7d",
            "timeZone": "Europe/Berlin",
            "kill": True,
            "auditLog": {"comment": "fraud wave", "ticketLink": "javascript:alert(1)"},
        },
        django_capture_on_commit_callbacks,
        reason=CancellationReasonFactory(subject="Fraud"),
    )
    BulkCancellation.objects.filter(pk=job.pk).update(created_by=user)

    content = viewer_client.get(job.get_absolute_url()).content.decode()

    assert "/shop/de and below" in content
    assert "Open" in content
    # The relative date in words, with the moment it meant in the filter's zone.
    assert "7d: since 7 days ago, 00:00 in Europe/Berlin (" in content
    assert "Fraud" in content
    assert "carla" in content
    assert "fraud wave" in content
    assert 'href="javascript:' not in content


def test_the_job_page_lists_failed_and_skipped_orders_and_tabs_filter_them(
    viewer_client, django_capture_on_commit_callbacks
):
    cancelled = shop_order()
    skipped = shop_order(status=OrderStatus.COMPLETED)
    failed = shop_order()
    SettlementItemFactory(order_item=failed.items.get(), state="settled")
    job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)
    url = job.get_absolute_url()

    def listed(query=""):
        response = viewer_client.get(url + query)
        return [target.order for target in response.context["targets"]]

    assert listed() == [failed, skipped]  # failed first
    assert listed("?outcome=failed") == [failed]
    assert listed("?outcome=skipped") == [skipped]
    assert listed("?outcome=cancelled") == [cancelled]
    assert listed("?outcome=nonsense") == [failed, skipped]

    content = viewer_client.get(url + "?outcome=cancelled").content.decode()
    cancellation = cancelled.cancellations.get()
    assert f'href="{cancelled.get_absolute_url()}">{cancelled.number}</a>' in content
    assert f'href="{cancellation.get_absolute_url()}"' in content


def test_a_running_job_page_polls_and_still_works_without_javascript(viewer_client):
    shop_order()
    job = queued_job()

    content = viewer_client.get(job.get_absolute_url()).content.decode()

    assert 'id="bulk-progress"' in content
    assert re.search(r"<progress[^>]*aria-valuemin=\"0\"[^>]*aria-valuemax=\"100\"", content)
    assert "js/bulk_progress.js" in content
    assert reverse("staff:bulk-progress", args=[job.pk]) in content
    assert '<meta http-equiv="refresh"' in content
    assert ">Refresh</a>" in content


def test_the_cancellation_page_names_its_bulk_cancellation(
    runner_client, django_capture_on_commit_callbacks
):
    order = shop_order()
    job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)

    content = runner_client.get(order.cancellations.get().get_absolute_url()).content.decode()

    assert f'<a href="{job.get_absolute_url()}">Part of bulk cancellation #{job.pk}</a>' in content


def test_the_progress_json_reports_the_counts(viewer_client, django_capture_on_commit_callbacks):
    shop_order()
    shop_order(status=OrderStatus.COMPLETED)
    job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)
    running = queued_job()
    BulkCancellation.objects.filter(pk=running.pk).update(
        status=BulkCancellationStatus.RUNNING, total=4, cancelled_count=1, skipped_count=1
    )

    finished = viewer_client.get(reverse("staff:bulk-progress", args=[job.pk]))
    halfway = viewer_client.get(reverse("staff:bulk-progress", args=[running.pk]))

    assert finished.json() == {
        "status": "finished",
        "total": 2,
        "processed": 2,
        "cancelled": 1,
        "skipped": 1,
        "failed": 0,
        "percent": 100,
        "finished": True,
    }
    assert halfway.json() == {
        "status": "running",
        "total": 4,
        "processed": 2,
        "cancelled": 1,
        "skipped": 1,
        "failed": 0,
        "percent": 50,
        "finished": False,
    }
    assert "no-cache" in halfway["Cache-Control"]
    assert viewer_client.get(reverse("staff:bulk-progress", args=[99999])).status_code == 404


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_the_jobs_newest_first_with_status_and_progress(
    viewer_client, django_capture_on_commit_callbacks
):
    shop_order()
    older = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)
    newer = queued_job()

    response = viewer_client.get(LIST_URL)

    assert list(response.context["jobs"]) == [newer, older]
    content = response.content.decode()
    assert f'href="{older.get_absolute_url()}"' in content
    assert '<span class="badge badge-finished">Finished</span>' in content
    assert '<span class="badge badge-queued">Queued</span>' in content
    assert content.count("<progress") == 2


def test_an_empty_list_invites_to_start_one(runner_client):
    content = runner_client.get(LIST_URL).content.decode()

    assert "No bulk cancellations yet" in content
    assert f'href="{NEW_URL}"' in content


def test_the_list_is_paginated(viewer_client):
    shop_order()
    for _ in range(26):
        queued_job()

    first = viewer_client.get(LIST_URL)
    second = viewer_client.get(LIST_URL + "?page=2")

    assert len(first.context["jobs"]) == 25
    assert len(second.context["jobs"]) == 1


def test_list_queries_do_not_grow_with_the_jobs(viewer_client):
    shop_order()
    queued_job()
    one = count_queries(viewer_client, LIST_URL)
    for _ in range(19):
        BulkCancellation.objects.create(
            reason=CancellationReasonFactory(), created_by=UserFactory(), filter={}
        )

    assert count_queries(viewer_client, LIST_URL) == one


def test_detail_queries_do_not_grow_with_the_targets(
    viewer_client, django_capture_on_commit_callbacks
):
    shop_order(status=OrderStatus.COMPLETED, channel="/one")
    shop_order(channel="/one")
    small = start_and_run({"folders": ["/one"]}, django_capture_on_commit_callbacks)
    for _ in range(20):
        shop_order(status=OrderStatus.COMPLETED, channel="/many")
    for _ in range(20):
        shop_order(channel="/many")
    large = start_and_run({"folders": ["/many"]}, django_capture_on_commit_callbacks)
    assert (large.skipped_count, large.cancelled_count) == (20, 20)

    for query in ("", "?outcome=cancelled"):
        assert count_queries(viewer_client, small.get_absolute_url() + query) == count_queries(
            viewer_client, large.get_absolute_url() + query
        )


# --- permissions ---------------------------------------------------------------------------------


def all_urls(job):
    return [
        LIST_URL,
        NEW_URL,
        job.get_absolute_url(),
        reverse("staff:bulk-progress", args=[job.pk]),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    shop_order()
    for url in all_urls(queued_job()):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"{reverse('login')}?next={url}"


def test_without_a_bulk_permission_every_page_is_forbidden(client, reason):
    shop_order()
    job = queued_job()
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    for url in all_urls(job):
        assert client.get(url).status_code == 403
    assert client.post(NEW_URL, confirm_data(reason)).status_code == 403
    assert BulkCancellation.objects.count() == 1


def test_a_viewer_sees_the_jobs_but_cannot_start_one(viewer_client, reason):
    shop_order()
    job = queued_job()

    for url in (LIST_URL, job.get_absolute_url(), reverse("staff:bulk-progress", args=[job.pk])):
        assert viewer_client.get(url).status_code == 200
    assert f'href="{NEW_URL}"' not in viewer_client.get(LIST_URL).content.decode()
    assert viewer_client.get(NEW_URL).status_code == 403
    assert viewer_client.post(NEW_URL, confirm_data(reason)).status_code == 403
    assert BulkCancellation.objects.count() == 1


def test_the_bulk_permission_alone_lets_one_view_and_start(client, reason):
    shop_order()
    job = queued_job()
    client.force_login(UserFactory(permissions=[RUN]))

    for url in all_urls(job):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("permissions", "shown"),
    [([VIEW], True), ([RUN], True), (["cancellations.view_order"], False)],
)
def test_the_bulk_link_in_the_navigation_needs_a_bulk_permission(client, permissions, shown):
    client.force_login(UserFactory(permissions=[*permissions, "cancellations.view_order"]))

    content = client.get(reverse("staff:order-list")).content.decode()

    assert (f'href="{LIST_URL}"' in content) is shown


def test_outcome_tabs_show_the_counts(viewer_client, django_capture_on_commit_callbacks):
    shop_order()
    shop_order(status=OrderStatus.COMPLETED)
    job = start_and_run(EVERYTHING, django_capture_on_commit_callbacks)

    response = viewer_client.get(job.get_absolute_url())

    tabs = {name: count for name, _label, count in response.context["tabs"]}
    assert tabs == {
        "problems": 1,
        TargetOutcome.FAILED: 0,
        TargetOutcome.SKIPPED: 1,
        TargetOutcome.CANCELLED: 1,
    }
