"""The OpenAPI document: valid, warning-free, and describing the cancellations API."""

import json

import pytest
import yaml
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate as validate_openapi_document
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView


def test_the_cancellations_api_alone_has_a_valid_warning_free_schema():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("cancellations.api.urls"))])

    schema = generator.get_schema(request=None, public=True)

    validate_schema(schema)
    assert not GENERATOR_STATS, (GENERATOR_STATS._warn_cache, GENERATOR_STATS._error_cache)
    assert schema["paths"]["/api/v1/order-cancellations/{id}"]["put"]["requestBody"]


@pytest.mark.django_db
def test_the_whole_schema_validates_without_warnings(tmp_path):
    schema_file = tmp_path / "schema.yaml"

    # --fail-on-warn turns any warning or error of drf-spectacular into a SystemExit.
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(schema_file))

    schema = yaml.safe_load(schema_file.read_text())
    paths = schema["paths"]
    assert set(paths["/api/v1/order-cancellations/{id}"]) >= {"get", "put"}
    assert "post" in paths["/api/v1/order-cancellations/{id}/revoke/"]
    assert set(paths["/api/v1/orders/"]) >= {"get", "post"}
    problem = paths["/api/v1/order-cancellations/{id}"]["put"]["responses"]["400"]
    assert problem["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_the_docs_page_is_served(admin_user):
    client = APIClient()
    client.force_login(admin_user)

    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_served_schema_passes_openapi_spec_validator(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200

    # Raises with the offending path, e.g. a default that breaks its own format (customerEmail
    # "" with format email, which drf-spectacular's own validation lets through).
    validate_openapi_document(json.loads(response.content))


# --- the errors every operation lists (backoffice.openapi.ErrorsSchema) ------------------------

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def statuses(document, path, method) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def error_schema(document, path, method, status, media_type="application/problem+json"):
    return document["paths"][path][method]["responses"][status]["content"][media_type]["schema"]


def test_a_create_lists_every_error_it_can_answer_as_a_problem(document):
    path = "/api/v1/order-cancellations/"

    errors = statuses(document, path, "post") - {"201", "200"}  # 200: a dryRun's plan

    assert errors == {"400", "401", "403", "406", "409", "413", "415", "422", "429", "503"}
    for status in errors:
        assert error_schema(document, path, "post", status) == PROBLEM, status


def test_a_read_of_one_resource_lists_404_but_no_body_errors(document):
    errors = statuses(document, "/api/v1/orders/{id}/", "get") - {"200"}

    assert errors == {"401", "403", "404", "406", "429", "503"}


def test_rebillys_upsert_lists_its_422_and_the_read_beside_it_does_not(document):
    path = "/api/v1/order-cancellations/{id}"

    assert {"404", "409", "413", "415", "422"} <= statuses(document, path, "put")
    assert "422" not in statuses(document, path, "get")


def test_429_and_503_say_when_to_try_again(document):
    responses = document["paths"]["/api/v1/orders/"]["get"]["responses"]

    assert "Retry-After" in responses["429"]["headers"]
    assert "Retry-After" in responses["503"]["headers"]


def test_the_omnitron_dialect_documents_its_own_error_bodies(document):
    path = "/api/v1/oms/cancellation-reasons/{id}/"
    responses = document["paths"][path]["get"]["responses"]

    assert {"429", "503"} <= set(responses)
    for status in ("429", "503"):
        assert set(responses[status]["content"]) == {"application/json"}
        assert error_schema(document, path, "get", status, "application/json")["required"] == [
            "detail",
            "code",
        ]
    assert "content" not in responses["401"]  # 401 without a body


def test_the_joc_dialect_keeps_its_security_shape_and_its_420s(document):
    path = "/api/v1/orders/cancel/"
    responses = document["paths"][path]["post"]["responses"]

    assert error_schema(document, path, "post", "401", "application/json") == {
        "$ref": "#/components/schemas/JocSecurity"
    }
    assert error_schema(document, path, "post", "429") == PROBLEM
    assert {"413", "420", "503"} <= set(responses)
    # Invalid input is a 420 there: its 400 and 409 are only the Idempotency-Key's.
    assert "Invalid input" not in responses["400"]["description"]
    assert "current state" not in responses["409"]["description"]


def test_the_callisto_dialect_answers_every_error_as_a_laminas_problem(document):
    laminas = {"$ref": "#/components/schemas/LaminasProblem"}
    for route in ("/callisto/cancel/", "/callisto/cancel/{cancel_id}/"):
        for method in ("put", "delete"):
            errors = {s for s in statuses(document, route, method) if s >= "400"}
            assert {"409", "413", "429", "503"} <= errors
            for status in errors:
                assert error_schema(document, route, method, status) == laminas, (route, status)


class OpenView(APIView):
    """Neither a login nor a throttle in front of it."""

    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(responses={200: None})
    def get(self, request):
        return Response()


def test_an_endpoint_without_login_or_throttle_lists_no_401_403_or_429():
    generator = SchemaGenerator(patterns=[path("open/", OpenView.as_view())])

    schema = generator.get_schema(request=None, public=True)

    assert set(schema["paths"]["/open/"]["get"]["responses"]) == {"200", "406", "503"}
