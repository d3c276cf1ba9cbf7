"""The Omnitron fake answers as the contract says: docs/contracts/akinon/NOTES.md and
cancellation_reason.schema.json (Token auth, 401/404 {detail}, the page envelope, only reasons
Omnitron could serve, next links where a test wants them)."""

import json

import pytest
import requests

from providers.base import ProviderConfig
from providers.fakes.omnitron import (
    DEFAULT_TOKEN,
    OmnitronFake,
    contract_errors,
    demo_catalog,
    make_catalog,
)
from providers.omnitron import OmnitronAdapter

REASONS = "/api/v1/cancellation_reasons/"


def adapter_for(url):
    return OmnitronAdapter(
        ProviderConfig(kind="omnitron", base_url=url, token=DEFAULT_TOKEN, timeout=1.0)
    )


# --- the fake itself --------------------------------------------------------------------------


def test_fake_refuses_a_missing_token_with_401():
    with OmnitronFake(catalog=demo_catalog()) as fake:
        response = requests.get(fake.url + REASONS, timeout=2)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_fake_pages_carry_count_next_and_previous():
    with OmnitronFake(catalog=demo_catalog(), page_size=5) as fake:
        auth = {"Authorization": f"Token {DEFAULT_TOKEN}"}
        page = requests.get(fake.url + REASONS + "?page=2", headers=auth, timeout=2).json()

    assert page["count"] == 12
    assert page["next"] == f"{fake.url}{REASONS}?page=3"
    assert page["previous"] == f"{fake.url}{REASONS}"
    assert [reason["pk"] for reason in page["results"]] == [6, 7, 8, 9, 10]


def test_fake_serves_one_reason_in_omnitrons_shape_with_escaped_non_ascii():
    with OmnitronFake(catalog=demo_catalog()) as fake:
        auth = {"Authorization": f"Token {DEFAULT_TOKEN}"}
        response = requests.get(f"{fake.url}{REASONS}1/", headers=auth, timeout=2)

    assert b"Yanl\\u0131\\u015f" in response.content
    assert json.loads(response.content)["subject"] == "Yanlış ürün aldım."
    assert {"pk", "order", "translations", "uuid"} <= response.json().keys()


def test_demo_catalog_has_a_dozen_translated_reasons_some_needing_extra_information():
    catalog = demo_catalog()

    assert len(catalog) == 12
    assert all(set(reason["translations"]) == {"tr", "de", "en"} for reason in catalog)
    assert sum(reason["extra_information_needed"] for reason in catalog) >= 2


def test_an_unusable_timeout_setting_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv("OMNITRON_TIMEOUT", "soon")

    assert OmnitronAdapter().config.timeout == 10.0


# --- the fake answers as the contract (docs/contracts/akinon/cancellation_reason.schema.json) ---

AUTH = {"Authorization": f"Token {DEFAULT_TOKEN}"}


def test_fake_pages_conform_to_omnitrons_page_schema():
    with OmnitronFake(catalog=demo_catalog() + make_catalog(20, first_pk=100), page_size=7) as fake:
        pages = [
            requests.get(f"{fake.url}{REASONS}?page={n}", headers=AUTH, timeout=2).json()
            for n in range(1, fake.page_count + 1)
        ]

    assert len(pages) == 5
    assert [contract_errors(page, "Page") for page in pages] == [[]] * 5


def test_fake_detail_and_errors_conform_to_omnitrons_schema():
    with OmnitronFake(catalog=demo_catalog()) as fake:
        detail = requests.get(f"{fake.url}{REASONS}3/", headers=AUTH, timeout=2)
        unknown = requests.get(f"{fake.url}{REASONS}999/", headers=AUTH, timeout=2)
        refused = requests.get(f"{fake.url}{REASONS}3/", timeout=2)

    assert contract_errors(detail.json(), "CancellationReason") == []
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not found."})
    assert refused.status_code == 401
    assert contract_errors(refused.json(), "Detail") == []


def test_the_schema_catches_what_omnitron_cannot_send():
    reason = {**demo_catalog()[0], "subject": "x" * 101, "order": "first"}

    errors = contract_errors(reason, "CancellationReason")

    assert any(error.startswith("subject:") for error in errors)
    assert any(error.startswith("order:") for error in errors)
    assert contract_errors({"count": 1, "results": []}, "Page") != []


@pytest.mark.parametrize(
    "change",
    [{"subject": "x" * 101}, {"order": 1.5}, {"cancellation_type": None}, {"is_active": "y"}],
)
def test_fake_refuses_a_reason_omnitron_could_not_serve(change):
    with OmnitronFake(catalog=demo_catalog()) as fake:
        with pytest.raises(ValueError, match="could not serve"):
            fake.update_reason(1, **change)
        with pytest.raises(ValueError, match="could not serve"):
            fake.set_catalog([{**demo_catalog()[0], **change}])

    assert fake.catalog[0] == demo_catalog()[0]


def test_fake_serves_an_unknown_cancellation_type_the_schema_allows():
    reason = {**demo_catalog()[0], "cancellation_type": "exchange"}

    assert contract_errors(reason, "CancellationReason") == []
    with OmnitronFake(catalog=[reason]) as fake:
        (fetched,) = adapter_for(fake.url).fetch_cancellation_reasons()

    assert fetched.cancellation_type == "exchange"


def test_fake_links_its_pages_on_another_base_when_told():
    with OmnitronFake(catalog=demo_catalog(), page_size=5) as fake:
        fake.link_base_url = "https://elsewhere.example:8443"
        page = requests.get(f"{fake.url}{REASONS}?page=2", headers=AUTH, timeout=2).json()
        fake.reset_faults()
        default = requests.get(f"{fake.url}{REASONS}?page=2", headers=AUTH, timeout=2).json()

    assert page["next"] == f"https://elsewhere.example:8443{REASONS}?page=3"
    assert page["previous"] == f"https://elsewhere.example:8443{REASONS}"
    assert default["next"] == f"{fake.url}{REASONS}?page=3"
