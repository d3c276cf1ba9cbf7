from django.core.exceptions import ValidationError


class DeliveryError(ValidationError):
    """The one domain error of the providers app, raised by its services with the offending
    argument named (e.g. `delivery`); the admin, the staff pages and the API render it.

    As with CancellationError, a `code` given with a dict of messages reaches every message."""

    def __init__(self, message, code=None, params=None):
        if isinstance(message, dict) and code is not None:
            message = {
                field: ValidationError(text, code=code) if isinstance(text, str) else text
                for field, text in message.items()
            }
        super().__init__(message, code=code, params=params)
