"""German and Turkish ship with the code: compiled catalogs are in the repository."""

import pytest
from django.utils import translation
from django.utils.translation import gettext

from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("language", "expected"), [("en", "Cancellations"), ("de", "Stornierungen"), ("tr", "İptaller")]
)
def test_the_catalogs_translate(language, expected):
    with translation.override(language):
        assert gettext("Cancellations") == expected


@pytest.mark.django_db
def test_the_staff_pages_follow_the_chosen_language(client):
    client.force_login(UserFactory(permissions=["cancellations.view_order"]))

    german = client.get("/staff/orders/", HTTP_ACCEPT_LANGUAGE="de")
    english = client.get("/staff/orders/", HTTP_ACCEPT_LANGUAGE="en")

    assert german.headers["Content-Language"] == "de"
    assert german.content != english.content
    assert gettext("Orders") in english.content.decode()
    with translation.override("de"):
        assert gettext("Orders") in german.content.decode()
