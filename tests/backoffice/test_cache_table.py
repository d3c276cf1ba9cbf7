"""The database cache's table exists after every `migrate`, not only after the migration that
first ran while the cache was the database (issue #15: switching from Redis to the database
after `migrate` failed for want of the table)."""

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

TABLE = "storno_cache"


def cache_table_exists() -> bool:
    with connection.cursor() as cursor:
        return TABLE in connection.introspection.table_names(cursor)


@pytest.mark.django_db(transaction=True)
def test_migrate_creates_the_cache_table_when_its_migration_ran_under_another_cache(settings):
    # The test database was migrated with another cache (tests/settings.py): no table, as
    # migration 0003 leaves it under CACHE_REDIS_URL. Now the cache is the database.
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(TABLE)}")
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": TABLE}
    }
    assert not cache_table_exists()

    call_command("migrate", verbosity=0)  # nothing left to apply

    assert cache_table_exists()
    caches["default"].set("throttle", 1)
    assert caches["default"].get("throttle") == 1
