from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from reasons.models import KNOWN_CANCELLATION_TYPES, SUBJECT_LANGUAGES, CancellationReason

# Strict booleans: `?is_active=maybe` is an error naming the field, not silently ignored.
BOOLEAN_CHOICES = [(value, value) for value in ("true", "false", "True", "False", "1", "0")]


def _to_bool(value: str) -> bool:
    return value.lower() in ("true", "1")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(filters.TypedChoiceFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, choices=BOOLEAN_CHOICES, coerce=_to_bool, **kwargs)


class CancellationReasonFilter(filters.FilterSet):
    is_active = StrictBooleanFilter(help_text=_("true or false"))
    cancellation_type = filters.ChoiceFilter(
        choices=[(value, value.label) for value in KNOWN_CANCELLATION_TYPES],
        help_text=_("cancel or refund"),
    )
    search = filters.CharFilter(
        method="search_subject", help_text=_("Part of the subject, in any language")
    )

    class Meta:
        model = CancellationReason
        fields = ["is_active", "cancellation_type", "search"]

    def search_subject(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        query = Q(subject__icontains=value)
        for language in SUBJECT_LANGUAGES:
            query |= Q(**{f"subject_{language}__icontains": value})
        return queryset.filter(query)
