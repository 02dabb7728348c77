"""The client base of the form-posted API routers (TOP, PDD): one signed attempt, its envelope and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.errors import PermanentError, TransientError
from gateway.http import FORM_HEADERS, GatewayClient


class RouterClient(GatewayClient):
    """A gateway that takes every API at one URL as a signed form and answers ``{"<api>_response": {…}}``
    on success or ``{"error_response": {…}}`` (HTTP 200) on failure.

    Subclasses set ``label`` and ``base_url`` and implement ``signed_params``, ``response_keys`` and
    ``error_for``; ``unwrap`` post-processes the success object.
    """

    label: ClassVar[str] = ""  # "TOP", "PDD": how messages name the platform
    base_url: str

    def call(self, api: str, /, *, retry_ambiguous: bool = True, **params: Any) -> dict:
        """Call one API (as the platform names it) and return the object under its response key.

        ``retry_ambiguous=False`` is for calls that must not run twice (a shipment, an incremental stock
        change): failures after which the request may have been applied (timeouts, 5xx, the platform's
        "unavailable" codes, broken bodies) are raised at once; only answers that prove the call was refused
        (``refused_codes``: rate limits, connect errors) are retried.
        """
        # ``api`` is positional-only: TOP takes a business parameter called ``type``.
        return self._with_retries(lambda: self._call_once(api, params), retry_ambiguous=retry_ambiguous)

    def signed_params(self, api: str, params: Mapping[str, Any]) -> dict[str, str]:
        raise NotImplementedError

    def response_keys(self, api: str) -> tuple[str, ...]:
        """The keys the success object of ``api`` may come under."""
        raise NotImplementedError

    @staticmethod
    def error_for(api: str, error: Mapping[str, Any]) -> TransientError | PermanentError:
        """The gateway error for one ``error_response``."""
        raise NotImplementedError

    def unwrap(self, result: dict) -> dict:
        return result

    def _call_once(self, api: str, params: Mapping[str, Any]) -> dict:
        # Signed per attempt: the timestamp must be fresh (both gateways allow about ten minutes).
        status, body = self.post(self.base_url, describe=f"{self.label} {api}", headers=FORM_HEADERS,
                                 data=self.signed_params(api, params))
        if not isinstance(body, dict):
            raise PermanentError(f"{self.label} {api}: unexpected response {str(body)[:200]}", code="envelope")
        if "error_response" in body:
            raise self.error_for(api, body["error_response"] or {})
        keys = self.response_keys(api)
        found = next((key for key in keys if isinstance(body.get(key), dict)), None)
        if status != 200 or found is None:
            raise PermanentError(f"{self.label} {api}: HTTP {status} without {' or '.join(keys)}: "
                                 f"{str(body)[:200]}", code="envelope")
        return self.unwrap(body[found])
