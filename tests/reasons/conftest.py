import pytest

from providers.fakes.omnitron import DEFAULT_TOKEN, OmnitronFake, demo_catalog


@pytest.fixture
def omnitron(settings):
    """The fake Omnitron on an ephemeral port, serving the demo catalog five reasons a page,
    with Storno configured to pull from it."""
    with OmnitronFake(catalog=demo_catalog(), page_size=5) as fake:
        settings.OMNITRON_BASE_URL = fake.url
        settings.OMNITRON_TOKEN = DEFAULT_TOKEN
        settings.OMNITRON_TIMEOUT = 0.5
        yield fake
