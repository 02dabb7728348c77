"""The errors of every outbound gateway call (platform APIs, carriers), sorted by what the caller can do."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every gateway failure; ``code`` is the remote's error code when there is one."""

    def __init__(self, message: str, *, code: str = "", sub_code: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.code = str(code)
        self.sub_code = str(sub_code)
        self.retry_after = retry_after


class TransientError(GatewayError):
    """Worth retrying later: rate limits (429, TOP code 7, PDD 52101…), 5xx, timeouts, connection errors."""


class PermanentError(GatewayError):
    """Retrying the same thing will fail again: bad payload, invalid parameter, unknown SKU."""


class AuthError(PermanentError):
    """Credentials are wrong or expired (Shopify 401, TOP 27, PDD 10019): an operator must act."""


class SignatureError(PermanentError):
    """A webhook whose signature does not match its raw body."""
