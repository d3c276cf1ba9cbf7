"""The Omnitron-dialect reason endpoints of seed 004: /api/v1/oms/cancellation-reasons/."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reasons.models import CancellationReason, ReasonSyncRun, SyncTrigger
from tests.factories import CancellationReasonFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/oms/cancellation-reasons/"
PULL = "/api/v1/oms/cancellation-reasons/pull_from_omnitron/"
SEED_FIELDS = [
    "id",
    "cancellation_type",
    "created_date",
    "modified_date",
    "omnitron_id",
    "subject",
    "extra_information_needed",
    "ordering",
    "is_active",
]


def client_for(*permissions) -> APIClient:
    token = Token.objects.create(user=UserFactory(permissions=list(permissions)))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def reader():
    return client_for("reasons.view_cancellationreason")


@pytest.fixture
def puller():
    return client_for("reasons.pull_reasons")


# --- list --------------------------------------------------------------------------------------


def test_list_is_the_seeds_envelope_with_exactly_the_seeds_fields(reader):
    reason = CancellationReasonFactory(subject="Yanlış ürün aldım.")

    body = reader.get(LIST).json()

    assert body.keys() == {"count", "next", "previous", "results"}
    assert list(body["results"][0]) == SEED_FIELDS
    assert body["results"][0]["subject"] == "Yanlış ürün aldım."
    assert body["results"][0]["omnitron_id"] == reason.omnitron_id
    assert body["results"][0]["created_date"].endswith("Z")


def test_list_pages_by_page_number(reader):
    CancellationReasonFactory.create_batch(3)

    first = reader.get(LIST, {"page_size": 2}).json()
    second = reader.get(first["next"]).json()

    assert first["count"] == 3
    assert "page=2" in first["next"]
    assert len(second["results"]) == 1
    assert second["next"] is None


def test_an_out_of_range_page_is_404(reader):
    assert reader.get(LIST, {"page": 9}).status_code == 404


def test_list_is_in_catalog_order_ordering_then_id(reader):
    late = CancellationReasonFactory(ordering=200)
    first_tie = CancellationReasonFactory(ordering=10)
    second_tie = CancellationReasonFactory(ordering=10)

    ids = [row["id"] for row in reader.get(LIST).json()["results"]]

    assert ids == [first_tie.id, second_tie.id, late.id]


def test_list_filters_by_active_flag(reader):
    CancellationReasonFactory(is_active=True)
    inactive = CancellationReasonFactory(is_active=False)

    ids = [row["id"] for row in reader.get(LIST, {"is_active": "false"}).json()["results"]]

    assert ids == [inactive.id]


def test_list_filters_by_cancellation_type(reader):
    CancellationReasonFactory(cancellation_type="cancel")
    refund = CancellationReasonFactory(cancellation_type="refund")

    ids = [row["id"] for row in reader.get(LIST, {"cancellation_type": "refund"}).json()["results"]]

    assert ids == [refund.id]


def test_list_searches_the_subject_in_every_language(reader):
    turkish = CancellationReasonFactory(subject="Yanlış ürün aldım.")
    german = CancellationReasonFactory(subject="Diğer", subject_de="Sonstiges")
    CancellationReasonFactory(subject="Too expensive")

    found = {row["id"] for row in reader.get(LIST, {"search": "ürün"}).json()["results"]}
    found_de = {row["id"] for row in reader.get(LIST, {"search": "sonst"}).json()["results"]}

    assert found == {turkish.id}
    assert found_de == {german.id}


def test_an_invalid_active_flag_is_a_400_naming_the_field(reader):
    response = reader.get(LIST, {"is_active": "maybe"})

    assert response.status_code == 400
    assert response.json()["invalidFields"][0]["field"] == "is_active"


def test_list_query_count_does_not_grow_with_the_page(reader, django_assert_max_num_queries):
    CancellationReasonFactory.create_batch(30)

    # token + user + permissions + count + page
    with django_assert_max_num_queries(6):
        response = reader.get(LIST)

    assert len(response.json()["results"]) == 30


# --- detail ------------------------------------------------------------------------------------


def test_detail_is_one_reason_with_exactly_the_seeds_fields(reader):
    reason = CancellationReasonFactory(subject="Ürünü satın almaktan vazgeçtim.")

    body = reader.get(f"{LIST}{reason.pk}/").json()

    assert list(body) == SEED_FIELDS
    assert (body["id"], body["subject"]) == (reason.pk, "Ürünü satın almaktan vazgeçtim.")


@pytest.mark.parametrize("pk", ["999999", "abc"])
def test_an_unknown_reason_is_404(reader, pk):
    assert reader.get(f"{LIST}{pk}/").status_code == 404


# --- authentication and permissions ------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, f"{LIST}1/", PULL])
def test_without_a_token_it_is_401_with_no_body(url):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert response.content == b""
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401_with_no_body():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 11111XXXXXXXXXXXXXXXXX201XXXXX9332d")

    response = client.get(LIST)

    assert response.status_code == 401
    assert response.content == b""


def test_reading_needs_the_view_permission():
    assert client_for().get(LIST).status_code == 403


def test_pulling_needs_the_pull_permission(reader, omnitron):
    assert reader.get(PULL).status_code == 403
    assert not ReasonSyncRun.objects.exists()


# --- pull_from_omnitron ------------------------------------------------------------------------


def test_a_successful_pull_is_200_with_an_empty_body(puller, omnitron):
    response = puller.get(PULL)

    assert response.status_code == 200
    assert response.content == b""
    assert CancellationReason.objects.count() == 12
    assert ReasonSyncRun.objects.get().trigger == SyncTrigger.API


def test_a_pull_omnitron_fails_is_502_naming_the_cause(puller, omnitron):
    omnitron.server_error_on_page = 2

    response = puller.get(PULL)

    body = response.json()
    assert response.status_code == 502
    assert response["Content-Type"] == "application/problem+json"
    assert body["cause"] == "server_error"
    assert "HTTP 500" in body["detail"]
    assert body["sync_run"] == ReasonSyncRun.objects.get().pk
    assert not CancellationReason.objects.exists()


def test_a_pull_omnitron_refuses_is_502_naming_the_token(puller, omnitron):
    omnitron.token = "rotated"

    body = puller.get(PULL).json()

    assert body["cause"] == "unauthorized"
    assert "OMNITRON_TOKEN" in body["detail"]


def test_a_pull_while_another_runs_is_409(puller, omnitron):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    response = puller.get(PULL)

    assert response.status_code == 409
    assert response.json()["status"] == 409


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def documented(path: str, method: str = "get") -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["paths"][path][method]["responses"]


PROBLEM_BODY = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_the_list_documents_its_errors(reader):
    responses = documented(LIST)

    assert {"200", "400", "401", "403", "404", "406"} <= set(responses)
    assert responses["404"]["content"] == PROBLEM_BODY
    assert "content" not in responses["401"]  # seed 004: no body
    assert reader.get(LIST, {"page": 9})["Content-Type"] == "application/problem+json"


def test_one_reason_documents_its_404(reader):
    responses = documented(f"{LIST}{{id}}/")

    assert {"200", "401", "403", "404", "406"} <= set(responses)
    assert responses["404"]["content"] == PROBLEM_BODY
    assert reader.get(f"{LIST}999999/")["Content-Type"] == "application/problem+json"


def test_a_pull_documents_its_409_as_a_problem(puller):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    response = puller.get(PULL)

    assert response["Content-Type"] == "application/problem+json"
    assert documented(PULL)["409"]["content"] == PROBLEM_BODY
