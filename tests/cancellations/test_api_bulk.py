"""POST /api/v1/orders/cancel/ (JOC's filter, bulk jobs) and /api/v1/bulk-cancellations/."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from cancellations.models import (
    AuditEntry,
    BulkCancellation,
    BulkCancellationStatus,
    BulkCancellationTarget,
    Cancellation,
    TargetOutcome,
)
from cancellations.states import OrderStatus
from providers.contracts import schema, schema_errors
from tests.factories import (
    CancellationReasonFactory,
    OrderFactory,
    OrderItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CANCEL = "/api/v1/orders/cancel/"
JOBS = "/api/v1/bulk-cancellations/"
RUN = "cancellations.run_bulk_cancellation"
VIEW = "cancellations.view_bulkcancellation"


def job_url(job_id) -> str:
    return f"{JOBS}{job_id}/"


def results_url(job_id) -> str:
    return f"{JOBS}{job_id}/results/"


def invalid_fields(response) -> dict:
    return {error["field"]: error for error in response.json()["invalidFields"]}


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def client_for(*permissions) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(permissions=list(permissions)))
    return client


@pytest.fixture
def operator(db):
    return UserFactory(username="ops", permissions=[RUN])


@pytest.fixture
def api(operator):
    client = APIClient()
    client.force_authenticate(operator)
    return client


def shop_order(channel="/shop/de", status=OrderStatus.OPEN, **kwargs):
    order = OrderFactory(channel=channel, status=status, **kwargs)
    OrderItemFactory(order=order, quantity=2)
    return order


JOC = {"controllerId": "storno"}  # JOC's one required field


def post(api, body, **kwargs):
    """POST a JOC body: controllerId added unless the test sets it."""
    return api.post(CANCEL, {**JOC, **body}, format="json", **kwargs)


def joc_error(response) -> dict:
    """The error of JOC's HTTP 420 answer, after checking its shape (error420.resolved.json)."""
    assert response.status_code == 420, response.content
    assert schema_errors(response.json(), schema("js7/error420.resolved.json")) == []
    return response.json()["error"]


def nothing_written():
    return not (
        BulkCancellation.objects.exists()
        or Cancellation.objects.exists()
        or AuditEntry.objects.exists()
    )


# --- dry run -------------------------------------------------------------------------------------


