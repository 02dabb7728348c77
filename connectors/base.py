"""The connector interface every platform implements, its errors, and the unified order dataclasses.

A connector turns one store's platform API into three things the hub needs: pages of raw order
payloads for a time window (polling), verified webhook deliveries (push), and a mapping of one raw
payload into a ``UnifiedOrder``. Everything platform-specific (signing, pagination, envelopes,
time formats, status tables) stays inside the platform's package; the inbox, the poller and the
order update never look at a platform's wire format.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

# The errors are the gateway kit's, which carriers raise too; re-exported as connectors' public API, where a
# platform failure has always been called a ConnectorError.
from gateway.errors import AuthError, PermanentError, SignatureError, TransientError  # noqa: F401
from gateway.errors import GatewayError as ConnectorError  # noqa: F401

# --- The unified order -------------------------------------------------------------------------

# Statuses a platform order maps to (API_FACTS.md §6). The order update walks the hub's state
# machine toward them; "group_pending" is paid-but-not-shippable and becomes a hold.
UNIFIED_STATUSES = ("pending_payment", "group_pending", "paid", "partially_shipped", "shipped", "completed",
                    "cancelled", "closed")


@dataclass
class UnifiedLine:
    sku: str  # merchant SKU code as the platform gives it (may be empty when only a platform id exists)
    platform_sku_id: str
    title: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal("0")
    platform_line_id: str = ""


@dataclass
class UnifiedParty:
    name: str = ""
    phone: str = ""
    email: str = ""
    id: str = ""


@dataclass
class UnifiedAddress:
    name: str = ""
    phone: str = ""
    country: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address: str = ""
    zip: str = ""
    # Platform ciphertext and masked copies are kept as they come (PDD/Douyin).
    encrypted: dict = field(default_factory=dict)
    masked: dict = field(default_factory=dict)


# What a platform's after-sale state maps to (the ticket follows these).
AFTER_SALE_STATUSES = ("open", "agreed", "returning", "refunded", "rejected", "cancelled")


@dataclass
class UnifiedAfterSaleLine:
    """One order line under a platform after-sale: by the platform's line id, else by its SKU (PDD)."""

    quantity: int
    platform_line_id: str = ""
    platform_sku_id: str = ""
    sku: str = ""


@dataclass
class UnifiedAfterSale:
    """One platform after-sale (return, refund, exchange, resend) in the hub's terms; the platform's own id is
    the key of its ticket, ``updated_at`` orders its versions (an older one is skipped)."""

    platform_after_sale_id: str
    platform_order_id: str
    type: str  # an aftersales TicketType value: return_refund, refund_only, exchange, resend, compensation
    status: str  # one of AFTER_SALE_STATUSES
    raw_status: str  # the platform's own status, for the ticket's timeline
    updated_at: datetime  # aware UTC
    lines: list[UnifiedAfterSaleLine] = field(default_factory=list)  # empty: the whole order
    reason_text: str = ""
    refund_amount: Decimal | None = None  # None: the platform did not say (what was paid for the lines)
    return_tracking_number: str = ""


