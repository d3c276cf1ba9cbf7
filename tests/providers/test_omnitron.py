"""The Omnitron adapter over real HTTP against the strict fake, including every fault."""

import shutil
import ssl
import subprocess

import pytest

from providers.base import ProviderConfig
from providers.fakes.omnitron import (
    DEFAULT_TOKEN,
    OmnitronFake,
    demo_catalog,
    make_catalog,
)
from providers.fakes.server import FakeResponse, FakeServer
from providers.omnitron import OmnitronAdapter, OmnitronError, next_page_url

REASONS = "/api/v1/cancellation_reasons/"


@pytest.fixture
def omnitron():
    with OmnitronFake(catalog=make_catalog(250), page_size=100) as fake:
        yield fake


def adapter_for(url, *, token=DEFAULT_TOKEN, timeout=1.0):
    return OmnitronAdapter(
        ProviderConfig(kind="omnitron", base_url=url, token=token, timeout=timeout)
    )


def fetch_error(adapter) -> OmnitronError:
    with pytest.raises(OmnitronError) as caught:
        adapter.fetch_cancellation_reasons()
    return caught.value


class StaticPages(FakeServer):
    """Serves fixed bodies by path+query: for upstream answers the Omnitron fake won't give."""

    def __init__(self, pages: dict[str, dict]):
        super().__init__()
        self.pages = pages

    def handle(self, request):
        query = "&".join(f"{k}={v[-1]}" for k, v in request.query.items())
        key = request.path + (f"?{query}" if query else "")
        page = self.pages.get(key)
        if page is None:
            return FakeResponse.json({"detail": "Not found."}, status=404)
        return FakeResponse.json(page)


def test_reads_every_page_of_the_catalog(omnitron):
    reasons = adapter_for(omnitron.url).fetch_cancellation_reasons()

    assert [reason.omnitron_id for reason in reasons] == list(range(1, 251))
    assert [request.query.get("page") for request in omnitron.requests] == [
        None,
        ["2"],
        ["3"],
    ]


def test_sends_the_token_as_authorization_token_header(omnitron):
    adapter_for(omnitron.url).fetch_cancellation_reasons()

    assert {r.headers["authorization"] for r in omnitron.requests} == {f"Token {DEFAULT_TOKEN}"}


def test_maps_pk_to_omnitron_id_and_order_to_ordering():
    catalog = demo_catalog()
    catalog[0].update(pk=41, order=7, is_active=False, cancellation_type="refund")
    with OmnitronFake(catalog=catalog[:1]) as fake:
        (reason,) = adapter_for(fake.url).fetch_cancellation_reasons()

    assert reason.omnitron_id == 41
    assert reason.ordering == 7
    assert reason.is_active is False
    assert reason.cancellation_type == "refund"


def test_keeps_non_ascii_subjects_and_their_translations():
    with OmnitronFake(catalog=demo_catalog()) as fake:
        reasons = adapter_for(fake.url).fetch_cancellation_reasons()

    assert reasons[0].subject == "Yanlış ürün aldım."
    assert reasons[0].translations == {
        "tr": "Yanlış ürün aldım.",
        "de": "Falsches Produkt gekauft.",
        "en": "I bought the wrong product.",
    }


def test_an_empty_catalog_is_an_empty_list():
    with OmnitronFake(catalog=[]) as fake:
        assert adapter_for(fake.url).fetch_cancellation_reasons() == []


def test_a_wrong_token_is_an_unauthorized_error(omnitron):
    error = fetch_error(adapter_for(omnitron.url, token="wrong"))

    assert error.cause == OmnitronError.UNAUTHORIZED
    assert error.status_code == 401
    assert "OMNITRON_TOKEN" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_on_a_later_page_names_the_status_and_page(omnitron, status):
    omnitron.server_error_on_page = 2
    omnitron.server_error_status = status

    error = fetch_error(adapter_for(omnitron.url))

    assert error.cause == OmnitronError.SERVER_ERROR
    assert error.status_code == status
    assert "page=2" in str(error)


