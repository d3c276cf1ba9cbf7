from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The database cache of settings.CACHES (API throttle counts) needs its table;
    # createcachetable makes the tables of every database cache and skips those that exist.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0002_idempotencykey")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
