"""The permission to act on cancellations other users made (cancellations/ownership.py), given to
the staff roles that list it in backoffice/roles.py.

Only added: a full sync_roles here would also take back whatever an operator added to a group."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from backoffice.roles import BULK_OPERATOR, CUSTOMER_SERVICE

STAFF_ROLES = [CUSTOMER_SERVICE, BULK_OPERATOR]


def give_staff_roles_the_permission(apps, schema_editor):
    using = schema_editor.connection.alias
    # As in backoffice 0004_roles: permissions are made after migrate, too late for the groups.
    app_config = apps.get_app_config("cancellations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=using)
    app_config.models_module = None
    permission = (
        apps.get_model("auth", "Permission")
        .objects.using(using)
        .get(content_type__app_label="cancellations", codename="act_for_other_clients")
    )
    for group in apps.get_model("auth", "Group").objects.using(using).filter(name__in=STAFF_ROLES):
        group.permissions.add(permission)


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
        migrations.RunPython(give_staff_roles_the_permission, migrations.RunPython.noop),
    ]
