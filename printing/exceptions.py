"""The refusals of printing: a label or job that cannot print, and a print bridge that is not let in."""

from oms.exceptions import DomainError, ValidationFailed


class PrintRefused(ValidationFailed):
    code = "print_refused"


class BridgeAuthFailed(DomainError):
    code = "bridge_unauthorized"
    http_status = 401


class BridgeForbidden(DomainError):
    code = "bridge_forbidden"
    http_status = 403
