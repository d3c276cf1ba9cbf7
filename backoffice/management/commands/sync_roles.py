"""`manage.py sync_roles`: give the role groups exactly the permissions backoffice/roles.py lists
(after ROLES changed; the migration did it once for a new database)."""

from django.core.management.base import BaseCommand, CommandError

from backoffice.roles import UnknownPermissions, sync_roles


class Command(BaseCommand):
    help = "Create or update the role groups so that they hold exactly the permissions in ROLES."

    def handle(self, *args, **options):
        try:
            changes = sync_roles()
        except UnknownPermissions as exc:
            raise CommandError(str(exc)) from exc
        for change in changes:
            if change.created:
                state = f"created with {len(change.added)} permissions"
            elif change.added or change.removed:
                state = "updated"
            else:
                state = "unchanged"
            self.stdout.write(f"{change.name}: {state}")
            if not change.created:
                for name in change.added:
                    self.stdout.write(f"  + {name}")
                for name in change.removed:
                    self.stdout.write(f"  - {name}")