def test_a_dry_run_counts_what_the_filter_selects_and_writes_nothing(api, reason):
    older = shop_order(placed_at=timezone.now() - timedelta(hours=3))
    newer = shop_order()
    running = shop_order(status=OrderStatus.IN_PROGRESS, placed_at=older.placed_at)
    shop_order(channel="/shop/de/b2b", status=OrderStatus.COMPLETED, placed_at=older.placed_at)
    shop_order(channel="/shop/tr")

    response = post(
        api, {"folders": [{"folder": "/shop/de"}], "reasonId": reason.pk, "dryRun": True}
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {key: body[key] for key in ("dryRun", "total", "toCancel", "toSkip", "byStatus")} == {
        "dryRun": True,
        "total": 4,
        "toCancel": 2,
        "toSkip": 2,
        "byStatus": {"open": 2, "in_progress": 1, "completed": 1},
    }
    assert body["missingOrderIds"] == []
    assert body["sample"][0] == {
        "id": newer.pk,
        "number": newer.number,
        "channel": "/shop/de",
        "status": "open",
        "placedTime": iso(newer.placed_at),
        "skipReason": None,
    }
    skip_reasons = {row["id"]: row["skipReason"] for row in body["sample"]}
    assert skip_reasons[older.pk] is None
    assert "kill" in skip_reasons[running.pk]
    assert nothing_written()


def test_a_dry_run_names_the_order_ids_that_match_nothing(api, reason):
    order = shop_order()

    response = post(
        api,
        {
            "orderIds": [order.pk, 999999, order.number, "NOPE-1"],
            "reasonId": reason.pk,
            "dryRun": True,
        },
    )

    assert response.status_code == 200, response.json()
    assert response.json()["total"] == 1
    assert response.json()["missingOrderIds"] == [999999, "NOPE-1"]


def test_a_dry_run_that_selects_nothing_answers_zero(api, reason):
    shop_order(channel="/shop/tr")

    response = post(
        api, {"folders": [{"folder": "/shop/de"}], "reasonId": reason.pk, "dryRun": True}
    )

    assert response.status_code == 200
    assert (response.json()["total"], response.json()["sample"]) == (0, [])


# --- running -------------------------------------------------------------------------------------


def test_posting_queues_a_job_whose_location_shows_it_finished(
    api, reason, operator, django_capture_on_commit_callbacks
):
    cancellable = [shop_order(), shop_order()]
    completed = shop_order(status=OrderStatus.COMPLETED)
    untouched = shop_order(channel="/shop/tr")
    body = {
        "folders": [{"folder": "/shop/de"}],
        "dateFrom": "1d",
        "timeZone": "Europe/Berlin",
        "reasonId": reason.pk,
        "description": "Payment provider outage",
        "auditLog": {"comment": "Operational requirement!", "timeSpent": 2},
    }

    # Eager Celery: the job runs when the commit's callbacks do, after the response.
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, body)

    assert response.status_code == 202, response.json()
    queued = response.json()
    job = BulkCancellation.objects.get()
    assert response["Location"] == f"http://testserver{job_url(job.pk)}"
    assert (queued["id"], queued["status"], queued["createdBy"]) == (job.pk, "queued", "ops")

    finished = api.get(response["Location"]).json()

    job.refresh_from_db()
    assert finished == {
        "id": job.pk,
        "status": "finished",
        "filter": {
            "folders": [{"folder": "/shop/de", "recursive": True}],
            "dateFrom": "1d",
            "timeZone": "Europe/Berlin",
            "deep": False,
            "kill": False,
            "auditLog": {"comment": "Operational requirement!", "timeSpent": 2},
        },
        "reasonId": reason.pk,
        "description": "Payment provider outage",
        "churnTime": None,
        "prorated": False,
        "canceledBy": "merchant",
        "total": 3,
        "processed": 3,
        "cancelled": 2,
        "skipped": 1,
        "failed": 0,
        "progressPercent": 100,
        "missingOrderIds": [],
        "createdTime": iso(job.created_at),
        "startedTime": iso(job.started_at),
        "finishedTime": iso(job.finished_at),
        "createdBy": "ops",
        "failures": [
            {
                "orderId": completed.pk,
                "orderNumber": completed.number,
                "outcome": "skipped",
                "message": "The order is completed and can't be cancelled.",
                "messageCode": "order_not_cancellable",
            }
        ],
        "_links": [
            {"rel": "self", "href": f"http://testserver{job_url(job.pk)}"},
            {"rel": "results", "href": f"http://testserver{results_url(job.pk)}"},
        ],
    }
    for order in cancellable:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    assert not untouched.cancellations.exists()
    started = AuditEntry.objects.get(action="bulk_cancellation.started")
    assert (started.actor, started.via, started.comment) == (
        operator,
        AuditEntry.Via.API,
        "Operational requirement!",
    )
    assert set(AuditEntry.objects.filter(order__in=cancellable).values_list("actor", "via")) == {
        (operator.pk, AuditEntry.Via.API)
    }


def test_posting_the_same_filter_again_cancels_nothing_twice(
    api, reason, django_capture_on_commit_callbacks
):
    orders = [shop_order() for _ in range(3)]
    body = {"folders": [{"folder": "/shop/de"}], "reasonId": reason.pk}
    with django_capture_on_commit_callbacks(execute=True):
        post(api, body)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, body)

    assert response.status_code == 202, response.json()
    again = api.get(response["Location"]).json()
    assert (again["total"], again["cancelled"], again["skipped"]) == (3, 0, 3)
    for order in orders:
        assert order.cancellations.count() == 1


