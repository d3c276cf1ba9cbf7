"""backoffice.parsers: what the one JSON parser of every endpoint refuses, and why it says so.
(Every endpoint with hostile bodies: test_body_fuzzing.py.)"""

import io

import pytest
from django.urls import URLResolver, get_resolver
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from backoffice.parsers import MAX_DEPTH, MAX_KEYS, JSONParser, loads, too_deep
from backoffice.unknown_fields import MAX_NAMED_UNKNOWN, unknown_fields


def refusal(body: bytes) -> str:
    with pytest.raises(ParseError) as raised:
        loads(body)
    return str(raised.value.detail)


def test_plain_json_parses_into_python_values():
    assert loads(b'{"a": [1, 2.5, "x\\u00e9", null, true], "b": {"c": -3}}') == {
        "a": [1, 2.5, "xé", None, True],
        "b": {"c": -3},
    }


def test_nesting_is_measured_outside_strings():
    assert not too_deep('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)


def test_an_escaped_quote_does_not_end_a_string_for_the_depth_count():
    assert not too_deep('{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')


def test_nesting_past_the_limit_is_refused_without_recursing():
    assert "nested deeper than 32 levels" in refusal(b"[" * 100_000 + b"]" * 100_000)


def test_a_duplicate_key_is_refused_naming_the_key():
    assert '"reasonId" appears twice' in refusal(b'{"a": {"reasonId": 1, "reasonId": 2}}')


def test_an_object_with_too_many_keys_is_refused():
    body = "{" + ",".join(f'"k{i}": 1' for i in range(MAX_KEYS + 1)) + "}"
    assert f"more than {MAX_KEYS} keys" in refusal(body.encode())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant):
    assert refusal(f'{{"a": {constant}}}'.encode()).endswith(f"{constant} is not a JSON number.")


@pytest.mark.parametrize("number", ["1e400", "-1e999"])
def test_a_number_a_double_cannot_hold_is_refused_naming_where_it_is(number):
    assert refusal(f'{{"a": [0, {{"b": {number}}}]}}'.encode()) == (
        "a.1.b: The number is out of range."
    )


def test_an_integer_longer_than_python_converts_is_refused():
    assert "out of range" in refusal(b'{"a": ' + b"9" * 4301 + b"}")


def test_a_large_integer_is_left_to_the_fields():
    assert loads(b'{"a": ' + b"9" * 400 + b"}") == {"a": 10**400 - 1}


def test_a_lone_surrogate_is_refused_naming_where_it_is():
    assert refusal(b'{"lineItems": [{"description": "x\\ud800"}]}').startswith(
        "lineItems.0.description: A lone surrogate"
    )


def test_a_lone_surrogate_in_a_key_names_the_object_holding_it():
    assert refusal(b'{"auditLog": {"\\udfff": 1}}').startswith("auditLog: A lone surrogate")


def test_a_nul_character_is_refused_naming_where_it_is():
    assert refusal(b'{"items": [{"sku": "a\\u0000b"}]}') == (
        "items.0.sku: A NUL character (\\u0000) is not text."
    )


def test_an_escaped_backslash_before_u0000_is_text():
    assert loads(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_a_surrogate_pair_is_text():
    assert loads(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_a_body_that_is_not_utf8_is_refused_with_the_position():
    assert refusal(b'{"a": "\xff"}') == "The body is not UTF-8 (byte 7)."


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"true"])
def test_anything_but_an_object_at_the_top_is_refused(body):
    assert refusal(body) == "Send the body as a JSON object."


def parse_as(method: str, body: bytes):
    request = Request(APIRequestFactory().generic(method, "/", body, "application/json"))
    return JSONParser().parse(io.BytesIO(body), parser_context={"request": request})


def test_a_write_takes_only_an_object():
    with pytest.raises(ParseError, match=r"Send the body as a JSON object\."):
        parse_as("DELETE", b"[1]")


def test_a_read_with_a_body_that_is_not_an_object_is_left_to_the_view():
    assert parse_as("GET", b"[1]") == [1]


def test_a_read_with_a_hostile_body_is_still_refused():
    with pytest.raises(ParseError, match="nested deeper"):
        parse_as("GET", b"[" * 1000 + b"]" * 1000)


def test_only_the_first_unknown_fields_are_named():
    unknown = unknown_fields({f"k{i}": 1 for i in range(500)}, ["reasonId"])
    assert list(unknown) == [f"k{i}" for i in range(MAX_NAMED_UNKNOWN)]


def test_a_negative_integer_longer_than_python_converts_is_refused():
    assert "out of range" in refusal(b'{"a": -' + b"9" * 4301 + b"}")


def test_a_long_fraction_is_a_number():
    assert loads(b'{"a": 0.' + b"3" * 5000 + b"}") == {"a": 0.3333333333333333}


@pytest.mark.parametrize("body", [b'[{"a": 1]', b"[" * 10 + b"}" * 10, b'{"a": [1, 2}'])
def test_brackets_that_do_not_pair_are_a_syntax_error_not_too_deep(body):
    assert refusal(body).startswith("JSON parse error")


def test_a_wide_shallow_body_is_not_too_deep():
    assert not too_deep("[" + "[[]]," * 100_000 + "[]]")


def drf_views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from drf_views(pattern.url_patterns)
        elif getattr(pattern.callback, "cls", None) is not None:
            yield pattern.callback.cls


def test_every_api_view_parses_with_the_one_parser():
    views = set(drf_views(get_resolver().url_patterns))
    assert len(views) > 10  # the walk found the API
    assert {
        view.__name__: view.parser_classes
        for view in views
        if any(not issubclass(parser, JSONParser) for parser in view.parser_classes)
    } == {}


def test_the_default_parser_is_the_one_parser():
    parsers = api_settings.DEFAULT_PARSER_CLASSES

    assert parsers == [JSONParser]
