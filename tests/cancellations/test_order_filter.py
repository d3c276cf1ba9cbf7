"""The JOC-style order filter (seed 003): parsing every field, every date format, boundaries,
errors, which orders it selects and which of them it skips."""

from datetime import UTC, datetime, timedelta

import pytest

from cancellations.audit import AuditInfo
from cancellations.errors import CancellationError
from cancellations.filter_dates import resolve_date
from cancellations.filter_parsing import parse_order_filter
from cancellations.order_filter import (
    MAX_ORDER_REFS,
    STATE_ALIASES,
    DateBound,
    FolderFilter,
    OrderFilter,
)
from cancellations.states import OrderStatus
from tests.factories import OrderFactory

# A Sunday afternoon, hours after Europe/Berlin switched to summer time (01:00 UTC).
NOW = datetime(2024, 3, 31, 15, 30, 45, tzinfo=UTC)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def errors_of(data, **kwargs) -> dict:
    with pytest.raises(CancellationError) as caught:
        parse_order_filter(data, now=NOW, **kwargs)
    return {key: " ".join(messages) for key, messages in caught.value.message_dict.items()}


# --- dates: every accepted format --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "time_zone", "expected"),
    [
        ("2024-01-02T03:04:05", None, at(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05", None, at(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05Z", None, at(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02 03:04:05Z", None, at(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05.5Z", None, at(2024, 1, 2, 3, 4, 5, 500_000)),
        ("2024-01-02T03:04:05.12", None, at(2024, 1, 2, 3, 4, 5, 120_000)),
        ("2024-01-02T03:04:05,123Z", None, at(2024, 1, 2, 3, 4, 5, 123_000)),
        ("2024-01-02T03:04:05+01:00", None, at(2024, 1, 2, 2, 4, 5)),
        ("2024-01-02T03:04:05+0100", None, at(2024, 1, 2, 2, 4, 5)),
        ("2024-01-02T03:04:05+01", None, at(2024, 1, 2, 2, 4, 5)),
        ("2024-01-02T03:04:05.250+01:00", None, at(2024, 1, 2, 2, 4, 5, 250_000)),
        ("2024-01-02T03:04:05-05:30", None, at(2024, 1, 2, 8, 34, 5)),
        ("2024-01-02 03:04:05-0530", None, at(2024, 1, 2, 8, 34, 5)),
        ("2024-01-02T03:04:05", "Europe/Berlin", at(2024, 1, 2, 2, 4, 5)),
        ("2024-07-02T03:04:05", "Europe/Berlin", at(2024, 7, 2, 1, 4, 5)),
        # timeZone beats the offset: the wall time is read in the zone
        ("2024-01-02T03:04:05+05:00", "Europe/Berlin", at(2024, 1, 2, 2, 4, 5)),
        ("2024-01-02T03:04:05Z", "America/New_York", at(2024, 1, 2, 8, 4, 5)),
        ("  2024-01-02T03:04:05Z  ", None, at(2024, 1, 2, 3, 4, 5)),
    ],
)
def test_iso_timestamps_in_every_spelling(value, time_zone, expected):
    assert resolve_date(value, time_zone=time_zone, now=NOW, is_to=False) == expected


@pytest.mark.parametrize("value", ["0", "+0", "-0", "0Z", "0+02:00", "-0-0530"])
@pytest.mark.parametrize("is_to", [False, True])
def test_zero_is_now(value, is_to):
    assert resolve_date(value, time_zone="Asia/Tokyo", now=NOW, is_to=is_to) == NOW


@pytest.mark.parametrize(
    ("value", "time_zone", "expected"),
    [
        ("30s", None, NOW - timedelta(seconds=30)),
        ("15m", None, NOW - timedelta(minutes=15)),
        ("6h", None, NOW - timedelta(hours=6)),
        ("1h30m", None, NOW - timedelta(minutes=90)),
        ("2h2h", None, NOW - timedelta(hours=4)),
        ("-6h", None, NOW - timedelta(hours=6)),
        ("+6h", None, NOW + timedelta(hours=6)),
        ("6h+02:00", None, NOW - timedelta(hours=6)),  # no day part: nothing to round
        ("1d", None, at(2024, 3, 30)),
        ("-1d", None, at(2024, 3, 30)),
        ("+1d", None, at(2024, 4, 1)),
        ("0d", None, at(2024, 3, 31)),
        ("1w", None, at(2024, 3, 24)),
        ("1M", None, at(2024, 2, 29)),  # Mar 31 one month back: the last day of February
        ("1y", None, at(2023, 3, 31)),
        ("1y1M", None, at(2023, 2, 28)),
        ("1d2h", None, at(2024, 3, 29, 22)),
        ("1d-2h", None, at(2024, 3, 29, 22)),
        ("1d+2h", None, at(2024, 3, 30, 2)),
        ("1w1d", None, at(2024, 3, 23)),
        # the offset sets the day's midnight
        ("1d+02:00", None, at(2024, 3, 29, 22)),
        ("2d+02:00", None, at(2024, 3, 28, 22)),
        ("1d+0200", None, at(2024, 3, 29, 22)),
        ("1d+02", None, at(2024, 3, 29, 22)),
        ("1dZ", None, at(2024, 3, 30)),
        ("1d-1000", None, at(2024, 3, 30, 10)),
        # a zone: midnight there, before the switch to summer time (CET, +01:00)
        ("1d", "Europe/Berlin", at(2024, 3, 29, 23)),
        ("0d", "Europe/Berlin", at(2024, 3, 30, 23)),
        ("1d+05:00", "UTC", at(2024, 3, 30)),  # timeZone beats the offset
        ("1d", "Pacific/Kiritimati", at(2024, 3, 30, 10)),  # +14:00: already April 1st there
    ],
)
def test_relative_values_count_back_from_now(value, time_zone, expected):
    assert resolve_date(value, time_zone=time_zone, now=NOW, is_to=False) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1d", at(2024, 3, 31)),  # the end of yesterday
        ("0d", at(2024, 4, 1)),  # the end of today
        ("2d", at(2024, 3, 30)),
        ("1w", at(2024, 3, 31)),
        ("1M", at(2024, 3, 31)),
        ("1y", at(2024, 3, 31)),
        ("1w1d", at(2024, 3, 24)),  # the smallest unit (d) names the period
        ("1d2h", at(2024, 3, 29, 22)),  # with hours: a point in time, not a period
        ("6h", NOW - timedelta(hours=6)),
        ("0", NOW),
        ("2024-01-02T03:04:05Z", at(2024, 1, 2, 3, 4, 5)),
    ],
)
def test_date_to_names_the_end_of_a_day_week_month_or_year(value, expected):
    assert resolve_date(value, time_zone=None, now=NOW, is_to=True) == expected


