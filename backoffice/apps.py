from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def create_cache_tables(using, **_kwargs) -> None:
    """After every `migrate`, the table of each database cache in settings.CACHES (API throttle
    counts). Migration 0003 makes it too, but only for the caches configured when it ran: an
    installation migrated with CACHE_REDIS_URL that later drops it would have none, and every
    request would fail on it. createcachetable skips the tables that exist."""
    call_command("createcachetable", database=using, verbosity=0)


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = _("Back-office")

    def ready(self):
        from .auth_backends import connect_signals

        connect_signals()
        post_migrate.connect(create_cache_tables, sender=self, dispatch_uid="cache-tables")
