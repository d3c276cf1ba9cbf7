from rest_framework import serializers

from backoffice.unknown_fields import RefuseUnknownFields, unknown_field_message, unknown_fields


class LineInput(RefuseUnknownFields):
    quantity = serializers.IntegerField()


class OrderInput(RefuseUnknownFields):
    placedTime = serializers.DateTimeField(required=False)
    lines = LineInput(many=True, required=False)


def test_a_misspelt_field_is_named_with_its_close_match():
    assert unknown_field_message("placedAt", ["placedTime", "number"]) == (
        "unknown field; did you mean placedTime?"
    )


def test_another_spelling_convention_is_a_close_match():
    assert unknown_field_message("placed_time", ["placedTime"]).endswith("placedTime?")


def test_a_field_nothing_resembles_gets_no_suggestion():
    assert unknown_field_message("zzz", ["placedTime"]) == "unknown field"


def test_only_unknown_keys_are_reported_in_the_order_sent():
    assert list(unknown_fields({"b": 1, "placedTime": 2, "a": 3}, ["placedTime"])) == ["b", "a"]


def test_a_serializer_refuses_unknown_keys_at_every_level():
    serializer = OrderInput(data={"placedAt": "x", "lines": [{"quantity": 1, "qty": 2}]})
    assert not serializer.is_valid()
    assert serializer.errors == {
        "placedAt": ["unknown field; did you mean placedTime?"],
    }
    serializer = OrderInput(data={"lines": [{"quantity": 1, "quantiy": 2}]})
    assert not serializer.is_valid()
    assert serializer.errors["lines"][0] == {"quantiy": ["unknown field; did you mean quantity?"]}


def test_known_keys_pass():
    serializer = OrderInput(data={"lines": [{"quantity": 1}]})
    assert serializer.is_valid(), serializer.errors
