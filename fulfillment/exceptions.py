"""Domain errors of fulfilment; the views and the API turn them into a message or a 4xx with the code."""

from oms.exceptions import ConflictError, DomainError, NotFoundError, ValidationFailed


class ShipmentNotFound(NotFoundError):
    code = "shipment_not_found"


class MoveRefused(ConflictError):
    """A kanban move or a transition that the shipment's state does not allow."""

    code = "move_refused"


class ScanRefused(ValidationFailed):
    """A scanned barcode that is not (or no longer) expected in the parcel."""

    code = "scan_refused"


class PackingRefused(ConflictError):
    code = "packing_refused"


class RoutingInvalid(ValidationFailed):
    code = "routing_invalid"


class CarrierUnavailable(DomainError):
    """The carrier's API did not answer; nothing changed, try again later."""

    code = "carrier_unavailable"
    http_status = 503
