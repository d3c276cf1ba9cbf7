from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# The code of a refusal of the actor rather than of the input (ownership.NotYourCancellation):
# the API answers it 403, as it answers "duplicate" 409.
FORBIDDEN = "forbidden"


class CancellationError(ValidationError):
    """The one domain error of this app. Raised by services with the offending field named
    (service argument names, e.g. `reason`, `items.0.quantity`); the API and forms render it.

    Unlike a plain ValidationError, a `code` given with a dict of messages reaches every
    message, so callers can tell e.g. a duplicate (409) from invalid input (400)."""

    def __init__(
        self,
        message: StrOrPromise | ValidationError | dict[str, Any] | list[Any],
        code: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(message, dict) and code is not None:
            message = {
                field: ValidationError(text, code=code) if isinstance(text, str) else text
                for field, text in message.items()
            }
        super().__init__(message, code=code, params=params)

    @property
    def codes(self) -> set[str | None]:
        if hasattr(self, "error_dict"):
            return {error.code for errors in self.error_dict.values() for error in errors}
        return {error.code for error in self.error_list}

    def text(self) -> str:
        """Every message in one line, for a place with room for one (a bulk job's result)."""
        return " ".join(message for message in self.messages)
