"""Storno's Callisto-compatible endpoint, mounted at /callisto/ (see providers.inbound_callisto)."""

from django.urls import re_path

from .inbound_callisto import CallistoCancelEntityView, CallistoCancelView

app_name = "callisto"

urlpatterns = [
    re_path(r"^cancel/?$", CallistoCancelView.as_view(), name="cancel"),
    re_path(
        r"^cancel/(?P<cancel_id>[^/]+)/?$", CallistoCancelEntityView.as_view(), name="cancel-detail"
    ),
]
