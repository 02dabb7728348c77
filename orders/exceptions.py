"""Domain errors raised by the order services."""

from oms.exceptions import ConflictError, NotFoundError, ValidationFailed


class OrderNotFound(NotFoundError):
    code = "order_not_found"


class TransitionNotAllowed(ConflictError):
    """The order's current state does not allow the requested transition (API: 409)."""

    code = "transition_not_allowed"


class HoldConflict(ConflictError):
    code = "hold_conflict"


class OrderInvalid(ValidationFailed):
    code = "order_invalid"


class IdempotencyKeyReused(ConflictError):
    """Same Idempotency-Key sent with a different request body."""

    code = "idempotency_key_reused"
    http_status = 422
