"""Every state change of orders and cancellations, one module per kind of change. Admin
actions, staff forms, the API, the Callisto endpoint and Celery tasks call these; nothing else
writes these models.

    quoting    quote_cancellation: what would be cancelled and the money; writes nothing
    refusals   why something can't be cancelled: the quote's coded refusals (Refusal)
    verdicts   each provider's verdict on a planned cancellation or an undo; writes nothing
    writing    cancel_order (a batch of one) and new_cancellation
    batch_writer  write_cancellations: the one write path of new cancellations, N at a time
    updating   update_cancellation, upsert_cancellation, request_fingerprint
    revoking   revoke_cancellation
    effect     taking effect, N at a time: now, or complete_due_cancellations for scheduled ones
    order_changes  create_order, update_order_details
    locks      locking an order and its items before any of the above

Each public function runs in one transaction, locks the order it changes, raises
CancellationError naming the offending argument (`reason`, `items.0.quantity`, …), writes the
audit trail and the outbox rows (providers.outbox, the one seam to the providers).

Nothing is imported here: callers name the module a function lives in.
"""
