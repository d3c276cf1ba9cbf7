"""The staff roles as groups (backoffice/roles.py). Later changes to ROLES reach an existing
database through `manage.py sync_roles`."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from backoffice.roles import sync_roles


def create_roles(apps, schema_editor):
    # Permissions are normally created after migrate (post_migrate): on a fresh database they
    # don't exist yet at this point, so create them from this migration's model states.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    # Skipping, not failing, on permissions of models that later migrations add: this
    # migration must keep running on a fresh database after ROLES grew.
    sync_roles(apps=apps, using=schema_editor.connection.alias, skip_missing=True)


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
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