def test_date_to_ends_the_day_at_midnight_in_the_zone():
    assert resolve_date("1d", time_zone="Europe/Berlin", now=NOW, is_to=True) == at(2024, 3, 30, 23)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1D",
        "1x",
        "10",
        "d",
        "1.5d",
        "1 d",
        "now",
        "yesterday",
        "+",
        "1d+2",
        "2024-01-01",
        "2024-01-01T10:00",
        "2024-01-01T10:00:00.1234",
        "2024-01-01T10:00:00 Z",
        "2024-01-01T10:00:00+1",
        "2024-01-01T10:00:00+01:0",
        "01-01-2024 10:00:00",
        "2024-13-01T00:00:00",
        "2024-02-30T00:00:00",
        "2023-02-29T00:00:00",
        "2024-01-01T24:00:00",
        "2024-01-01T23:60:00",
        "2024-01-01T23:59:60",
        "2024-01-01T10:00:00+24:00",
        "2024-01-01T10:00:00+01:60",
        "0000-01-01T00:00:00",
        "9999-12-31T23:59:59-01:00",
        "0+25:00",
        "1d+24",
        "99999999999d",
        "9999y",
        "+9999y",
    ],
)
def test_anything_else_is_refused_with_the_accepted_formats(value):
    with pytest.raises(ValueError, match="ISO 8601") as caught:
        resolve_date(value, time_zone=None, now=NOW, is_to=False)

    assert "2d+02:00" in str(caught.value)


# --- parsing the filter ------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}])
def test_an_empty_filter_selects_everything_and_changes_nothing(data):
    assert parse_order_filter(data, now=NOW) == OrderFilter()