def test_a_slow_page_is_a_timeout_error(omnitron):
    omnitron.slow_on_page = 2
    omnitron.slow_seconds = 3

    error = fetch_error(adapter_for(omnitron.url, timeout=0.2))

    assert error.cause == OmnitronError.TIMEOUT
    assert "page=2" in error.url


def test_malformed_json_is_a_bad_json_error(omnitron):
    omnitron.malformed_on_page = 3

    error = fetch_error(adapter_for(omnitron.url))

    assert error.cause == OmnitronError.BAD_JSON
    assert "not valid JSON" in str(error)


def test_a_next_link_that_loops_is_detected(omnitron):
    omnitron.loop_on_page = 3

    error = fetch_error(adapter_for(omnitron.url))

    assert error.cause == OmnitronError.PAGINATION_LOOP
    assert len(omnitron.requests) <= 5


def test_a_page_that_links_to_itself_is_detected():
    with StaticPages({REASONS: {"count": 0, "next": REASONS, "results": []}}) as fake:
        error = fetch_error(adapter_for(fake.url))

    assert error.cause == OmnitronError.PAGINATION_LOOP
    assert len(fake.requests) == 1


def test_a_next_link_to_another_host_is_not_followed():
    page = {"count": 2, "next": "http://attacker.example/steal?page=2", "results": []}
    with StaticPages({REASONS: page}) as fake:
        error = fetch_error(adapter_for(fake.url))

    assert error.cause == OmnitronError.FOREIGN_NEXT_LINK
    assert "attacker.example" in str(error)
    assert "another host" in str(error)
    assert len(fake.requests) == 1


