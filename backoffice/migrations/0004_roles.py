"""The staff roles as groups (backoffice/roles.py). Later changes to ROLES reach an existing
database through `manage.py sync_roles`."""

from django.db import migrations

from backoffice.roles import sync_roles_migration


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("backoffice", "0003_database_cache_table"),
        ("cancellations", "0003_bulk_cancellation"),
        ("reasons", "0002_catalog_sync"),
        ("providers", "0001_initial"),
    ]

    # Going back leaves the groups (and who is in them) as they are.
    operations = [migrations.RunPython(sync_roles_migration, migrations.RunPython.noop)]
