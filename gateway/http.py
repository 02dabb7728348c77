"""What the gateway clients share: jittered backoff, the retry loop, and HTTP failures as gateway errors."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests

from gateway.errors import AuthError, PermanentError, TransientError

T = TypeVar("T")

# What the form-encoded gateways (TOP, PDD) are posted with.
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8", "Accept": "application/json"}


def jittered_backoff(attempt: int, *, base: float, cap: float, uniform: Callable[[float, float], float]) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base × 2^attempt)."""
    # Jitter, so that many stores retrying together do not stay in step.
    return min(cap, base * (2 ** attempt)) * uniform(0.5, 1.0)


def require_credentials(credentials: Mapping[str, Any], keys: tuple[str, ...], *, platform: str) -> None:
    """Raise AuthError naming the credential keys that are missing or empty."""
    missing = [key for key in keys if not credentials.get(key)]
    if missing:
        raise AuthError(f"{platform} credentials miss {', '.join(missing)}", code="credentials")


def gateway_url(base_url: str, path: str) -> str:
    """``base_url`` as given, or with the gateway's usual ``path`` when it is a bare host."""
    # A bare host is how a sandbox announces itself.
    return base_url.rstrip("/") + path if urlsplit(base_url).path in ("", "/") else base_url


class GatewayClient:
    """Base of a gateway client (TOP, PDD, Douyin, SF): session, timeout, retries and transport errors.

    Subclasses sign, unwrap the platform's envelope and map its error codes; they call ``post`` for one
    attempt and ``_with_retries`` around it. ``sleep`` is an attribute so tests can record the waits.
    """

    # Error codes proving the gateway turned the call away before running it: retried even for calls
    # that must not run twice. A failed connect never reached the gateway at all.
    refused_codes: ClassVar[frozenset[str]] = frozenset({"connect"})
    # requests failures that mean the connection broke (code "connection"); timeouts are told apart.
    connection_failures: ClassVar[tuple[type[Exception], ...]] = (requests.ConnectionError,)
    # requests failures retrying cannot fix (an invalid URL): PermanentError "request". Empty: raised as is.
    permanent_failures: ClassVar[tuple[type[Exception], ...]] = ()
    # A wait longer than this is raised instead of slept through; only TOP (whose bans say how long they
    # last) sets a limit.
    max_wait: float = math.inf

    def __init__(self, *, timeout: float, max_retries: int, backoff_base: float, backoff_max: float,
                 http: requests.Session | None, sleep: Callable[[float], Any] = time.sleep):
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.http = http or requests.Session()
        self.sleep = sleep
        self.rng = random.Random()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of min(max, base × 2^attempt)."""
        return jittered_backoff(attempt, base=self.backoff_base, cap=self.backoff_max, uniform=self.rng.uniform)

    def _with_retries(self, call_once: Callable[[], T], *, retry_ambiguous: bool) -> T:
        """``call_once()`` until it succeeds, retrying TransientError up to ``max_retries`` times.

        ``retry_ambiguous=False`` is for calls that must not run twice: a failure after which the call may
        have been applied is raised at once; only ``refused_codes`` are retried. A platform's own wait
        (``retry_after``) wins over the backoff.
        """
        attempt = 0
        while True:
            try:
                return call_once()
            except TransientError as exc:
                if not retry_ambiguous and exc.code not in self.refused_codes:
                    raise
                if attempt >= self.max_retries:
                    raise TransientError(f"{exc.message} (gave up after {attempt} retries)", code=exc.code,
                                         sub_code=exc.sub_code, retry_after=exc.retry_after) from exc
                delay = exc.retry_after if exc.retry_after is not None else self.backoff(attempt)
                if delay > self.max_wait:
                    raise
                attempt += 1
                self.sleep(delay)

    def post(self, url: str, *, describe: str, **kwargs: Any) -> tuple[int, Any]:
        """One POST → (HTTP status, decoded JSON body); ``describe`` ("TOP taobao.trade.get") starts messages.

        Transport failures, HTTP 5xx/429 and a body that is not JSON become TransientError (or
        PermanentError for a non-JSON answer that is not a 200); what the body says is the caller's.
        """
        return self.send("POST", url, describe=describe, **kwargs)

    def get(self, url: str, *, describe: str, **kwargs: Any) -> tuple[int, Any]:
        """One GET, answered and failing as ``post`` (WeChat's code-to-session is a GET with a query)."""
        return self.send("GET", url, describe=describe, **kwargs)

    def send(self, method: str, url: str, *, describe: str, **kwargs: Any) -> tuple[int, Any]:
        try:
            response = self.http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise TransientError(f"{describe}: connect timeout ({exc})", code="connect") from exc
        except requests.Timeout as exc:
            raise TransientError(f"{describe}: timed out after {self.timeout}s", code="timeout") from exc
        except self.connection_failures as exc:
            raise TransientError(f"{describe}: connection failed ({exc})", code="connection") from exc
        except self.permanent_failures as exc:
            raise PermanentError(f"{describe}: {type(exc).__name__}: {exc}", code="request") from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise TransientError(f"{describe}: HTTP {status}", code=f"http_{status}")
        try:
            body = self.decode(response)
        except ValueError as exc:
            if status != 200:
                raise PermanentError(f"{describe}: HTTP {status}", code=f"http_{status}") from exc
            # A cut-off or HTML body from a proxy in front of the gateway; the next try usually works.
            raise TransientError(f"{describe}: response is not JSON", code="invalid_json") from exc
        return status, body

    @staticmethod
    def decode(response: requests.Response) -> Any:
        """The response body as JSON (raises ValueError)."""
        return response.json()