def test_a_next_link_to_another_port_stops_the_pull_and_never_reaches_it():
    with (
        OmnitronFake(catalog=demo_catalog()) as elsewhere,
        OmnitronFake(catalog=demo_catalog(), page_size=5, link_base_url=elsewhere.url) as omnitron,
    ):
        error = fetch_error(adapter_for(omnitron.url))

    assert error.cause == OmnitronError.FOREIGN_NEXT_LINK
    assert f"{elsewhere.url}{REASONS}?page=2" in str(error)
    assert "another port" in str(error)
    assert elsewhere.requests == []
    assert len(omnitron.requests) == 1


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    """A server-side TLS context with a self-signed certificate for 127.0.0.1 (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


def test_an_http_next_link_behind_a_tls_proxy_is_followed_over_https(tls_context, monkeypatch):
    context, cert = tls_context
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    # Speaks only TLS, yet links to http://: Django behind a TLS proxy (seed 004's own example).
    with OmnitronFake(catalog=make_catalog(12), page_size=5, tls=context) as omnitron:
        reasons = adapter_for(omnitron.url).fetch_cancellation_reasons()
        first_page = omnitron.requests[0]

    assert omnitron.url.startswith("https://")
    assert len(reasons) == 12
    assert [r.query.get("page") for r in omnitron.requests] == [None, ["2"], ["3"]]
    assert first_page.headers["authorization"] == f"Token {DEFAULT_TOKEN}"


@pytest.mark.parametrize(
    ("base", "link", "followed"),
    [
        # http behind a TLS proxy: followed, but over https (never https → http)
        ("https://o.example", "http://o.example/r/?page=2", "https://o.example/r/?page=2"),
        ("https://o.example:8443", "http://o.example:8443/r/?page=2", "https://o.example:8443/r/?page=2"),
        # http → https: an upgrade, followed
        ("http://o.example", "https://o.example/r/?page=2", "https://o.example/r/?page=2"),
        ("http://o.example:8000", "http://o.example:8000/r/?page=2", "http://o.example:8000/r/?page=2"),
        ("https://O.Example", "https://o.example:443/r/?page=2", "https://o.example/r/?page=2"),
        # relative links resolve against the page they came from
        ("http://o.example", "/r/?page=2", "http://o.example/r/?page=2"),
        ("http://o.example", "?page=2", "http://o.example/r/?page=2"),
        ("https://o.example", "//o.example/r/?page=2", "https://o.example/r/?page=2"),
    ],
)  # fmt: skip
def test_a_next_link_on_the_configured_host_is_followed(base, link, followed):
    assert next_page_url(link, page_url=f"{base}/r/", base_url=base) == followed


@pytest.mark.parametrize(
    ("base", "link", "why"),
    [
        ("https://omni.example", "https://evil.example/r/?page=2", "another host"),
        ("https://omni.example", "https://omni.example.evil.example/r/", "another host"),
        ("https://omni.example", "https://omni.example@evil.example/r/", "another host"),
        ("https://omni.example", "https://omni.example:8443/r/?page=2", "another port"),
        ("http://omni.example:8000", "http://omni.example/r/?page=2", "another port"),
        ("https://omni.example", "ftp://omni.example/r/", "not an http or https link"),
    ],
)
def test_a_next_link_elsewhere_is_refused_naming_the_link_and_why(base, link, why):
    with pytest.raises(OmnitronError) as caught:
        next_page_url(link, page_url=f"{base}/r/", base_url=base)

    assert caught.value.cause == OmnitronError.FOREIGN_NEXT_LINK
    assert why in str(caught.value)
    assert link in str(caught.value)


def test_no_next_link_ends_the_pull():
    base = "https://o.example"

    assert next_page_url(None, page_url=f"{base}/r/", base_url=base) is None


def test_a_relative_next_link_is_followed():
    reason = demo_catalog()[0]
    pages = {
        REASONS: {"count": 1, "next": f"{REASONS}?page=2", "results": []},
        f"{REASONS}?page=2": {"count": 1, "next": None, "results": [reason]},
    }
    with StaticPages(pages) as fake:
        reasons = adapter_for(fake.url).fetch_cancellation_reasons()

    assert [r.omnitron_id for r in reasons] == [reason["pk"]]


def test_fewer_reasons_than_announced_is_an_incomplete_error():
    page = {"count": 3, "next": None, "results": demo_catalog()[:2]}
    with StaticPages({REASONS: page}) as fake:
        error = fetch_error(adapter_for(fake.url))

    assert error.cause == OmnitronError.INCOMPLETE


def test_a_page_without_the_envelope_is_a_bad_data_error():
    with StaticPages({REASONS: {"reasons": []}}) as fake:
        error = fetch_error(adapter_for(fake.url))

    assert error.cause == OmnitronError.BAD_DATA


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"subject": "x" * 101}, "longer than 100"),
        ({"subject": "  "}, "subject"),
        ({"pk": "seven"}, "pk"),
        ({"cancellation_type": None}, "cancellation_type"),
        ({"is_active": "yes"}, "is_active"),
        ({"order": "first"}, "order"),
        ({"translations": ["de"]}, "translations"),
    ],
)
def test_an_invalid_reason_is_a_bad_data_error_naming_the_field(change, message):
    reason = {**demo_catalog()[0], **change}
    with StaticPages({REASONS: {"count": 1, "next": None, "results": [reason]}}) as fake:
        error = fetch_error(adapter_for(fake.url))

    assert error.cause == OmnitronError.BAD_DATA
    assert message in str(error)


def test_an_unreachable_omnitron_is_a_connection_error():
    fake = OmnitronFake().start()
    url = fake.url
    fake.stop()

    error = fetch_error(adapter_for(url))

    assert error.cause == OmnitronError.CONNECTION


def test_without_a_base_url_it_is_not_configured():
    error = fetch_error(adapter_for(""))

    assert error.cause == OmnitronError.NOT_CONFIGURED


def test_configuration_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OMNITRON_BASE_URL", "https://omnitron.example.com/")
    monkeypatch.setenv("OMNITRON_TOKEN", "secret-token")

    config = OmnitronAdapter().config

    assert config.base_url == "https://omnitron.example.com"
    assert config.token == "secret-token"