def test_a_future_churn_time_is_taken_with_its_offset(
    api, reason, django_capture_on_commit_callbacks
):
    order = shop_order()
    later = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    churn_time = later.astimezone(timezone.get_fixed_timezone(120)).isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            api, {"orderIds": [order.pk], "reasonId": reason.pk, "churnTime": churn_time}
        )

    assert response.status_code == 202, response.json()
    assert response.json()["churnTime"] == iso(later)
    assert order.cancellations.get().churn_time == later


def test_a_jobs_controller_id_is_accepted_and_ignored(api, reason):
    shop_order()

    response = post(api, {"controllerId": "storno", "reasonId": reason.pk, "dryRun": True})

    assert response.status_code == 200, response.json()
    assert response.json()["total"] == 1


# --- invalid input -------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dateFrom": "yesterday"}, "dateFrom"),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"folder": "/shop/de"}, "folder: unknown field; did you mean folders?"),
        ({"churn_time": "2030-01-01T00:00:00Z"}, "churn_time: unknown field; did you mean"),
        ({"controllerId": None}, "controllerId"),
        ({"controllerId": "a/b"}, "controllerId"),
        ({"reasonId": None}, "reasonId"),
        ({"reasonId": 999999}, "reasonId"),
        ({"churnTime": "2020-01-01T00:00:00+02:00"}, "churnTime"),
        ({"churnTime": "2030-01-01T00:00:00"}, "churnTime"),
        ({"canceledBy": "nobody"}, "canceledBy"),
        ({"description": "x" * 256}, "description"),
        ({"folders": [{"folder": "shop/de"}]}, "folders.0.folder"),
        ({"folders": [{"folder": "/shop", "depth": 1}]}, "folders.0"),
        ({"workflowIds": [{"versionId": "v1"}]}, "workflowIds.0"),
        ({"states": ["OPEN"]}, "states.0"),
        ({"orderType": "Fresh"}, "orderType"),
        ({"orderIds": [0]}, "orderIds.0"),
        ({"orderIds": ["A", "A"]}, "orderIds"),
        ({"kill": "yes"}, "kill"),
        ({"auditLog": {"timeSpent": -1}}, "auditLog.timeSpent"),
        ({"auditLog": {"comment": "x" * 256}}, "auditLog.comment"),
    ],
)
def test_invalid_input_is_joc_420_naming_the_field_and_writes_nothing(
    api, reason, overrides, field, dry_run
):
    shop_order()
    body = {"reasonId": reason.pk, "dryRun": dry_run, **overrides}

    error = joc_error(post(api, body))

    assert error["code"] == "JOC-420"
    assert field in error["message"]
    assert nothing_written()


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_date_from_not_older_than_date_to_is_joc_400(api, reason, dry_run):
    body = {"reasonId": reason.pk, "dryRun": dry_run, "dateFrom": "0", "dateTo": "1d"}

    assert joc_error(post(api, body)) == {
        "code": "JOC-400",
        "message": "'dateFrom' must be older than 'dateTo'",
    }


def test_a_missing_controller_id_is_refused_as_joc_refuses_it(api, reason):
    response = api.post(CANCEL, {"reasonId": reason.pk, "dryRun": True}, format="json")

    assert "controllerId" in joc_error(response)["message"]


def test_a_bad_date_names_it_and_the_pattern(api, reason):
    message = joc_error(post(api, {"reasonId": reason.pk, "dateFrom": "yesterday"}))["message"]

    assert message.startswith("dateFrom: 'yesterday' does not match")


def test_an_impossible_date_the_pattern_allows_explains_the_formats(api, reason):
    response = post(api, {"reasonId": reason.pk, "dateFrom": "2026-13-45T00:00:00"})

    message = joc_error(response)["message"]
    assert "dateFrom: '2026-13-45T00:00:00' is not a valid date" in message
    assert "ISO 8601" in message


