"""The site's icon: named by every page of ours, and at /favicon.ico for the pages that don't
(the admin's), so no page costs a browser a 404."""

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

ICON_MAGIC = b"\x00\x00\x01\x00"  # an ICO file's header: reserved 0, type 1 (icon)


def test_favicon_ico_leads_to_the_icon_file(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == static("favicon.ico")
    assert "max-age=86400" in response["Cache-Control"]


def test_the_icon_file_is_an_icon():
    with open(finders.find("favicon.ico"), "rb") as icon:
        assert icon.read(4) == ICON_MAGIC


def test_favicon_ico_refuses_a_post(client):
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.django_db
def test_the_pages_name_their_icon(client):
    page = client.get("/accounts/login/").content.decode()

    assert f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">' in page
    assert f'<link rel="icon" href="{static("favicon.ico")}" sizes="16x16">' in page
