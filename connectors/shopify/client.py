"""HTTP client for the Shopify Admin API (REST, and GraphQL for batch stock): auth, paging, rate limits, retries, errors."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import requests

from gateway.errors import AuthError, PermanentError, TransientError
from gateway.http import jittered_backoff

logger = logging.getLogger(__name__)

# Shopify releases a version each quarter and supports each for at least 12 months; a request for an
# expired one is answered by the oldest supported version (API_FACTS.md §1.10). Move this on every quarter
# or two, after running the connector tests against the sandbox with the new version.
DEFAULT_API_VERSION = "2026-10"
MAX_PAGE_SIZE = 250
# Fulfillment-order states that still accept a fulfillment (anything else answers 422).
OPEN_FULFILLMENT_ORDER = frozenset({"open", "in_progress"})
# GraphQL Admin API (API_FACTS.md §1.3, §1.7): an input array holds at most 250 items; a mutation costs 10 points
# of the calculated-cost bucket (the selection below adds nothing that costs); a variant lookup costs about one
# point per node plus one for its inventory item.
GRAPHQL_MAX_INPUT = 250
STOCK_MUTATION_COST = 10
# Sets the absolute "available" quantity of many inventory items in one call. changeFromQuantity null (2026-04 and
# later) and ignoreCompareQuantity (before) both opt out of compare-and-swap: the hub is the source of truth for
# what a channel may sell, and Shopify's own count moves with every Shopify sale, so a compare would fail.
# The idempotency key makes a retry after a lost response apply once (required for inventory mutations from
# 2026-04 on).
SET_QUANTITIES = """mutation SetStock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    userErrors { code field message }
  }
}"""
VARIANT_INVENTORY_ITEMS = """query StockIds($ids: [ID!]!) {
  nodes(ids: $ids) { ... on ProductVariant { id inventoryItem { id } } }
}"""
# locations leaves inactive ones out unless includeInactive is set; isActive is checked all the same.
ACTIVE_LOCATIONS = """query StockLocations {
  locations(first: 2) { nodes { id isActive } }
}"""
# A money refund back to the order's payment; @idempotent is mandatory for refundCreate from 2026-04.
REFUND_CREATE = """mutation RefundCreate($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund { id totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}"""
REFUND_MUTATION_COST = 10


def gid(kind: str, value: str | int) -> str:
    """A REST numeric id as the GraphQL global id (``gid://shopify/<kind>/<id>``); a gid passes through."""
    text = str(value).strip()
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


# Failures of the connection itself (the body cut off mid-way included): worth another try.
TRANSPORT_FAILURES = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                      requests.exceptions.ContentDecodingError)


def _format_time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("Shopify time filters need an aware datetime")
    # Whole seconds: Shopify's times have no fractions and both bounds are inclusive, so flooring
    # never loses an order (the caller trims to its exact window).
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _errors_text(body) -> str:
    """Shopify's ``errors`` member as one readable line (it is a string, a list or a field → messages map)."""
    errors = body.get("errors", body.get("error")) if isinstance(body, dict) else body
    if isinstance(errors, dict):
        parts = []
        for key, value in errors.items():
            messages = value if isinstance(value, list) else [value]
            parts.append(f"{key}: {', '.join(str(message) for message in messages)}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return "; ".join(str(message) for message in errors)
    return "" if errors is None else str(errors)


class ShopifyClient:
    """One store's Admin REST API over a ``requests.Session`` (not shared between threads).

    ``sleep`` is an attribute so tests can record the waits without spending them.
    """

    def __init__(self, credentials: Mapping[str, str], *, timeout: float = 10.0, max_retries: int = 5,
                 backoff_base: float = 0.2, backoff_max: float = 8.0, leak_rate: float = 2.0,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        base_url = str(credentials.get("base_url") or "").strip().rstrip("/")
        token = str(credentials.get("access_token") or "").strip()
        if not base_url or not token:
            raise AuthError("Shopify credentials need base_url and access_token", code="credentials")
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        self.base_url = base_url
        self.api_version = str(credentials.get("api_version") or DEFAULT_API_VERSION)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.leak_rate = leak_rate  # requests per second the shop's bucket drains (Standard plan: 2)
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update({"X-Shopify-Access-Token": token, "Accept": "application/json",
                                     "User-Agent": "order-hub/0.1 (+shopify connector)"})
        self.call_limit: tuple[int, int] | None = None  # (used, bucket) from the last response
        # GraphQL's calculated-cost bucket as the last response reported it: (available, restore per s, when).
        self.graphql_budget: tuple[float, float, float] | None = None
        # The version Shopify says it served (X-Shopify-API-Version); None until a response names one.
        self.served_api_version: str | None = None

    @property
    def api_root(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}"

    # --- Transport -----------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return jittered_backoff(attempt, base=self.backoff_base, cap=self.backoff_max, uniform=random.uniform)

    def _throttle(self) -> None:
        """Wait before a call when the last response showed the bucket (nearly) full, instead of earning a 429."""
        if self.call_limit is None:
            return
        used, bucket = self.call_limit
        if used >= bucket - 2:
            self.sleep((used - (bucket - 2) + 1) / self.leak_rate)
            self.call_limit = None  # the estimate is spent; the next response brings a fresh one

    def _note_call_limit(self, response: requests.Response) -> None:
        header = response.headers.get("X-Shopify-Shop-Api-Call-Limit", "")
        used, _, bucket = header.partition("/")
        try:
            self.call_limit = (int(used), int(bucket))
        except ValueError:
            self.call_limit = None

    def _note_api_version(self, response: requests.Response) -> None:
        served = response.headers.get("X-Shopify-API-Version", "").strip()[:20]
        if not served or served == self.served_api_version:
            return
        self.served_api_version = served
        if served != self.api_version:
            # Shopify does not refuse an expired version: it silently answers with another one.
            logger.warning("Shopify %s served API version %s instead of the requested %s: set a supported "
                           "version in the store's settings", self.base_url, served, self.api_version)

    @staticmethod
    def _retry_after(response: requests.Response) -> float:
        try:
            return max(float(response.headers.get("Retry-After", "")), 0.0)
        except ValueError:
            return 1.0  # no usable header: one second frees two calls at the standard leak rate

    def _request(self, method: str, path: str, *, params: Mapping | None = None, json_body: dict | None = None,
                 retry_ambiguous: bool = True) -> tuple[dict, requests.Response]:
        """One API call → (JSON object, response). ``retry_ambiguous=False`` for calls that must not run twice:
        then only 429 (never processed) is retried here and every other transient failure is raised."""
        url = f"{self.api_root}/{path}"
        attempt = 0
        while True:
            self._throttle()
            try:
                # No redirects: requests would carry the access token header to whatever host a redirect names.
                response = self.session.request(method, url, params=params, json=json_body, timeout=self.timeout,
                                                allow_redirects=False)
            except TRANSPORT_FAILURES as exc:
                failure = TransientError(f"Shopify {method} {path}: {type(exc).__name__}: {exc}", code="network")
            except requests.RequestException as exc:
                # An invalid URL or scheme in the store's settings: retrying cannot fix it.
                raise PermanentError(f"Shopify {method} {path}: {type(exc).__name__}: {exc}",
                                     code="request") from exc
            else:
                self._note_call_limit(response)
                self._note_api_version(response)
                status = response.status_code
                if status == 429:
                    retry_after = self._retry_after(response)
                    if attempt >= self.max_retries:
                        raise TransientError(f"Shopify {method} {path}: still rate limited after "
                                             f"{attempt} retries", code="429", retry_after=retry_after)
                    logger.info("Shopify rate limited on %s; waiting %.1fs", path, retry_after)
                    self.sleep(retry_after)
                    attempt += 1
                    continue
                if status >= 500:
                    failure = TransientError(f"Shopify {method} {path}: HTTP {status}", code=str(status))
                elif status >= 300:
                    raise self._client_error(method, path, response)
                else:
                    try:
                        data = json.loads(response.content)
                    except ValueError:
                        data = None
                    if isinstance(data, dict):
                        return data, response
                    failure = TransientError(f"Shopify {method} {path}: the response body is not a JSON object",
                                             code="malformed")
            if not retry_ambiguous or attempt >= self.max_retries:
                raise failure
            delay = self._backoff(attempt)
            logger.info("Shopify %s %s failed (%s); retry %d in %.2fs", method, path, failure.message,
                        attempt + 1, delay)
            self.sleep(delay)
            attempt += 1

    @staticmethod
    def _client_error(method: str, path: str, response: requests.Response) -> PermanentError:
        status = response.status_code
        try:
            detail = _errors_text(json.loads(response.content))
        except ValueError:
            detail = response.text[:200]
        message = f"Shopify {method} {path}: HTTP {status}: {detail}".rstrip(": ")
        if status in (401, 403):
            return AuthError(message, code=str(status))
        if 300 <= status < 400:
            return PermanentError(f"{message} (redirected to {response.headers.get('Location', '?')}; "
                                  f"check the store's base_url)", code=str(status))
        return PermanentError(message, code=str(status))

    @staticmethod
    def _member(data: dict, key: str, kind: type, path: str):
        value = data.get(key)
        if not isinstance(value, kind):
            raise PermanentError(f"Shopify {path}: the response has no {key!r} {kind.__name__}",
                                 code="bad_response")
        return value

    # --- GraphQL -------------------------------------------------------------------------------------

    def _await_budget(self, cost: float) -> None:
        """Wait until the cost bucket (as last reported, refilled since) holds ``cost``, instead of being THROTTLED."""
        if self.graphql_budget is None:
            return
        available, restore, at = self.graphql_budget
        available += (time.monotonic() - at) * restore
        if available < cost and restore > 0:
            self.sleep((cost - available) / restore)

    def _note_budget(self, body: dict) -> dict:
        cost = ((body.get("extensions") or {}).get("cost") or {}) if isinstance(body, dict) else {}
        status = cost.get("throttleStatus") or {}
        try:
            self.graphql_budget = (float(status["currentlyAvailable"]), float(status["restoreRate"]),
                                   time.monotonic())
        except (KeyError, TypeError, ValueError):
            pass
        return cost

    def graphql(self, query: str, variables: dict | None = None, *, cost: float = 1.0) -> dict:
        """One GraphQL Admin API call → its ``data``. ``cost`` is what the caller expects the call to take from the
        bucket: the client waits for that much first. A THROTTLED answer is waited out (by the bucket's own
        figures) and retried; top-level errors are raised. Only for idempotent operations (every retry repeats it).
        """
        attempt = 0
        while True:
            self._await_budget(cost)
            data, response = self._request("POST", "graphql.json", json_body={"query": query,
                                                                               "variables": variables or {}})
            spent = self._note_budget(data)
            errors = data.get("errors") or []
            if not errors:
                result = data.get("data")
                if not isinstance(result, dict):
                    raise PermanentError("Shopify graphql.json: the response has no data", code="bad_response")
                return result
            codes = {str((error.get("extensions") or {}).get("code") or "") if isinstance(error, dict) else ""
                     for error in errors}
            text = "; ".join(str(error.get("message") if isinstance(error, dict) else error) for error in errors)
            if "THROTTLED" in codes:
                status = spent.get("throttleStatus") or {}
                try:
                    wait = (float(spent.get("requestedQueryCost") or cost) - float(status["currentlyAvailable"])) \
                        / float(status["restoreRate"])
                except (KeyError, TypeError, ValueError, ZeroDivisionError):
                    wait = 1.0
                if attempt >= self.max_retries:
                    raise TransientError(f"Shopify graphql.json: still throttled after {attempt} retries",
                                         code="THROTTLED", retry_after=max(wait, 0.1))
                logger.info("Shopify GraphQL throttled; waiting %.2fs", max(wait, 0.05))
                self.sleep(max(wait, 0.05))
                attempt += 1
                continue
            if "INTERNAL_SERVER_ERROR" in codes:
                if attempt >= self.max_retries:
                    raise TransientError(f"Shopify graphql.json: {text}", code="INTERNAL_SERVER_ERROR")
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if "ACCESS_DENIED" in codes:
                raise AuthError(f"Shopify graphql.json: {text}", code="ACCESS_DENIED")
            raise PermanentError(f"Shopify graphql.json: {text}", code=next(iter(sorted(codes - {""})), "graphql"))

    def inventory_item_ids(self, variant_ids: Sequence[str | int]) -> dict[str, str]:
        """REST variant id → the gid of its inventory item, for the variants that exist (one call per 250)."""
        found: dict[str, str] = {}
        wanted = [str(value) for value in variant_ids]
        for start in range(0, len(wanted), GRAPHQL_MAX_INPUT):
            chunk = wanted[start:start + GRAPHQL_MAX_INPUT]
            data = self.graphql(VARIANT_INVENTORY_ITEMS, {"ids": [gid("ProductVariant", v) for v in chunk]},
                                cost=2 * len(chunk) + 1)
            by_gid = {gid("ProductVariant", v): v for v in chunk}
            for node in data.get("nodes") or []:
                item = (node or {}).get("inventoryItem") or {}
                if node and node.get("id") in by_gid and item.get("id"):
                    found[by_gid[node["id"]]] = str(item["id"])
        return found

    def active_location_ids(self) -> list[str]:
        """The gids of the shop's active locations (at most two: more than one already needs a setting)."""
        data = self.graphql(ACTIVE_LOCATIONS, cost=4)
        nodes = ((data.get("locations") or {}).get("nodes")) or []
        return [str(node["id"]) for node in nodes if node and node.get("id") and node.get("isActive", True)]

    def set_available_quantities(self, quantities: Sequence[Mapping]) -> list[dict]:
        """Set ``available`` of each {inventoryItemId, locationId, quantity} (at most 250) in one mutation;
        returns the mutation's userErrors (empty: every quantity was set)."""
        if len(quantities) > GRAPHQL_MAX_INPUT:
            raise ValueError(f"at most {GRAPHQL_MAX_INPUT} quantities per call")
        body = {"name": "available", "reason": "correction", "ignoreCompareQuantity": True,
                "quantities": [{"inventoryItemId": q["inventoryItemId"], "locationId": q["locationId"],
                                "quantity": int(q["quantity"]), "changeFromQuantity": None} for q in quantities]}
        # One key per request: its retries (inside graphql()) repeat it, a later push gets a new one.
        data = self.graphql(SET_QUANTITIES, {"input": body, "key": str(uuid.uuid4())}, cost=STOCK_MUTATION_COST)
        payload = data.get("inventorySetQuantities")
        if not isinstance(payload, dict):
            raise PermanentError("Shopify inventorySetQuantities: no payload in the answer", code="bad_response")
        return [error for error in payload.get("userErrors") or [] if isinstance(error, dict)]

    # --- Orders --------------------------------------------------------------------------------------

    def list_orders(self, *, updated_at_min: datetime | str, updated_at_max: datetime | str,
                    limit: int = MAX_PAGE_SIZE, status: str = "any") -> Iterator[list[dict]]:
        """Every order updated in [min, max] (both inclusive, as Shopify filters), one page per item."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
        params: dict = {"status": status, "updated_at_min": _format_time(updated_at_min),
                        "updated_at_max": _format_time(updated_at_max), "order": "updated_at asc", "limit": limit}
        seen_cursors: set[str] = set()
        while True:
            data, response = self._request("GET", "orders.json", params=params)
            yield self._member(data, "orders", list, "orders.json")
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return
            page_info = parse_qs(urlsplit(next_url).query).get("page_info", [""])[0]
            if not page_info or page_info in seen_cursors:
                raise PermanentError(f"Shopify orders.json: unusable next link {next_url!r}", code="bad_response")
            seen_cursors.add(page_info)
            # The cursor carries the filters; Shopify answers 400 if any filter is sent along with it.
            params = {"limit": limit, "page_info": page_info}

    def get_order(self, order_id: str | int) -> dict:
        path = f"orders/{order_id}.json"
        data, _ = self._request("GET", path)
        return self._member(data, "order", dict, path)

    # --- Fulfilment ------------------------------------------------------------------------------------

    def fulfillment_orders(self, order_id: str | int) -> list[dict]:
        path = f"orders/{order_id}/fulfillment_orders.json"
        data, _ = self._request("GET", path)
        return self._member(data, "fulfillment_orders", list, path)

    @staticmethod
    def _fulfillment_groups(fulfillment_orders: list[dict],
                            line_items: Sequence[Mapping] | None) -> list[dict]:
        """``line_items_by_fulfillment_order`` for the request: whole open FOs, or the asked order lines."""
        open_orders = [fo for fo in fulfillment_orders if fo.get("status") in OPEN_FULFILLMENT_ORDER
                       and any(int(line.get("fulfillable_quantity") or 0) > 0
                               for line in fo.get("line_items", []))]
        if line_items is None:
            # Without line items a fulfillment order is fulfilled whole (API_FACTS.md §1.6).
            return [{"fulfillment_order_id": fo["id"]} for fo in open_orders]
        groups: dict[int, list[dict]] = {}
        for wanted in line_items:
            line_item_id = str(wanted.get("line_item_id", ""))
            quantity = wanted.get("quantity")  # None: whatever is still fulfillable on that line
            if quantity is not None:
                try:
                    quantity = int(quantity)
                except (TypeError, ValueError):
                    quantity = 0
                if quantity < 1:
                    raise PermanentError(f"Shopify fulfilment: bad quantity {wanted.get('quantity')!r} "
                                         f"for line {line_item_id}", code="bad_request")
            for fo in open_orders:
                match = next((line for line in fo.get("line_items", [])
                              if str(line.get("line_item_id")) == line_item_id
                              and int(line.get("fulfillable_quantity") or 0) >= (quantity or 1)), None)
                if match is not None:
                    groups.setdefault(fo["id"], []).append(
                        {"id": match["id"], "quantity": quantity or int(match["fulfillable_quantity"])})
                    break
            else:
                return []  # not (or no longer) fulfillable: the caller checks whether it was already done
        return [{"fulfillment_order_id": fo_id, "fulfillment_order_line_items": lines}
                for fo_id, lines in groups.items()]

    def _existing_fulfillment(self, order_id: str | int, tracking_number: str) -> dict | None:
        order = self.get_order(order_id)
        for fulfillment in order.get("fulfillments") or []:
            numbers = [fulfillment.get("tracking_number"), *(fulfillment.get("tracking_numbers") or [])]
            if fulfillment.get("status") in ("success", "pending", "open") and tracking_number in numbers:
                return fulfillment
        return None

    def create_fulfillment(self, *, order_id: str | int, tracking_number: str, tracking_company: str,
                           tracking_url: str = "", line_items: Sequence[Mapping] | None = None,
                           notify_customer: bool = False) -> dict:
        """Fulfil the order (all of it, or ``line_items`` = [{"line_item_id", "quantity"}]) with tracking.

        A line without "quantity" is fulfilled with all that is still fulfillable on it.

        Safe to call again: when nothing asked is left to fulfil and a fulfillment with this tracking number
        exists, that fulfillment is returned instead of an error, so a lost response never ships twice.
        """
        tracking_info = {"number": tracking_number, "company": tracking_company}
        if tracking_url:
            tracking_info["url"] = tracking_url
        attempt = 0
        while True:
            # After a failed POST whose fate is unknown, look before posting again.
            done = self._existing_fulfillment(order_id, tracking_number) if attempt else None
            if done is not None:
                return done
            groups = self._fulfillment_groups(self.fulfillment_orders(order_id), line_items)
            if not groups:
                done = self._existing_fulfillment(order_id, tracking_number)
                if done is not None:
                    return done
                raise PermanentError(f"Shopify order {order_id}: nothing left to fulfil for this request",
                                     code="not_fulfillable")
            body = {"fulfillment": {"notify_customer": bool(notify_customer), "tracking_info": tracking_info,
                                    "line_items_by_fulfillment_order": groups}}
            try:
                data, _ = self._request("POST", "fulfillments.json", json_body=body, retry_ambiguous=False)
            except TransientError:
                if attempt >= self.max_retries:
                    raise
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return self._member(data, "fulfillment", dict, "fulfillments.json")

    # --- Payments ----------------------------------------------------------------------------------------

    def transactions(self, order_id: str | int) -> list[dict]:
        path = f"orders/{order_id}/transactions.json"
        data, _ = self._request("GET", path)
        return self._member(data, "transactions", list, path)

    @staticmethod
    def _uncaptured_authorizations(transactions: list[dict]) -> tuple[list[dict], list[dict]]:
        """(successful authorizations no successful capture points at, successful captures)."""
        ok = [t for t in transactions if isinstance(t, dict) and t.get("status") == "success"]
        captures = [t for t in ok if t.get("kind") == "capture"]
        captured_parents = {str(t.get("parent_id")) for t in captures}
        open_authorizations = [t for t in ok if t.get("kind") == "authorization"
                               and str(t.get("id")) not in captured_parents]
        return open_authorizations, captures

    def capture_payment(self, order_id: str | int) -> list[dict]:
        """Capture every open authorization of the order in full; returns the order's capture transactions.

        One capture per authorization with its ``parent_id`` (an edited order may carry several, and
        Shopify asks apps to name the one they capture). Safe to call again: authorizations already
        captured are skipped, so a lost response never captures twice; a call with nothing left to
        capture returns the captures made before.
        """
        attempt = 0
        while True:
            open_authorizations, captures = self._uncaptured_authorizations(self.transactions(order_id))
            if not open_authorizations:
                if captures:
                    return captures
                raise PermanentError(f"Shopify order {order_id}: no authorized payment to capture",
                                     code="no_authorization")
            path = f"orders/{order_id}/transactions.json"
            try:
                for authorization in open_authorizations:
                    body = {"transaction": {"kind": "capture", "parent_id": authorization["id"],
                                            "amount": str(authorization.get("amount") or ""),
                                            "currency": str(authorization.get("currency") or "")}}
                    data, _ = self._request("POST", path, json_body=body, retry_ambiguous=False)
                    captures.append(self._member(data, "transaction", dict, path))
            except TransientError:
                # The capture's fate is unknown: the next round reads the transactions before posting again.
                if attempt >= self.max_retries:
                    raise
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return captures

    # --- Refunds -------------------------------------------------------------------------------------------

    def refund_create(self, *, order_id: str | int, amount, currency: str, key: str, note: str = "") -> dict:
        """Refund ``amount`` of the order to the payment it was paid with (refundCreate, one REFUND transaction
        on the order's sale or capture) and return the refund ({id, totalRefundedSet}).

        ``key`` goes into @idempotent: Shopify answers a repeat of the same key with the first refund, so the
        retries here and the outbox's later ones never refund twice. Line items are not sent: restocking is
        the hub's, and the amount already holds each line's share of the order discount and shipping.
        """
        paid = [t for t in self.transactions(order_id) if isinstance(t, dict) and t.get("status") == "success"
                and t.get("kind") in ("sale", "capture")]
        if not paid:
            raise PermanentError(f"Shopify order {order_id}: no payment to refund", code="no_payment")
        parent = paid[0]
        refund_input = {"orderId": gid("Order", order_id), "note": note[:255], "notify": False,
                        "transactions": [{"orderId": gid("Order", order_id),
                                          "parentId": gid("OrderTransaction", parent["id"]),
                                          "amount": str(amount), "gateway": str(parent.get("gateway") or ""),
                                          "kind": "REFUND"}]}
        if currency:
            refund_input["currency"] = currency
        data = self.graphql(REFUND_CREATE, {"input": refund_input, "key": key}, cost=REFUND_MUTATION_COST)
        payload = data.get("refundCreate")
        if not isinstance(payload, dict):
            raise PermanentError("Shopify refundCreate: no payload in the answer", code="bad_response")
        errors = [error for error in payload.get("userErrors") or [] if isinstance(error, dict)]
        if errors or not isinstance(payload.get("refund"), dict):
            raise PermanentError("Shopify refundCreate: " + ("; ".join(str(e.get("message")) for e in errors)
                                                            or "no refund in the answer"), code="refund_refused")
        return payload["refund"]

    # --- Catalogue and inventory -------------------------------------------------------------------------

    def get_variant(self, variant_id: str | int) -> dict:
        path = f"variants/{variant_id}.json"
        data, _ = self._request("GET", path)
        return self._member(data, "variant", dict, path)

    def get_product(self, product_id: str | int) -> dict:
        path = f"products/{product_id}.json"
        data, _ = self._request("GET", path)
        return self._member(data, "product", dict, path)

    def locations(self) -> list[dict]:
        data, _ = self._request("GET", "locations.json")
        return self._member(data, "locations", list, "locations.json")

    def set_inventory_level(self, *, inventory_item_id: int | str, location_id: int | str, available: int) -> dict:
        """Set the absolute available count (idempotent, so ordinary retries are safe)."""
        try:
            body = {"location_id": int(location_id), "inventory_item_id": int(inventory_item_id),
                    "available": int(available)}
        except (TypeError, ValueError):
            # A location or item id that is not a number is a setup mistake, not a hiccup: refuse it
            # for this push (recorded on the row) instead of breaking every store's flush.
            raise PermanentError(f"inventory_levels/set.json: location {location_id!r} / item "
                                 f"{inventory_item_id!r} is not a numeric Shopify id", code="bad_id") from None
        data, _ = self._request("POST", "inventory_levels/set.json", json_body=body)
        return self._member(data, "inventory_level", dict, "inventory_levels/set.json")
