"""Customer service may mark staff tasks done (providers.resolve_delivery, new in providers
0002): the roles brought in line with backoffice/roles.py."""

from django.db import migrations

from backoffice.roles import sync_roles_migration


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0005_throttlecounter"),
        ("providers", "0002_delivery_staff_task"),
    ]

    # Going back leaves the groups (and who is in them) as they are.
    operations = [migrations.RunPython(sync_roles_migration, migrations.RunPython.noop)]
