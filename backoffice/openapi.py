"""OpenAPI documentation shared by the API modules: the problem object, the errors every
operation can answer, and list views.

Apart from backoffice.api on purpose: that module is DRF's DEFAULT_PAGINATION_CLASS, imported
while rest_framework.generics is still loading, and drf-spectacular's AutoSchema imports it.
"""

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import BasicScheme
from drf_spectacular.drainage import set_override
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

from . import authentication
from .api import PROBLEM_CONTENT_TYPE


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
    instance = serializers.CharField(
        required=False, help_text=_("The request's path; Rebilly's upsert sends it.")
    )


def problem(description) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


# --- the errors every operation documents ---------------------------------------------------------

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class ErrorShape:
    """How a dialect answers an error on the wire: a media type and a body (a serializer or a
    JSON Schema dict; None for no body)."""

    body: Any
    media_type: str = PROBLEM_CONTENT_TYPE


PROBLEM = ErrorShape(ProblemSerializer)
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": _("Seconds to wait before trying again."),
    }
}
COMMON_ERRORS = {
    400: _("Invalid input; the body names each offending field."),
    401: _("No or wrong credentials."),
    403: _("The caller lacks the permission."),
    404: _("No such resource."),
    406: _("The Accept header rules out JSON."),
    409: _("The request conflicts with the resource's current state."),
    413: _("The body is larger than the server takes."),
    415: _("The body is not application/json."),
    422: _("Invalid input; the body names each offending field."),
    429: _(
        "Too many requests, or too many refused logins, from this client; Retry-After says "
        "when to try again."
    ),
    503: _("The database can't be reached right now; Retry-After says when to try again."),
}


class ErrorsSchema(AutoSchema):
    """DEFAULT_SCHEMA_CLASS: every operation lists the errors any endpoint of its kind can
    answer, beside what its view documents itself (which wins): 406 and 503 everywhere; 401,
    403 and 429 behind a login (refused logins are counted); 429 behind a throttle; 404 on
    routes with a path parameter; 400, 409, 413 and 415 on writes; 422 where invalid input is
    a 422.

    Each in the view's error dialect: `error_shapes` on the view maps a status (None: any) to
    an ErrorShape, or to None for a status the view never answers; the default is Storno's
    problem object."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        shapes = getattr(self.view, "error_shapes", {})
        for status_code in self.answerable_errors():
            shape = shapes.get(status_code, shapes.get(None, PROBLEM))
            if str(status_code) in responses or shape is None:
                continue
            documented = OpenApiResponse(shape.body, COMMON_ERRORS[status_code])
            response = self._get_response_for_code(
                documented, str(status_code), [shape.media_type], direction
            )
            if status_code in (429, 503):
                response["headers"] = {**response.get("headers", {}), **RETRY_AFTER}
            responses[str(status_code)] = response
        return responses

    def answerable_errors(self) -> list[int]:
        codes = {406, 503}
        if self.needs_login():
            codes |= {401, 403, 429}
        if self.view.get_throttles():
            codes.add(429)
        if "{" in self.path:
            codes.add(404)
        if self.method in WRITE_METHODS:
            codes |= {400, 409, 413, 415}
            if getattr(self.view, "invalid_input_status", None) == 422:
                codes.add(422)
        return sorted(codes)

    def needs_login(self) -> bool:
        return not all(
            isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )


class ListSchema(ErrorsSchema):
    """For list views (`schema = ListSchema()`). drf-spectacular guesses "is this a list?" from
    the smallest response key, and ("401", problem type) sorts before "200": without this, a
    list's limit, offset and filter parameters go undocumented. Each response still decides for
    itself whether it is an array."""

    def _is_list_view(self, serializer=None) -> bool:
        if serializer is None:
            return self.method == "GET"
        return super()._is_list_view(serializer)
