"""Stores, orders, order lines, order events, and the idempotency records of the order API."""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Right, Trim
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import FSMField, FSMModelMixin, transition

from oms.models import Event, TimeStampedModel


class Platform(models.TextChoices):
    SHOPIFY = "shopify", "Shopify"
    TAOBAO = "taobao", _("Taobao/Tmall")
    DOUYIN = "douyin", _("Douyin shop")
    PDD = "pdd", _("Pinduoduo")
    MANUAL = "manual", _("Manual (WeChat/offline)")


class ReserveOn(models.TextChoices):
    CREATION = "creation", _("Order creation (with an unpaid timeout)")
    PAYMENT = "payment", _("Payment")


class Store(TimeStampedModel):
    """A shop on one platform. Credentials live in their own field that is never logged nor shown."""

    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices)
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    active = models.BooleanField(_("active"), default=True)
    default_currency = models.CharField(_("default currency"), max_length=3, default="CNY")
    # Paid orders without holds go to "ready" by themselves; off means a person approves each one.
    auto_approve = models.BooleanField(_("approve paid orders automatically"), default=True)
    reserve_on = models.CharField(_("reserve stock on"), max_length=10, choices=ReserveOn.choices,
                                  default=ReserveOn.PAYMENT)
    # Only with reserve_on=creation: an unpaid order is cancelled (and its stock released) after this.
    unpaid_timeout_minutes = models.PositiveIntegerField(_("unpaid timeout (minutes)"), default=30)
    allow_split = models.BooleanField(_("allow splitting across warehouses"), default=False)
    # The shipping promise: a paid order should leave the warehouse within this many hours (kanban SLA).
    ship_within_hours = models.PositiveIntegerField(_("ship within (hours)"), default=48)
    # After-sales: a return or exchange is accepted up to this many days after delivery.
    return_window_days = models.PositiveSmallIntegerField(_("return window (days after delivery)"), default=7)
    # Orders of the same buyer and address that wait in one warehouse ship as one parcel.
    merge_shipments = models.BooleanField(_("merge parcels of the same buyer and address"), default=True)
    # What the platform or payment provider keeps of each sale (0.006 = 0.6%): reconciliation flags a settlement
    # fee that differs from it when the order itself reports no fee; empty: fees are not checked.
    fee_rate = models.DecimalField(_("platform fee rate"), max_digits=6, decimal_places=4, null=True, blank=True,
                                   validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
                                   help_text=_("As a fraction: 0.0060 is 0.6%."))

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["name"]

    def __str__(self) -> str:
        # Translatable so Chinese gets full-width brackets: 演示抖店（抖店）. Templates show the store
        # through this, never with the platform code appended again.
        return _("%(store)s (%(platform)s)") % {"store": self.name, "platform": self.get_platform_display()}

    def __repr__(self) -> str:
        return f"<Store {self.pk} {self.code} platform={self.platform} credentials=***>"


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", _("Paid")
    AWAITING_STOCK = "awaiting_stock", _("Awaiting stock")
    HELD = "held", _("Held")
    READY = "ready", _("Ready for fulfilment")
    IN_FULFILMENT = "in_fulfilment", _("In fulfilment")
    PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    CLOSED = "closed", _("Closed")


S = OrderStatus

# Input limits that keep every amount inside its column (max_digits=14, decimal_places=2, i.e. below
# 10^12): the largest order (200 lines x 10,000 units x 400,000.00) is 8 x 10^11, plus at most
# 1,000,000.00 each of shipping and tax. Serializers state them (so the OpenAPI schema does) and
# the order service checks them again for every other caller (connectors, imports, the shell).
ORDER_MAX_LINES = 200
LINE_MAX_QUANTITY = 10_000
LINE_MAX_UNIT_PRICE = Decimal("400000.00")
# A line discount never exceeds its own amount (checked by the service).
LINE_MAX_DISCOUNT = LINE_MAX_UNIT_PRICE * LINE_MAX_QUANTITY
ORDER_MAX_FEE = Decimal("1000000.00")  # shipping, tax and the order-level discount, each
AMOUNT_COLUMN_MAX = Decimal("999999999999.99")
# States from which an order may still be cancelled (nothing has left the warehouse yet).
CANCELLABLE_STATES = [S.PENDING_PAYMENT, S.PAID, S.AWAITING_STOCK, S.HELD, S.READY]
HOLDABLE_STATES = [S.PENDING_PAYMENT, S.PAID, S.AWAITING_STOCK, S.READY]
TERMINAL_STATES = [S.COMPLETED, S.CANCELLED, S.CLOSED]


