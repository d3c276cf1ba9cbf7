"""Model permissions without two queries on every request.

Django's ModelBackend keeps a user's permissions on the user object, which lives for one
request: every API request (token auth loads a new user object) then costs two queries, the
user's own permissions and those of their groups. CachedModelBackend also keeps them in this
process, by user id, for PERMISSIONS_MAX_AGE seconds (2 by default; 0 turns the cache off).

A change made in this process is seen at once: adding or removing a user's permissions or
groups, a group's permissions, deleting a group or permission, and saving a user (is_active,
is_superuser, or a new user whose id an old one had) forget the kept permissions, now and
again after the commit. Other processes see a change within PERMISSIONS_MAX_AGE seconds, like
the provider settings (PROVIDER_SETTINGS_MAX_AGE). A deactivated user or a deleted token is
refused at once everywhere: both are read from the database on every request.
"""

from __future__ import annotations

import threading
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from .env import seconds_from_env

DEFAULT_MAX_AGE = 2.0
# Beyond this many users the cache starts afresh: it is a shortcut, not a store.
MAX_USERS = 10_000
# What ModelBackend keeps on the user object for one request.
_USER_ATTRIBUTES = ("_user_perm_cache", "_group_perm_cache", "_perm_cache")

# (user id, is_superuser) -> (read at, the three sets of _USER_ATTRIBUTES)
_cache: dict[tuple[int, bool], tuple[float, tuple[frozenset[str], ...]]] = {}
_lock = threading.Lock()
_clock = time.monotonic


def max_age() -> float:
    return seconds_from_env("PERMISSIONS_MAX_AGE", DEFAULT_MAX_AGE)


def forget_permissions(**_kwargs) -> None:
    """Make every user's next permission check read the database again."""
    with _lock:
        _cache.clear()


class CachedModelBackend(ModelBackend):
    """ModelBackend's permissions, kept beyond the request in this process (see above).

    It only answers permission questions and sits before ModelBackend, which still logs users
    in (so sessions made before it came keep working). Both use the same sets on the user
    object, so asking ModelBackend too, after a False here, costs no query."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        return None

    def get_all_permissions(self, user_obj, obj=None):
        cacheable = _cacheable(user_obj, obj)
        if cacheable:
            _restore(user_obj)
        permissions = super().get_all_permissions(user_obj, obj)
        if cacheable:
            _keep(user_obj)
        return permissions

    def get_user_permissions(self, user_obj, obj=None):
        if _cacheable(user_obj, obj):
            _restore(user_obj)
        return super().get_user_permissions(user_obj, obj)

    def get_group_permissions(self, user_obj, obj=None):
        if _cacheable(user_obj, obj):
            _restore(user_obj)
        return super().get_group_permissions(user_obj, obj)


def _cacheable(user_obj, obj) -> bool:
    # What ModelBackend answers without looking (inactive, anonymous, per object) stays so.
    return user_obj.is_active and not user_obj.is_anonymous and obj is None


def _key(user_obj) -> tuple[int, bool]:
    return (user_obj.pk, bool(user_obj.is_superuser))


def _fresh(key: tuple[int, bool]) -> tuple[frozenset[str], ...] | None:
    kept = _cache.get(key)
    if kept is None or _clock() - kept[0] >= max_age():
        return None
    return kept[1]


def _restore(user_obj) -> None:
    if hasattr(user_obj, "_perm_cache"):
        return
    kept = _fresh(_key(user_obj))
    if kept is None:
        return
    for name, permissions in zip(_USER_ATTRIBUTES, kept, strict=True):
        # A set of its own per request: nobody changes the kept one through it.
        setattr(user_obj, name, set(permissions))


def _keep(user_obj) -> None:
    if not max_age() or not all(hasattr(user_obj, name) for name in _USER_ATTRIBUTES):
        return
    key = _key(user_obj)
    if _fresh(key) is not None:
        return
    sets = tuple(frozenset(getattr(user_obj, name)) for name in _USER_ATTRIBUTES)
    with _lock:
        if len(_cache) >= MAX_USERS:
            _cache.clear()
        _cache[key] = (_clock(), sets)


def _changed(**_kwargs) -> None:
    # Now, and again after the commit: in between another thread could have read (and kept)
    # the permissions as they were before this change.
    forget_permissions()
    transaction.on_commit(forget_permissions)


def _m2m_changed(sender, action, **kwargs) -> None:
    # Labels, not classes: migrations (backoffice.roles.sync_roles) change group permissions
    # through their historical models.
    if action.startswith("post_") and sender._meta.label_lower in _watched_m2m():
        _changed()


def _watched_m2m() -> set[str]:
    user = get_user_model()
    return {
        user.groups.through._meta.label_lower,
        user.user_permissions.through._meta.label_lower,
        Group.permissions.through._meta.label_lower,
    }


def connect_signals() -> None:
    """Called once from BackofficeConfig.ready()."""
    user = get_user_model()
    m2m_changed.connect(_m2m_changed, dispatch_uid="permission-cache-m2m")
    for model in (user, Group, Permission):
        post_save.connect(_changed, sender=model, dispatch_uid=f"permission-cache-save-{model}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"permission-cache-del-{model}")
