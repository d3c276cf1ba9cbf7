"""The admin site's name and the staff profile on the user admin."""

import pytest
from django.urls import reverse

from backoffice.models import StaffProfile
from tests.factories import SuperUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(SuperUserFactory())
    return client


def test_admin_site_is_called_storno(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.context["site_header"] == "Storno"
    assert response.context["site_title"] == "Storno"


def test_user_change_page_has_the_staff_profile_inline(admin_client):
    user = UserFactory()
    response = admin_client.get(reverse("admin:auth_user_change", args=[user.pk]))
    assert response.status_code == 200
    [profile_formset] = [
        f for f in response.context["inline_admin_formsets"] if f.opts.model is StaffProfile
    ]
    assert list(profile_formset.formset.form.base_fields) == ["salesforce_user_id", "time_zone"]


def test_admin_sets_a_users_salesforce_id_and_time_zone(admin_client):
    user = UserFactory(username="agent-ada")
    response = admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": user.username,
            "email": user.email,
            "is_active": "on",
            "is_staff": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
            "staff_profile-TOTAL_FORMS": 1,
            "staff_profile-INITIAL_FORMS": 0,
            "staff_profile-MIN_NUM_FORMS": 0,
            "staff_profile-MAX_NUM_FORMS": 1,
            "staff_profile-0-salesforce_user_id": "005000000000001AAA",
            "staff_profile-0-time_zone": "Europe/Istanbul",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    profile = StaffProfile.objects.get(user=user)
    assert (profile.salesforce_user_id, profile.time_zone) == (
        "005000000000001AAA",
        "Europe/Istanbul",
    )


def test_unknown_time_zone_is_refused_on_the_profile(admin_client):
    user = UserFactory()
    response = admin_client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": user.username,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
            "staff_profile-TOTAL_FORMS": 1,
            "staff_profile-INITIAL_FORMS": 0,
            "staff_profile-MIN_NUM_FORMS": 0,
            "staff_profile-MAX_NUM_FORMS": 1,
            "staff_profile-0-salesforce_user_id": "",
            "staff_profile-0-time_zone": "Mars/Olympus",
        },
    )
    assert response.status_code == 200
    assert not StaffProfile.objects.filter(user=user).exists()
