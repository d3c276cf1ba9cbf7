"""What the security settings point at: the client address that lockouts count, the page a
locked-out login gets, and the API docs page's relaxed Content-Security-Policy."""

import ipaddress
import math
from urllib.parse import urlsplit

from axes.helpers import get_cool_off
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.shortcuts import render
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.throttling import BaseThrottle


def client_ip(request) -> str | None:
    """The client's address as the API throttles see it (REST_FRAMEWORK NUM_PROXIES, from
    TRUSTED_PROXY_COUNT), so login lockouts and throttles count the same clients. Anything
    that is not an address falls back to the peer's."""
    candidate = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return request.META.get("REMOTE_ADDR")


def lockout_minutes(request) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 0


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the login page's lockout message, 429.

    Every refused try starts the cool-off again, so "in N minutes" counts from now."""
    minutes = lockout_minutes(request)
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def swagger_ui_view():
    """Swagger UI with its start-up script served from Storno (no inline script); its files
    come from SWAGGER_UI_DIST (a CDN unless configured), which this page alone may load, with
    the one inline <style> drf-spectacular's page carries."""
    cdn = [
        origin
        for origin in {_origin(spectacular_settings.SWAGGER_UI_DIST)}
        | {_origin(spectacular_settings.SWAGGER_UI_FAVICON_HREF)}
        if origin
    ]
    view = SpectacularSwaggerSplitView.as_view(url_name="api-schema")
    return csp_update(
        {
            "script-src": cdn,
            "style-src": [*cdn, UNSAFE_INLINE],
            "img-src": [*cdn, "data:"],
        }
    )(view)
