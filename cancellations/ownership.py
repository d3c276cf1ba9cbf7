"""Who may change or revoke a cancellation: the user (API client) who made it, or a user allowed
to act on cancellations that others made.

The rule, checked by services.update_cancellation, revoke_cancellation and upsert_cancellation,
so that every entry point (the API, the Callisto endpoint, the staff pages, the admin) obeys it:

- a cancellation nobody made (created by Storno itself: a task, the system) belongs to no one:
  the model permissions decide alone;
- its maker (`created_by`) may change and revoke it;
- anyone else needs `cancellations.act_for_other_clients` as well. "Staff" here means exactly
  the users who hold it: the staff roles Customer service and Bulk operator (backoffice/roles.py)
  and superusers. The API client role doesn't; give it to one client user (admin, user
  permissions) to let that client act for others;
- Storno acting on its own (actor None: tasks, the dispatcher) is never refused.

Neither `is_staff` (admin access, not part of any role) nor the channel decides: an agent's
token on the API is still that agent, an API client logged in to the pages still that client.
Reading is not acting: every user with view_cancellation sees every cancellation, so a refusal
is a 403 naming the reason, not a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from .errors import FORBIDDEN, CancellationError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .models import Cancellation

ACT_FOR_OTHERS = "cancellations.act_for_other_clients"


class NotYourCancellation(CancellationError):
    """The actor may not change or revoke a cancellation someone else made (a 403 on the API)."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "Another user or API client made this cancellation: only they, staff or a client "
                "allowed to act for others may change or revoke it."
            ),
            code=FORBIDDEN,
        )


def may_act_on(actor: User | None, cancellation: Cancellation) -> bool:
    if actor is None or cancellation.created_by_id is None:
        return True
    return actor.pk == cancellation.created_by_id or actor.has_perm(ACT_FOR_OTHERS)


def check_may_act_on(actor: User | None, cancellation: Cancellation) -> None:
    """Raise NotYourCancellation unless `actor` may change or revoke `cancellation`."""
    if not may_act_on(actor, cancellation):
        raise NotYourCancellation()
