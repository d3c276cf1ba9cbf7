"""The one error shape of every API endpoint (backoffice/api.py), seen through the cancellations
API: content negotiation, parsing and the naming of service errors."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from backoffice.api import flatten_errors, problem_exception_handler
from cancellations.errors import CancellationError
from cancellations.services.refusals import Refusal

LIST = "/api/v1/order-cancellations/"


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


def test_an_accept_header_it_cannot_serve_is_a_406_problem(api):
    response = api.get(LIST, HTTP_ACCEPT="application/xml")

    assert response.status_code == 406
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Not acceptable"


def test_a_form_encoded_body_is_a_415_problem(api):
    response = api.post(LIST, {"orderId": "1"})  # multipart, the test client's default

    assert response.status_code == 415
    assert response.json()["type"] == "urn:storno:problem:http-415"


def test_malformed_json_is_a_400_problem(api):
    response = api.post(LIST, '{"orderId": ', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_absurdly_deep_json_is_a_400_not_a_crash(api):
    response = api.post(LIST, "[" * 100_000 + "]" * 100_000, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["type"] == "urn:storno:problem:invalid-input"


def test_nan_is_not_json(api):
    response = api.post(LIST, '{"orderId": NaN}', content_type="application/json")

    assert response.status_code == 400


def test_an_unsupported_method_is_a_405_problem(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)

    response = client.delete(LIST)

    assert response.status_code == 405
    assert response.json()["title"] == "Method not allowed"


def test_dotted_service_keys_are_renamed_segment_by_segment():
    detail = {
        "lines.0.unit_price_currency": ["Wrong currency."],
        "lines.1.period_end": ["Too early."],
        "items.2.item_id": ["No such item."],
        "churn_time": ["In the past."],
    }
    rename = {"lines": "lineItems", "period_end": "periodEndTime"}

    fields = [error["field"] for error in flatten_errors(detail, rename=rename)]

    assert fields == [
        "lineItems.0.unitPriceCurrency",
        "lineItems.1.periodEndTime",
        "items.2.itemId",
        "churnTime",
    ]


def test_nested_serializer_errors_keep_their_api_names():
    detail = {"lineItems": [{}, {"unitPriceAmount": ["Too many digits."]}]}

    fields = [error["field"] for error in flatten_errors(detail, rename={"lines": "lineItems"})]

    assert fields == ["lineItems.1.unitPriceAmount"]


def test_the_code_of_a_service_error_reaches_every_field():
    error = CancellationError({"order": "Not cancellable."}, code="not_cancellable")

    response = problem_exception_handler(error, {"view": None})

    assert response.data["invalidFields"] == [
        {"field": "order", "message": "Not cancellable.", "code": "not_cancellable"}
    ]


def test_every_refusal_of_the_quote_is_a_409_with_its_own_type():
    types = {}
    for refusal in Refusal:
        error = CancellationError({"order": ValidationError("No.", code=refusal.value)})

        response = problem_exception_handler(error, {"view": None})

        assert response.status_code == 409
        types[refusal] = response.data["type"]
    assert len(set(types.values())) == len(Refusal)
    assert types[Refusal.NOTHING_LEFT] == "urn:storno:problem:nothing-left-to-cancel"


@pytest.mark.parametrize(
    ("code", "type_"),
    [
        ("not_revocable", "urn:storno:problem:cancellation-not-revocable"),
        ("not_changeable", "urn:storno:problem:cancellation-not-changeable"),
        ("duplicate", "urn:storno:problem:conflict"),
    ],
)
def test_a_cancellation_in_the_wrong_state_is_a_409_with_its_type(code, type_):
    error = CancellationError({"status": "No."}, code=code)

    response = problem_exception_handler(error, {"view": None})

    assert (response.status_code, response.data["type"]) == (409, type_)


def test_a_dialect_without_409s_answers_a_state_conflict_as_invalid_input():
    class RebillyLike:
        invalid_input_status = 422
        state_conflicts_are_invalid_input = True

    refused = CancellationError({"order": "Nothing left."}, code="nothing_left")
    duplicate = CancellationError({"id": "Exists already."}, code="duplicate")

    response = problem_exception_handler(refused, {"view": RebillyLike()})

    assert (response.status_code, response.data["type"]) == (
        422,
        "urn:storno:problem:invalid-input",
    )
    assert response.data["invalidFields"][0]["code"] == "nothing_left"
    assert problem_exception_handler(duplicate, {"view": RebillyLike()}).status_code == 409


def test_a_conflict_beside_invalid_input_is_a_400():
    duplicate = ValidationError({"number": "Exists already."}, code="duplicate")
    mixed = ValidationError(
        {
            "number": ValidationError("Exists already.", code="duplicate"),
            "channel": ValidationError("Not a path.", code="invalid"),
        }
    )

    assert problem_exception_handler(duplicate, {}).status_code == 409
    assert problem_exception_handler(mixed, {}).status_code == 400


# --- found by the API fuzzing (tests/backoffice/test_api_fuzzing.py) ----------------------------


def test_an_api_path_no_view_matches_is_a_404_problem(api):
    response = api.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:storno:problem:http-404",
        "title": "Not found",
        "status": 404,
        "detail": "Not found.",
    }


def test_a_staff_path_no_view_matches_is_still_the_404_page(admin_client):
    response = admin_client.get("/staff/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/nothing", "/callisto/nope/"])
def test_an_unknown_api_path_is_a_problem_object_with_debug_on_or_off(
    client, settings, debug, path
):
    settings.DEBUG = debug

    response = client.get(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_an_unknown_staff_path_stays_a_page_with_debug_on(client, settings):
    settings.DEBUG = True

    response = client.get("/staff/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
