"""The one base class of every domain error; views and the API turn it into a message or a 4xx."""


class DomainError(Exception):
    """A business rule refused an operation.

    ``code`` is a stable machine-readable identifier (shown in API errors); ``http_status`` is the
    status the API answers with (400 bad input, 404 missing, 409 conflict with the current state).
    """

    code = "domain_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None, data=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status
        self.data = data or {}

    def __str__(self) -> str:
        return str(self.message)


class NotFoundError(DomainError):
    code = "not_found"
    http_status = 404


class ConflictError(DomainError):
    """The operation is not allowed in the object's current state."""

    code = "conflict"
    http_status = 409


class ValidationFailed(DomainError):
    code = "invalid"
    http_status = 400