def test_every_field_is_read():
    parsed = parse_order_filter(
        {
            "folders": [{"folder": "/shop/de", "recursive": False}],
            "states": ["open", "SUSPENDED"],
            "dateFrom": "1d",
            "dateTo": "0",
            "timeZone": "Europe/Berlin",
            "deep": True,
            "kill": True,
            "auditLog": {"comment": "Storno-Welle", "timeSpent": 12, "ticketLink": "JIRA-1"},
        },
        now=NOW,
    )

    assert parsed == OrderFilter(
        folders=(FolderFilter("/shop/de", recursive=False),),
        states=(OrderStatus.OPEN, OrderStatus.ON_HOLD),
        date_from=DateBound("1d"),
        date_to=DateBound("0"),
        time_zone="Europe/Berlin",
        deep=True,
        kill=True,
        audit=AuditInfo(comment="Storno-Welle", time_spent=12, ticket_link="JIRA-1"),
    )


def test_the_filter_must_be_an_object():
    assert set(errors_of(["/shop"])) == {"filter"}


@pytest.mark.parametrize("key", ["workflowIds", "controllerId", "folder", "orderType", "limit"])
def test_unknown_fields_are_refused_rather_than_ignored(key):
    errors = errors_of({key: "x"})

    assert set(errors) == {key}
    assert "folders" in errors[key]


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(
        {"folders": "shop", "states": ["done"], "timeZone": "Mars/Olympus", "kill": "yes"}
    )

    assert set(errors) == {"folders", "states.0", "timeZone", "kill"}


# orderIds


def test_integer_order_ids_are_storno_ids_and_strings_are_order_numbers():
    parsed = parse_order_filter({"orderIds": [7, "ORD-000001", 3, " ORD-2 "]}, now=NOW)

    assert parsed.order_ids == (7, 3)
    assert parsed.order_numbers == ("ORD-000001", "ORD-2")
    assert parsed.by_order_refs


def test_repeated_order_ids_count_once():
    parsed = parse_order_filter({"orderIds": [7, 7, "A", "A"]}, now=NOW)

    assert (parsed.order_ids, parsed.order_numbers) == ((7,), ("A",))


@pytest.mark.parametrize("ref", [0, -1, True, 1.5, "", "   ", "x" * 41, None, {"id": 1}, [1]])
def test_bad_order_ids_are_named_by_position(ref):
    assert set(errors_of({"orderIds": [1, ref]})) == {"orderIds.1"}


@pytest.mark.parametrize("value", ["ORD-1", 7, {"ids": [1]}])
def test_order_ids_must_be_a_list(value):
    assert set(errors_of({"orderIds": value})) == {"orderIds"}


def test_at_most_a_thousand_order_ids_at_once():
    parse_order_filter({"orderIds": list(range(1, MAX_ORDER_REFS + 1))}, now=NOW)

    assert set(errors_of({"orderIds": list(range(1, MAX_ORDER_REFS + 2))})) == {"orderIds"}


def test_an_empty_order_id_list_selects_by_the_other_fields():
    parsed = parse_order_filter({"orderIds": [], "states": ["open"]}, now=NOW)

    assert not parsed.by_order_refs


# folders


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        ([{"folder": "/shop/de"}], FolderFilter("/shop/de", True)),
        ([{"folder": "/shop/de", "recursive": True}], FolderFilter("/shop/de", True)),
        ([{"folder": "/shop/de", "recursive": False}], FolderFilter("/shop/de", False)),
        ([{"folder": "/shop/de", "recursive": None}], FolderFilter("/shop/de", True)),
        (["/shop/de"], FolderFilter("/shop/de", True)),
        ([{"folder": "/shop/de/"}], FolderFilter("/shop/de", True)),
        ([{"folder": " /shop/de "}], FolderFilter("/shop/de", True)),
        ([{"folder": "/"}], FolderFilter("/", True)),
    ],
)
def test_folders_are_read_recursive_by_default(folders, expected):
    assert parse_order_filter({"folders": folders}, now=NOW).folders == (expected,)


@pytest.mark.parametrize(
    ("folder", "field"),
    [
        ({"folder": "shop/de"}, "folders.0.folder"),
        ({"folder": ""}, "folders.0.folder"),
        ({"folder": 5}, "folders.0.folder"),
        ({"recursive": True}, "folders.0.folder"),
        ({"folder": "/shop:de"}, "folders.0.folder"),
        ({"folder": "/shop//de"}, "folders.0.folder"),
        ({"folder": "/sh<op"}, "folders.0.folder"),
        ({"folder": "/" + "x" * 255}, "folders.0.folder"),
        ({"folder": "/shop", "recursive": "yes"}, "folders.0.recursive"),
        ({"folder": "/shop", "recursive": 1}, "folders.0.recursive"),
        ({"folder": "/shop", "deep": True}, "folders.0.deep"),
        (["/shop"], "folders.0"),
        (7, "folders.0"),
    ],
)
def test_bad_folders_are_named_by_position_and_field(folder, field):
    assert field in errors_of({"folders": [folder]})


