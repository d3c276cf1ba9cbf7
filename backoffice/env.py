"""Settings read from the environment at run time (not at import, so tests can change them)."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def seconds_from_env(name: str, default: float) -> float:
    """A number of seconds, 0 or more; `default` when unset; ImproperlyConfigured otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ImproperlyConfigured(f"{name} must be 0 or a positive number of seconds: {raw!r}")
    return seconds
