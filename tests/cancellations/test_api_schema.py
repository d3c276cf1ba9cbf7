"""The OpenAPI document: valid, warning-free, and describing the cancellations API."""

import json

import pytest
import yaml
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate as validate_openapi_document
from rest_framework.test import APIClient


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
