"""The project's URLs plus /bench/floor/: the least a token-authenticated DRF request with one
query costs on this machine, measured beside the real endpoints in the same run
(bench/api_load.py). Mounted only through bench/floor_settings.py."""

from django.urls import path
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice.urls import urlpatterns as project_urlpatterns
from reasons.models import CancellationReason


class FloorView(APIView):
    """Token auth (one query: the token with its user), then one indexed one-row query. No
    model permission, no throttle, no pagination: the framework's own cost."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = []

    def get(self, request):
        reason = CancellationReason.objects.order_by("pk").values("id", "subject").first()
        return Response(reason)


urlpatterns = [path("bench/floor/", FloorView.as_view()), *project_urlpatterns]
