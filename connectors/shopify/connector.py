"""ShopifyConnector: polling by updated_at, HMAC-verified webhooks, mapping and push-back calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from connectors.base import (
    AuthError,
    Connector,
    ConnectorError,
    PermanentError,
    RawOrder,
    SignatureError,
    StockPush,
    TransientError,
    WebhookDelivery,
)
from connectors.shopify.client import GRAPHQL_MAX_INPUT, ShopifyClient, gid
from connectors.shopify.mapping import map_shopify_order, parse_shopify_time

# The hub's carrier codes → the company names Shopify shows and links (unknown codes pass through as given).
CARRIER_NAMES = {
    "SF": "SF Express", "YTO": "YTO Express", "ZTO": "ZTO Express", "STO": "STO Express", "YUNDA": "Yunda Express",
    "EMS": "China EMS", "CHINAPOST": "China Post", "JD": "JD Logistics", "YUNEXPRESS": "YunExpress", "4PX": "4PX",
    "UPS": "UPS", "USPS": "USPS", "FEDEX": "FedEx", "DHL": "DHL Express",
}


def shopify_hmac(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of HMAC-SHA256 over the raw body, keyed with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# userErrors name the failing quantity by its input path: ["input", "quantities", "3", "locationId"].
QUANTITY_PATH = re.compile(r"^\d+$")


def _raw_order(order, *, where: str) -> RawOrder:
    if not isinstance(order, dict) or order.get("id") in (None, ""):
        raise PermanentError(f"Shopify {where}: an order without an id", code="bad_payload")
    return RawOrder(platform_order_id=str(order["id"]),
                    updated_at=parse_shopify_time(order.get("updated_at"), field="updated_at"), payload=order)


class ShopifyConnector(Connector):
    platform: ClassVar[str] = "shopify"
    # Shopify has no window limit; 30 days keeps a catch-up poll to a bounded number of pages per window.
    max_window: ClassVar[timedelta] = timedelta(days=30)

    map_order = staticmethod(map_shopify_order)

    def make_client(self) -> ShopifyClient:
        return ShopifyClient(self.credentials, timeout=self.timeout)

    # --- Polling ---------------------------------------------------------------------------------------

    def poll(self, *, start: datetime, end: datetime) -> Iterator[RawOrder]:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("poll needs aware datetimes")
        for page in self.client.list_orders(updated_at_min=start, updated_at_max=end):
            for order in page:
                raw = _raw_order(order, where="orders.json")
                # Shopify's bounds are inclusive and to the second; the contract is [start, end).
                if start <= raw.updated_at < end:
                    yield raw

    def fetch_order(self, platform_order_id: str) -> RawOrder:
        return _raw_order(self.client.get_order(platform_order_id), where=f"orders/{platform_order_id}.json")

    # --- Webhooks --------------------------------------------------------------------------------------

    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> list[WebhookDelivery]:
        secret = str(self.credentials.get("api_secret") or "")
        if not secret:
            raise AuthError("Shopify store has no api_secret to verify webhooks with", code="credentials")
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        body = bytes(body)
        received = lowered.get("x-shopify-hmac-sha256", "").strip()
        if not received:
            raise SignatureError("Shopify webhook without X-Shopify-Hmac-Sha256", code="signature")
        if not hmac.compare_digest(shopify_hmac(secret, body).encode(), received.encode()):
            raise SignatureError("Shopify webhook signature does not match the body", code="signature")
        try:
            payload = json.loads(body)
        except ValueError:
            raise PermanentError("Shopify webhook body is not JSON", code="bad_payload") from None
        if not isinstance(payload, dict):
            raise PermanentError("Shopify webhook body is not a JSON object", code="bad_payload")

        topic = lowered.get("x-shopify-topic", "")
        # Event-Id is the same across duplicate deliveries of one event (API_FACTS.md §1.5); the body digest
        # is the last resort so two identical deliveries still collapse into one.
        delivery_id = (lowered.get("x-shopify-event-id") or lowered.get("x-shopify-webhook-id")
                       or f"sha256:{hashlib.sha256(body).hexdigest()}")
        if topic.startswith("orders/") and payload.get("id") not in (None, ""):
            updated = payload.get("updated_at")
            return [WebhookDelivery(
                delivery_id=delivery_id, topic=topic, platform_order_id=str(payload["id"]),
                updated_at=parse_shopify_time(updated, field="updated_at") if updated else None,
                payload=payload,
                # orders/delete carries only the id: there is no order version to map.
                needs_fetch=not updated)]
        if payload.get("order_id") not in (None, ""):
            # refunds/create, fulfillments/*: they name the order; its full state must be fetched.
            return [WebhookDelivery(delivery_id=delivery_id, topic=topic,
                                    platform_order_id=str(payload["order_id"]), updated_at=None,
                                    payload=payload, needs_fetch=True)]
        raise PermanentError(f"Shopify webhook topic {topic!r} does not name an order", code="unsupported_topic")

    # --- Push-back -------------------------------------------------------------------------------------

    def create_fulfillment(self, *, order_id: str, tracking_number: str, tracking_company: str,
                           tracking_url: str = "", line_items: Sequence[Mapping] | None = None,
                           notify_customer: bool = False) -> dict:
        return self.client.create_fulfillment(order_id=order_id, tracking_number=tracking_number,
                                              tracking_company=tracking_company, tracking_url=tracking_url,
                                              line_items=line_items, notify_customer=notify_customer)

    def capture_payment(self, *, platform_order_id: str) -> list[dict]:
        """Capture the order's authorized payment (stores that capture on fulfilment)."""
        return self.client.capture_payment(platform_order_id)

    @property
    def served_api_version(self) -> str | None:
        """The API version Shopify answered with, once a call was made (None before)."""
        client = self.__dict__.get("client")
        return client.served_api_version if client is not None else None

    def set_inventory_level(self, *, inventory_item_id: int | str, location_id: int | str, available: int) -> dict:
        return self.client.set_inventory_level(inventory_item_id=inventory_item_id, location_id=location_id,
                                               available=available)

    # --- The platform-neutral push-back of the Connector interface ---------------------------------------

    def ship(self, *, platform_order_id: str, tracking_number: str, carrier_code: str,
             line_ids: Sequence[str] | None = None) -> dict:
        """Fulfil the order (or only the order lines ``line_ids``, each with all it has left) with tracking."""
        line_items = [{"line_item_id": str(line_id)} for line_id in line_ids] if line_ids else None
        company = CARRIER_NAMES.get(carrier_code.strip().upper(), carrier_code.strip())
        return self.create_fulfillment(order_id=platform_order_id, tracking_number=tracking_number,
                                       tracking_company=company, line_items=line_items)

    def refund(self, *, platform_order_id: str, platform_after_sale_id: str, amount, currency: str, key: str,
               line_ids: Sequence[str] | None = None) -> dict:
        """Refund ``amount`` on the order through refundCreate with the hub's ``key`` as idempotency key (a
        Shopify order needs no after-sale of its own to be refunded)."""
        note = f"OMS refund {key}" + (f" for lines {','.join(map(str, line_ids))}" if line_ids else "")
        refund = self.client.refund_create(order_id=platform_order_id, amount=amount, currency=currency, key=key,
                                           note=note)
        return {"platform_refund_id": str(refund.get("id") or "").rsplit("/", 1)[-1], "refund": refund}

    def set_stock(self, *, platform_product_id: str, quantity: int, platform_sku_id: str | None = None,
                  sku: str | None = None) -> dict:
        """Set the available quantity of a variant (``platform_sku_id``, or found by ``sku`` in the product)."""
        if platform_sku_id:
            variant = self.client.get_variant(platform_sku_id)
        else:
            variants = self.client.get_product(platform_product_id).get("variants") or []
            # Without a SKU only a single-variant product is unambiguous.
            matches = [variant for variant in variants if variant.get("sku") == sku] if sku else variants
            if len(matches) != 1:
                raise PermanentError(f"Shopify product {platform_product_id}: {len(matches)} variants match "
                                     f"SKU {sku!r}", code="unknown_sku")
            variant = matches[0]
        if not variant.get("inventory_item_id"):
            raise PermanentError(f"Shopify variant {variant.get('id')} has no inventory item", code="unknown_sku")
        return self.set_inventory_level(inventory_item_id=variant["inventory_item_id"],
                                        location_id=self._location_id(), available=quantity)

    # --- Stock push at scale: GraphQL inventorySetQuantities, many SKUs per call ------------------------------

    stock_batch_size: ClassVar[int] = GRAPHQL_MAX_INPUT
    # Calls in flight per store: a mutation costs 10 points, so even the Standard bucket (100 points/s) takes a few
    # at once; more would only queue on the bucket.
    stock_concurrency: ClassVar[int] = 4

    def set_stock_many(self, pushes: list[StockPush]) -> None:
        """Set every quantity in one ``inventorySetQuantities`` call (at most 250 SKUs).

        A push needs the variant's inventory item and the location, both GraphQL ids. They come from
        ``cached_ids`` when an earlier push found them for the same variant; otherwise one lookup finds them for
        every uncached variant of the batch at once (and the location once), and ``found_ids`` hands them back
        to be cached. Failures are recorded per push: a push that cannot be addressed fails alone; a refused
        mutation fails the pushes it names, and the rest of the batch (not applied either) is retried.
        """
        location = None
        ready: list[tuple[StockPush, dict]] = []
        lookup: list[StockPush] = []
        for push in pushes:
            cached = push.cached_ids or {}
            if (cached.get("variant") == push.platform_sku_id and cached.get("inventory_item_id")
                    and cached.get("location_id")):
                ready.append((push, cached))
            else:
                lookup.append(push)
        if lookup:
            try:
                location = self._location_gid()
                items = self._inventory_items(lookup)
            except ConnectorError as exc:
                for push in lookup:
                    push.error = exc
                items = {}
            for push in lookup:
                if push.error is not None:
                    continue
                item = items.get(id(push))
                if item is None:
                    push.error = PermanentError(f"Shopify: no variant {push.platform_sku_id or push.sku!r} with an "
                                                f"inventory item in product {push.platform_product_id}",
                                                code="unknown_sku")
                    push.found_ids = {}
                    continue
                push.found_ids = {"variant": push.platform_sku_id, "inventory_item_id": item, "location_id": location}
                ready.append((push, push.found_ids))
        if not ready:
            return
        try:
            errors = self.client.set_available_quantities(
                [{"inventoryItemId": ids["inventory_item_id"], "locationId": ids["location_id"],
                  "quantity": push.quantity} for push, ids in ready])
        except ConnectorError as exc:
            for push, _ids in ready:
                push.error = exc
            return
        if not errors:
            return
        # Nothing of a refused mutation is applied (NOT CONFIRMED for partial failures, see API_FACTS.md §1.7):
        # the named quantities fail for good, the others are only retried.
        named: dict[int, str] = {}
        for error in errors:
            path = [str(part) for part in error.get("field") or []]
            index = next((int(part) for part in path[2:3] if QUANTITY_PATH.match(part)), None)
            if index is not None and 0 <= index < len(ready):
                named[index] = f"{error.get('code') or ''} {error.get('message') or ''}".strip()
        summary = "; ".join(f"{e.get('code') or ''} {e.get('message') or ''}".strip() for e in errors)
        for index, (push, _ids) in enumerate(ready):
            if index in named:
                push.error = PermanentError(f"Shopify inventorySetQuantities: {named[index]}", code="user_error")
                push.found_ids = {}  # the ids may be what is wrong: look them up again next time
            elif named:
                push.error = TransientError("Shopify inventorySetQuantities: not applied, another SKU of the "
                                            f"batch was refused ({summary})", code="batch_refused")
            else:
                push.error = PermanentError(f"Shopify inventorySetQuantities: {summary}", code="user_error")

    def _inventory_items(self, pushes: list[StockPush]) -> dict[int, str]:
        """id(push) → the gid of its variant's inventory item: by variant id in one lookup for them all; a push
        without a variant id is found by SKU code in its product (REST, one product read each)."""
        by_variant = [push for push in pushes if push.platform_sku_id]
        found = self.client.inventory_item_ids([push.platform_sku_id for push in by_variant]) if by_variant else {}
        items = {id(push): found[push.platform_sku_id] for push in by_variant if push.platform_sku_id in found}
        for push in pushes:
            if push.platform_sku_id:
                continue
            variants = self.client.get_product(push.platform_product_id).get("variants") or []
            matches = [v for v in variants if v.get("sku") == push.sku] if push.sku else variants
            if len(matches) == 1 and matches[0].get("inventory_item_id"):
                items[id(push)] = gid("InventoryItem", matches[0]["inventory_item_id"])
        return items

    def _location_gid(self) -> str:
        configured = str(self.credentials.get("location_id") or "")
        if configured:
            return gid("Location", configured)
        if "_stock_location" not in self.__dict__:  # asked once per connector (one flush), not per batch
            active = self.client.active_location_ids()
            if len(active) != 1:
                raise PermanentError(f"Shopify store has {'several' if active else 'no'} active locations: set "
                                     f"location_id in its credentials", code="location")
            self.__dict__["_stock_location"] = active[0]
        return self.__dict__["_stock_location"]

    def _location_id(self) -> str:
        configured = str(self.credentials.get("location_id") or "")
        if configured:
            return configured
        # A shop with one active location needs no setting; with several, which one we stock is a decision.
        active = [location for location in self.client.locations() if location.get("active", True)]
        if len(active) != 1:
            raise PermanentError(f"Shopify store has {len(active)} active locations: set location_id in its "
                                 f"credentials", code="location")
        return str(active[0]["id"])
