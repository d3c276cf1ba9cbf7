"""No 500 from any body: every endpoint that reads a body gets hostile ones (10,000-deep nesting,
5 MB, duplicate keys, NaN, 1e400, invalid UTF-8, lone surrogates, arrays and scalars at the top,
wrong content types…) and must answer below 500, in its own dialect's error shape.

The caller is a superuser with a token, so every request gets past authentication and
permissions and reaches the parser; throttles are off (tests/backoffice/body_fuzzing.py). Odd
values inside otherwise valid bodies: test_body_fuzzing_fields.py.
"""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.parsers import MAX_DEPTH, MAX_KEYS

from . import body_fuzzing
from .body_fuzzing import (
    JOC,
    JSON_TYPE,
    KNOWN_FIELDS,
    WRITE_ENDPOINTS,
    assert_dialect_shape,
    dialect_shape_problem,
    send,
)


def nested(depth: int, opener="[", closer="]", inner="1") -> str:
    return opener * depth + inner + closer * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def inside_known_fields(depth: int) -> str:
    """Deep arrays and objects where fields are expected, still within the depth limit."""
    arrays = nested(depth)
    objects = nested_objects(depth)
    return (
        "{"
        + ",".join(f'"{f}":{arrays if i % 2 else objects}' for i, f in enumerate(KNOWN_FIELDS))
        + "}"
    )


def many_items_with_unknown_keys() -> str:
    item = {f"k{i}": i for i in range(100)}
    return json.dumps({field: [item] * 50 for field in ("items", "lineItems", "auditLog")})


def long_arrays_in_known_fields() -> str:
    return json.dumps({field: list(range(5_000)) for field in KNOWN_FIELDS})


def long_strings_in_known_fields() -> str:
    """Strings of 100 kB where each dialect expects short ones (patterns, time zones, ids)."""
    long = "1" * 100_000
    return json.dumps(
        {
            "controllerId": long,
            "folders": [{"folder": "/" + "a" * 100_000 + "<", "recursive": True}],
            "dateFrom": long + "x",
            "dateTo": "0" * 100_000,
            "timeZone": "Europe/" + "a" * 100_000,
            "orderIds": [long],
            "reasonId": long,
            "description": long,
            "Id": long,
            "CancelDate": long,
            "CancelTimestamp": long,
            "CancelReason": long,
            "UserId": long,
            "items": [{"itemId": long}],
            "userName": long,
        }
    )


# (name, body, content type, what it is): "parse" bodies are refused by the parser (400, or
# JOC's 420), "large" is a 413, "media" a 415; "valid" ones parse and are the views' to judge.
HOSTILE_BODIES = [
    ("nested arrays 10,000 deep", nested(10_000), JSON_TYPE, "parse"),
    ("nested objects 10,000 deep", nested_objects(10_000), JSON_TYPE, "parse"),
    ("an object inside 10,000 arrays", nested(10_000, inner="{}"), JSON_TYPE, "parse"),
    ("one level over the limit", "{" + '"a":' + nested(MAX_DEPTH), JSON_TYPE, "parse"),
    ("unclosed nesting", "[" * 10_000, JSON_TYPE, "parse"),
    ("closers only", "]}" * 5_000, JSON_TYPE, "parse"),
    ("a 5 MB string", '{"description": "' + "x" * 5_000_000 + '"}', JSON_TYPE, "large"),
    ("an unterminated string of escaped quotes", '{"a": "' + '\\"' * 1_000_000, JSON_TYPE, "parse"),
    ("duplicate key", '{"description": "a", "description": "b"}', JSON_TYPE, "parse"),
    ("duplicate nested key", '{"auditLog": {"comment": "a", "comment": "b"}}', JSON_TYPE, "parse"),
    ("NaN", '{"quantity": NaN}', JSON_TYPE, "parse"),
    ("Infinity", '{"quantity": -Infinity}', JSON_TYPE, "parse"),
    ("1e400", '{"quantity": 1e400}', JSON_TYPE, "parse"),
    ("a 400-digit integer", '{"orderId": ' + "9" * 400 + "}", JSON_TYPE, "valid"),
    ("a 5,000-digit integer", '{"Id": ' + "9" * 5_000 + "}", JSON_TYPE, "parse"),
    ("2**63", '{"reasonId": 9223372036854775808, "Id": 9223372036854775808}', JSON_TYPE, "valid"),
    ("invalid UTF-8", b'{"description": "\xff\xfe"}', JSON_TYPE, "parse"),
    ("UTF-8-encoded surrogate", b'{"description": "\xed\xa0\x80"}', JSON_TYPE, "parse"),
    ("lone surrogate escape", '{"description": "\\ud800"}', JSON_TYPE, "parse"),
    ("a NUL character", '{"description": "a\\u0000", "Id": "\\u0000"}', JSON_TYPE, "parse"),
    ("lone surrogate in a key", '{"\\udfff": 1}', JSON_TYPE, "parse"),
    ("UTF-16", '{"a": 1}'.encode("utf-16"), JSON_TYPE, "parse"),
    ("a top-level array", "[1, 2]", JSON_TYPE, "parse"),
    ("a top-level number", "42", JSON_TYPE, "parse"),
    ("a top-level string", '"cancel"', JSON_TYPE, "parse"),
    ("top-level null", "null", JSON_TYPE, "parse"),
    ("top-level true", "true", JSON_TYPE, "parse"),
    ("whitespace only", "   ", JSON_TYPE, "parse"),
    ("truncated", '{"orderId": ', JSON_TYPE, "parse"),
    ("trailing garbage", '{"orderId": 1} x', JSON_TYPE, "parse"),
    ("an empty body", "", JSON_TYPE, "valid"),
    ("an empty object", "{}", JSON_TYPE, "valid"),
    ("deep values in known fields", inside_known_fields(MAX_DEPTH - 2), JSON_TYPE, "valid"),
    (
        "20,000 keys in one object",
        json.dumps({f"k{i}": i for i in range(20_000)}),
        JSON_TYPE,
        "parse",
    ),
    ("1,000 unknown keys", json.dumps({f"k{i}": i for i in range(MAX_KEYS)}), JSON_TYPE, "valid"),
    ("unknown keys in many items", many_items_with_unknown_keys(), JSON_TYPE, "valid"),
    (
        "digits that are not ASCII",
        json.dumps({"Id": "²", "externalIds": {"callisto": "١٢"}, "orderId": "٣", "reasonId": "²"}),
        JSON_TYPE,
        "valid",
    ),
    ("long strings in known fields", long_strings_in_known_fields(), JSON_TYPE, "valid"),
    ("a long array in known fields", long_arrays_in_known_fields(), JSON_TYPE, "valid"),
    ("JSON as text/plain", '{"orderId": 1}', "text/plain", "media"),
    ("a form post", "orderId=1&reasonId=2", "application/x-www-form-urlencoded", "media"),
    ("multipart", "--x\r\n\r\n--x--", "multipart/form-data; boundary=x", "media"),
    ("JSON Patch", '[{"op": "remove", "path": "/a"}]', "application/json-patch+json", "media"),
    ("any type at all", '{"a": 1}', "*/*", "valid"),
    ("UTF-16 said so", '{"a": 1}'.encode("utf-16"), "application/json; charset=utf-16", "parse"),
    ("a charset that is a codec", '{"a": 1}', "application/json; charset=base64", "valid"),
    ("an unknown charset", '{"a": 1}', "application/json; charset=klingon", "valid"),
]


