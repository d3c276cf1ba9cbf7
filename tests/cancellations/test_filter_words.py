"""The order filter's dates in staff words: each value says what it means once resolved."""

from datetime import UTC, datetime

import pytest
from django.utils import translation

from cancellations.filter_words import explain_bound

MOMENT = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)  # 00:00 on 6 Dec in Berlin


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0d", "since today 00:00"),
        ("1d", "since yesterday 00:00"),
        ("-1d", "since yesterday 00:00"),
        ("3d", "since 3 days ago, 00:00"),
    ],
)
def test_whole_days_back_are_said_in_words_with_the_zone_and_moment(value, words):
    with translation.override("en"):
        text = explain_bound(value, MOMENT, zone_name="Europe/Berlin", is_to=False)

    assert text == f"{value}: {words} in Europe/Berlin (Dec. 6, 2026, midnight)"


def test_other_values_show_the_moment_they_mean_in_the_filters_zone():
    with translation.override("en"):
        text = explain_bound("1d2h", MOMENT, zone_name=None, is_to=False)

    assert text == "1d2h: Dec. 5, 2026, 11 p.m. in UTC"


def test_an_end_is_shown_as_its_moment_not_as_since():
    with translation.override("en"):
        text = explain_bound("1d", MOMENT, zone_name="Europe/Berlin", is_to=True)

    assert text == "1d: Dec. 6, 2026, midnight in Europe/Berlin"


def test_a_value_that_could_not_be_resolved_is_shown_as_given():
    assert explain_bound("junk", None, zone_name="UTC", is_to=False) == "junk"
