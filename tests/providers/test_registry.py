"""Adapters by kind, configured from the environment only."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from providers.callisto import CallistoAdapter
from providers.rebilly import RebillyAdapter
from providers.registry import ADAPTERS, config_from_env, get_adapter


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "CALLISTO_BASE_URL",
        "CALLISTO_USERNAME",
        "CALLISTO_PASSWORD",
        "CALLISTO_TOKEN",
        "REBILLY_BASE_URL",
        "REBILLY_API_KEY",
        "REBILLY_TOKEN",
        "PROVIDER_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_callisto_and_rebilly_are_registered_by_kind():
    assert ADAPTERS["callisto"] is CallistoAdapter
    assert ADAPTERS["rebilly"] is RebillyAdapter


def test_callisto_basic_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CALLISTO_BASE_URL", "https://callisto.example")
    monkeypatch.setenv("CALLISTO_USERNAME", "storno")
    monkeypatch.setenv("CALLISTO_PASSWORD", "s3cret ")

    config = config_from_env("callisto")

    assert (config.base_url, config.username, config.password) == (
        "https://callisto.example",
        "storno",
        "s3cret ",
    )
    assert config.is_configured


def test_the_rebilly_api_key_becomes_the_token(monkeypatch):
    monkeypatch.setenv("REBILLY_BASE_URL", "https://api.rebilly.com/organizations/org_1")
    monkeypatch.setenv("REBILLY_API_KEY", "sk_live_1")

    adapter = get_adapter("rebilly")

    assert isinstance(adapter, RebillyAdapter)
    assert adapter.config.token == "sk_live_1"


def test_an_unset_provider_is_not_configured():
    assert not config_from_env("callisto").is_configured


def test_the_timeout_defaults_to_ten_seconds():
    assert config_from_env("callisto").timeout == 10.0


def test_provider_timeout_sets_the_timeout(monkeypatch):
    monkeypatch.setenv("PROVIDER_TIMEOUT", "2.5")

    assert config_from_env("rebilly").timeout == 2.5


@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_a_bad_provider_timeout_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("PROVIDER_TIMEOUT", value)

    with pytest.raises(ImproperlyConfigured, match="PROVIDER_TIMEOUT"):
        config_from_env("callisto")