def test_an_unknown_key_is_named_as_sent_with_the_close_match(api, reason):
    message = joc_error(post(api, {"reasonId": reason.pk, "reason_id": 1}))["message"]

    assert message == "reason_id: unknown field; did you mean reasonId?"


def test_every_bad_field_is_named_at_once(api):
    response = post(api, {"dateFrom": "soon", "folder": "/x", "auditLog": {"timeSpent": -5}})

    message = joc_error(response)["message"]
    for name in ("dateFrom", "folder", "auditLog.timeSpent", "reasonId"):
        assert f"{name}: " in message


def test_an_inactive_reason_is_refused_under_reason_id(api):
    shop_order()
    reason = CancellationReasonFactory(is_active=False)

    response = post(api, {"reasonId": reason.pk, "folders": [{"folder": "/"}]})

    assert joc_error(response)["message"].startswith("reasonId: ")
    assert nothing_written()


def test_a_reason_needing_extra_information_needs_a_description(api):
    shop_order()
    reason = CancellationReasonFactory(extra_information_needed=True)

    response = post(api, {"reasonId": reason.pk, "dryRun": True})

    assert joc_error(response)["message"].startswith("description: ")


def test_a_filter_that_selects_nothing_is_joc_161(api, reason):
    shop_order(channel="/shop/tr")

    response = post(api, {"folders": [{"folder": "/shop/de"}], "reasonId": reason.pk})

    assert joc_error(response) == {"code": "JOC-161", "message": "No orders found."}
    assert nothing_written()


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2]",
        '"cancel everything"',
        "42",
        "null",
        "true",
        '{"reasonId": {"id": null}}',
        '{"folders": [null]}',
        '{"folders": {"folder": null}}',
        '{"folders": [{"folder": null, "recursive": null}], "states": [null]}',
        '{"orderIds": [null, {"id": 1}, [2]]}',
        '{"auditLog": {"timeSpent": [null], "comment": {"a": null}}}',
        '{"auditLog": [null]}',
        '{"dateFrom": {"value": null}, "dateTo": [null], "timeZone": [null]}',
        '{"churnTime": [null], "dryRun": [null], "prorated": {"x": null}}',
        '{"deep": "null", "kill": [true]}',
        '{"orderIds": [1e400]}',
    ],
)
def test_garbage_bodies_are_joc_420_not_a_crash(api, reason, raw):
    shop_order()

    response = api.post(CANCEL, raw, content_type="application/json")

    assert joc_error(response)["code"] == "JOC-420"
    assert nothing_written()


def test_a_body_that_is_not_an_object_is_joc_420(api):
    response = api.post(CANCEL, [1, 2], format="json")

    assert joc_error(response)["message"] == "Send the body as a JSON object."


def test_a_body_that_is_not_json_is_joc_420_or_415(api):
    assert joc_error(api.post(CANCEL, "{", content_type="application/json"))["code"] == "JOC-420"
    assert api.post(CANCEL, "a=b", content_type="text/plain").status_code == 415


# --- who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_starting_needs_the_run_permission(reason, dry_run):
    shop_order()
    client = client_for(VIEW, "cancellations.cancel_order", "cancellations.view_order")

    response = client.post(CANCEL, {"reasonId": reason.pk, "dryRun": dry_run}, format="json")

    assert response.status_code == 403
    assert nothing_written()


@pytest.mark.parametrize("url", [CANCEL, JOBS, job_url(1), results_url(1)])
def test_anonymous_callers_get_a_401(url):
    client = APIClient()
    response = client.post(url, {}, format="json") if url == CANCEL else client.get(url)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("permissions", "status_code"),
    [([VIEW], 200), ([RUN], 200), (["cancellations.view_order"], 403)],
)
def test_reading_jobs_needs_the_view_or_run_permission(permissions, status_code):
    job = make_job()
    client = client_for(*permissions)

    for url in (JOBS, job_url(job.pk), results_url(job.pk)):
        assert client.get(url).status_code == status_code


