"""A token-authenticated API request reads the user's permissions from this process's cache
(backoffice.auth_backends); every change to them made here is seen by the next request."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backoffice import auth_backends
from tests.factories import UserFactory

REASONS = "/api/v1/oms/cancellation-reasons/?page_size=1"
VIEW_REASONS = "reasons.view_cancellationreason"


def permission(dotted):
    app_label, codename = dotted.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture(autouse=True)
def _fresh_cache():
    auth_backends.forget_permissions()
    yield
    auth_backends.forget_permissions()


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def reader(reason):
    return UserFactory(permissions=[VIEW_REASONS])


def test_a_repeated_token_request_reads_no_permissions(reader, django_assert_num_queries):
    client = token_client(reader)
    # Token with its user, the user's permissions, their groups' permissions, count, page.
    with django_assert_num_queries(5):
        assert client.get(REASONS).status_code == 200
    # Token with its user, count, page.
    with django_assert_num_queries(3):
        assert client.get(REASONS).status_code == 200


def test_a_permission_taken_from_the_user_is_refused_at_the_next_request(reader):
    client = token_client(reader)
    assert client.get(REASONS).status_code == 200

    reader.user_permissions.remove(permission(VIEW_REASONS))

    assert client.get(REASONS).status_code == 403


def test_a_user_taken_out_of_a_group_loses_its_permissions_at_the_next_request(db):
    group = Group.objects.create(name="Readers")
    group.permissions.add(permission(VIEW_REASONS))
    user = UserFactory()
    user.groups.add(group)
    client = token_client(user)
    assert client.get(REASONS).status_code == 200

    group.user_set.remove(user)

    assert client.get(REASONS).status_code == 403


def test_a_permission_taken_from_a_group_is_refused_at_the_next_request(db):
    group = Group.objects.create(name="Readers")
    group.permissions.add(permission(VIEW_REASONS))
    user = UserFactory()
    user.groups.add(group)
    client = token_client(user)
    assert client.get(REASONS).status_code == 200

    group.permissions.clear()

    assert client.get(REASONS).status_code == 403


def test_a_deleted_group_takes_its_permissions_along_at_the_next_request(db):
    group = Group.objects.create(name="Readers")
    group.permissions.add(permission(VIEW_REASONS))
    user = UserFactory()
    user.groups.add(group)
    client = token_client(user)
    assert client.get(REASONS).status_code == 200

    group.delete()

    assert client.get(REASONS).status_code == 403


def test_a_permission_given_is_granted_at_the_next_request(db):
    user = UserFactory()
    client = token_client(user)
    assert client.get(REASONS).status_code == 403

    user.user_permissions.add(permission(VIEW_REASONS))

    assert client.get(REASONS).status_code == 200


def test_a_change_this_process_did_not_see_counts_after_the_max_age(reader, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(auth_backends, "_clock", lambda: now[0])
    client = token_client(reader)
    assert client.get(REASONS).status_code == 200
    # As another process would: no signal reaches this one.
    reader.user_permissions.through.objects.filter(user=reader).delete()

    now[0] += auth_backends.DEFAULT_MAX_AGE - 0.1
    assert client.get(REASONS).status_code == 200
    now[0] += 0.2
    assert client.get(REASONS).status_code == 403


def test_a_superuser_made_an_ordinary_user_loses_everything_at_the_next_request(db):
    user = UserFactory(is_superuser=True)
    client = token_client(user)
    assert client.get(REASONS).status_code == 200

    user.is_superuser = False
    user.save()

    assert client.get(REASONS).status_code == 403


def test_max_age_zero_reads_the_permissions_for_every_request(
    reader, monkeypatch, django_assert_num_queries
):
    monkeypatch.setenv("PERMISSIONS_MAX_AGE", "0")
    client = token_client(reader)
    client.get(REASONS)

    with django_assert_num_queries(5):
        assert client.get(REASONS).status_code == 200


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_max_age_that_is_not_a_number_of_seconds_is_refused(monkeypatch, value):
    monkeypatch.setenv("PERMISSIONS_MAX_AGE", value)

    with pytest.raises(ImproperlyConfigured, match="PERMISSIONS_MAX_AGE"):
        auth_backends.max_age()


def test_the_cached_backend_logs_nobody_in(reader):
    backend = auth_backends.CachedModelBackend()

    assert (
        backend.authenticate(
            None, username=reader.username, password="correct horse battery staple"
        )
        is None
    )