@dataclass
class UnifiedOrder:
    """One platform order in the hub's terms: Decimal money, aware UTC times, a unified status."""

    platform_order_id: str
    status: str  # one of UNIFIED_STATUSES
    currency: str
    total: Decimal
    created_at: datetime
    updated_at: datetime
    lines: list[UnifiedLine]
    buyer: UnifiedParty = field(default_factory=UnifiedParty)
    receiver: UnifiedAddress = field(default_factory=UnifiedAddress)
    paid_at: datetime | None = None
    # Set when the buyer's payment is authorized but not captured (Shopify manual capture): the status stays
    # pending_payment unless the store counts an authorization as paid (ChannelSyncState.authorized_counts_as_paid).
    authorized_at: datetime | None = None
    shipping: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")  # order-level discount only; each line carries its own
    tax: Decimal = Decimal("0")
    buyer_note: str = ""
    seller_note: str = ""
    display_number: str = ""  # e.g. Shopify "#1001"
    refund_requested: bool = False  # overlay flag: an after-sale is open on the platform
    # Per-line after-sale state (kept for the after-sales module): each entry has "platform_line_id"
    # ("" when the platform tracks after-sales per order) plus the platform's own after-sale fields.
    after_sales: list[dict] = field(default_factory=list)
    raw_status: str = ""  # the platform's own status words, for the timeline
    # The platform's after-sales the order payload itself identifies (Taobao refund_id per sub-order, Shopify
    # refunds), each opening or updating one ticket; Douyin and PDD list theirs through their own after-sale call.
    after_sale_requests: list[UnifiedAfterSale] = field(default_factory=list)
    # The platform's payment/transaction id (Taobao alipay_no, Shopify sale/capture transaction, PDD pay_no,
    # Douyin channel_payment_no; "" when the payload names none) and the fee it reported (None: not reported).
    payment_id: str = ""
    platform_fee: Decimal | None = None

    def to_json(self) -> dict:
        """The JSON shape `connector_map` prints (ISO 8601 UTC times, Decimal as strings)."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "platform_order_id": self.platform_order_id, "display_number": self.display_number,
            "status": self.status, "raw_status": self.raw_status, "refund_requested": self.refund_requested,
            "currency": self.currency, "total": str(self.total), "shipping": str(self.shipping),
            "discount": str(self.discount), "tax": str(self.tax),
            "created_at": iso(self.created_at), "updated_at": iso(self.updated_at), "paid_at": iso(self.paid_at),
            "authorized_at": iso(self.authorized_at), "payment_id": self.payment_id,
            "platform_fee": None if self.platform_fee is None else str(self.platform_fee),
            "buyer": vars(self.buyer), "receiver": vars(self.receiver),
            "buyer_note": self.buyer_note, "seller_note": self.seller_note, "after_sales": self.after_sales,
            "lines": [{"sku": line.sku, "platform_sku_id": line.platform_sku_id, "title": line.title,
                       "quantity": line.quantity, "unit_price": str(line.unit_price), "discount": str(line.discount),
                       "platform_line_id": line.platform_line_id} for line in self.lines],
        }


@dataclass
class StockPush:
    """One SKU's quantity for one store's platform, and what came of pushing it.

    ``cached_ids`` are the platform ids an earlier push looked up (ChannelStock.platform_ids); a connector that
    needs ids to address the SKU (Shopify: inventory item and location) reuses them and sets ``found_ids`` when
    it looked them up now ({} when they proved wrong), so the flusher caches them for the next push.
    """

    platform_product_id: str
    platform_sku_id: str
    sku: str
    quantity: int
    cached_ids: dict = field(default_factory=dict)
    error: ConnectorError | None = None
    found_ids: dict | None = None


# --- What a connector hands to the inbox -------------------------------------------------------


@dataclass
class RawOrder:
    """One order payload exactly as the platform sent it, with what identifies its version."""

    platform_order_id: str
    updated_at: datetime  # aware UTC
    payload: dict  # the platform's own JSON object for this order (what `map_order` accepts)


@dataclass
class WebhookDelivery:
    """One verified push delivery (a Douyin push may carry several messages, hence a list per request)."""

    delivery_id: str  # what makes a delivery unique (Shopify X-Shopify-Event-Id, Douyin msg_id…)
    topic: str
    platform_order_id: str
    updated_at: datetime | None
    payload: dict  # what `map_order` accepts, or a notice that `fetch_order` must complete
    needs_fetch: bool = False  # the push only names the order: fetch the full payload before mapping


class Connector:
    """Base class of a platform connector for one store.

    Subclasses set the class attributes and implement ``make_client`` and the platform methods below.
    """

    platform: ClassVar[str] = ""
    # Longest time window one incremental query may span (TOP: 1 day, PDD: 30 minutes).
    max_window: ClassVar[timedelta] = timedelta(days=1)
    # How far behind "now" a window must end (PDD advises ≥ 3 minutes).
    lag: ClassVar[timedelta] = timedelta(0)
    # Overlap with the previous window, so orders updated at the boundary are not missed.
    overlap: ClassVar[timedelta] = timedelta(minutes=5)

    def __init__(self, credentials: Mapping[str, str], *, timeout: float = 10.0, client: Any | None = None):
        self.credentials = dict(credentials)
        self.timeout = timeout
        if client is not None:  # a ready client (tests hand in one that records its waits)
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> Any:
        # Built on first use, not in __init__: a store without API credentials (or a token) yet can still be
        # listed and configured, and verifying a push needs only the app's secret.
        return self.make_client()

    # The platform's API client for this store's credentials and timeout.
    def make_client(self) -> Any:
        raise NotImplementedError

    # Polling: every order updated in [start, end), as raw payloads, every page of every window.
    def poll(self, *, start: datetime, end: datetime) -> Iterator[RawOrder]:
        raise NotImplementedError

    # The full payload of one order (for pushes that only name it, and for replays).
    def fetch_order(self, platform_order_id: str) -> RawOrder:
        raise NotImplementedError

    # Push: verify the raw body (raise SignatureError) and split it into deliveries.
    def parse_webhook(self, *, headers: Mapping[str, str], body: bytes) -> list[WebhookDelivery]:
        raise NotImplementedError

    # The acknowledgement body the platform expects (Douyin wants {"code":0,"msg":"success"}).
    def webhook_ack(self) -> tuple[str, str]:
        return "", "text/plain"

    # Push-back: tell the platform an order (or some of its lines) shipped with this tracking number.
    def ship(self, *, platform_order_id: str, tracking_number: str, carrier_code: str,
             line_ids: list[str] | None = None) -> dict:
        raise NotImplementedError

    # After-sales: agree to refund ``amount`` on the platform (its after-sale ``platform_after_sale_id``; Shopify
    # refunds the order's ``line_ids``). ``key`` is the hub's own for this refund and is the same on every retry,
    # so a retry after a lost answer never refunds twice. Returns at least {"platform_refund_id": …}.
    def refund(self, *, platform_order_id: str, platform_after_sale_id: str, amount: Decimal, currency: str,
               key: str, line_ids: list[str] | None = None) -> dict:
        raise NotImplementedError

    # Push-back: set the sellable quantity of one platform SKU.
    def set_stock(self, *, platform_product_id: str, quantity: int, platform_sku_id: str | None = None,
                  sku: str | None = None) -> dict:
        raise NotImplementedError

    # Stock push at scale: how many SKUs one set_stock_many takes (one call where the platform has a batch
    # endpoint, else that many calls in a row on one connection, so the flusher hands out work in handfuls), and
    # how many of them may be out for one store at once (each on its own connector, within the rate limit).
    stock_batch_size: ClassVar[int] = 10
    stock_concurrency: ClassVar[int] = 4

    def set_stock_many(self, pushes: list[StockPush]) -> None:
        """Push every quantity of ``pushes`` (at most ``stock_batch_size``), recording each one's failure on the
        item instead of raising: one set_stock call each here; a platform with a batch endpoint overrides this."""
        for push in pushes:
            try:
                self.set_stock(platform_product_id=push.platform_product_id, quantity=push.quantity,
                               platform_sku_id=push.platform_sku_id or None, sku=push.sku or None)
            except ConnectorError as exc:
                push.error = exc

    def set_stock_per_product(self, pushes: list[StockPush], send_batch) -> None:
        """For platforms whose batch call takes the SKUs of one product (item): two or more SKUs of a product go
        in one ``send_batch(product_id, {platform SKU id: quantity})``, all or nothing (a refusal fails each of
        them); a lone SKU, or a push without a SKU id, goes through set_stock_many's one-call-each path."""
        by_product: dict[str, list[StockPush]] = {}
        for push in pushes:
            by_product.setdefault(push.platform_product_id, []).append(push)
        for product_id, group in by_product.items():
            batched = [push for push in group if push.platform_sku_id] if product_id else []
            alone = [push for push in group if not (product_id and push.platform_sku_id)] if len(batched) > 1 else group
            if len(batched) > 1:
                try:
                    send_batch(product_id, {push.platform_sku_id: push.quantity for push in batched})
                except ConnectorError as exc:
                    for push in batched:
                        push.error = exc
            Connector.set_stock_many(self, alone)

    # Mapping: raw payload → UnifiedOrder (raise PermanentError for an unmappable payload).
    @staticmethod
    def map_order(payload: dict) -> UnifiedOrder:
        raise NotImplementedError


def split_windows(start: datetime, end: datetime, size: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most ``size``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("poll windows need aware datetimes")
    while start < end:
        window_end = min(start + size, end)
        yield start, window_end
        start = window_end
