"""Rate limits of the customer API in Redis: order proofs per client address and per order number typed."""

import hashlib

from oms.throttles import CredentialRateThrottle


def client_address(request) -> str:
    # The gateway (nginx, docker-compose) sets REMOTE_ADDR to the real client; X-Forwarded-For is not trusted
    # here because a guesser would send a new one with every try.
    return request.META.get("REMOTE_ADDR", "")


class CustomerRateThrottle(CredentialRateThrottle):
    """Every customer API call, per client address."""

    scope = "customer"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": f"addr:{client_address(request)}"}


class ProofAddressThrottle(CustomerRateThrottle):
    """Order proofs per client address: one guesser walking through order numbers."""

    scope = "customer_proof_ip"


class ProofOrderThrottle(CredentialRateThrottle):
    """Order proofs per order number typed: many addresses guessing one order's last four digits."""

    scope = "customer_proof_order"

    def get_cache_key(self, request, view) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        number = data.get("order")
        if not isinstance(number, str) or not number.strip():
            return None  # refused as invalid input anyway, by the serializer
        digest = hashlib.sha256(number.strip()[:64].encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": f"order:{digest}"}


class WeChatLoginThrottle(CustomerRateThrottle):
    """WeChat logins per client address: each one is a call to WeChat, which limits us too."""

    scope = "customer_wechat_login"
