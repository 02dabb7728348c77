"""Shopify sandbox: the Admin REST endpoints the hub uses (cursor paging, a leaky bucket, HMAC webhooks) and the
GraphQL stock calls (inventorySetQuantities, variant and location lookups) with a calculated-cost bucket."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from gateway.sandbox import Request, Response, Sandbox

DEFAULT_SKUS = [("TEA-LJ-250G", "37.99"), ("TEA-PE-357G", "22.50"), ("CUP-CER-350", "12.00"),
                ("CUP-THM-500-BLK", "24.99"), ("APP-TEE-M-WHT", "19.00")]
TITLES = {"TEA-LJ-250G": "Longjing Green Tea 250 g", "TEA-PE-357G": "Ripe Pu'er Cake 357 g",
          "CUP-CER-350": "Ceramic Mug 350 ml", "CUP-THM-500-BLK": "Insulated Bottle 500 ml - Black",
          "APP-TEE-M-WHT": "Cotton T-Shirt - White / M"}
# (country code, country, province, province code, city, street, zip, phone prefix); 555-01xx and
# 020 7946 0xxx are reserved for fiction.
ADDRESSES = [
    ("US", "United States", "New York", "NY", "New York", "Broadway", "10012", "+1 212-555-01"),
    ("US", "United States", "California", "CA", "San Francisco", "Market Street", "94103", "+1 415-555-01"),
    ("US", "United States", "Washington", "WA", "Seattle", "Pine Street", "98101", "+1 206-555-01"),
    ("US", "United States", "Texas", "TX", "Austin", "Congress Avenue", "78701", "+1 512-555-01"),
    ("GB", "United Kingdom", "England", "ENG", "London", "Baker Street", "NW1 6XE", "+44 20 7946 0"),
    ("GB", "United Kingdom", "Scotland", "SCT", "Edinburgh", "Princes Street", "EH2 2ER", "+44 20 7946 0"),
    ("DE", "Germany", "Berlin", "BE", "Berlin", "Friedrichstraße", "10117", "+49 30 5558 0"),
    ("DE", "Germany", "Bavaria", "BY", "München", "Leopoldstraße", "80802", "+49 89 5558 0"),
]
NAMES = [("Emily", "Johnson"), ("Michael", "Smith"), ("Sarah", "Williams"), ("David", "Brown"),
         ("Sophie", "Clarke"), ("Oliver", "Hughes"), ("Lukas", "Müller"), ("Anna", "Schmidt")]
TAX_RATES = {"US": Decimal("0.08")}  # UK/DE prices include VAT in this shop, so no tax line is added
FREE_SHIPPING_FROM = Decimal("50.00")
SHIPPING_PRICE = Decimal("6.90")
CENT = Decimal("0.01")
SHOP_TZ = timezone(timedelta(hours=-5))  # the shop's zone, like the Shopify samples (-05:00)

UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
NOT_FOUND = {"errors": "Not Found"}
THROTTLED = {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                       "uninterrupted service."}
NOT_OPEN = {"errors": ["The fulfillment order is not in an open state."]}
BAD_QUANTITY = {"errors": ["Invalid fulfillment order line item quantity requested."]}
PAGE_INFO_HELP = "See https://shopify.dev/api/usage/pagination-rest for more information."
# Parameters the cursor carries; with page_info only limit and fields may accompany it.
FILTERS = ("ids", "status", "updated_at_min", "updated_at_max", "created_at_min", "created_at_max",
           "financial_status", "order")
ALLOWED_WITH_PAGE_INFO = frozenset({"limit", "fields", "page_info"})
MAX_LIMIT = 250  # orders.json page size (API_FACTS §1.2)
ROUTE = re.compile(r"^/admin/api/(?P<version>\d{4}-\d{2}|unstable)/(?P<rest>.+)$")
# The stable versions served as of 2026-12 (quarterly, each for at least 12 months). An expired (or unknown)
# version is answered by the oldest supported one, named in X-Shopify-API-Version (API_FACTS.md §1.10).
SUPPORTED_VERSIONS = ("2026-01", "2026-04", "2026-07", "2026-10")
SANDBOX_API_VERSION = "2026-10"
AUTHORIZATION_PERIOD = timedelta(days=7)  # Shopify Payments; other gateways differ (API_FACTS.md §1.11)
# GraphQL Admin API (API_FACTS.md §1.3, §1.7). Restore rates are Shopify's (Standard 100 points/s, Plus 1000/s);
# the bucket sizes are NOT CONFIRMED and chosen small (Standard 1000, Plus 2000) so a client that ignores the
# bucket is caught. A mutation costs 10 points; a node lookup 1 per node plus 1 for its inventory item.
GRAPHQL_BUCKETS = {"standard": (1000.0, 100.0), "plus": (2000.0, 1000.0)}
GRAPHQL_MAX_INPUT = 250
MUTATION_COST = 10
QUANTITY_LIMIT = 1_000_000_000
STOCK_REASONS = frozenset({"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
                           "movement_received", "movement_canceled", "other", "promotion", "quality_control",
                           "received", "reservation_created", "reservation_deleted", "reservation_updated",
                           "restock", "safety_stock", "shrinkage"})
GID = re.compile(r"^gid://shopify/(?P<kind>\w+)/(?P<id>\d+)$")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _money_set(value: Decimal) -> dict:
    amount = {"amount": _money(value), "currency_code": "USD"}
    return {"shop_money": amount, "presentment_money": dict(amount)}


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHOP_TZ)


def sandbox_webhook_hmac(secret: str, body: bytes) -> str:
    """X-Shopify-Hmac-Sha256 (API_FACTS §1.5): base64 of HMAC-SHA256 over the raw body, keyed with the app secret.

    Written here from the documentation, not taken from the hub's verifier, so a wrong algorithm on either
    side shows up (checked against the §1.9 vector in tests/connectors/test_sandbox_strict.py).
    """
    return base64.b64encode(hmac.HMAC(secret.encode("utf-8"), body, "sha256").digest()).decode("ascii")


def _b64_encode(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _b64_decode(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


class ShopifySandbox(Sandbox):
    """An emulated Shopify store (API_FACTS.md §1, checklist §1.9)."""

    platform = "shopify"

    def __init__(self, *, access_token: str | None = None, api_secret: str | None = None,
                 shop_domain: str | None = None, skus: list[tuple[str, str]] | None = None,
                 api_version: str | None = None, supported_versions: tuple[str, ...] | None = None,
                 bucket_size: int = 40, leak_rate: float = 2.0,
                 throttle: bool = True, graphql_bucket: tuple[float, float] = GRAPHQL_BUCKETS["standard"],
                 **kwargs):
        super().__init__(**kwargs)
        # Explicit arguments first, then a store's credentials (so a sandbox can stand in for that store).
        given = self.credentials
        self.access_token = access_token or given.get("access_token") or "shpat_sandbox"
        self.api_secret = api_secret or given.get("api_secret") or "shpss_sandbox"
        self.shop_domain = shop_domain or given.get("shop_domain") or "sandbox-shop.myshopify.com"
        self.api_version = api_version or given.get("api_version") or SANDBOX_API_VERSION
        self.supported_versions = tuple(supported_versions or SUPPORTED_VERSIONS)
        self.transactions: dict[str, list[dict]] = {}  # order id → its payment transactions
        self.skus = [(str(code), str(price)) for code, price, *_ in (skus or DEFAULT_SKUS)]
        self.bucket_size = bucket_size
        self.leak_rate = leak_rate
        self.throttle = throttle
        self.location_id = 68000000001
        self.inventory_levels: dict[tuple[int, int], int] = {}
        self.fulfillment_orders: dict[str, list[dict]] = {}  # order id → its fulfillment orders
        self._bucket_level = 0.0
        self._bucket_at = time.monotonic()
        # GraphQL's calculated-cost bucket: (size, restore per second) and the points available now.
        self.graphql_bucket = (float(graphql_bucket[0]), float(graphql_bucket[1]))
        self._points = self.graphql_bucket[0]
        self._points_at = time.monotonic()
        self.graphql_calls: list[dict] = []  # every GraphQL request that got past the bucket: operation, size
        self._idempotent: OrderedDict[str, dict] = OrderedDict()  # @idempotent key → the answer it got
        # The next n refundCreate calls are made but their answer is lost (a 504 after the refund): a retry
        # must not refund twice.
        self.lose_refund_answers = 0
        self._variants_by_id: dict[int, dict] | None = None
        self._next_order_id = 5100000000
        self._next_number = 1001
        self._next_id = 13000000000  # line items, customers, fulfillment orders, fulfillments
        self._event_ids: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.credentials.update(self.connector_credentials())

    # --- Clock, ids, catalogue ------------------------------------------------------------------

    @staticmethod
    def iso(value: datetime) -> str:
        return value.astimezone(SHOP_TZ).isoformat(timespec="seconds")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def variant(self, sku: str) -> dict:
        """The stable catalogue ids of one SKU (what a store's SKU mapping would hold)."""
        index = next((i for i, (code, _price) in enumerate(self.skus) if code == sku), None)
        if index is None:
            digest = int(hashlib.sha256(sku.encode()).hexdigest()[:8], 16)
            index = 1000 + digest % 100000
        return {"product_id": 8100000000 + index, "variant_id": 4410000000 + index,
                "inventory_item_id": 4620000000 + index, "location_id": self.location_id}

    def connector_credentials(self) -> dict:
        """Credentials a ShopifyConnector needs to talk to this sandbox (valid once it is started)."""
        return {"base_url": self.base_url, "access_token": self.access_token, "api_secret": self.api_secret,
                "api_version": self.api_version, "shop_domain": self.shop_domain}

    def start(self) -> str:
        url = super().start()
        self.credentials.update(self.connector_credentials())  # the port is known only now
        return url

    # --- Orders ----------------------------------------------------------------------------------

    def order_id(self, order: dict) -> str:
        return str(order["id"])

    def generate_order(self) -> dict:
        rng = self.rng
        now = self.now()
        order_id = self._next_order_id
        self._next_order_id += 1
        number = self._next_number
        self._next_number += 1
        country, country_name, province, province_code, city, street, zip_code, phone = rng.choice(ADDRESSES)
        first, last = rng.choice(NAMES)
        phone = f"{phone}{rng.randint(0, 99):02d}"
        email = f"{first}.{last}{rng.randint(1, 999)}@example.com".lower().replace("ü", "ue")
        address = {"first_name": first, "last_name": last, "name": f"{first} {last}", "company": None,
                   "address1": f"{rng.randint(1, 999)} {street}",
                   "address2": rng.choice(["", "", f"Apt {rng.randint(1, 40)}"]),
                   "city": city, "province": province, "province_code": province_code, "country": country_name,
                   "country_code": country, "zip": zip_code, "phone": phone, "latitude": None, "longitude": None}
        line_items, subtotal = [], Decimal("0")
        for code, price in rng.sample(self.skus, k=min(len(self.skus), rng.randint(1, 3))):
            quantity = rng.choice([1, 1, 1, 2, 3])
            unit = Decimal(price)
            subtotal += unit * quantity
            ids = self.variant(code)
            line_id = self._new_id()
            title = TITLES.get(code, code)
            line_items.append({
                "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                "variant_id": ids["variant_id"], "product_id": ids["product_id"], "sku": code,
                "title": title, "variant_title": None, "name": title, "vendor": "Order Hub Sandbox",
                "quantity": quantity, "current_quantity": quantity, "fulfillable_quantity": quantity,
                "price": _money(unit), "price_set": _money_set(unit), "total_discount": "0.00",
                "fulfillment_status": None, "fulfillment_service": "manual", "requires_shipping": True,
                "taxable": True, "gift_card": False, "grams": 300, "properties": [], "discount_allocations": [],
                "tax_lines": [],
            })
        discount_codes, discount = [], Decimal("0")
        if rng.random() < 0.2:
            discount = (subtotal * Decimal("0.10")).quantize(CENT, rounding=ROUND_HALF_UP)
            discount_codes = [{"code": "WELCOME10", "amount": _money(discount), "type": "percentage"}]
        shipping = Decimal("0") if subtotal >= FREE_SHIPPING_FROM else SHIPPING_PRICE
        rate = TAX_RATES.get(country, Decimal("0"))
        tax = ((subtotal - discount) * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        total = subtotal - discount + shipping + tax
        financial = rng.choices(["paid", "pending", "authorized"], weights=[85, 10, 5])[0]
        customer_id = self._new_id()
        created = self.iso(now)
        return {
            "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{number}", "number": number - 1000, "order_number": number,
            "email": email, "contact_email": email, "phone": None,
            "currency": "USD", "presentment_currency": "USD",
            "financial_status": financial, "fulfillment_status": None, "confirmed": True,
            "created_at": created, "updated_at": created, "processed_at": created,
            "cancelled_at": None, "cancel_reason": None, "closed_at": None,
            "subtotal_price": _money(subtotal), "total_line_items_price": _money(subtotal),
            "total_discounts": _money(discount), "total_tax": _money(tax), "total_price": _money(total),
            "current_total_price": _money(total),
            "total_outstanding": "0.00" if financial == "paid" else _money(total),
            "taxes_included": country != "US",
            "total_price_set": _money_set(total), "total_shipping_price_set": _money_set(shipping),
            "total_discounts_set": _money_set(discount), "total_tax_set": _money_set(tax),
            "discount_codes": discount_codes,
            "tax_lines": [{"price": _money(tax), "rate": float(rate), "title": "State Tax"}] if tax else [],
            "line_items": line_items,
            "shipping_lines": [{"id": self._new_id(), "code": "Standard" if shipping else "Free Shipping",
                                "title": "Standard" if shipping else "Free Shipping", "source": "shopify",
                                "price": _money(shipping), "discounted_price": _money(shipping),
                                "carrier_identifier": None, "tax_lines": []}],
            "shipping_address": address, "billing_address": dict(address),
            "customer": {"id": customer_id, "email": email, "first_name": first, "last_name": last,
                         "phone": phone, "state": "enabled", "currency": "USD", "created_at": created,
                         "updated_at": created, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}"},
            "fulfillments": [], "refunds": [],
            "note": rng.choice([None, None, None, "Please gift wrap", "Leave at the front desk"]),
            "note_attributes": [], "tags": "", "test": False, "source_name": "web",
            "payment_gateway_names": ["shopify_payments"],
            "token": f"{rng.getrandbits(128):032x}",
        }

    def _bumped(self, order: dict) -> dict:
        """A copy of ``order`` whose updated_at is the sandbox's now, and strictly later than before."""
        changed = copy.deepcopy(order)
        now = self.now()
        previous = order.get("updated_at")
        if previous:
            earliest = _parse_time(previous).astimezone(UTC) + timedelta(seconds=1)
            now = max(now, earliest)
        changed["updated_at"] = self.iso(now)
        return changed

    def update_order(self, order_id: str | int, *, topic: str = "orders/updated", **changes) -> dict:
        """Apply top-level field changes (datetimes become Shopify times), bump updated_at and push."""
        with self.lock:
            current = self.orders.get(str(order_id))
            if current is None:
                raise KeyError(f"no sandbox order {order_id}")
            order = self._bumped(current)
            for key, value in changes.items():
                order[key] = self.iso(value) if isinstance(value, datetime) else value
            self.put_order(order, push=False)
        if self.webhook_url:
            self.push(topic, order)
        return order

    # --- Webhooks ----------------------------------------------------------------------------------

    @staticmethod
    def webhook_body(order: dict) -> bytes:
        return json.dumps(order, separators=(",", ":"), ensure_ascii=False).encode()

    def push(self, topic: str, order: dict) -> None:
        # One event per change: duplicate (and held-back) deliveries of it share this X-Shopify-Event-Id.
        key = (topic, hashlib.sha256(self.webhook_body(order)).hexdigest())
        with self.lock:
            self._event_ids[key] = str(uuid.uuid4())
            while len(self._event_ids) > 10000:
                self._event_ids.popitem(last=False)
        super().push(topic, order)

    def deliver_webhook(self, topic: str, order: dict) -> None:
        body = self.webhook_body(order)
        key = (topic, hashlib.sha256(body).hexdigest())
        with self.lock:
            event_id = self._event_ids.get(key) or str(uuid.uuid4())
        signature = sandbox_webhook_hmac(self.api_secret, body)
        headers = {
            "Content-Type": "application/json", "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": self.shop_domain, "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.post_webhook(body=body, headers=headers, topic=topic, order_id=self.order_id(order))

    def _push_later(self, topic: str, order: dict) -> None:
        # Changes made through the API push from another thread, as Shopify does: the API call must not
        # wait for (or deadlock with) a hub that calls back into this sandbox while receiving the webhook.
        if self.webhook_url:
            threading.Thread(target=self.push, args=(topic, order), name="shopify-sandbox-webhook",
                             daemon=True).start()

    # --- Rate limit -----------------------------------------------------------------------------------

    def _leak(self) -> float:
        now = time.monotonic()
        self._bucket_level = max(0.0, self._bucket_level - (now - self._bucket_at) * self.leak_rate)
        self._bucket_at = now
        return self._bucket_level

    def _call_limit(self) -> str:
        with self.lock:
            return f"{math.ceil(self._leak())}/{self.bucket_size}"

    def _take_call(self) -> float | None:
        """Count one call; None when it fits in the bucket, else the seconds until one does."""
        with self.lock:
            level = self._leak()
            if self.throttle and level + 1 > self.bucket_size:
                return (level + 1 - self.bucket_size) / self.leak_rate
            self._bucket_level = level + 1
            return None

    def _restore_points(self) -> float:
        size, restore = self.graphql_bucket
        now = time.monotonic()
        self._points = min(size, self._points + (now - self._points_at) * restore)
        self._points_at = now
        return self._points

    def _throttle_status(self) -> dict:
        size, restore = self.graphql_bucket
        return {"maximumAvailable": size, "currentlyAvailable": math.floor(self._restore_points()),
                "restoreRate": restore}

    def _take_points(self, cost: int) -> bool:
        """Take ``cost`` points when the bucket holds them (False: throttled, nothing taken)."""
        with self.lock:
            if self.throttle and self._restore_points() < cost:
                return False
            self._points -= cost
            return True

    def _throttled(self, retry_after: float) -> Response:
        return Response(429, THROTTLED, {"Retry-After": f"{max(math.ceil(retry_after * 10) / 10, 0.1):.1f}",
                                         "X-Shopify-Shop-Api-Call-Limit": self._call_limit()})

    def rate_limited_response(self) -> Response:
        return self._throttled(1.0)

    def server_error_response(self) -> Response:
        return Response(503, {"errors": "Service Unavailable"},
                        {"X-Shopify-Shop-Api-Call-Limit": self._call_limit()})

    # --- API ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.fulfillment_orders.clear()
            self.transactions.clear()
            self.inventory_levels.clear()
            self._event_ids.clear()
            self._bucket_level = 0.0
            self._points = self.graphql_bucket[0]
            self.graphql_calls.clear()
            self._idempotent.clear()

    def handle_api(self, request: Request) -> Response:
        match = ROUTE.match(request.path)
        if match is None:
            response = Response(404, NOT_FOUND)
        elif not hmac.compare_digest(request.headers.get("x-shopify-access-token", "").encode(),
                                     self.access_token.encode()):
            response = Response(401, UNAUTHORIZED)
        elif request.method == "POST" and match["rest"] == "graphql.json":
            # GraphQL has its own (cost) bucket, not the REST request bucket.
            response = self._graphql(request, match["version"])
        else:
            wait = self._take_call()
            if wait is not None:
                return self._throttled(wait)
            response = self._route(request, match["rest"], match["version"])
        response.headers.setdefault("X-Shopify-Shop-Api-Call-Limit", self._call_limit())
        if match is not None:
            response.headers.setdefault("X-Shopify-API-Version", self.served_version(match["version"]))
        return response

    def _route(self, request: Request, rest: str, version: str) -> Response:
        method = request.method
        if method == "GET" and rest == "orders.json":
            return self._list_orders(request, version)
        if method == "GET" and rest == "orders/count.json":
            orders, error = self._filtered(request.query)
            return error or Response(200, {"count": len(orders)})
        if method == "POST" and rest == "fulfillments.json":
            return self._create_fulfillment(request)
        if method == "POST" and rest == "inventory_levels/set.json":
            return self._set_inventory_level(request)
        if method == "GET" and rest == "locations.json":
            return Response(200, {"locations": [self._location()]})
        catalogue = re.fullmatch(r"(variants|products)/(\d+)\.json", rest)
        if method == "GET" and catalogue:
            return self._catalogue(catalogue[1], int(catalogue[2]))
        paying = re.fullmatch(r"orders/(\d+)/transactions\.json", rest)
        if paying and method in ("GET", "POST"):
            return self._transactions(request, paying[1])
        found = re.fullmatch(r"orders/(\d+)(/fulfillment_orders)?\.json", rest)
        if method == "GET" and found:
            with self.lock:
                order = self.orders.get(found[1])
                if order is None:
                    return Response(404, NOT_FOUND)
                if found[2]:
                    fulfillment_orders = copy.deepcopy(self._fulfillment_orders_for(order))
                    return Response(200, {"fulfillment_orders": fulfillment_orders})
            return Response(200, {"order": order})
        return Response(404, NOT_FOUND)

    # --- orders.json ----------------------------------------------------------------------------------

    def _filtered(self, filters: dict) -> tuple[list[dict], Response | None]:
        """Orders matching the filters, sorted by (updated_at, id) — or the 400 for a bad filter."""
        bounds = {}
        for name in ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max"):
            if filters.get(name):
                try:
                    bounds[name] = _parse_time(filters[name])
                except ValueError:
                    return [], Response(400, {"errors": {name: f"{name} is not a valid date"}})
        status = filters.get("status") or "open"
        if status not in ("open", "closed", "cancelled", "any"):
            return [], Response(400, {"errors": {"status": f"{status} is not a valid status"}})
        ids = {part.strip() for part in filters.get("ids", "").split(",") if part.strip()}
        financial = filters.get("financial_status") or "any"
        with self.lock:
            snapshot = list(self.orders.values())
        matched = []
        for order in snapshot:
            updated, created = _parse_time(order["updated_at"]), _parse_time(order["created_at"])
            if status == "open" and (order.get("cancelled_at") or order.get("closed_at")):
                continue
            if status == "closed" and not order.get("closed_at"):
                continue
            if status == "cancelled" and not order.get("cancelled_at"):
                continue
            if ids and str(order["id"]) not in ids:
                continue
            if financial != "any" and order.get("financial_status") != financial:
                continue
            if (("updated_at_min" in bounds and updated < bounds["updated_at_min"])
                    or ("updated_at_max" in bounds and updated > bounds["updated_at_max"])
                    or ("created_at_min" in bounds and created < bounds["created_at_min"])
                    or ("created_at_max" in bounds and created > bounds["created_at_max"])):
                continue
            matched.append((updated, int(order["id"]), order))
        matched.sort(key=lambda row: row[:2])
        return [order for _updated, _id, order in matched], None

    def _list_orders(self, request: Request, version: str) -> Response:
        query = request.query
        try:
            limit = int(query.get("limit") or 50)
        except ValueError:
            return Response(400, {"errors": {"limit": "limit must be an integer"}})
        if limit < 1:
            return Response(400, {"errors": {"limit": "limit must be at least 1"}})
        if limit > MAX_LIMIT:
            # Refused rather than quietly capped: a caller asking for more than 250 would otherwise
            # believe it got a full page. Shopify's exact answer here is NOT CONFIRMED (API_FACTS §1.2).
            return Response(400, {"errors": {"limit": f"limit must be at most {MAX_LIMIT}"}})
        page_info = query.get("page_info")
        if page_info:
            extra = sorted(set(query) - ALLOWED_WITH_PAGE_INFO)
            if extra:
                return Response(400, {"errors": {name: f"{name} cannot be passed when page_info is present. "
                                                       f"{PAGE_INFO_HELP}" for name in extra}})
            try:
                cursor = _b64_decode(page_info)
                filters, direction = dict(cursor["filters"]), cursor["direction"]
                last = (_parse_time(cursor["last_value"]), int(cursor["last_id"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                return Response(400, {"errors": {"page_info": "Invalid value."}})
        else:
            filters = {name: query[name] for name in FILTERS if query.get(name)}
            direction, last = "next", None
        orders, error = self._filtered(filters)
        if error:
            return error
        keys = [(_parse_time(order["updated_at"]), int(order["id"])) for order in orders]
        # Keyset paging (last sort value + id, as Shopify's cursors hold) rather than offsets, so orders
        # updated while a client pages move to the end instead of shifting the pages under it.
        if last is None:
            start, stop = 0, min(limit, len(orders))
        elif direction == "next":
            start = next((i for i, key in enumerate(keys) if key > last), len(keys))
            stop = min(start + limit, len(orders))
        else:
            stop = next((i for i, key in enumerate(keys) if key >= last), len(keys))
            start = max(stop - limit, 0)
        page = orders[start:stop]
        fields = [name.strip() for name in query.get("fields", "").split(",") if name.strip()]
        body = [{name: order[name] for name in fields if name in order} if fields else order for order in page]
        links = []
        if page and start > 0:
            links.append(self._link(version, limit, query, filters, "prev", page[0], "previous"))
        if page and stop < len(orders):
            links.append(self._link(version, limit, query, filters, "next", page[-1], "next"))
        headers = {"Link": ", ".join(links)} if links else {}
        return Response(200, {"orders": body}, headers)

    def _link(self, version: str, limit: int, query: dict, filters: dict, direction: str, order: dict,
              rel: str) -> str:
        token = _b64_encode({"direction": direction, "last_id": int(order["id"]),
                             "last_value": _parse_time(order["updated_at"]).astimezone(UTC).isoformat(),
                             "filters": filters})
        params = {"limit": limit, "page_info": token}
        if query.get("fields"):
            params["fields"] = query["fields"]
        return f'<{self.base_url}/admin/api/{version}/orders.json?{urlencode(params)}>; rel="{rel}"'

    # --- Catalogue ------------------------------------------------------------------------------------

    def _location(self) -> dict:
        return {"id": self.location_id, "name": "Sandbox Warehouse", "active": True, "address1": "500 Harbor Blvd",
                "city": "Weehawken", "province": "New Jersey", "province_code": "NJ", "country_code": "US",
                "zip": "07086", "legacy": False,
                "admin_graphql_api_id": f"gid://shopify/Location/{self.location_id}"}

    def _variant_json(self, code: str, price: str) -> dict:
        ids = self.variant(code)
        return {"id": ids["variant_id"], "product_id": ids["product_id"], "title": "Default Title", "sku": code,
                "price": price, "position": 1, "option1": "Default Title", "inventory_policy": "deny",
                "inventory_management": "shopify", "inventory_item_id": ids["inventory_item_id"],
                "inventory_quantity": self.inventory_levels.get((ids["inventory_item_id"], self.location_id), 0),
                "requires_shipping": True, "taxable": True, "grams": 300,
                "admin_graphql_api_id": f"gid://shopify/ProductVariant/{ids['variant_id']}"}

    def _catalogue(self, kind: str, wanted: int) -> Response:
        """One product per configured SKU, each with a single variant (what a small shop looks like)."""
        with self.lock:
            for code, price in self.skus:
                variant = self._variant_json(code, price)
                if kind == "variants" and variant["id"] == wanted:
                    return Response(200, {"variant": variant})
                if kind == "products" and variant["product_id"] == wanted:
                    return Response(200, {"product": {
                        "id": wanted, "title": TITLES.get(code, code), "status": "active", "vendor": "Order Hub Sandbox",
                        "variants": [variant], "admin_graphql_api_id": f"gid://shopify/Product/{wanted}"}})
        return Response(404, NOT_FOUND)

    # --- Fulfilment -----------------------------------------------------------------------------------

    def _fulfillment_orders_for(self, order: dict) -> list[dict]:
        """The order's fulfillment orders (one, at the shop's location), created on first use."""
        order_id = str(order["id"])
        fulfillment_orders = self.fulfillment_orders.get(order_id)
        if fulfillment_orders is None:
            fo_id = self._new_id()
            lines = [{"id": self._new_id(), "shop_id": 1, "fulfillment_order_id": fo_id,
                      "line_item_id": item["id"], "inventory_item_id": self.variant(item.get("sku") or "")[
                          "inventory_item_id"], "variant_id": item.get("variant_id"),
                      "quantity": item.get("current_quantity", item["quantity"]),
                      "fulfillable_quantity": item.get("fulfillable_quantity", item["quantity"])}
                     for item in order.get("line_items", []) if item.get("requires_shipping", True)]
            address = order.get("shipping_address") or {}
            fulfillment_orders = [{
                "id": fo_id, "shop_id": 1, "order_id": order["id"], "assigned_location_id": self.location_id,
                "request_status": "unsubmitted",
                "status": "open" if any(line["fulfillable_quantity"] for line in lines) else "closed",
                "supported_actions": ["create_fulfillment", "move"], "fulfillment_holds": [],
                "destination": {key: address.get(key) for key in ("first_name", "last_name", "address1",
                                                                   "address2", "city", "province", "country",
                                                                   "zip", "phone")},
                "delivery_method": {"method_type": "shipping"}, "line_items": lines,
                "created_at": order.get("created_at"), "updated_at": order.get("created_at"),
            }]
            self.fulfillment_orders[order_id] = fulfillment_orders
        if order.get("cancelled_at"):
            for fo in fulfillment_orders:
                if fo["status"] in ("open", "in_progress"):
                    fo["status"], fo["supported_actions"] = "closed", []
        return fulfillment_orders

    def _create_fulfillment(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": "The request body is not valid JSON."})
        fulfillment = body.get("fulfillment") if isinstance(body, dict) else None
        if not isinstance(fulfillment, dict):
            return Response(400, {"errors": {"fulfillment": "Required parameter missing or invalid"}})
        groups = fulfillment.get("line_items_by_fulfillment_order")
        if not isinstance(groups, list) or not groups:
            return Response(422, {"errors": ["Line items by fulfillment order can't be blank."]})
        tracking = fulfillment.get("tracking_info") or {}
        if not isinstance(tracking, dict):
            return Response(400, {"errors": {"tracking_info": "Required parameter missing or invalid"}})
        with self.lock:
            by_id = {fo["id"]: (order_id, fo) for order_id, fos in self.fulfillment_orders.items() for fo in fos}
            plan: list[tuple[dict, dict, int]] = []  # (FO, FO line, quantity)
            order_ids = set()
            for group in groups:
                found = by_id.get(group.get("fulfillment_order_id")) if isinstance(group, dict) else None
                if found is None:
                    return Response(404, NOT_FOUND)
                order_id, fo = found
                order_ids.add(order_id)
                if fo["status"] not in ("open", "in_progress"):
                    return Response(422, NOT_OPEN)
                wanted = group.get("fulfillment_order_line_items")
                if wanted is None:
                    plan += [(fo, line, line["fulfillable_quantity"]) for line in fo["line_items"]
                             if line["fulfillable_quantity"] > 0]
                    continue
                lines = {line["id"]: line for line in fo["line_items"]}
                for item in wanted if isinstance(wanted, list) else [None]:
                    line = lines.get(item.get("id")) if isinstance(item, dict) else None
                    quantity = item.get("quantity") if isinstance(item, dict) else None
                    if line is None or isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                        return Response(422, BAD_QUANTITY)
                    plan.append((fo, line, quantity))
            if len(order_ids) != 1:
                return Response(422, {"errors": ["All fulfillment orders must belong to the same order."]})
            if not plan:
                return Response(422, NOT_OPEN)
            asked: dict[int, int] = {}
            for _fo, line, quantity in plan:
                asked[line["id"]] = asked.get(line["id"], 0) + quantity
                if asked[line["id"]] > line["fulfillable_quantity"]:
                    return Response(422, BAD_QUANTITY)
            order_id = order_ids.pop()
            order = self._bumped(self.orders[order_id])
            items = {item["id"]: item for item in order["line_items"]}
            fulfilled = []
            for fo, line, quantity in plan:
                line["fulfillable_quantity"] -= quantity
                open_left = any(fo_line["fulfillable_quantity"] for fo_line in fo["line_items"])
                fo["status"] = "in_progress" if open_left else "closed"
                fo["updated_at"] = order["updated_at"]
                item = items[line["line_item_id"]]
                item["fulfillable_quantity"] = max(int(item.get("fulfillable_quantity", 0)) - quantity, 0)
                item["fulfillment_status"] = "partial" if item["fulfillable_quantity"] else "fulfilled"
                fulfilled.append({**copy.deepcopy(item), "quantity": quantity})
            shippable = [item for item in order["line_items"] if item.get("requires_shipping", True)]
            done = all(not item["fulfillable_quantity"] for item in shippable)
            order["fulfillment_status"] = "fulfilled" if done else "partial"
            fulfillment_id = self._new_id()
            number, company = str(tracking.get("number") or ""), str(tracking.get("company") or "")
            url = str(tracking.get("url") or "")
            record = {
                "id": fulfillment_id, "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
                "order_id": int(order_id), "name": f"{order.get('name', '')}.{len(order['fulfillments']) + 1}",
                "status": "success", "service": "manual", "shipment_status": None, "location_id": self.location_id,
                "created_at": order["updated_at"], "updated_at": order["updated_at"],
                "tracking_company": company or None, "tracking_number": number or None,
                "tracking_numbers": [number] if number else [],
                "tracking_url": url or None, "tracking_urls": [url] if url else [],
                "line_items": fulfilled,
            }
            order["fulfillments"] = [*order.get("fulfillments", []), record]
            self.put_order(order, push=False)
            self.record_push("fulfillment", order_id=order_id, fulfillment_id=str(fulfillment_id),
                             tracking_number=number, tracking_company=company, tracking_url=url,
                             notify_customer=bool(fulfillment.get("notify_customer")),
                             line_items=[{"line_item_id": str(item["id"]), "sku": item.get("sku") or "",
                                          "quantity": item["quantity"]} for item in fulfilled])
        self._push_later("orders/updated", order)
        return Response(201, {"fulfillment": record})

    # --- Versions and payments --------------------------------------------------------------------------

    def served_version(self, asked: str) -> str:
        """The version that answers: the asked one while supported, else the oldest supported (fall forward)."""
        if asked == "unstable" or asked in self.supported_versions:
            return asked
        return min(self.supported_versions)

    def _transaction(self, order: dict, *, kind: str, status: str, amount: str, parent_id: int | None = None,
                     at: datetime | None = None) -> dict:
        transaction_id = self._new_id()
        at = at or self.now()
        record = {
            "id": transaction_id, "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{transaction_id}",
            "order_id": order["id"], "kind": kind, "gateway": "shopify_payments", "status": status,
            "message": None, "created_at": self.iso(at), "processed_at": self.iso(at), "test": False,
            "authorization": f"auth-{transaction_id}" if kind == "authorization" else None,
            "parent_id": parent_id, "amount": amount, "currency": order.get("currency", "USD"),
            "source_name": "web", "error_code": None, "authorization_expires_at": None,
        }
        if kind == "authorization":
            record["authorization_expires_at"] = self.iso(at + AUTHORIZATION_PERIOD)
        return record

    def _transactions_for(self, order: dict) -> list[dict]:
        """The order's payment transactions, made on first use from its financial status."""
        order_id = str(order["id"])
        found = self.transactions.get(order_id)
        if found is None:
            financial, total = order.get("financial_status"), order.get("total_price", "0.00")
            created = _parse_time(order.get("processed_at") or order["created_at"])
            if financial == "authorized":
                # Manual capture: the money is only reserved, and stays so until captured (or it expires).
                found = [self._transaction(order, kind="authorization", status="success", amount=total, at=created)]
            elif financial in ("paid", "partially_refunded", "refunded"):
                found = [self._transaction(order, kind="sale", status="success", amount=total, at=created)]
            elif financial == "pending":
                found = [self._transaction(order, kind="sale", status="pending", amount=total, at=created)]
            else:
                found = []
            self.transactions[order_id] = found
        return found

    def _transactions(self, request: Request, order_id: str) -> Response:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(404, NOT_FOUND)
            transactions = self._transactions_for(order)
            if request.method == "GET":
                return Response(200, {"transactions": copy.deepcopy(transactions)})
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": "The request body is not valid JSON."})
        wanted = body.get("transaction") if isinstance(body, dict) else None
        if not isinstance(wanted, dict):
            return Response(400, {"errors": {"transaction": "Required parameter missing or invalid"}})
        if wanted.get("kind") != "capture":
            return Response(422, {"errors": {"kind": [f"{wanted.get('kind')!r} is not supported by this sandbox"]}})
        return self._capture(order_id, wanted)

    def _capture(self, order_id: str, wanted: dict) -> Response:
        with self.lock:
            order = self.orders[order_id]
            transactions = self._transactions_for(order)
            authorizations = [t for t in transactions if t["kind"] == "authorization" and t["status"] == "success"]
            parent_id = wanted.get("parent_id")
            if parent_id in (None, ""):
                if len(authorizations) != 1:  # which one is meant cannot be guessed
                    return Response(422, {"errors": {"parent_id": ["must name the authorization to capture"]}})
                parent = authorizations[0]
            else:
                parent = next((t for t in authorizations if str(t["id"]) == str(parent_id)), None)
                if parent is None:
                    return Response(422, {"errors": {"parent_id": ["is not an authorization of this order"]}})
            captured = sum((Decimal(t["amount"]) for t in transactions if t["kind"] == "capture"
                            and t["status"] == "success" and t["parent_id"] == parent["id"]), Decimal("0"))
            left = Decimal(parent["amount"]) - captured
            if left <= 0:
                # Shopify refuses a second capture of a fully captured authorization (422).
                return Response(422, {"errors": {"base": ["The authorization has already been captured."]}})
            if self.now() > _parse_time(parent["authorization_expires_at"]):
                return Response(422, {"errors": {"base": ["The authorization has expired."]}})
            currency = wanted.get("currency")
            if currency not in (None, "") and currency != parent["currency"]:
                return Response(422, {"errors": {"currency": [f"must be {parent['currency']}"]}})
            try:
                amount = left if wanted.get("amount") in (None, "") else Decimal(str(wanted["amount"]))
            except ArithmeticError:
                return Response(422, {"errors": {"amount": ["is not a number"]}})
            if not amount.is_finite() or amount <= 0 or amount > left:
                return Response(422, {"errors": {"amount": [f"must be more than 0 and at most {_money(left)}"]}})
            record = self._transaction(order, kind="capture", status="success", amount=_money(amount),
                                       parent_id=parent["id"])
            transactions.append(record)
            paid = sum((Decimal(t["amount"]) for t in transactions if t["kind"] in ("capture", "sale")
                        and t["status"] == "success"), Decimal("0"))
            order = self._bumped(order)
            order["financial_status"] = "paid" if paid >= Decimal(order["total_price"]) else "partially_paid"
            order["total_outstanding"] = _money(max(Decimal(order["total_price"]) - paid, Decimal("0")))
            self.put_order(order, push=False)
            self.record_push("capture", order_id=order_id, transaction_id=str(record["id"]),
                             parent_id=str(parent["id"]), amount=record["amount"], currency=record["currency"])
        self._push_later("orders/updated", order)
        return Response(201, {"transaction": record})

    # --- Inventory ------------------------------------------------------------------------------------

    def _set_inventory_level(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": "The request body is not valid JSON."})
        if not isinstance(body, dict):
            return Response(400, {"errors": {"inventory_item_id": "Required parameter missing or invalid"}})
        for name in ("location_id", "inventory_item_id", "available"):
            value = body.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                return Response(400, {"errors": {name: "Required parameter missing or invalid"}})
        item, location, available = body["inventory_item_id"], body["location_id"], body["available"]
        if location != self.location_id:
            return Response(422, {"errors": ["Inventory item is not stocked at the location"]})
        with self.lock:
            self.inventory_levels[(item, location)] = available
            self.record_push("inventory", inventory_item_id=item, location_id=location, available=available)
        return Response(200, {"inventory_level": {
            "inventory_item_id": item, "location_id": location, "available": available,
            "updated_at": self.iso(self.now()),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"}})

    # --- GraphQL: the stock calls ------------------------------------------------------------------------

    def _graphql(self, request: Request, version: str) -> Response:
        """POST graphql.json for the operations the stock push uses, told apart by their root field (the
        sandbox reads the operation's variables, it does not parse GraphQL)."""
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"errors": "The request body is not valid JSON."})
        query = body.get("query") if isinstance(body, dict) else None
        variables = body.get("variables") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return Response(400, {"errors": {"query": "Required parameter missing or invalid"}})
        variables = variables if isinstance(variables, dict) else {}
        if "inventorySetQuantities" in query:
            operation, cost = "inventorySetQuantities", MUTATION_COST
        elif "refundCreate" in query:
            operation, cost = "refundCreate", MUTATION_COST
        elif re.search(r"\bnodes\s*\(", query):
            ids = variables.get("ids")
            operation, cost = "nodes", 2 * len(ids) + 1 if isinstance(ids, list) else 1
        elif re.search(r"\blocations\s*\(", query):
            operation, cost = "locations", 4
        else:
            return Response(200, {"errors": [{"message": "This sandbox serves only the stock calls "
                                                         "(inventorySetQuantities, nodes, locations)",
                                              "extensions": {"code": "undefinedField"}}]})
        if not self._take_points(cost):
            with self.lock:
                status = self._throttle_status()
            # HTTP 200 with a THROTTLED error, as community examples show it (the status is NOT CONFIRMED; the
            # client accepts 429 too).
            return Response(200, {"errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                        "throttleStatus": status}}})
        with self.lock:
            self.graphql_calls.append({"operation": operation, "size": len(variables.get("ids") or []) or len(
                ((variables.get("input") or {}).get("quantities") or []) if isinstance(variables.get("input"), dict)
                else [])})
        if operation == "inventorySetQuantities":
            data = self._inventory_set_quantities(query, variables, version)
        elif operation == "refundCreate":
            data = self._refund_create(query, variables, version)
            with self.lock:
                lost, self.lose_refund_answers = self.lose_refund_answers > 0, max(self.lose_refund_answers - 1, 0)
            if lost:
                return Response(504, {"errors": "Gateway Timeout"})
        elif operation == "nodes":
            data = self._nodes(variables.get("ids"))
        else:
            data = {"locations": {"nodes": [{"id": f"gid://shopify/Location/{self.location_id}", "isActive": True}]}}
        if "errors" in data:
            answer = {"errors": data["errors"]}
        else:
            answer = {"data": data}
        with self.lock:
            answer["extensions"] = {"cost": {"requestedQueryCost": cost, "actualQueryCost": cost,
                                             "throttleStatus": self._throttle_status()}}
        return Response(200, answer)

    def _refund_create(self, query: str, variables: dict, version: str) -> dict:
        """refundCreate with REFUND transactions on the order's sale or capture (line items are not modelled).
        A repeat of an @idempotent key gets the first answer and refunds nothing more; the refund shows in the
        order's REST ``refunds`` and financial_status, as on Shopify."""
        key = re.search(r"@idempotent\s*\(\s*key\s*:\s*(?:\$(?P<var>\w+)|\"(?P<literal>[^\"]*)\")", query)
        idempotency_key = (str(variables.get(key["var"]) or "") if key and key["var"] else key["literal"]) if key else ""
        if not idempotency_key and self.served_version(version) >= "2026-04":
            return {"errors": [{"message": "The @idempotent directive is required for this mutation.",
                                "extensions": {"code": "BAD_REQUEST"}}]}
        data = variables.get("input")
        if not isinstance(data, dict) or not isinstance(data.get("transactions"), list) or not data["transactions"]:
            return {"errors": [{"message": "Variable $input of type RefundInput! was provided invalid value",
                                "extensions": {"code": "INVALID_VARIABLE"}}]}
        fingerprint = json.dumps(data, sort_keys=True)
        with self.lock:
            earlier = self._idempotent.get(idempotency_key) if idempotency_key else None
            if earlier is not None:  # a retry of the same request: the first answer, refunded once
                if earlier["fingerprint"] != fingerprint:
                    return {"refundCreate": {"refund": None, "userErrors": [{
                        "field": ["input"], "message": "The same idempotency key cannot be used with different "
                                                       "operation parameters."}]}}
                return earlier["data"]
            result = self._refund_apply(data)
            if idempotency_key:
                self._idempotent[idempotency_key] = {"fingerprint": fingerprint, "data": result}
                while len(self._idempotent) > 10000:
                    self._idempotent.popitem(last=False)
        return result

    def _refund_apply(self, data: dict) -> dict:
        """The refund itself (under the lock): every transaction checked first, then all applied, or none."""
        def refused(message: str, field: list[str]) -> dict:
            return {"refundCreate": {"refund": None, "userErrors": [{"field": field, "message": message}]}}

        found = GID.match(str(data.get("orderId")))
        order = self.orders.get(found["id"]) if found and found["kind"] == "Order" else None
        if order is None:
            return refused("Order does not exist", ["orderId"])
        transactions = self._transactions_for(order)
        planned: list[tuple[dict, Decimal]] = []
        for n, wanted in enumerate(data["transactions"]):
            wanted = wanted if isinstance(wanted, dict) else {}
            parent_gid = GID.match(str(wanted.get("parentId")))
            parent = next((t for t in transactions if parent_gid and str(t["id"]) == parent_gid["id"]
                           and t["kind"] in ("sale", "capture") and t["status"] == "success"), None)
            if wanted.get("kind") != "REFUND" or parent is None:
                return refused("The transaction must refund a successful sale or capture of the order",
                               ["transactions", str(n)])
            try:
                amount = Decimal(str(wanted.get("amount")))
            except ArithmeticError:
                return refused("Amount is not a number", ["transactions", str(n), "amount"])
            refunded = sum((Decimal(t["amount"]) for t in transactions if t["kind"] == "refund"
                            and t["status"] == "success" and t["parent_id"] == parent["id"]), Decimal("0"))
            left = Decimal(parent["amount"]) - refunded - sum((a for p, a in planned if p is parent), Decimal("0"))
            if not amount.is_finite() or amount <= 0 or amount > left:
                return refused(f"Amount must be more than 0 and at most {_money(left)}",
                               ["transactions", str(n), "amount"])
            planned.append((parent, amount))
        refund_id = self._new_id()
        records = [self._transaction(order, kind="refund", status="success", amount=_money(amount),
                                     parent_id=parent["id"]) for parent, amount in planned]
        transactions.extend(records)
        now = self.iso(self.now())
        order = self._bumped(order)
        order.setdefault("refunds", []).append({
            "id": refund_id, "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}", "order_id": order["id"],
            "note": str(data.get("note") or ""), "created_at": now, "processed_at": now, "restock": False,
            "refund_line_items": [], "transactions": records})
        paid = sum((Decimal(t["amount"]) for t in transactions if t["kind"] in ("sale", "capture")
                    and t["status"] == "success"), Decimal("0"))
        back = sum((Decimal(t["amount"]) for t in transactions if t["kind"] == "refund" and t["status"] == "success"),
                   Decimal("0"))
        order["financial_status"] = "refunded" if back >= paid else "partially_refunded"
        self.put_order(order, push=False)
        total = sum((amount for _parent, amount in planned), Decimal("0"))
        self.record_push("refund", order_id=str(order["id"]), refund_id=str(refund_id), amount=_money(total),
                         note=str(data.get("note") or ""))
        return {"refundCreate": {"refund": {
            "id": f"gid://shopify/Refund/{refund_id}",
            "totalRefundedSet": {"shopMoney": {"amount": _money(total), "currencyCode": order.get("currency", "USD")}}},
            "userErrors": []}}

    def _variant_index(self) -> dict[int, dict]:
        with self.lock:
            if self._variants_by_id is None or len(self._variants_by_id) != len(self.skus):
                self._variants_by_id = {self.variant(code)["variant_id"]: self.variant(code) for code, _p in self.skus}
            return self._variants_by_id

    def _nodes(self, ids) -> dict:
        if not isinstance(ids, list) or len(ids) > GRAPHQL_MAX_INPUT:
            return {"errors": [{"message": f"ids must be a list of at most {GRAPHQL_MAX_INPUT} IDs",
                                "extensions": {"code": "argumentLiteralsIncompatible"}}]}
        index = self._variant_index()
        nodes = []
        for value in ids:
            found = GID.match(str(value))
            ids_of = index.get(int(found["id"])) if found and found["kind"] == "ProductVariant" else None
            nodes.append(None if ids_of is None else {
                "id": f"gid://shopify/ProductVariant/{ids_of['variant_id']}",
                "inventoryItem": {"id": f"gid://shopify/InventoryItem/{ids_of['inventory_item_id']}"}})
        return {"nodes": nodes}

    def _inventory_set_quantities(self, query: str, variables: dict, version: str) -> dict:
        """Validate every quantity first; set them all, or none when any is refused (a refused mutation applies
        nothing here; whether Shopify applies the valid rest is NOT CONFIRMED)."""
        key = re.search(r"@idempotent\s*\(\s*key\s*:\s*(?:\$(?P<var>\w+)|\"(?P<literal>[^\"]*)\")", query)
        idempotency_key = (str(variables.get(key["var"]) or "") if key and key["var"] else key["literal"]) if key else ""
        if not idempotency_key and self.served_version(version) >= "2026-04":
            return {"errors": [{"message": "The @idempotent directive is required for this mutation.",
                                "extensions": {"code": "BAD_REQUEST"}}]}
        data = variables.get("input")
        if not isinstance(data, dict) or not isinstance(data.get("quantities"), list):
            return {"errors": [{"message": "Variable $input of type InventorySetQuantitiesInput! was provided "
                                           "invalid value", "extensions": {"code": "INVALID_VARIABLE"}}]}
        fingerprint = json.dumps(data, sort_keys=True)
        with self.lock:
            earlier = self._idempotent.get(idempotency_key) if idempotency_key else None
        if earlier is not None:  # a retry of the same request: the first answer, applied once
            if earlier["fingerprint"] != fingerprint:
                return {"inventorySetQuantities": {"userErrors": [{
                    "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "field": ["input"],
                    "message": "The same idempotency key cannot be used with different operation parameters."}]}}
            return earlier["data"]
        quantities = data["quantities"]
        errors: list[dict] = []
        if data.get("name") not in ("available", "on_hand"):
            errors.append({"code": "INVALID_NAME", "field": ["input", "name"],
                           "message": "The quantity name must be either 'available' or 'on_hand'."})
        if data.get("reason") not in STOCK_REASONS:
            errors.append({"code": "INVALID_REASON", "field": ["input", "reason"],
                           "message": "The specified reason is invalid."})
        if len(quantities) > GRAPHQL_MAX_INPUT:
            return {"errors": [{"message": f"The input array size of {len(quantities)} is greater than the maximum "
                                           f"allowed of {GRAPHQL_MAX_INPUT}.",
                                "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"}}]}
        items = {ids["inventory_item_id"] for ids in self._variant_index().values()}
        stale = self.served_version(version) >= "2026-04"
        planned: list[tuple[int, int, int]] = []
        seen: set[int] = set()
        for n, entry in enumerate(quantities):
            field_of = lambda name, n=n: ["input", "quantities", str(n), name]  # noqa: E731
            entry = entry if isinstance(entry, dict) else {}
            item, location = GID.match(str(entry.get("inventoryItemId"))), GID.match(str(entry.get("locationId")))
            quantity = entry.get("quantity")
            if not item or item["kind"] != "InventoryItem" or int(item["id"]) not in items:
                errors.append({"code": "INVALID_INVENTORY_ITEM", "field": field_of("inventoryItemId"),
                               "message": "The specified inventory item could not be found."})
                continue
            if not location or location["kind"] != "Location" or int(location["id"]) != self.location_id:
                errors.append({"code": "INVALID_LOCATION", "field": field_of("locationId"),
                               "message": "The specified location could not be found."})
                continue
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                errors.append({"code": "INVALID_QUANTITY_NEGATIVE", "field": field_of("quantity"),
                               "message": "The quantity must be an integer."})
                continue
            if quantity < 0 or quantity > QUANTITY_LIMIT:
                errors.append({"code": "INVALID_QUANTITY_NEGATIVE" if quantity < 0 else "INVALID_QUANTITY_TOO_HIGH",
                               "field": field_of("quantity"), "message": "The quantity is out of range."})
                continue
            if int(item["id"]) in seen:
                errors.append({"code": "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", "field": field_of("inventoryItemId"),
                               "message": "The combination of inventoryItemId and locationId must be unique."})
                continue
            seen.add(int(item["id"]))
            # From 2026-04 every quantity names changeFromQuantity (null opts out of compare-and-swap).
            if stale and "changeFromQuantity" not in entry:
                errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": field_of("changeFromQuantity"),
                               "message": "changeFromQuantity must be given (null to skip the check)."})
                continue
            expected = entry.get("changeFromQuantity")
            current = self.inventory_levels.get((int(item["id"]), self.location_id), 0)
            if expected is not None and expected != current:
                errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": field_of("changeFromQuantity"),
                               "message": "The changeFromQuantity value does not match persisted value."})
                continue
            planned.append((int(item["id"]), self.location_id, quantity))
        if errors:
            result = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}
        else:
            with self.lock:
                for item, location, quantity in planned:
                    self.inventory_levels[(item, location)] = quantity
                    # One record per SKU, as the REST path writes it: tests and the bench read these.
                    self.record_push("inventory", inventory_item_id=item, location_id=location, available=quantity,
                                     via="graphql")
            result = {"inventorySetQuantities": {
                "inventoryAdjustmentGroup": {"createdAt": self.iso(self.now()), "reason": data.get("reason")},
                "userErrors": []}}
        if idempotency_key:
            with self.lock:
                self._idempotent[idempotency_key] = {"fingerprint": fingerprint, "data": result}
                while len(self._idempotent) > 10000:
                    self._idempotent.popitem(last=False)
        return result
