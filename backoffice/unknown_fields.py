"""Refusing input fields an endpoint doesn't know, with the close match when there is one.

A misspelt field must not vanish: `placedAt` silently ignored means an order placed *now*.
`unknown_fields` is the rule for any dialect (its callers put the messages in their own error
shape); `RefuseUnknownFields` applies it to a DRF serializer, nested ones included.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from django.utils.translation import gettext as _
from rest_framework import serializers

# The code of an unknown-field error: the API names such a field as it was sent, instead of
# translating it like a known field's (backoffice.api.flatten_errors).
UNKNOWN_FIELD = "unknown_field"
# Named per object at most: each costs a close-match search, and a hostile body has thousands.
MAX_NAMED_UNKNOWN = 20


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    """ "unknown field; did you mean placedTime?" (without the suggestion when none is close)."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    if not close:
        # A different spelling convention (placed_time, PLACEDTIME) is close too.
        folded = {k.replace("_", "").lower(): k for k in known}
        match = folded.get(str(name).replace("_", "").replace("-", "").lower())
        close = [match] if match else []
    if close:
        return _("unknown field; did you mean %(field)s?") % {"field": close[0]}
    return _("unknown field")


def unknown_fields(data: Mapping, known: Iterable[str]) -> dict[str, str]:
    """{name: message} for the keys of `data` that aren't in `known`, in the order sent: the
    first MAX_NAMED_UNKNOWN of them."""
    known = list(known)
    known_set = set(known)
    unknown = [name for name in data if name not in known_set][:MAX_NAMED_UNKNOWN]
    return {str(name): unknown_field_message(name, known) for name in unknown}


class RefuseUnknownFields(serializers.Serializer):
    """A serializer that refuses keys it has no field for (DRF drops them silently). Read-only
    fields count as known: a client may echo a resource back."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = unknown_fields(data, self.fields.keys())
            if unknown:
                detail = serializers.ErrorDetail
                raise serializers.ValidationError(
                    {k: [detail(v, code=UNKNOWN_FIELD)] for k, v in unknown.items()}
                )
        return super().to_internal_value(data)