def test_folders_must_be_a_list():
    assert set(errors_of({"folders": {"folder": "/shop"}})) == {"folders"}


# states


@pytest.mark.parametrize("state", [value for value, _label in OrderStatus.choices])
def test_storno_states_are_taken_as_they_are(state):
    assert parse_order_filter({"states": [state]}, now=NOW).states == (state,)


@pytest.mark.parametrize(("joc", "storno"), sorted(STATE_ALIASES.items()))
def test_joc_states_map_to_storno_statuses(joc, storno):
    assert parse_order_filter({"states": [joc]}, now=NOW).states == (storno,)


@pytest.mark.parametrize(
    ("joc", "storno"),
    [
        ("PENDING", "open"),
        ("SCHEDULED", "open"),
        ("PLANNED", "open"),
        ("INPROGRESS", "in_progress"),
        ("RUNNING", "in_progress"),
        ("SUSPENDED", "on_hold"),
        ("BLOCKED", "on_hold"),
        ("WAITING", "on_hold"),
        ("FINISHED", "completed"),
        ("CANCELLED", "cancelled"),
    ],
)
def test_the_joc_state_mapping_is_the_documented_one(joc, storno):
    assert STATE_ALIASES[joc] == storno


def test_state_names_are_read_in_any_case_and_counted_once():
    parsed = parse_order_filter({"states": ["Open", "PENDING", "running", "In_Progress"]}, now=NOW)

    assert parsed.states == (OrderStatus.OPEN, OrderStatus.IN_PROGRESS)


@pytest.mark.parametrize("state", ["FAILED", "BROKEN", "UNKNOWN", "done", "", 5, None])
def test_states_without_a_storno_counterpart_are_refused(state):
    errors = errors_of({"states": ["open", state]})

    assert set(errors) == {"states.1"}
    assert "partially_cancelled" in errors["states.1"]


def test_states_must_be_a_list():
    assert set(errors_of({"states": "open"})) == {"states"}


# timeZone


@pytest.mark.parametrize("zone", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_iana_time_zones_are_accepted(zone):
    assert parse_order_filter({"timeZone": zone}, now=NOW).time_zone == zone


@pytest.mark.parametrize("zone", ["", None])
def test_no_time_zone_means_utc(zone):
    parsed = parse_order_filter({"timeZone": zone, "dateFrom": "1d"}, now=NOW)

    assert parsed.time_zone is None
    assert parsed.bounds(NOW)[0] == at(2024, 3, 30)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "+02:00", "CEST ", "../../etc/passwd", "/etc/localtime", "<b>", 5]
)
def test_an_unknown_time_zone_is_an_error(zone):
    errors = errors_of({"timeZone": zone})

    assert set(errors) == {"timeZone"}


def test_dates_are_still_checked_when_the_time_zone_is_bad():
    errors = errors_of({"timeZone": "Mars/Olympus", "dateFrom": "1D"})

    assert set(errors) == {"timeZone", "dateFrom"}


# deep and kill


@pytest.mark.parametrize("key", ["deep", "kill"])
@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, False)])
def test_deep_and_kill_are_booleans(key, value, expected):
    assert getattr(parse_order_filter({key: value}, now=NOW), key) is expected


@pytest.mark.parametrize("key", ["deep", "kill"])
@pytest.mark.parametrize("value", ["true", 1, 0, "yes", []])
def test_deep_and_kill_refuse_anything_but_true_or_false(key, value):
    assert set(errors_of({key: value})) == {key}


# auditLog


def test_the_audit_log_fields_are_optional():
    assert parse_order_filter({"auditLog": {}}, now=NOW).audit == AuditInfo()


def test_audit_texts_up_to_255_characters_are_accepted():
    audit = parse_order_filter(
        {"auditLog": {"comment": "c" * 255, "ticketLink": "t" * 255, "timeSpent": 0}}, now=NOW
    ).audit

    assert (len(audit.comment), len(audit.ticket_link), audit.time_spent) == (255, 255, 0)


