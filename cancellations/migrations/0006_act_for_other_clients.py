"""The permission to act on cancellations other users made (cancellations/ownership.py), and the
staff roles that hold it (backoffice/roles.py): the role groups are brought in line with ROLES."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from backoffice.roles import sync_roles


def give_roles_the_new_permission(apps, schema_editor):
    # As in backoffice 0004_roles: permissions are made after migrate, too late for the groups.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    sync_roles(apps=apps, using=schema_editor.connection.alias, skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("cancellations", "0005_orderitem_billing_item_id"),
        ("backoffice", "0004_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="cancellation",
            options={
                "ordering": ["-created_time", "-id"],
                "permissions": [
                    ("revoke_cancellation", "Can revoke (undo) cancellations"),
                    (
                        "act_for_other_clients",
                        "Can change or revoke cancellations other users or API clients made",
                    ),
                ],
                "verbose_name": "cancellation",
                "verbose_name_plural": "cancellations",
            },
        ),
        # Going back leaves the groups as they are.
        migrations.RunPython(give_roles_the_new_permission, migrations.RunPython.noop),
    ]