# --- reading jobs --------------------------------------------------------------------------------


def make_job(*, reason=None, created_by=None, outcomes=(), created_at=None, **fields):
    """A job as a finished run leaves it, one target per outcome given."""
    job = BulkCancellation.objects.create(
        reason=reason or CancellationReasonFactory(),
        created_by=created_by,
        status=fields.pop("status", BulkCancellationStatus.FINISHED),
        targets_ready=True,
        total=len(outcomes),
        created_at=created_at or timezone.now(),
        **fields,
    )
    for outcome in outcomes:
        order = shop_order()
        BulkCancellationTarget.objects.create(
            bulk_cancellation=job,
            order=order,
            outcome=outcome,
            message={"failed": "Settled already.", "skipped": "Nothing left."}.get(outcome, ""),
            processed_at=None if outcome == TargetOutcome.PENDING else timezone.now(),
        )
    return job


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_unknown_jobs_are_a_404_problem(api):
    for url in (job_url(424242), results_url(424242), job_url(10**30), results_url(10**30)):
        response = api.get(url)
        assert response.status_code == 404
        assert response.json()["title"] == "Not found"


def test_the_job_list_is_a_page_newest_first(api):
    old = make_job(created_at=timezone.now() - timedelta(days=1))
    new = make_job()

    body = api.get(JOBS, {"limit": 1}).json()

    assert body["count"] == 2
    assert "offset=1" in body["next"]
    assert [row["id"] for row in body["results"]] == [new.pk]
    assert ids(api.get(JOBS)) == [new.pk, old.pk]


def test_the_job_list_filters_by_status(api):
    running = make_job(status=BulkCancellationStatus.RUNNING)
    queued = make_job(status=BulkCancellationStatus.QUEUED)
    make_job()

    assert ids(api.get(JOBS, {"status": "running"})) == [running.pk]
    assert set(ids(api.get(JOBS, {"status": ["running", "queued"]}))) == {running.pk, queued.pk}
    response = api.get(JOBS, {"status": "done"})
    assert response.status_code == 400
    assert "status" in invalid_fields(response)


def test_a_job_shows_its_first_100_failures_failed_before_skipped(api):
    job = make_job(outcomes=[TargetOutcome.SKIPPED] * 101 + [TargetOutcome.FAILED] * 2)

    failures = api.get(job_url(job.pk)).json()["failures"]

    assert len(failures) == 100
    assert [row["outcome"] for row in failures[:3]] == ["failed", "failed", "skipped"]
    assert failures[0]["message"] == "Settled already."


def test_a_running_job_reports_its_progress(api):
    job = make_job(
        status=BulkCancellationStatus.RUNNING,
        outcomes=[TargetOutcome.PENDING] * 3 + [TargetOutcome.FAILED],
        failed_count=1,
    )

    body = api.get(job_url(job.pk)).json()

    assert (body["status"], body["total"], body["processed"], body["progressPercent"]) == (
        "running",
        4,
        1,
        25,
    )


def test_results_list_each_order_and_filter_by_outcome(
    api, reason, django_capture_on_commit_callbacks
):
    cancelled = shop_order()
    skipped = shop_order(status=OrderStatus.COMPLETED)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, {"orderIds": [cancelled.pk, skipped.pk], "reasonId": reason.pk})
    job_id = response.json()["id"]

    rows = api.get(results_url(job_id)).json()["results"]
    only_skipped = api.get(results_url(job_id), {"outcome": "skipped"}).json()["results"]

    cancellation = cancelled.cancellations.get()
    assert [{k: v for k, v in row.items() if k != "processedTime"} for row in rows] == [
        {
            "orderId": cancelled.pk,
            "orderNumber": cancelled.number,
            "outcome": "cancelled",
            "message": cancellation.pk,
            "messageCode": None,
            "cancellationId": cancellation.pk,
        },
        {
            "orderId": skipped.pk,
            "orderNumber": skipped.number,
            "outcome": "skipped",
            "message": "The order is completed and can't be cancelled.",
            "messageCode": "order_not_cancellable",
            "cancellationId": None,
        },
    ]
    assert all(row["processedTime"] for row in rows)
    assert [row["orderId"] for row in only_skipped] == [skipped.pk]
    pending = api.get(results_url(job_id), {"outcome": "pending"}).json()
    assert pending["count"] == 0


