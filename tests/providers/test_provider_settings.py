"""A fresh installation delivers to every provider its environment configures."""

import pytest

from providers.models import ProviderSetting
from providers.outbox import enabled_adapters
from providers.registry import ADAPTERS

pytestmark = pytest.mark.django_db


def test_every_registered_provider_gets_a_setting_enabled_when_configured(monkeypatch):
    for kind in ADAPTERS:
        monkeypatch.delenv(f"{kind.upper()}_BASE_URL", raising=False)
    monkeypatch.setenv("REBILLY_BASE_URL", "http://127.0.0.1:9/organizations/o")

    adapters = enabled_adapters()

    assert set(ProviderSetting.objects.values_list("kind", flat=True)) == set(ADAPTERS)
    assert [adapter.kind for adapter in adapters] == ["rebilly"]


def test_an_admins_choice_is_kept(monkeypatch):
    monkeypatch.setenv("REBILLY_BASE_URL", "http://127.0.0.1:9/organizations/o")
    ProviderSetting.objects.create(kind="rebilly", enabled=False)

    adapters = enabled_adapters()

    assert "rebilly" not in [adapter.kind for adapter in adapters]
    assert not ProviderSetting.objects.get(kind="rebilly").enabled