@pytest.mark.parametrize(
    ("audit", "field"),
    [
        ({"comment": "c" * 256}, "auditLog.comment"),
        ({"comment": 5}, "auditLog.comment"),
        ({"ticketLink": "t" * 256}, "auditLog.ticketLink"),
        ({"ticketLink": ["x"]}, "auditLog.ticketLink"),
        ({"timeSpent": -1}, "auditLog.timeSpent"),
        ({"timeSpent": 1.5}, "auditLog.timeSpent"),
        ({"timeSpent": "5"}, "auditLog.timeSpent"),
        ({"timeSpent": True}, "auditLog.timeSpent"),
        ({"timeSpent": 2**31}, "auditLog.timeSpent"),
        ({"minutes": 5}, "auditLog.minutes"),
    ],
)
def test_bad_audit_log_fields_are_named(audit, field):
    assert set(errors_of({"auditLog": audit})) == {field}


@pytest.mark.parametrize("audit", ["a comment", ["x"], 5])
def test_the_audit_log_must_be_an_object(audit):
    assert set(errors_of({"auditLog": audit})) == {"auditLog"}


# dateFrom / dateTo in the filter


@pytest.mark.parametrize("key", ["dateFrom", "dateTo"])
def test_a_bad_date_names_the_field_and_the_formats(key):
    errors = errors_of({key: "yesterday"})

    assert set(errors) == {key}
    assert "ISO 8601" in errors[key]
    assert "1d2h" in errors[key]


@pytest.mark.parametrize("key", ["dateFrom", "dateTo"])
@pytest.mark.parametrize("value", [5, ["1d"], {"days": 1}])
def test_a_date_must_be_a_string(key, value):
    errors = errors_of({key: value})

    assert set(errors) == {key}
    assert "ISO 8601" in errors[key]


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("0", "1d"),
        ("1d", "2d"),
        ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("2024-03-01T00:00:00Z", "2024-02-29 23:59:59"),
        ("2024-03-01T01:00:00+01:00", "2024-03-01T00:00:00Z"),
        ("0", "0"),
    ],
)
def test_date_from_must_be_older_than_date_to(date_from, date_to):
    errors = errors_of({"dateFrom": date_from, "dateTo": date_to})

    assert errors == {"dateFrom": "'dateFrom' must be older than 'dateTo'."}


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("1d", "1d"),  # all of yesterday
        ("1d", "0"),
        ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00.001Z"),
        ("7d", "0d"),
        ("2024-01-01 00:00:00", "1w"),
    ],
)
def test_a_date_from_older_than_date_to_is_accepted(date_from, date_to):
    parsed = parse_order_filter({"dateFrom": date_from, "dateTo": date_to}, now=NOW)

    start, end = parsed.bounds(NOW)
    assert start < end


def test_the_bounds_follow_the_clock_they_are_resolved_against():
    parsed = parse_order_filter({"dateFrom": "1d", "dateTo": "1d"}, now=NOW)

    assert parsed.bounds(NOW) == (at(2024, 3, 30), at(2024, 3, 31))
    assert parsed.bounds(NOW + timedelta(days=1)) == (at(2024, 3, 31), at(2024, 4, 1))


def test_an_empty_date_string_means_no_bound():
    assert parse_order_filter({"dateFrom": "", "dateTo": None}, now=NOW).bounds(NOW) == (
        None,
        None,
    )


def test_the_filter_round_trips_through_its_dict():
    data = {
        "orderIds": [7, "ORD-1"],
        "folders": [{"folder": "/shop", "recursive": False}],
        "states": ["on_hold"],
        "dateFrom": "2d+02:00",
        "dateTo": "0",
        "timeZone": "Europe/Berlin",
        "deep": True,
        "kill": False,
        "auditLog": {"comment": "c", "timeSpent": 3, "ticketLink": "t"},
    }
    parsed = parse_order_filter(data, now=NOW)

    assert parsed.to_dict() == data
    assert parse_order_filter(parsed.to_dict(), now=NOW) == parsed


# --- selecting orders --------------------------------------------------------------------------


@pytest.fixture
def channels(db):
    return {
        channel: OrderFactory(channel=channel, placed_at=at(2024, 3, 30, 12))
        for channel in [
            "/shop/de",
            "/shop/de/b2b",
            "/shop/de/b2b/x",
            "/shop/dex",
            "/shop",
            "/SHOP/de",
        ]
    }


