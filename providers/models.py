# Delivery outbox models arrive with the delivery issue (#4).