def test_a_bad_outcome_filter_is_a_400_naming_it(api):
    job = make_job()

    response = api.get(results_url(job.pk), {"outcome": "lost"})

    assert response.status_code == 400
    assert "outcome" in invalid_fields(response)


def count_queries(api, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(url).status_code == 200
    return len(queries)


def test_the_job_list_queries_do_not_grow_with_the_rows(api, operator):
    reason = CancellationReasonFactory()

    def job():
        make_job(reason=reason, created_by=operator, outcomes=["failed", "skipped", "cancelled"])

    job()
    api.get(JOBS)  # the user's permission cache is filled once per client
    one_row = count_queries(api, JOBS)
    for _ in range(19):
        job()
    twenty_rows = count_queries(api, JOBS)

    # count, jobs + creator, first failures of the page
    assert one_row == twenty_rows == 3


def test_the_results_queries_do_not_grow_with_the_rows(api):
    few = make_job(outcomes=["cancelled"])
    many = make_job(outcomes=["cancelled", "failed", "skipped", "pending"] * 5)
    api.get(results_url(few.pk))

    # the job, count, targets + orders
    assert count_queries(api, results_url(few.pk)) == count_queries(api, results_url(many.pk)) == 3


def test_the_schema_documents_the_bulk_endpoints(api):
    admin = APIClient()
    admin.force_authenticate(UserFactory(is_superuser=True))

    schema = admin.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    post_op = schema["paths"]["/api/v1/orders/cancel/"]["post"]
    assert set(post_op["responses"]) >= {"200", "202", "400", "403"}
    examples = post_op["requestBody"]["content"]["application/json"]["examples"]
    assert any(example["value"].get("timeZone") == "Europe/Berlin" for example in examples.values())
    results = schema["paths"]["/api/v1/bulk-cancellations/{id}/results/"]["get"]
    assert {"outcome", "limit", "offset"} <= {p["name"] for p in results["parameters"]}
    job_fields = schema["components"]["schemas"]["BulkCancellation"]["properties"]
    assert {"progressPercent", "failures", "_links"} <= set(job_fields)


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def test_an_unknown_status_filter_is_a_documented_400(api):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    response = api.get(JOBS, {"status": "lost"})

    assert response.status_code == 400
    assert response.json()["invalidFields"][0]["field"] == "status"
    assert "400" in schema["paths"][JOBS]["get"]["responses"]
    assert "400" in schema["paths"]["/api/v1/bulk-cancellations/{id}/results/"]["get"]["responses"]


def test_a_job_id_that_is_no_number_is_a_404_problem(api):
    response = api.get(f"{JOBS}-1/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_queued_job_documents_its_location():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    accepted = schema["paths"][CANCEL]["post"]["responses"]["202"]
    assert accepted["headers"]["Location"]["required"] is True
    assert "headers" not in schema["paths"][CANCEL]["post"]["responses"]["200"]


# --- JOC's fields and answers --------------------------------------------------------------------

SECURITY = schema("js7/security401_403.resolved.json")


def ignored(response) -> dict:
    return {entry["field"]: entry["reason"] for entry in response.json()["ignored"]}


def test_a_dry_run_answers_jocs_ok_keys_and_what_it_ignored(api, reason):
    shop_order()

    response = post(api, {"reasonId": reason.pk, "dryRun": True, "orderType": "FreshOnly"})

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["deliveryDate"].endswith("Z")
    assert set(ignored(response)) == {"controllerId", "orderType"}


def test_a_queued_job_answers_jocs_ok_keys_beside_the_job(
    api, reason, django_capture_on_commit_callbacks
):
    shop_order()

    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, {"reasonId": reason.pk, "folders": [{"folder": "/"}]})

    assert response.status_code == 202
    assert (response.json()["ok"], response.json()["status"]) == (True, "queued")
    assert "surveyDate" in response.json()


@pytest.mark.parametrize("state", ["FAILED", "BROKEN", "UNKNOWN"])
def test_a_joc_state_no_storno_order_has_finds_no_orders(api, reason, state):
    shop_order()

    assert joc_error(post(api, {"reasonId": reason.pk, "states": [state]}))["code"] == "JOC-161"
    assert nothing_written()


def test_a_dry_run_of_such_states_counts_zero_and_says_why(api, reason):
    shop_order()

    response = post(api, {"reasonId": reason.pk, "dryRun": True, "states": ["FAILED", "BROKEN"]})

    assert (response.status_code, response.json()["total"]) == (200, 0)
    assert "FAILED" in ignored(response)["states.0"]
    assert "BROKEN" in ignored(response)["states.1"]


def test_the_states_storno_knows_apply_beside_those_it_does_not(api, reason):
    shop_order(status=OrderStatus.ON_HOLD)
    shop_order(status=OrderStatus.OPEN)

    response = post(
        api, {"reasonId": reason.pk, "dryRun": True, "states": ["SUSPENDED", "UNKNOWN"]}
    )

    assert (response.json()["total"], response.json()["byStatus"]) == (1, {"on_hold": 1})
    assert set(ignored(response)) == {"controllerId", "states.1"}


def test_workflow_ids_find_no_storno_orders_and_beat_folders(api, reason):
    shop_order()
    body = {"reasonId": reason.pk, "workflowIds": [{"path": "/shop/pay", "versionId": "v1"}]}

    preview = post(api, {**body, "dryRun": True, "folders": [{"folder": "/"}]})

    assert preview.json()["total"] == 0
    assert {"workflowIds", "folders"} <= set(ignored(preview))
    assert joc_error(post(api, body))["code"] == "JOC-161"


def test_order_ids_alone_select_and_the_other_filters_are_listed_as_ignored(api, reason):
    order = shop_order(channel="/shop/tr")
    body = {
        "orderIds": [order.number],
        "folders": [{"folder": "/shop/de"}],
        "states": ["FAILED"],
        "dateFrom": "1d",
    }

    response = post(api, {**body, "reasonId": reason.pk, "dryRun": True})

    assert response.json()["total"] == 1
    assert {"folders", "states", "dateFrom"} <= set(ignored(response))


def test_anonymous_callers_get_jocs_401_shape():
    response = APIClient().post(CANCEL, {**JOC}, format="json")

    assert response.status_code == 401
    assert response.json()["isAuthenticated"] is False
    assert schema_errors(response.json(), SECURITY) == []


def test_a_user_without_the_run_permission_gets_jocs_403_shape(reason):
    response = client_for(VIEW).post(CANCEL, {**JOC, "reasonId": reason.pk}, format="json")

    assert response.status_code == 403
    assert (response.json()["isAuthenticated"], response.json()["isPermitted"]) == (True, False)
    assert schema_errors(response.json(), SECURITY) == []


@pytest.mark.parametrize(
    ("url", "query", "hint"),
    [
        (JOBS, {"stauts": "queued"}, "did you mean status?"),
        (JOBS, {"page": "2"}, "unknown field"),
        ("results", {"outcomes": "failed"}, "did you mean outcome?"),
        ("detail", {"expand": "1"}, "unknown field"),
    ],
)
def test_the_job_endpoints_refuse_unknown_query_parameters(api, url, query, hint):
    job = make_job()
    url = {"results": results_url(job.pk), "detail": job_url(job.pk)}.get(url, url)

    response = api.get(url, query)

    assert response.status_code == 400
    (name,) = query
    assert hint in invalid_fields(response)[name]["message"]