class HoldReason(models.TextChoices):
    MANUAL = "manual", _("Manual hold")
    RISK = "risk", _("Risk review")
    GROUP_PENDING = "group_pending", _("Group buy pending")
    PRESALE = "presale", _("Presale")
    HEALTH_RED = "health_red", _("Red health score")
    ADDRESS = "address", _("Address problem")
    PRICE = "price", _("Price check")


class CancelReason(models.TextChoices):
    """Why a person cancelled an order; kept on the cancel event (data.cancel_reason), no column of its own."""

    BUYER_REQUEST = "buyer_request", _("Buyer asked to cancel")
    OUT_OF_STOCK = "out_of_stock", _("Out of stock")
    UNDELIVERABLE = "undeliverable", _("Address cannot be delivered to")
    DUPLICATE = "duplicate", _("Duplicate order")
    FRAUD = "fraud", _("Suspected fraud")
    PRICE_ERROR = "price_error", _("Wrong price")
    OTHER = "other", pgettext_lazy("cancel reason", "Other")


class Priority(models.IntegerChoices):
    NORMAL = 0, _("Normal")
    HIGH = 1, _("High")
    VIP = 2, _("VIP")


class Order(FSMModelMixin, TimeStampedModel):
    """One customer order from any channel. Status changes only through orders.services."""

    number = models.CharField(_("order number"), max_length=32, unique=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders", verbose_name=_("store"))
    # A replacement (an after-sales exchange or resend) points at the order it replaces. It is shipped like
    # any order but never pushed back to the platform, checked for completeness or matched in settlement.
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacements",
                                 verbose_name=_("replaces order"))
    platform_order_id = models.CharField(_("platform order id"), max_length=64)
    status = FSMField(_("status"), max_length=32, choices=OrderStatus.choices, default=S.PENDING_PAYMENT,
                      protected=True, db_index=True)
    # The state an order returns to when its last hold is released.
    status_before_hold = models.CharField(_("status before the hold"), max_length=32, blank=True, default="")
    hold_reasons = models.JSONField(_("hold reasons"), default=list, blank=True)
    # While awaiting stock: [{"sku": code, "needed": n, "available": m, "short": k}, ...]
    stock_shortages = models.JSONField(_("stock shortages"), default=list, blank=True)

    buyer_id = models.CharField(_("buyer id"), max_length=128, blank=True, default="")
    buyer_name = models.CharField(_("buyer name"), max_length=128, blank=True, default="")
    buyer_email = models.EmailField(_("buyer email"), blank=True, default="")
    buyer_phone = models.CharField(_("buyer phone"), max_length=32, blank=True, default="")

    receiver_name = models.CharField(_("receiver name"), max_length=128, blank=True, default="")
    receiver_phone = models.CharField(_("receiver phone"), max_length=32, blank=True, default="")
    receiver_country = models.CharField(_("country"), max_length=2, default="CN")
    receiver_province = models.CharField(_("province"), max_length=64, blank=True, default="")
    receiver_city = models.CharField(_("city"), max_length=64, blank=True, default="")
    receiver_district = models.CharField(_("district"), max_length=64, blank=True, default="")
    receiver_address = models.CharField(_("address"), max_length=255, blank=True, default="")
    receiver_zip = models.CharField(_("postcode"), max_length=16, blank=True, default="")
    # Platforms that encrypt receivers (PDD, Douyin) send ciphertext plus masked copies: the masked
    # copies fill the fields above, the ciphertext is kept as it came (the hub never decrypts it).
    receiver_ciphertext = models.JSONField(_("receiver ciphertext"), default=dict, blank=True)
    # For the desk's "last four digits" search. The database fills it (bulk inserts and raw COPY too); for
    # encrypted receivers it holds the masked copy's last four, so 138****1234 is found by 1234.
    receiver_phone_last4 = models.GeneratedField(
        expression=Right(Trim("receiver_phone"), 4), output_field=models.CharField(max_length=4),
        db_persist=True, verbose_name=_("last four digits of the receiver phone"))

    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    goods_amount = models.DecimalField(_("goods amount"), max_digits=14, decimal_places=2, default=Decimal("0"))
    discount_amount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=Decimal("0"))
    shipping_amount = models.DecimalField(_("shipping fee"), max_digits=14, decimal_places=2, default=Decimal("0"))
    tax_amount = models.DecimalField(_("tax"), max_digits=14, decimal_places=2, default=Decimal("0"))
    total_amount = models.DecimalField(_("total"), max_digits=14, decimal_places=2, default=Decimal("0"))
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2, default=Decimal("0"))
    # The platform's payment or transaction id (Taobao alipay_no, Shopify sale/capture transaction, PDD pay_no,
    # Douyin channel_payment_no, WeChat Pay transaction_id for manual orders): settlements match on it first.
    payment_id = models.CharField(_("payment id"), max_length=64, blank=True, default="", db_index=True)
    # The fee the platform reported for the order, when its payload reports one; null means unknown (the
    # settlement or the store's fee rate tells), never zero.
    platform_fee = models.DecimalField(_("platform fee"), max_digits=14, decimal_places=2, null=True, blank=True)

    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    # The delivery service promised to the buyer; carrier rules look at it.
    promised_service = models.CharField(_("promised service"), max_length=20, default="standard",
                                        choices=[("standard", _("Standard")), ("express", _("Express")),
                                                 ("next_morning", _("Next morning"))])
    tags = models.JSONField(_("tags"), default=list, blank=True)
    buyer_note = models.TextField(_("buyer note"), blank=True, default="")
    seller_note = models.TextField(_("seller note"), blank=True, default="")

    placed_at = models.DateTimeField(_("placed at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    platform_updated_at = models.DateTimeField(_("platform updated at"), null=True, blank=True)
    # Increments on every change that affects price or lines.
    version = models.PositiveIntegerField(_("version"), default=1)
    # Where the raw payload lives (an inbox row, an import file row, an API request).
    raw_payload_ref = models.CharField(_("raw payload reference"), max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "platform_order_id"], name="order_unique_platform_id_per_store"),
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["store", "status"]),
            models.Index(fields=["status", "placed_at"]),
            models.Index(fields=["platform_order_id"]),
            models.Index(fields=["receiver_phone"]),
            # The desk search (desk.selectors): last four digits newest first, name prefixes (LIKE 'x%' needs
            # text_pattern_ops), and trigrams for names from three characters on (PostgreSQL only: the
            # migration skips the GIN indexes elsewhere).
            models.Index(fields=["receiver_phone_last4", "-placed_at"], name="order_phone_last4_idx"),
            # The desk's customer view: one buyer's orders by (store, platform buyer id).
            models.Index(fields=["store", "buyer_id"], name="order_store_buyer_idx"),
            models.Index(fields=["receiver_name"], opclasses=["text_pattern_ops"], name="order_receiver_name_prefix"),
            models.Index(fields=["buyer_name"], opclasses=["text_pattern_ops"], name="order_buyer_name_prefix"),
            GinIndex(fields=["receiver_name"], opclasses=["gin_trgm_ops"], name="order_receiver_name_trgm"),
            GinIndex(fields=["buyer_name"], opclasses=["gin_trgm_ops"], name="order_buyer_name_trgm"),
        ]
        permissions = [
            ("view_pii", _("Can see unmasked receiver names, phones and addresses")),
            ("hold_order", _("Can hold and release orders")),
            ("cancel_order", _("Can cancel orders")),
            # One permission per user transition, so each role gets exactly the steps it owns.
            ("pay_order", _("Can mark orders of manual stores paid")),
            ("approve_order", _("Can approve orders for fulfilment")),
            ("start_fulfilment_order", _("Can start fulfilment of orders")),
            ("ship_partially_order", _("Can mark orders partly shipped")),
            ("ship_order", _("Can mark orders shipped")),
            ("deliver_order", _("Can mark orders delivered")),
            ("complete_order", _("Can complete orders")),
            ("close_order", _("Can close orders after fulfilment started")),
        ]

    def __str__(self) -> str:
        return self.number

    # --- State machine -----------------------------------------------------------------------
    # Only orders.services calls these methods, inside a transaction that holds the row lock and
    # writes the event. They carry no side effects of their own.

    @transition(field=status, source=S.PENDING_PAYMENT, target=S.PAID, custom={"label": _("Mark paid")})
    def pay(self):
        pass

    @transition(field=status, source=HOLDABLE_STATES, target=S.HELD, custom={"label": _("Hold")})
    def hold(self):
        self.status_before_hold = self.status

    @transition(field=status, source=S.HELD, target=S.PAID, custom={"label": _("Release hold")},
                conditions=[lambda order: not order.hold_reasons])
    def release(self):
        self.status_before_hold = ""

    @transition(field=status, source=S.HELD, target=S.PENDING_PAYMENT, custom={"internal": True},
                conditions=[lambda order: not order.hold_reasons])
    def release_unpaid(self):
        self.status_before_hold = ""

    @transition(field=status, source=S.PAID, target=S.READY, custom={"label": _("Approve for fulfilment")})
    def approve(self):
        pass

    @transition(field=status, source=S.PAID, target=S.AWAITING_STOCK, custom={"internal": True})
    def wait_for_stock(self):
        pass

    @transition(field=status, source=S.AWAITING_STOCK, target=S.PAID, custom={"internal": True})
    def stock_arrived(self):
        self.stock_shortages = []

    @transition(field=status, source=S.READY, target=S.IN_FULFILMENT, custom={"label": _("Start fulfilment")})
    def start_fulfilment(self):
        pass

    @transition(field=status, source=[S.IN_FULFILMENT, S.PARTIALLY_SHIPPED], target=S.PARTIALLY_SHIPPED,
                custom={"label": _("Ship part")})
    def ship_partially(self):
        pass

    @transition(field=status, source=[S.IN_FULFILMENT, S.PARTIALLY_SHIPPED], target=S.SHIPPED,
                custom={"label": _("Mark shipped")})
    def ship(self):
        pass

    @transition(field=status, source=S.SHIPPED, target=S.DELIVERED, custom={"label": _("Mark delivered")})
    def deliver(self):
        pass

    @transition(field=status, source=[S.SHIPPED, S.DELIVERED], target=S.COMPLETED, custom={"label": _("Complete")})
    def complete(self):
        pass

    @transition(field=status, source=CANCELLABLE_STATES, target=S.CANCELLED, custom={"label": _("Cancel")})
    def cancel(self):
        self.status_before_hold = ""

    @transition(field=status, source=[S.IN_FULFILMENT, S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.COMPLETED],
                target=S.CLOSED, custom={"label": _("Close")})
    def close(self):
        pass

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def full_address(self) -> str:
        return " ".join(p for p in [self.receiver_province, self.receiver_city, self.receiver_district,
                                     self.receiver_address] if p)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    line_no = models.PositiveSmallIntegerField(_("line"))
    sku_code = models.CharField(_("merchant SKU code"), max_length=64)
    # Resolved from sku_code when the order is created; stock is reserved against it.
    sku = models.ForeignKey("inventory.SKU", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                            verbose_name=_("SKU"))
    platform_sku_id = models.CharField(_("platform SKU id"), max_length=64, blank=True, default="")
    platform_line_id = models.CharField(_("platform line id"), max_length=64, blank=True, default="")
    title = models.CharField(_("title"), max_length=255)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    discount_amount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="orderline_unique_line_no"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="orderline_price_not_negative"),
            models.CheckConstraint(condition=Q(discount_amount__gte=0), name="orderline_discount_not_negative"),
        ]
        indexes = [models.Index(fields=["sku_code"])]

    def __str__(self) -> str:
        return f"{self.sku_code} × {self.quantity}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount_amount


