"""What Storno serves in seed 004's dialect validates against
docs/contracts/akinon/oms_cancellation_reason.schema.json, and a reason Omnitron sent with an
undocumented cancellation_type is served only with a value /api/schema/ promises."""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from providers import contracts
from reasons import sync
from reasons.models import CancellationReason
from tests.factories import CancellationReasonFactory
from tests.reasons.test_api import LIST, client_for

pytestmark = pytest.mark.django_db


def seed_schema(name: str) -> dict:
    document = contracts.schema("akinon/oms_cancellation_reason.schema.json")
    return {"$ref": f"#/$defs/{name}", "$defs": document["$defs"]}


def served_schema(pointer: str) -> dict:
    document = json.loads(
        OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    )
    return {"$ref": f"#/components/schemas/{pointer}", "components": document["components"]}


@pytest.fixture
def pulled(omnitron):
    omnitron.update_reason(5, cancellation_type="exchange")
    run = sync.pull_reasons()
    assert run.succeeded and "exchange" in run.warnings
    return client_for("reasons.view_cancellationreason")


def test_every_page_served_conforms_to_seed_004(pulled):
    CancellationReasonFactory(omnitron_id=None, subject="Nur in Storno")
    pages, url = [], LIST + "?page_size=5"
    while url:
        pages.append(pulled.get(url).json())
        url = pages[-1]["next"]

    assert len(pages) == 3
    assert [contracts.schema_errors(page, seed_schema("Page")) for page in pages] == [[]] * 3


def test_one_reason_served_conforms_to_seed_004(pulled):
    reason = CancellationReason.objects.get(omnitron_id=1)

    body = pulled.get(f"{LIST}{reason.pk}/").json()

    assert contracts.schema_errors(body, seed_schema("CancellationReason")) == []
    assert (body["omnitron_id"], body["subject"]) == (1, "Yanlış ürün aldım.")


def test_an_undocumented_type_is_served_only_as_a_value_the_served_schema_allows(pulled):
    types = {
        row["omnitron_id"]: row["cancellation_type"] for row in pulled.get(LIST).json()["results"]
    }
    type_schema = served_schema("CancellationReason/properties/cancellation_type")

    assert types[5] == ""
    assert "exchange" not in types.values()
    assert all(contracts.schema_errors(value, type_schema) == [] for value in types.values())
    assert contracts.schema_errors("exchange", type_schema) != []
