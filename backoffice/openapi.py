"""OpenAPI documentation shared by the API modules: the problem object and list views.

Apart from backoffice.api on purpose: that module is DRF's DEFAULT_PAGINATION_CLASS, imported
while rest_framework.generics is still loading, and drf-spectacular's AutoSchema imports it.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.drainage import set_override
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from . import authentication


class CountedBasicScheme(BasicScheme):
    """HTTP Basic with refused logins counted (backoffice.authentication): still `basicAuth`.
    (drf-spectacular's token scheme covers subclasses already; its Basic scheme doesn't.)"""

    target_class = "backoffice.authentication.BasicAuthentication"


# The same schemes on the wire as DRF's own classes, which some views still list (Callisto's):
# one `basicAuth` and one `tokenAuth` component, not a collision.
for _scheme in (authentication.BasicAuthentication, authentication.TokenAuthentication):
    set_override(_scheme, "suppress_collision_warning", True)


class InvalidFieldSerializer(serializers.Serializer):
    field = serializers.CharField(help_text=_("The API field, dot notation for nested values."))
    message = serializers.CharField()
    code = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 7807 problem object, the body of every error (documentation only: backoffice.api
    renders them)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    invalidFields = InvalidFieldSerializer(many=True, required=False)


def problem(description) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


class ListSchema(AutoSchema):
    """For list views (`schema = ListSchema()`). drf-spectacular guesses "is this a list?" from
    the smallest response key, and ("401", problem type) sorts before "200": without this, a
    list's limit, offset and filter parameters go undocumented. Each response still decides for
    itself whether it is an array."""

    def _is_list_view(self, serializer=None) -> bool:
        if serializer is None:
            return self.method == "GET"
        return super()._is_list_view(serializer)
