"""The OpenAPI description of the Callisto endpoint (providers.inbound_callisto): its input,
output and problem bodies, the Bearer scheme and the error answers. Only a description: the
endpoint parses by hand, since Callisto's errors have their own shape."""

from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from backoffice.openapi import ErrorShape
from cancellations.states import CancellationStatus

PROBLEM_CONTENT_TYPE = "application/problem+json"
ADD, DELETE = "Add", "Delete"  # the values of the body's Action


class CallistoCancelInput(serializers.Serializer):
    Id = serializers.IntegerField(help_text=gettext_lazy("The order's id in Callisto."))
    CancelDate = serializers.CharField(
        help_text=gettext_lazy(
            "Y-m-d in CALLISTO_TIME_ZONE. Today or earlier: effective now; a later day: "
            "scheduled for 00:00 of that day."
        )
    )
    CancelTimestamp = serializers.CharField(
        help_text=gettext_lazy(
            "When it was entered, Y-m-d H:i:s in CALLISTO_TIME_ZONE: the cancellation's "
            "canceled time."
        )
    )
    CancelReason = serializers.CharField(
        help_text=gettext_lazy("A reason's Callisto mapping or its subject.")
    )
    UserId = serializers.CharField(help_text=gettext_lazy("The Salesforce user id."))
    Action = serializers.ChoiceField(
        choices=[ADD, DELETE],
        required=False,
        help_text=gettext_lazy("Add (default for PUT) cancels; Delete removes the cancellation."),
    )


class CallistoCancelOutput(serializers.Serializer):
    CancelId = serializers.CharField()
    Id = serializers.IntegerField()
    CancelDate = serializers.DateField()
    CancelTimestamp = serializers.CharField()
    CancelReason = serializers.CharField()
    UserId = serializers.CharField()
    Action = serializers.CharField()
    Status = serializers.ChoiceField(choices=CancellationStatus.choices)
    EffectiveAt = serializers.DateTimeField()


class LaminasProblem(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    validation_messages = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()),
        required=False,
        help_text=gettext_lazy("422 only: {Field: {rule: message}}."),
    )


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "providers.inbound_callisto.BearerTokenAuthentication"
    name = "bearerTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


# Every error the endpoint answers is a Laminas problem (backoffice.openapi.ErrorsSchema).
ERROR_SHAPES = {None: ErrorShape(LaminasProblem)}


def _problem(description):
    return OpenApiResponse(LaminasProblem, description=description)


ERRORS = {
    (400, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The body is not valid JSON.")),
    (401, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("No or wrong credentials.")),
    (403, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The user lacks the permission.")),
    (404, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("No order with this Callisto id.")),
    (406, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The Accept header rules out JSON.")),
    (415, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("The body is not application/json.")),
    (422, PROBLEM_CONTENT_TYPE): _problem(gettext_lazy("Failed Validation.")),
}


def documented(prefix: str, parameters=()):
    return extend_schema_view(
        put=extend_schema(
            operation_id=f"{prefix}_put",
            tags=["callisto"],
            summary=gettext_lazy("Cancel an order (Action Add) — Callisto's dialect"),
            parameters=list(parameters),
            request=CallistoCancelInput,
            responses={200: CallistoCancelOutput, 204: None, **ERRORS},
        ),
        delete=extend_schema(
            operation_id=f"{prefix}_delete",
            tags=["callisto"],
            summary=gettext_lazy("Remove an order's cancellation — Callisto's dialect"),
            parameters=list(parameters),
            request=CallistoCancelInput,
            responses={204: None, **ERRORS},
        ),
    )


CANCEL_ID = OpenApiParameter(
    "cancel_id",
    str,
    OpenApiParameter.PATH,
    description=gettext_lazy("A Storno cancellation id (≤ 50 of letters, digits, @ ~ - . _)."),
)
