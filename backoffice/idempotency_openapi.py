"""How the OpenAPI document shows Idempotency-Key (backoffice.idempotency): the header on every
POST under /api/ and the 400, 409 and 422 it may answer. A drf-spectacular postprocessing hook
(SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""

from django.conf import settings
from django.utils.translation import gettext as _

from .api import PROBLEM_CONTENT_TYPE
from .idempotency import HEADER, MAX_KEY_LENGTH


def document_idempotency_key(result, generator, request, public, **kwargs):
    """drf-spectacular POSTPROCESSING_HOOKS entry: every POST under /api/ takes the header and
    may answer 400 (bad key), 409 (key in use) and 422 (key reused)."""
    components = result.setdefault("components", {})
    components.setdefault("parameters", {})["IdempotencyKey"] = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": _(
            "Makes a retried POST safe: the first request with a key runs and its response "
            "(status, body, Content-Type, Location) is kept for %(hours)d hours; a request with "
            "the same key, path and body gets that response again with the header "
            "`Idempotent-Replayed: true`. The same key with another path or body is a 422. "
            "A request while the first one runs waits for it and gets its response (a 409 if "
            "it takes too long). 5xx responses keep nothing, so the key may be retried. Keys "
            "are per client (user or credentials)."
        )
        % {"hours": settings.IDEMPOTENCY_KEY_TTL_HOURS},
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    }
    has_problem = "Problem" in components.get("schemas", {})
    for path, operations in result.get("paths", {}).items():
        post = operations.get("post")
        if post is None or not path.startswith("/api/"):
            continue
        post.setdefault("parameters", []).append({"$ref": "#/components/parameters/IdempotencyKey"})
        if has_problem:
            _document_response(
                post, "400", _("The Idempotency-Key is empty, too long or has control characters.")
            )
            _document_response(
                post, "409", _("A request with this Idempotency-Key is still in progress.")
            )
            _document_response(
                post, "422", _("The Idempotency-Key was used for a different request.")
            )
    return result


def _document_response(operation: dict, status: str, description: str) -> None:
    responses = operation.setdefault("responses", {})
    if status in responses:
        responses[status]["description"] = f"{responses[status]['description']} {description}"
        return
    responses[status] = {
        "content": {
            PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
        "description": description,
    }
