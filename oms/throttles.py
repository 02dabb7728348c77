"""API rate limits: one bucket per credential (a user's session, an API token, a print bridge), not per address."""

import hashlib
import logging

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def credential_ident(request) -> str:
    """Who is calling, for counting: the token or bridge when one authenticated the call, else the session's
    user, else the client address (anonymous calls are refused anyway, but they still count)."""
    auth = getattr(request, "auth", None)
    if auth is not None and getattr(auth, "pk", None) is not None:
        # A staff API token's primary key is the secret itself: hash it so no credential sits in the cache.
        digest = hashlib.sha256(str(auth.pk).encode()).hexdigest()[:32]
        return f"{auth._meta.label_lower}:{digest}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"addr:{request.META.get('REMOTE_ADDR', '')}"


class CredentialRateThrottle(SimpleRateThrottle):
    """A ``scope``'s rate from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], counted per credential in the default
    cache (Redis in production and tests, process memory in the trial)."""

    def get_rate(self) -> str | None:
        # Read at every request, not at import as DRF's class attribute does: a changed setting (a test's override,
        # a reloaded configuration) applies at once.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No DEFAULT_THROTTLE_RATES entry for the {self.scope!r} scope.") from None

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": credential_ident(request)}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            # A limit is a guard, not a ledger: a cache outage must not take the API down with it.
            logger.warning("throttle scope=%s skipped: the cache is unreachable", self.scope)
            return True


class StaffRateThrottle(CredentialRateThrottle):
    """The staff API (orders, stock): the default for every API view."""

    scope = "staff"


class PrintBridgeRateThrottle(CredentialRateThrottle):
    """The print-bridge API: its own, much higher limit, so a bridge clearing a backlog of labels is never held."""

    scope = "print_bridge"
