"""The Omnitron dialect's errors, as Akinon's DRF services answer them (Storno's other APIs answer
RFC 7807 problem objects): docs/contracts/akinon/NOTES.md, "Omnitron 400 error body":

    400  {"<field>": ["message", …], "code": "…"}  or  {"non_field_errors": [...], "code": "…"}
    other errors  {"detail": "message", "code": "…"}
    401  no body at all (seed 004: "The response body will not include any additional objects")

backoffice.api's handler still does the work every API shares (Django errors, database outages,
rollback, WWW-Authenticate and Retry-After); this only reshapes its answer.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions
from rest_framework.response import Response

from backoffice.api import NON_FIELD, django_validation_detail, problem_exception_handler
from backoffice.openapi import ErrorShape

NON_FIELD_ERRORS = "non_field_errors"
KEPT_HEADERS = ("WWW-Authenticate", "Retry-After")
# DRF's own default codes, for the errors backoffice.api has already turned into a problem.
CODES = {
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    503: "service_unavailable",
}


def oms_exception_handler(exc, context):
    response = problem_exception_handler(exc, context)
    if response is None:
        return None
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    if response.status_code == 401:
        return Response(status=401, headers=headers)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_validation_detail(exc))
    if isinstance(exc, exceptions.ValidationError):
        body = field_errors(exc.detail)
    else:
        body = {
            "detail": response.data["detail"],
            "code": CODES.get(response.status_code, "error"),
        }
    return Response(body, status=response.status_code, headers=headers)


def field_errors(detail) -> dict:
    """DRF's {field: [messages]}, with one `code` for the whole body (the messages' own code when
    they share one, else "invalid")."""
    if not isinstance(detail, dict):
        detail = {NON_FIELD_ERRORS: detail}
    body, codes = {}, set()
    for name, messages in detail.items():
        messages = messages if isinstance(messages, list) else [messages]
        key = NON_FIELD_ERRORS if name == NON_FIELD else str(name)
        body[key] = [str(message) for message in messages]
        codes.update(getattr(message, "code", None) or "invalid" for message in messages)
    body.setdefault("code", codes.pop() if len(codes) == 1 else "invalid")
    return body


# --- documentation ------------------------------------------------------------------------------

FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Each refused field (or non_field_errors) with its messages, and one code.",
    "properties": {"code": {"type": "string"}},
    "required": ["code"],
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
DETAIL_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}


def field_errors_response(description) -> OpenApiResponse:
    return OpenApiResponse(FIELD_ERRORS_SCHEMA, description=description)


def detail_response(description) -> OpenApiResponse:
    return OpenApiResponse(DETAIL_SCHEMA, description=description)


JSON = "application/json"
# backoffice.openapi.ErrorsSchema documents the errors every endpoint shares in these shapes.
ERROR_SHAPES = {
    None: ErrorShape(DETAIL_SCHEMA, JSON),
    400: ErrorShape(FIELD_ERRORS_SCHEMA, JSON),
    401: ErrorShape(None, JSON),
}

UNKNOWN_INPUT = _("An unknown or invalid query parameter or body field, named with its message.")
