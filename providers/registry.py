"""Which adapter serves which provider kind, and where each one's settings come from.

The adapters are registered by ProvidersConfig.ready (providers/apps.py), not imported here:
the outbox seam the cancellation core calls looks them up in this registry, so the core
reaches no adapter module and the adapters may depend on the core.

Settings are read from the environment only (never the database):

    {KIND}_BASE_URL                    e.g. CALLISTO_BASE_URL, REBILLY_BASE_URL (Rebilly's up to
                                       and including /organizations/{organizationId})
    {KIND}_USERNAME, {KIND}_PASSWORD   HTTP Basic
    {KIND}_TOKEN or {KIND}_API_KEY     a Bearer token (Callisto) or an API key (REBILLY_API_KEY)
    PROVIDER_TIMEOUT                   seconds per request, 10 by default
    PROVIDER_SETTINGS_MAX_AGE          seconds a process keeps the provider settings rows
                                       (providers.outbox), 2 by default; 0 reads them for
                                       every cancellation
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from backoffice.env import seconds_from_env

from .base import ProviderAdapter, ProviderConfig
from .http import DEFAULT_TIMEOUT

# Kind → adapter class, in the order they were registered (ProvidersConfig.ready).
ADAPTERS: dict[str, type[ProviderAdapter]] = {}


def register(*adapter_classes: type[ProviderAdapter]) -> None:
    for adapter_class in adapter_classes:
        ADAPTERS[adapter_class.kind] = adapter_class


def provider_timeout() -> float:
    raw = os.environ.get("PROVIDER_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(raw)
    except ValueError:
        timeout = 0.0
    if timeout <= 0:
        raise ImproperlyConfigured(
            f"PROVIDER_TIMEOUT must be a positive number of seconds: {raw!r}"
        )
    return timeout


DEFAULT_SETTINGS_MAX_AGE = 2.0


def settings_max_age() -> float:
    return seconds_from_env("PROVIDER_SETTINGS_MAX_AGE", DEFAULT_SETTINGS_MAX_AGE)


def config_from_env(kind: str) -> ProviderConfig:
    prefix = kind.upper()

    def env(name: str) -> str:
        return os.environ.get(f"{prefix}_{name}", "").strip()

    return ProviderConfig(
        kind=kind,
        base_url=env("BASE_URL"),
        timeout=provider_timeout(),
        username=env("USERNAME"),
        password=os.environ.get(f"{prefix}_PASSWORD", ""),
        token=env("TOKEN") or env("API_KEY"),
    )


def get_adapter(kind: str) -> ProviderAdapter:
    """The adapter for `kind`, configured from the environment. KeyError for an unknown kind."""
    return ADAPTERS[kind](config_from_env(kind))