def selected(data, *, now=NOW, base=None) -> set:
    return {order.channel for order in parse_order_filter(data, now=now).queryset(base, now=now)}


def test_a_recursive_folder_takes_that_folder_and_everything_below(channels):
    assert selected({"folders": [{"folder": "/shop/de"}]}) == {
        "/shop/de",
        "/shop/de/b2b",
        "/shop/de/b2b/x",
    }


def test_a_non_recursive_folder_takes_exactly_that_folder(channels):
    assert selected({"folders": [{"folder": "/shop/de", "recursive": False}]}) == {"/shop/de"}


def test_folders_match_case_sensitively_even_on_sqlite(channels):
    assert selected({"folders": ["/shop/DE"]}) == set()
    assert selected({"folders": ["/SHOP"]}) == {"/SHOP/de"}


def test_the_root_folder_recursive_takes_every_channel(channels):
    assert selected({"folders": ["/"]}) == set(channels)


def test_the_root_folder_takes_every_channel_next_to_other_folders(channels):
    assert selected({"folders": [{"folder": "/x", "recursive": False}, "/"]}) == set(channels)


def test_the_root_folder_alone_holds_no_orders(channels):
    assert selected({"folders": [{"folder": "/", "recursive": False}]}) == set()


def test_several_folders_add_up(channels):
    folders = [{"folder": "/shop/dex"}, {"folder": "/shop/de/b2b", "recursive": False}]

    assert selected({"folders": folders}) == {"/shop/dex", "/shop/de/b2b"}


def test_states_select_by_status(db):
    OrderFactory(channel="/a", status=OrderStatus.OPEN)
    OrderFactory(channel="/b", status=OrderStatus.ON_HOLD)
    OrderFactory(channel="/c", status=OrderStatus.COMPLETED)

    assert selected({"states": ["SUSPENDED", "open"]}) == {"/a", "/b"}


def test_date_from_is_inclusive_and_date_to_exclusive(db):
    OrderFactory(channel="/before", placed_at=at(2024, 3, 29, 23, 59, 59))
    OrderFactory(channel="/first", placed_at=at(2024, 3, 30))
    OrderFactory(channel="/last", placed_at=at(2024, 3, 30, 23, 59, 59, 999_999))
    OrderFactory(channel="/after", placed_at=at(2024, 3, 31))

    assert selected({"dateFrom": "1d", "dateTo": "1d"}) == {"/first", "/last"}
    assert selected({"dateFrom": "2024-03-30T00:00:00Z"}) == {"/first", "/last", "/after"}
    assert selected({"dateTo": "2024-03-31 00:00:00"}) == {"/before", "/first", "/last"}


def test_relative_dates_are_resolved_against_the_given_now(db):
    OrderFactory(channel="/recent", placed_at=NOW - timedelta(hours=5))
    OrderFactory(channel="/older", placed_at=NOW - timedelta(hours=7))

    assert selected({"dateFrom": "6h"}) == {"/recent"}
    assert selected({"dateFrom": "6h"}, now=NOW + timedelta(hours=2)) == set()


def test_the_time_zone_moves_the_midnight_of_relative_dates(db):
    OrderFactory(channel="/berlin-yesterday", placed_at=at(2024, 3, 29, 23, 30))

    assert selected({"dateFrom": "1d"}) == set()
    assert selected({"dateFrom": "1d", "timeZone": "Europe/Berlin"}) == {"/berlin-yesterday"}


def test_all_conditions_must_hold(db):
    OrderFactory(channel="/shop/de", status=OrderStatus.OPEN, placed_at=at(2024, 3, 30, 8))
    OrderFactory(channel="/shop/at", status=OrderStatus.OPEN, placed_at=at(2024, 3, 30, 8))
    OrderFactory(channel="/shop/de/x", status=OrderStatus.ON_HOLD, placed_at=at(2024, 3, 30, 8))
    OrderFactory(channel="/shop/de/y", status=OrderStatus.OPEN, placed_at=at(2024, 3, 1))

    data = {"folders": ["/shop/de"], "states": ["open"], "dateFrom": "1w"}

    assert selected(data) == {"/shop/de"}


