"""The order filter's dates in staff words: a short help for the form, and each value explained
as it is (or was) resolved — "1d" is "since yesterday 00:00 in Europe/Berlin", not JOC's
grammar. The API keeps filter_dates' full format description in its errors."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# A whole number of days back, nothing else: `0d`, `1d`, `7d` (optionally `-`).
_DAYS_BACK_RE = re.compile(r"^-?(?P<days>[0-9]{1,4})d$")


def date_help() -> str:
    return _(
        "A date and time such as 2026-12-01 08:00:00, or days back such as 1d "
        "(since yesterday 00:00)."
    )


def explain_bound(
    value: str, moment: datetime | None, *, zone_name: str | None, is_to: bool
) -> str:
    """`value` as typed, then what it means: the moment in the filter's zone (UTC without one),
    named in words for whole days back."""
    if moment is None:
        return value
    zone_name = zone_name or "UTC"
    local = formats.date_format(moment.astimezone(ZoneInfo(zone_name)), "DATETIME_FORMAT")
    days = _DAYS_BACK_RE.match(value.strip())
    if days and not is_to:
        count = int(days["days"])
        if count == 0:
            words = _("since today 00:00")
        elif count == 1:
            words = _("since yesterday 00:00")
        else:
            words = ngettext(
                "since %(count)s day ago, 00:00", "since %(count)s days ago, 00:00", count
            ) % {"count": count}
        return _("%(value)s: %(words)s in %(zone)s (%(local)s)") % {
            "value": value,
            "words": words,
            "zone": zone_name,
            "local": local,
        }
    return _("%(value)s: %(local)s in %(zone)s") % {
        "value": value,
        "local": local,
        "zone": zone_name,
    }
