"""No 500 from odd values where fields are expected: bodies that name real rows, so that huge
numbers reach the fields and services, and valid bodies with one field swapped for an odd
value (Hypothesis; FUZZ_MAX_EXAMPLES=1500 for a longer run by hand)."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cancellations.models import Order

from . import body_fuzzing
from .body_fuzzing import (
    CANCELLATION_ID,
    DIALECTS,
    JOC,
    JSON_TYPE,
    STORNO,
    assert_dialect_shape,
    dialect_shape_problem,
    send,
)


@pytest.fixture
def superuser_api(db, monkeypatch):
    return body_fuzzing.superuser_api(monkeypatch)


def huge_numbers_in_numeric_fields(order, item, reason) -> dict[str, dict]:
    """Bodies that name real rows, so that the huge numbers reach the fields and services."""
    huge, huge_float = 10**400, 1e300
    cancellation = {
        "orderId": order.pk,
        "reasonId": reason.pk,
        "items": [{"itemId": item.pk, "quantity": huge}],
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": huge_float,
                "unitPriceCurrency": "EUR",
                "quantity": huge,
                "description": "fee",
            }
        ],
        "auditLog": {"timeSpent": huge},
    }
    return {
        "/api/v1/orders/": {
            "number": "FUZZ-1",
            "customerName": "Fuzz",
            "channel": "web",
            "currency": "EUR",
            "parentId": huge,
            "items": [{"sku": "X", "quantity": huge, "unitPriceAmount": huge_float}],
        },
        "/api/v1/order-cancellations/": cancellation,
        "/api/v1/order-cancellations/fuzz-huge": {**cancellation, "churnTime": None},
        "/api/v1/orders/cancel/": {
            "controllerId": "storno",
            "orderIds": [huge, order.pk],
            "reasonId": reason.pk,
            "dryRun": True,
            "auditLog": {"comment": "x", "timeSpent": huge},
        },
    }


def test_huge_numbers_in_numeric_fields_are_refused_without_a_server_error(superuser_api):
    order = Order.objects.get(external_ids__callisto="4711")
    bodies = huge_numbers_in_numeric_fields(
        order, order.items.first(), order.cancellations.get().reason
    )
    wrong = {}
    for path, body in bodies.items():
        method = "put" if path.endswith("fuzz-huge") else "post"
        dialect = JOC if path.endswith("/orders/cancel/") else STORNO
        response = send(superuser_api, method, path, json.dumps(body), JSON_TYPE)
        problem = dialect_shape_problem(response, dialect)
        if problem is None and response.status_code < 400:
            problem = f"accepted: {response.content[:200]!r}"
        if problem:
            wrong[path] = problem
    assert wrong == {}


def valid_bodies(order, reason) -> dict[tuple[str, str], dict]:
    """A body each endpoint takes, to swap one field of (so the rest gets past validation)."""
    cancellation = {"orderId": order.pk, "reasonId": reason.pk, "description": "fuzz"}
    callisto = {
        "Id": 4711,
        "CancelDate": "2026-12-06",
        "CancelTimestamp": "2026-12-06 10:15:00",
        "CancelReason": reason.subject,
        "UserId": "005000000000001AAA",
    }
    return {
        ("post", "/api/v1/orders/"): {
            "number": "FUZZ-2",
            "customerName": "Fuzz",
            "channel": "/shop/de",
            "currency": "EUR",
            "placedTime": "2026-12-01T10:00:00Z",
            "externalIds": {"callisto": "4712"},
            "items": [{"sku": "X", "quantity": 1, "unitPriceAmount": 10, "billingItemId": "SI-9"}],
        },
        ("post", "/api/v1/order-cancellations/"): cancellation,
        ("put", "/api/v1/order-cancellations/fuzz-new"): {
            **cancellation,
            "orderId": str(order.pk),
            "status": "draft",
        },
        ("post", "/api/v1/order-cancellations/{cancellation}/revoke/"): {"comment": "fuzz"},
        ("post", "/api/v1/service-items/cancel/"): {
            "items": [{"itemId": "SI-9"}],
            "clientSystemId": "fuzz",
            "resultLanguageIsoCodes": ["de"],
            "userName": "",
        },
        ("post", "/api/v1/orders/cancel/"): {
            "controllerId": "storno",
            "reasonId": reason.pk,
            "dryRun": True,
            "dateFrom": "1d",
            "timeZone": "Europe/Berlin",
            "folders": [{"folder": "/shop", "recursive": True}],
            "states": ["PENDING"],
        },
        ("put", "/callisto/cancel"): callisto,
        ("delete", "/callisto/cancel"): {"Id": 4711},
    }


ODD_VALUES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(alphabet=st.characters(whitelist_categories=["Nd", "No"]), min_size=1, max_size=25),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e5",
            "/",
            "9" * 30,
            "2026-02-30",
            "2026-12-06 25:61:00",
            "+1y",
            "Europe/Nowhere",
            "../../etc/passwd",
            "\u202e",
            "a" * 5000,
            "<script>",
            "%s%n",
        ]
    ),
    st.none(),
    st.booleans(),
    st.lists(st.integers() | st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=3),
)


@settings(
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "120")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_one_odd_field_in_a_valid_body_never_gets_a_server_error(superuser_api, data):
    order = Order.objects.get(external_ids__callisto="4711")
    reason = order.cancellations.get(pk=CANCELLATION_ID).reason
    bodies = valid_bodies(order, reason)
    method, path = data.draw(st.sampled_from(sorted(bodies)))
    body = dict(bodies[(method, path)])
    body[data.draw(st.sampled_from(sorted(body)))] = data.draw(ODD_VALUES)
    dialect = DIALECTS[(method, path)]
    response = send(superuser_api, method, path, json.dumps(body), JSON_TYPE)
    assert_dialect_shape(response, dialect)
