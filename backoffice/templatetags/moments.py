"""One way to show a moment on every staff page: the locale's date-and-time format in the
reader's time zone, with that zone named (`Dec. 6, 2026, 4:27 p.m. CET`), in lists and details
alike."""

from datetime import datetime

from django import template
from django.utils import formats, timezone

register = template.Library()


@register.filter
def moment(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return ""
    local = timezone.template_localtime(value)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.strftime('%Z')}"