@pytest.fixture
def superuser_api(db, monkeypatch):
    return body_fuzzing.superuser_api(monkeypatch)


def expected_status(kind: str, dialect: str) -> int | None:
    if kind == "parse":
        return 420 if dialect == JOC else 400
    return {"large": 413, "media": 415}.get(kind)


@pytest.mark.parametrize(
    ("body", "content_type", "kind"),
    [pytest.param(body, ctype, kind, id=name) for name, body, ctype, kind in HOSTILE_BODIES],
)
def test_a_hostile_body_is_answered_in_the_dialects_shape_without_a_server_error(
    superuser_api, body, content_type, kind
):
    """Each body to every endpoint (one test per body: the fixture's rows are made once)."""
    wrong = {}
    for method, path, dialect in WRITE_ENDPOINTS:
        response = send(superuser_api, method, path, body, content_type)
        expected = expected_status(kind, dialect)
        problem = dialect_shape_problem(response, dialect)
        if problem is None and expected is not None and response.status_code != expected:
            problem = f"{response.status_code}, not {expected}: {response.content[:200]!r}"
        if problem:
            wrong[f"{method.upper()} {path}"] = problem
    assert wrong == {}


@pytest.mark.parametrize(("method", "path", "dialect"), WRITE_ENDPOINTS)
def test_a_duplicate_key_is_named(superuser_api, method, path, dialect):
    response = send(superuser_api, method, path, '{"Id": 1, "x": {"Id": 2, "Id": 3}}', JSON_TYPE)
    text = response.json()["error"]["message"] if dialect == JOC else response.json()["detail"]
    assert '"Id"' in text and "twice" in text


def test_an_oversize_body_says_how_large_is_too_large(superuser_api):
    response = send(
        superuser_api, "post", "/api/v1/orders/", "[" + "1," * 2_000_000 + "1]", JSON_TYPE
    )
    assert response.status_code == 413
    assert response.json()["title"] == "Request too large"
    assert response.json()["detail"] == "The body is larger than 2621440 bytes."


def test_nesting_up_to_the_limit_parses(superuser_api):
    body = '{"auditLog":' + nested_objects(MAX_DEPTH - 1) + "}"
    response = send(superuser_api, "post", "/api/v1/order-cancellations/", body, JSON_TYPE)
    assert response.status_code == 400
    assert "nested" not in response.json()["detail"]  # the serializer's refusal, not the parser's


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_FIELDS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=st.sampled_from(WRITE_ENDPOINTS),
    body=st.dictionaries(st.sampled_from(KNOWN_FIELDS) | st.text(max_size=12), JSON_VALUES),
)
def test_generated_bodies_never_get_a_server_error(superuser_api, endpoint, body):
    method, path, dialect = endpoint
    response = send(superuser_api, method, path, json.dumps(body), JSON_TYPE)
    assert_dialect_shape(response, dialect)
