from django.core.exceptions import ValidationError


class CancellationError(ValidationError):
    """The one domain error of this app. Raised by services with the offending field named
    (service argument names, e.g. `reason`, `items`); the API and forms render it."""
