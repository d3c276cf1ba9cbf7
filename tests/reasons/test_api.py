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


def test_an_invalid_active_flag_is_a_400_naming_the_field_drf_style(reader):
    response = reader.get(LIST, {"is_active": "maybe"})

    body = response.json()
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert body.keys() == {"is_active", "code"}
    assert "maybe" in body["is_active"][0]
    assert body["code"] == "invalid_choice"


def test_an_undocumented_cancellation_type_filter_is_a_400_naming_it(reader):
    response = reader.get(LIST, {"cancellation_type": "exchange"})

    assert response.status_code == 400
    assert list(response.json()) == ["cancellation_type", "code"]


@pytest.mark.parametrize("page_size", ["0", "-1", "ten"])
def test_an_unusable_page_size_is_a_400_naming_it(reader, page_size):
    response = reader.get(LIST, {"page_size": page_size})

    assert response.status_code == 400
    assert response.json() == {"page_size": ["A positive whole number."], "code": "invalid"}


# --- unknown input is refused, named, with the close match -------------------------------------


def test_an_unknown_query_parameter_is_refused_with_the_close_match(reader):
    CancellationReasonFactory()

    response = reader.get(LIST, {"isActive": "true", "pagesize": "2", "colour": "red"})

    assert response.status_code == 400
    assert response.json() == {
        "isActive": ["unknown field; did you mean is_active?"],
        "pagesize": ["unknown field; did you mean page_size?"],
        "colour": ["unknown field"],
        "code": "unknown_field",
    }


def test_the_seeds_and_the_documented_parameters_are_accepted(reader):
    CancellationReasonFactory.create_batch(3, cancellation_type="cancel")
    params = {"page": "1", "page_size": "2", "is_active": "true", "cancellation_type": "cancel"}

    response = reader.get(LIST, {**params, "search": "", "format": "json"})

    assert response.status_code == 200
    assert response.json()["count"] == 3


@pytest.mark.parametrize("url", [f"{LIST}{{pk}}/", PULL])
def test_endpoints_without_parameters_refuse_any(reader, puller, url):
    reason = CancellationReasonFactory()
    client = puller if url == PULL else reader

    response = client.get(url.format(pk=reason.pk), {"page": "1"})

    assert response.status_code == 400
    assert response.json() == {"page": ["unknown field"], "code": "unknown_field"}
    assert not ReasonSyncRun.objects.exists()


def test_a_body_field_is_refused_by_name(reader):
    response = reader.generic(
        "GET", LIST, data='{"subject": "x", "is_active": true}', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "subject": ["unknown field"],
        "is_active": ["unknown field"],
        "code": "unknown_field",
    }


def test_a_body_that_is_not_an_object_is_refused(reader):
    response = reader.generic("GET", LIST, data="[1]", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["This endpoint takes no body."],
        "code": "unknown_field",
    }


def test_the_seeds_request_with_its_content_type_and_no_body_is_accepted(reader):
    response = reader.get(LIST, headers={"Content-Type": "application/json"})

    assert response.status_code == 200


def test_unknown_parameters_without_a_token_are_401_not_400():
    response = APIClient().get(LIST, {"colour": "red"})

    assert (response.status_code, response.content) == (401, b"")


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


@pytest.mark.parametrize("pk", ["999999", "abc", "1.5"])
def test_an_unknown_reason_is_404_drf_style(reader, pk):
    response = reader.get(f"{LIST}{pk}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


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
    assert response["Content-Type"] == "application/json"
    assert body.keys() == {"detail", "code", "cause", "sync_run"}
    assert body["code"] == "omnitron_failed"
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
    assert response.json() == {
        "detail": "Another pull from Omnitron is running; try again when it has finished.",
        "code": "conflict",
    }


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def documented(path: str, method: str = "get") -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["paths"][path][method]["responses"]


DETAIL_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
            "required": ["detail", "code"],
        }
    }
}


def test_the_list_documents_its_errors_in_the_dialects_shape(reader):
    responses = documented(LIST)

    assert {"200", "400", "401", "403", "404", "406"} <= set(responses)
    assert responses["404"]["content"] == DETAIL_BODY
    assert responses["400"]["content"]["application/json"]["schema"]["additionalProperties"]
    assert "content" not in responses["401"]  # seed 004: no body
    response = reader.get(LIST, {"page": 9})
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}


def test_one_reason_documents_its_404(reader):
    responses = documented(f"{LIST}{{id}}/")

    assert {"200", "400", "401", "403", "404", "406"} <= set(responses)
    assert responses["404"]["content"] == DETAIL_BODY
    assert reader.get(f"{LIST}999999/").json() == {"detail": "Not found.", "code": "not_found"}


def test_a_pull_documents_its_409(puller):
    ReasonSyncRun.objects.create(trigger=SyncTrigger.SCHEDULE)

    response = puller.get(PULL)

    assert response["Content-Type"] == "application/json"
    assert documented(PULL)["409"]["content"] == DETAIL_BODY


def test_reading_without_the_permission_is_403_drf_style():
    response = client_for().get(LIST)

    assert response.json() == {
        "detail": "You do not have permission to perform this action.",
        "code": "permission_denied",
    }
