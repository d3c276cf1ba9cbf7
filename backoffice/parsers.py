"""The one JSON parser of every endpoint (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), dialects
included: a body that isn't plain, sane JSON is refused before any view sees it.

Refused with a ParseError (each dialect answers it in its own shape: a problem object, JOC's
420, Laminas' problem object):
- not UTF-8 (RFC 8259 §8.1), or a JSON syntax error;
- nesting deeper than MAX_DEPTH: measured on the text first, so no parser or serializer recurses
  into a 10,000-deep body (RecursionError is a 500);
- a key twice in one object (which one would count?), named in the message; more than
  MAX_KEYS keys in one object;
- NaN, Infinity, numbers beyond a double (1e400 would be inf, which no answer can render),
  integers of more than 4,300 digits (Python's limit). A large integer that parses is the
  fields' to refuse (Callisto's Id: 422, as Laminas validates it);
- a lone surrogate ("\\ud800"): not text, and it can't be stored or rendered as UTF-8; a NUL
  ("\\u0000"), which PostgreSQL can't store in text or jsonb;
- anything but an object at the top of a write (POST, PUT, PATCH, DELETE): every write
  endpoint takes an object.
A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a PayloadTooLarge (413), read through Django's own
check. This module imports nothing of the project, so settings can name it without a cycle.
"""

import json
import math
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers, renderers, status
from rest_framework.permissions import SAFE_METHODS

MAX_DEPTH = 32
# No object of any dialect has more than a few dozen fields; 100,000 unknown keys would each be
# named (with a close match) in a 9 MB answer, after seconds of work.
MAX_KEYS = 1000
MAX_INTEGER_DIGITS = 4300
# Strings (escapes included) are emptied before the structure is measured. Possessive, and an
# unterminated string runs to the end: one attempt per string, so `"\"\"\"…` stays linear
# (with backtracking and a retry at every quote it was quadratic: seconds for 32 kB).
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
# Bytes of the structure: every bracket as [ or ], everything else dropped (C speed, no loop).
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# A run of more than MAX_INTEGER_DIGITS digits outside a fraction (anchored at the run's start,
# so the search stays linear).
_LONG_INTEGER = re.compile(rf"(?<![\d.])\d{{{MAX_INTEGER_DIGITS + 1}}}")
# A \uD800-\uDFFF or \u0000 escape: only then can a parsed string hold a surrogate or NUL.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The body is too large.")
    default_code = "payload_too_large"


class InvalidJSON(ValueError):
    """What the hooks below raise inside json.loads; the parser turns it into a ParseError."""


class InvalidBody(exceptions.ParseError):
    """A refused body; `field` is the dotted path of the offending value when it is known
    (a dialect names it: Storno's invalidFields), else None (the body as a whole)."""

    def __init__(self, message, field: str | None = None):
        self.message, self.field = str(message), field
        super().__init__(f"{field}: {message}" if field else message)


def _refuse_constant(name: str):
    raise InvalidJSON(_("%(name)s is not a JSON number.") % {"name": name})


def _object(pairs: list) -> dict:
    if len(pairs) > MAX_KEYS:
        raise InvalidJSON(_("An object has more than %(limit)d keys.") % {"limit": MAX_KEYS})
    found = {}
    for key, value in pairs:
        if key in found:
            raise InvalidJSON(_('The key "%(key)s" appears twice.') % {"key": key[:100]})
        found[key] = value
    return found


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    return _too_deep(_STRING.sub('""', text), limit)


def _too_deep(structure: str, limit: int) -> bool:
    brackets = structure.encode().translate(_AS_BRACKETS, _NOT_BRACKETS)
    # Each pass drops the innermost pairs: `limit` passes leave nothing of a body within the
    # limit, whatever its size, without a Python loop over it.
    reduced = brackets
    for _pass in range(limit):
        shorter = reduced.replace(b"[]", b"")
        if shorter == reduced:
            break
        reduced = shorter
    if not reduced:
        return False
    # Too deep, or brackets that don't pair (a syntax error json.loads will name): count.
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket == ord("[") else -1
        if depth > limit:
            return True
    return False


def _not_text(text: str) -> str | None:
    """Why a string can't be stored or rendered: a lone surrogate isn't UTF-8, and PostgreSQL
    refuses NUL in text and jsonb (a DataError, a 500). None when it is text."""
    if "\x00" in text:
        return str(_("A NUL character (\\u0000) is not text."))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return str(_("A lone surrogate (\\ud800-\\udfff) is not text."))
    return None


def _child_path(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def unsafe_value(value) -> tuple[str | None, str] | None:
    """(path, message) of the first value no answer or database could take: a number a double
    can't hold (1e400 parses as inf), a lone surrogate or NUL in a string or key (a key's path
    is its object's). Walked without recursion; the path is None for the body itself."""
    pending = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or None, str(_("The number is out of range."))
        if isinstance(item, str) and (problem := _not_text(item)):
            return path or None, problem
        if isinstance(item, dict):
            for key, child in item.items():
                if problem := _not_text(key):
                    return path or None, problem
                pending.append((_child_path(path, key), child))
        elif isinstance(item, list):
            pending += [(_child_path(path, i), child) for i, child in enumerate(item)]
    return None


def loads(body: bytes, *, require_object: bool = True):
    """Parse a request body, or raise InvalidBody (a ParseError) saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBody(
            _("The body is not UTF-8 (byte %(position)d).") % {"position": exc.start}
        ) from None
    structure = _STRING.sub('""', text)
    if _too_deep(structure, MAX_DEPTH):
        raise InvalidBody(_("JSON nested deeper than %(limit)d levels.") % {"limit": MAX_DEPTH})
    if long_integer := _LONG_INTEGER.search(structure):
        # Python's own limit (int() of longer digit strings takes quadratic time), said clearly.
        digits = long_integer.group()[:30]
        raise InvalidBody(_("The number %(number)s is out of range.") % {"number": digits})
    non_finite = []

    def parse_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            non_finite.append(literal)  # refused below, where its path is known
        return value

    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_refuse_constant,
            parse_float=parse_float,
        )
    except (ValueError, RecursionError) as exc:  # InvalidJSON too; RecursionError can't happen
        raise InvalidBody(_("JSON parse error - %(error)s") % {"error": exc}) from None
    if non_finite or _SUSPECT_ESCAPE.search(text):
        unsafe = unsafe_value(value)
        if unsafe is not None:
            raise InvalidBody(unsafe[1], field=unsafe[0])
    if require_object and not isinstance(value, dict):
        raise InvalidBody(_("Send the body as a JSON object."))
    return value


def request_body(stream, parser_context) -> bytes:
    """The body through Django's size check (request.body, kept for later readers)."""
    request = (parser_context or {}).get("request")
    django_request = getattr(request, "_request", None)
    try:
        return django_request.body if django_request is not None else stream.read()
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise PayloadTooLarge(
            _("The body is larger than %(limit)d bytes.") % {"limit": limit}
        ) from None


class JSONParser(parsers.BaseParser):
    """application/json for every endpoint: see the module docstring for what it refuses.

    Not a subclass of DRF's JSONParser on purpose: DRF reads request.body itself for those,
    outside parse(), where a body over the limit would escape as Django's RequestDataTooBig."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer
    require_object = True

    def parse(self, stream, media_type=None, parser_context=None):
        # Writes take an object; a read with a body is the view's to refuse in its own words
        # (the Omnitron-dialect reasons: "This endpoint takes no body.").
        method = getattr((parser_context or {}).get("request"), "method", "POST")
        require_object = self.require_object and method not in SAFE_METHODS
        return loads(request_body(stream, parser_context), require_object=require_object)
