"""Contract tests for Akinon Omnitron (docs/contracts/akinon/): what the adapter sends is what
Omnitron documents (GET, Token auth, no body: Omnitron gets no body to validate), and it reads
every reason docs/contracts/akinon/cancellation_reason.schema.json allows."""

import pytest

from providers.base import ProviderConfig
from providers.fakes.omnitron import DEFAULT_TOKEN, OmnitronFake, contract_errors, demo_catalog
from providers.fakes.server import FakeResponse, FakeServer
from providers.omnitron import OmnitronAdapter

REASONS = "/api/v1/cancellation_reasons/"


def fetch(url):
    config = ProviderConfig(kind="omnitron", base_url=url, token=DEFAULT_TOKEN, timeout=2.0)
    return OmnitronAdapter(config).fetch_cancellation_reasons()


class OnePage(FakeServer):
    """Serves one page, checked against the Page schema first: a contract-valid answer that
    the Omnitron fake would not give on its own (missing optional fields, extra fields)."""

    def __init__(self, results):
        super().__init__()
        self.page = {"count": len(results), "next": None, "previous": None, "results": results}
        assert contract_errors(self.page, "Page") == []

    def handle(self, request):
        return FakeResponse.json(self.page)


def test_every_request_is_a_bodiless_token_get_of_the_documented_list():
    with OmnitronFake(catalog=demo_catalog(), page_size=5) as fake:
        fetch(fake.url)

    assert len(fake.requests) == 3
    for request in fake.requests:
        assert (request.method, request.path, request.body) == ("GET", REASONS, b"")
        assert request.headers["authorization"] == f"Token {DEFAULT_TOKEN}"
        assert set(request.query) <= {"page"}


@pytest.mark.parametrize(
    "reason",
    [
        {"pk": 7, "cancellation_type": "cancel", "subject": "Yanlış ürün"},  # only the required
        {**demo_catalog()[0], "translations": None},
        {**demo_catalog()[0], "translations": {}},
        {**demo_catalog()[0], "subject": "Ü" * 100},
        {**demo_catalog()[0], "cancellation_type": "exchange"},  # not documented: still read
        {**demo_catalog()[0], "channel": 3, "remote_id": "x"},  # fields Storno doesn't use
    ],
    ids=["minimal", "null-translations", "empty-translations", "100-chars", "new-type", "extra"],
)
def test_every_reason_the_schema_allows_is_read(reason):
    with OnePage([reason]) as server:
        (fetched,) = fetch(server.url)

    assert fetched.omnitron_id == reason["pk"]
    assert fetched.subject == reason["subject"]
    assert fetched.cancellation_type == reason["cancellation_type"]


def test_the_specs_defaults_apply_to_missing_optional_fields():
    with OnePage([{"pk": 7, "cancellation_type": "refund", "subject": "Geç"}]) as server:
        (fetched,) = fetch(server.url)

    assert (fetched.ordering, fetched.is_active, fetched.extra_information_needed) == (
        100,
        True,
        False,
    )