class OrderEventType(models.TextChoices):
    CREATED = "created", _("Created")
    STATUS_CHANGED = "status_changed", _("Status changed")
    HOLD_ADDED = "hold_added", _("Hold added")
    HOLD_RELEASED = "hold_released", _("Hold released")
    NOTE_ADDED = "note_added", _("Note added")
    STOCK_RESERVED = "stock_reserved", _("Stock reserved")
    STOCK_RELEASED = "stock_released", _("Stock released")
    STOCK_SHIPPED = "stock_shipped", _("Stock shipped")
    SHIPMENT_PUSH = "shipment_push", _("Shipment sent to the platform")
    CHANNEL_MISMATCH = "channel_mismatch", _("Platform status not followed")
    UPDATED = "updated", _("Updated")


class OrderEvent(Event):
    """One line of an order's history: who did what, when, from which state to which, and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order"))
    type = models.CharField(_("type"), max_length=32, choices=OrderEventType.choices)

    class Meta(Event.Meta):
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        indexes = [models.Index(fields=["order", "created_at"])]

    def __str__(self) -> str:
        return f"{self.order_id} {self.type} {self.from_status}->{self.to_status}"


IDEMPOTENCY_KEY_MAX_LENGTH = 128


class IdempotencyRecord(models.Model):
    """Remembers the answer to a POST made with an Idempotency-Key, so a retry gets the same answer."""

    key = models.CharField(_("idempotency key"), max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("user"))
    endpoint = models.CharField(_("endpoint"), max_length=100)
    request_hash = models.CharField(_("request fingerprint"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True)
    response_body = models.JSONField(_("response body"), null=True)
    order = models.ForeignKey(Order, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("order"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["user", "endpoint", "key"], name="idempotency_unique_key")]
        # The purge deletes by age.
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self) -> str:
        return self.key
