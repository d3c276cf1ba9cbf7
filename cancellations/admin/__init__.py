"""The Django admin of orders, cancellations and the audit trail.

Thin like every other interface: the admin lists and shows; every change goes through
cancellations/services/ (the order form through update_order_details, the actions through
cancel_order and revoke_cancellation). Cancellations and audit entries are never edited here.

One module per model family; importing them registers them with the admin site.
"""

from . import audit_trail, bulk, cancellation, orders  # noqa: F401 - registers the ModelAdmins
