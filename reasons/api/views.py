"""The Omnitron-dialect reason endpoints of seed 004 (docs/contracts/seeds/004_*.txt), under
/api/v1/oms/. They speak that dialect both ways: snake_case, 401 without a body, errors as
Akinon's DRF services give them (reasons/api/errors.py), and any query parameter or body field
they don't define is refused by name, with the close match (backoffice.unknown_fields)."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from backoffice.api import Conflict
from backoffice.permissions import FullDjangoModelPermissions
from backoffice.unknown_fields import unknown_fields
from reasons import sync
from reasons.models import CancellationReason, SyncTrigger

from .errors import (
    ERROR_SHAPES,
    NON_FIELD_ERRORS,
    UNKNOWN_INPUT,
    detail_response,
    field_errors_response,
    oms_exception_handler,
)
from .filters import CancellationReasonFilter
from .serializers import CancellationReasonSerializer, PullFailedSerializer


class ReasonPagination(PageNumberPagination):
    """`?page=N`, as the seed's `next` link shows."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and int(raw) > 0):
            raise exceptions.ValidationError(
                {self.page_size_query_param: [_("A positive whole number.")]}
            )
        return super().get_page_size(request)


class CanPullReasons(permissions.BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("reasons.pull_reasons"))


ERRORS = {
    400: field_errors_response(UNKNOWN_INPUT),
    401: OpenApiResponse(description=gettext_lazy("No or wrong credentials; the body is empty.")),
    403: detail_response(gettext_lazy("The user lacks the permission.")),
    406: detail_response(gettext_lazy("The Accept header rules out JSON.")),
}


@extend_schema(tags=["cancellation reasons (Omnitron dialect)"])
@extend_schema_view(
    list=extend_schema(
        responses={
            200: CancellationReasonSerializer(many=True),
            **ERRORS,
            404: detail_response(gettext_lazy("No such page.")),
        }
    ),
    retrieve=extend_schema(
        responses={
            200: CancellationReasonSerializer,
            **ERRORS,
            404: detail_response(gettext_lazy("No reason with this id.")),
        }
    ),
)
class CancellationReasonViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = CancellationReason.objects.in_catalog_order()
    serializer_class = CancellationReasonSerializer
    pagination_class = ReasonPagination
    filterset_class = CancellationReasonFilter
    # Any id segment reaches the view, so that even /…/1.5/ is answered 404 in this dialect.
    lookup_value_regex = "[^/]+"
    error_shapes = ERROR_SHAPES

    def get_permissions(self):
        if self.action == "pull_from_omnitron":
            return [CanPullReasons()]
        return [FullDjangoModelPermissions()]

    def get_exception_handler(self):
        return oms_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticated and allowed first
        refuse_unknown_input(request, self.known_query_parameters())

    def known_query_parameters(self) -> list[str]:
        known = [api_settings.URL_FORMAT_OVERRIDE]  # DRF's ?format=json|api
        if self.action == "list":
            paginator = self.paginator
            known += [paginator.page_query_param, paginator.page_size_query_param]
            known += list(self.filterset_class.base_filters)
        return known

    @extend_schema(
        filters=False,
        responses={
            200: OpenApiResponse(description="Pulled; the body is empty."),
            **ERRORS,
            409: detail_response(gettext_lazy("Another pull is running.")),
            502: OpenApiResponse(
                PullFailedSerializer, description="Omnitron failed; nothing changed."
            ),
        },
    )
    @action(detail=False, methods=["get"], url_path="pull_from_omnitron", pagination_class=None)
    def pull_from_omnitron(self, request):
        """Pull the catalog from Omnitron now (seed 004: a GET, 200 with an empty body)."""
        try:
            run = sync.pull_reasons(actor=request.user, trigger=SyncTrigger.API)
        except sync.ReasonSyncInProgress as exc:
            raise Conflict(" ".join(exc.messages)) from exc
        if run.succeeded:
            return Response(status=status.HTTP_200_OK)
        return Response(
            {
                "detail": run.error,
                "code": "omnitron_failed",
                "cause": run.error_cause,
                "sync_run": run.pk,
            },
            status=status.HTTP_502_BAD_GATEWAY,
        )


def refuse_unknown_input(request, known_parameters: list[str]):
    """400 naming every query parameter the endpoint doesn't define and every body field (these
    endpoints are all GETs: a body has no field they know)."""
    refused = {
        name: [exceptions.ErrorDetail(message, code="unknown_field")]
        for name, message in unknown_fields(request.query_params, known_parameters).items()
    }
    if request.stream is not None:  # only then is there a body to look at
        body = request.data
        if isinstance(body, dict):
            refused.update(
                (name, [exceptions.ErrorDetail(message, code="unknown_field")])
                for name, message in unknown_fields(body, []).items()
            )
        elif body:
            refused[NON_FIELD_ERRORS] = [
                exceptions.ErrorDetail(_("This endpoint takes no body."), code="unknown_field")
            ]
    if refused:
        raise exceptions.ValidationError(refused)
