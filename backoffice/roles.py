"""The staff roles: one Django group per role, holding the permissions listed here.

ROLES is the single source. Migration 0004_roles creates the groups; after changing ROLES run
`manage.py sync_roles` (or add a migration that calls sync_roles) to bring a database in line.
Group names are stored and looked up in English and never change; ROLE_LABELS are their
translatable labels. A user's is_staff flag (admin access) is not part of any role."""

from dataclasses import dataclass, field

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils.translation import gettext_lazy as _

CUSTOMER_SERVICE = "Customer service"
REASON_MANAGER = "Reason manager"
BULK_OPERATOR = "Bulk operator"
API_CLIENT = "API client"
AUDITOR = "Read-only auditor"

# Looking at orders and cancellations, with the rows the admin shows inline.
_SEE_ORDERS_AND_CANCELLATIONS = [
    "cancellations.view_order",
    "cancellations.view_orderitem",
    "cancellations.view_cancellation",
    "cancellations.view_cancellationitem",
    "cancellations.view_cancellationline",
]

_CUSTOMER_SERVICE = [
    *_SEE_ORDERS_AND_CANCELLATIONS,
    "cancellations.cancel_order",
    "cancellations.add_cancellation",
    "cancellations.change_cancellation",
    "cancellations.revoke_cancellation",
    # Staff change and revoke cancellations whoever made them (cancellations/ownership.py).
    "cancellations.act_for_other_clients",
    "cancellations.view_auditentry",
    "cancellations.view_settlementitem",
    "reasons.view_cancellationreason",
    "providers.view_delivery",
    "providers.view_deliveryattempt",
    "providers.retry_delivery",
    # Mark a staff task done: a change a provider couldn't be told, made there by hand.
    "providers.resolve_delivery",
]

ROLES: dict[str, list[str]] = {
    CUSTOMER_SERVICE: _CUSTOMER_SERVICE,
    REASON_MANAGER: [
        *_SEE_ORDERS_AND_CANCELLATIONS,
        "reasons.view_cancellationreason",
        "reasons.add_cancellationreason",
        "reasons.change_cancellationreason",
        "reasons.pull_reasons",  # the admin's "Pull from Omnitron now" and the API's pull
        "reasons.view_reasonmapping",
        "reasons.add_reasonmapping",
        "reasons.change_reasonmapping",
        # Removing a mapping is how a reason goes back to the default text; reasons themselves
        # are deactivated, not deleted.
        "reasons.delete_reasonmapping",
        "reasons.view_reasonsyncrun",
    ],
    BULK_OPERATOR: [
        *_CUSTOMER_SERVICE,
        "cancellations.run_bulk_cancellation",
        "cancellations.view_bulkcancellation",
        "cancellations.view_bulkcancellationtarget",
    ],
    # What other apps need through the API: take in orders, cancel and revoke (Rebilly dialect),
    # cancel service items (cancelServiceItems needs cancel_order), read the reason catalog.
    # Each client changes and revokes only its own cancellations: act_for_other_clients is
    # given to a client user on its own, not to the role (cancellations/ownership.py).
    API_CLIENT: [
        "cancellations.view_order",
        "cancellations.add_order",
        "cancellations.cancel_order",
        "cancellations.view_cancellation",
        "cancellations.add_cancellation",
        "cancellations.change_cancellation",
        "cancellations.revoke_cancellation",
        "reasons.view_cancellationreason",
    ],
    # Every model of the three domain apps, view only (a test keeps this list complete).
    AUDITOR: [
        "cancellations.view_order",
        "cancellations.view_orderitem",
        "cancellations.view_cancellation",
        "cancellations.view_cancellationitem",
        "cancellations.view_cancellationline",
        "cancellations.view_auditentry",
        "cancellations.view_settlementitem",
        "cancellations.view_bulkcancellation",
        "cancellations.view_bulkcancellationtarget",
        "reasons.view_cancellationreason",
        "reasons.view_reasonmapping",
        "reasons.view_reasonsyncrun",
        "providers.view_providersetting",
        "providers.view_delivery",
        "providers.view_deliveryneedingattention",
        "providers.view_deliveryattempt",
    ],
}

ROLE_LABELS = {
    CUSTOMER_SERVICE: _("Customer service"),
    REASON_MANAGER: _("Reason manager"),
    BULK_OPERATOR: _("Bulk operator"),
    API_CLIENT: _("API client"),
    AUDITOR: _("Read-only auditor"),
}


@dataclass
class RoleChange:
    """What sync_roles did to one group."""

    name: str
    created: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class UnknownPermissions(LookupError):
    def __init__(self, names):
        self.names = sorted(names)
        super().__init__("Unknown permissions in ROLES: " + ", ".join(self.names))


def sync_roles(*, apps=global_apps, using=DEFAULT_DB_ALIAS, skip_missing=False):
    """Create the group of each role and give it exactly the permissions ROLES lists: adds what
    is missing, removes what is no longer listed. Groups not in ROLES are left alone.

    A listed permission that doesn't exist raises UnknownPermissions (a typo must not pass
    silently) unless skip_missing: the data migration skips permissions of models that later
    migrations add. `apps` is a migration's historical registry there."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    listed = {name for names in ROLES.values() for name in names}
    pk_by_name = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in permission_model.objects.using(using)
        .filter(
            content_type__app_label__in={name.split(".")[0] for name in listed},
            codename__in={name.split(".")[1] for name in listed},
        )
        .values_list("pk", "content_type__app_label", "codename")
    }
    missing = listed - pk_by_name.keys()
    if missing and not skip_missing:
        raise UnknownPermissions(missing)

    changes = []
    with transaction.atomic(using=using):
        for name, permission_names in ROLES.items():
            group, created = group_model.objects.using(using).get_or_create(name=name)
            wanted = {pk_by_name[n]: n for n in permission_names if n in pk_by_name}
            current = {
                pk: f"{app_label}.{codename}"
                for pk, app_label, codename in group.permissions.values_list(
                    "pk", "content_type__app_label", "codename"
                )
            }
            added = wanted.keys() - current.keys()
            removed = current.keys() - wanted.keys()
            group.permissions.add(*added)
            group.permissions.remove(*removed)
            changes.append(
                RoleChange(
                    name=name,
                    created=created,
                    added=sorted(wanted[pk] for pk in added),
                    removed=sorted(current[pk] for pk in removed),
                    missing=sorted(set(permission_names) & missing),
                )
            )
    return changes


def sync_roles_migration(apps, schema_editor) -> None:
    """A migration's RunPython: bring the groups in line with ROLES as of that migration."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate (post_migrate): on a fresh database they
    # don't exist yet at this point, so create them from the migration's model states.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    # Skipping, not failing, on permissions of models that later migrations add: the
    # migration must keep running on a fresh database after ROLES grew.
    sync_roles(apps=apps, using=schema_editor.connection.alias, skip_missing=True)
