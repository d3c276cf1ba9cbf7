"""The Omnitron-dialect reason endpoints of seed 004, under /api/v1/oms/."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from backoffice.api import PROBLEM_CONTENT_TYPE, Conflict
from backoffice.openapi import problem
from backoffice.permissions import FullDjangoModelPermissions
from reasons import services
from reasons.models import CancellationReason, SyncTrigger

from .filters import CancellationReasonFilter
from .serializers import CancellationReasonSerializer, PullFailedSerializer


class ReasonPagination(PageNumberPagination):
    """`?page=N`, as the seed's `next` link shows."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CanPullReasons(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("reasons.pull_reasons"))


PROBLEM = PROBLEM_CONTENT_TYPE
READ_ERRORS = {
    401: OpenApiResponse(description=gettext_lazy("No or wrong credentials; the body is empty.")),
    (403, PROBLEM): problem(gettext_lazy("The user lacks the permission.")),
    (406, PROBLEM): problem(gettext_lazy("The Accept header rules out JSON.")),
}


@extend_schema(tags=["cancellation reasons (Omnitron dialect)"])
@extend_schema_view(
    list=extend_schema(
        responses={
            200: CancellationReasonSerializer(many=True),
            **READ_ERRORS,
            (400, PROBLEM): problem(gettext_lazy("A filter is invalid; invalidFields names it.")),
            (404, PROBLEM): problem(gettext_lazy("No such page.")),
        }
    ),
    retrieve=extend_schema(
        responses={
            200: CancellationReasonSerializer,
            **READ_ERRORS,
            (404, PROBLEM): problem(gettext_lazy("No reason with this id.")),
        }
    ),
)
class CancellationReasonViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = CancellationReason.objects.in_catalog_order()
    serializer_class = CancellationReasonSerializer
    pagination_class = ReasonPagination
    filterset_class = CancellationReasonFilter
    # This dialect is snake_case: keep field names as they are in error bodies.
    error_field_names = {name: name for name in ("is_active", "cancellation_type", "search")}

    def get_permissions(self):
        if self.action == "pull_from_omnitron":
            return [CanPullReasons()]
        return [FullDjangoModelPermissions()]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            # Seed 004: "The response body will not include any additional objects or messages."
            headers = {}
            if response.has_header("WWW-Authenticate"):
                headers["WWW-Authenticate"] = response["WWW-Authenticate"]
            response = Response(status=status.HTTP_401_UNAUTHORIZED, headers=headers)
            response.exception = True
        return response

    @extend_schema(
        filters=False,
        responses={
            200: OpenApiResponse(description="Pulled; the body is empty."),
            **READ_ERRORS,
            (409, PROBLEM): problem(gettext_lazy("Another pull is running.")),
            (502, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                PullFailedSerializer, description="Omnitron failed; nothing changed."
            ),
        },
    )
    @action(detail=False, methods=["get"], url_path="pull_from_omnitron", pagination_class=None)
    def pull_from_omnitron(self, request):
        """Pull the catalog from Omnitron now (seed 004: a GET, 200 with an empty body)."""
        try:
            run = services.pull_reasons(actor=request.user, trigger=SyncTrigger.API)
        except services.ReasonSyncInProgress as exc:
            raise Conflict(" ".join(exc.messages)) from exc
        if run.succeeded:
            return Response(status=status.HTTP_200_OK)
        return Response(
            {
                "type": "urn:storno:problem:omnitron-failed",
                "title": _("Omnitron failed"),
                "status": status.HTTP_502_BAD_GATEWAY,
                "detail": run.error,
                "cause": run.error_cause,
                "sync_run": run.pk,
            },
            status=status.HTTP_502_BAD_GATEWAY,
            content_type=PROBLEM_CONTENT_TYPE,
        )