def test_explicit_order_ids_win_over_every_other_filter(db):
    by_id = OrderFactory(channel="/elsewhere", status=OrderStatus.ON_HOLD, placed_at=at(2020, 1, 1))
    OrderFactory(channel="/shop/de", number="ORD-X", placed_at=at(2020, 1, 1))
    OrderFactory(channel="/shop/de/other", status=OrderStatus.OPEN)

    data = {
        "orderIds": [by_id.pk, "ORD-X", "ORD-MISSING"],
        "folders": ["/nowhere"],
        "states": ["completed"],
        "dateFrom": "1d",
    }

    assert selected(data) == {"/elsewhere", "/shop/de"}


def test_missing_order_refs_are_reported(db):
    found = OrderFactory(number="ORD-HERE")
    parsed = parse_order_filter({"orderIds": [found.pk, 987654, "ORD-HERE", "ORD-GONE"]}, now=NOW)

    assert parsed.missing_order_refs(parsed.queryset(now=NOW)) == [987654, "ORD-GONE"]


@pytest.fixture
def family(db):
    parent = OrderFactory(channel="/shop/de", number="P")
    child = OrderFactory(channel="/elsewhere", number="C", parent=parent)
    grandchild = OrderFactory(channel="/elsewhere", number="G", parent=child)
    OrderFactory(channel="/elsewhere", number="STRANGER")
    return parent, child, grandchild


def numbers(data, base=None) -> set:
    return {o.number for o in parse_order_filter(data, now=NOW).queryset(base, now=NOW)}


def test_without_deep_child_orders_are_left_out(family):
    assert numbers({"folders": ["/shop/de"]}) == {"P"}


def test_deep_takes_children_and_their_children(family):
    assert numbers({"folders": ["/shop/de"], "deep": True}) == {"P", "C", "G"}


def test_deep_works_with_explicit_order_ids(family):
    assert numbers({"orderIds": ["C"], "deep": True}) == {"C", "G"}


def test_deep_stays_within_the_base_queryset(family):
    from cancellations.models import Order

    base = Order.objects.exclude(number="G")

    assert numbers({"folders": ["/shop/de"], "deep": True}, base=base) == {"P", "C"}


def test_deep_costs_one_query_per_generation(family, django_assert_num_queries):
    parsed = parse_order_filter({"folders": ["/shop/de"], "deep": True}, now=NOW)

    # children, grandchildren, (none further), then the orders themselves
    with django_assert_num_queries(4):
        assert len(list(parsed.queryset(now=NOW))) == 3


def test_the_filter_without_deep_is_one_query(channels, django_assert_num_queries):
    parsed = parse_order_filter({"folders": ["/shop"], "states": ["open"]}, now=NOW)

    with django_assert_num_queries(1):
        assert len(list(parsed.queryset(now=NOW))) == 5


# --- which selected orders are cancelled -------------------------------------------------------


@pytest.mark.parametrize(
    "status", [OrderStatus.OPEN, OrderStatus.ON_HOLD, OrderStatus.PARTIALLY_CANCELLED]
)
def test_cancellable_orders_are_cancelled(db, status):
    order = OrderFactory(status=status)

    assert OrderFilter().partition([order]) == ([order], [])


@pytest.mark.parametrize("status", [OrderStatus.COMPLETED, OrderStatus.CANCELLED])
def test_finished_orders_are_skipped_with_their_status(db, status):
    order = OrderFactory(status=status)

    to_cancel, skipped = OrderFilter(kill=True).partition([order])

    assert to_cancel == []
    [(skipped_order, reason)] = skipped
    assert skipped_order == order
    assert order.get_status_display().lower() in reason


def test_orders_in_progress_are_skipped_without_kill(db):
    order = OrderFactory(status=OrderStatus.IN_PROGRESS)

    to_cancel, skipped = OrderFilter().partition([order])

    assert to_cancel == []
    assert skipped == [(order, "The order is in progress; set kill to cancel it anyway.")]


def test_kill_cancels_orders_in_progress_too(db):
    order = OrderFactory(status=OrderStatus.IN_PROGRESS)

    assert OrderFilter(kill=True).partition([order]) == ([order], [])


def test_partition_keeps_the_order_of_the_orders(db):
    first, second, third = (
        OrderFactory(status=OrderStatus.OPEN),
        OrderFactory(status=OrderStatus.COMPLETED),
        OrderFactory(status=OrderStatus.ON_HOLD),
    )

    to_cancel, skipped = OrderFilter().partition([first, second, third])

    assert to_cancel == [first, third]
    assert [order for order, _reason in skipped] == [second]
