"""Warehouses, SKUs and bundles, platform SKU mappings, stock levels, the stock ledger and reservations."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from oms.models import TimeStampedModel


class Warehouse(TimeStampedModel):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, default="CN")
    # Provinces (or, abroad, regions/states) this warehouse serves first; empty means anywhere.
    provinces = models.JSONField(_("provinces served"), default=list, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=100, help_text=_("Lower is tried first."))
    active = models.BooleanField(_("active"), default=True)
    # A quarantine warehouse holds returned goods that cannot be sold as new (minor wear, awaiting a
    # decision, or on their way to a write-off): routing, reservations and channel stock never use it.
    is_quarantine = models.BooleanField(_("quarantine warehouse"), default=False)
    # Where this site's worn or broken returns go (a quarantine warehouse at the same site); receiving refuses
    # such a unit until a manager sets one here (Django admin → warehouses).
    quarantine_warehouse = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"is_quarantine": True}, verbose_name=_("quarantine warehouse for returns"),
        help_text=_("The quarantine warehouse that receives this site's returns with minor wear or that "
                    "cannot be resold."))
    address = models.CharField(_("address"), max_length=255, blank=True, default="")
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class SKU(TimeStampedModel):
    code = models.CharField(_("merchant SKU code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True, default="", db_index=True)
    weight_grams = models.PositiveIntegerField(_("weight (g)"), default=0)
    category = models.CharField(_("category"), max_length=64, blank=True, default="")
    # After-sales: goods that cannot be sent back (food, underwear…) may be refunded but not returned.
    returnable = models.BooleanField(_("returnable"), default=True)
    is_gift = models.BooleanField(_("gift"), default=False)
    safety_stock = models.PositiveIntegerField(_("safety stock"), default=0)
    list_price = models.DecimalField(_("list price"), max_digits=14, decimal_places=2, default=Decimal("0"))
    # What one unit costs the seller today; each shipped parcel line keeps the cost it had when it shipped
    # (ShipmentLine.unit_cost, finance.profit's cost of goods), so a change here leaves shipped orders' profit as
    # it was. Empty: not known, and an order shipping this SKU then has a partial profit.
    unit_cost = models.DecimalField(_("unit cost"), max_digits=14, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(list_price__gte=0), name="sku_price_not_negative")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class BundleComponent(models.Model):
    """A bundle (kit) SKU is made of components; reserving the bundle reserves its components."""

    bundle = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="components", verbose_name=_("bundle"))
    component = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="+", verbose_name=_("component"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)

    class Meta:
        verbose_name = _("bundle component")
        verbose_name_plural = _("bundle components")
        constraints = [
            models.UniqueConstraint(fields=["bundle", "component"], name="bundle_component_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="bundle_component_quantity_positive"),
            models.CheckConstraint(condition=~Q(bundle=models.F("component")), name="bundle_not_its_own_component"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id}: {self.component_id} × {self.quantity}"


class PlatformSKUMapping(models.Model):
    """Maps a store's platform SKU id (or platform-side code) to our SKU."""

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="sku_mappings",
                              verbose_name=_("store"))
    platform_sku_id = models.CharField(_("platform SKU id or code"), max_length=64)
    # The platform's product/item id (Taobao num_iid, PDD goods_id, Douyin product_id), for stock pushes.
    platform_product_id = models.CharField(_("platform product id"), max_length=64, blank=True, default="")
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="platform_mappings", verbose_name=_("SKU"))

    class Meta:
        verbose_name = _("platform SKU mapping")
        verbose_name_plural = _("platform SKU mappings")
        constraints = [models.UniqueConstraint(fields=["store", "platform_sku_id"], name="platform_sku_unique")]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.platform_sku_id} → {self.sku_id}"


class StockLevel(models.Model):
    """Counters per (warehouse, SKU). They change only through inventory.services, always with a ledger row.

    available = on_hand − reserved − safety stock (of the SKU).
    """

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock_levels",
                                  verbose_name=_("warehouse"))
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="stock_levels", verbose_name=_("SKU"))
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    # Copied from the SKU so the reservation UPDATE can test availability in one statement.
    safety_stock = models.IntegerField(_("safety stock"), default=0)
    location = models.CharField(_("bin location"), max_length=32, blank=True, default="")
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["warehouse_id", "sku_id"]
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "sku"], name="stock_level_unique"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=models.F("on_hand")), name="stock_reserved_within_on_hand"),
            models.CheckConstraint(condition=Q(safety_stock__gte=0), name="stock_safety_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.warehouse_id}/{self.sku_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved - self.safety_stock


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    ADJUSTMENT = "adjustment", _("Adjustment")
    STOCK_TAKE = "stock_take", _("Stock take")
    RESERVATION = "reservation", _("Reservation")
    RELEASE = "release", pgettext_lazy("stock movement kind", "Release")
    SHIPMENT = "shipment", _("Shipment")
    RETURN = "return", _("Return")
    # After-sales receiving: a resalable unit back into sellable stock; a worn or broken one into a
    # quarantine warehouse; and a broken one leaving the books again.
    RETURN_RESTOCK = "return_restock", _("Return restocked")
    RETURN_IN = "return_in", _("Return into quarantine")
    WRITE_OFF = "write_off", _("Write-off")
    RECONCILE = "reconcile", _("Reconciliation")


class StockMovement(models.Model):
    """The stock ledger: one row for every change of a counter; the counters always equal its sums."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="movements", verbose_name=_("SKU"))
    kind = models.CharField(_("kind"), max_length=20, choices=MovementKind.choices)
    on_hand_delta = models.IntegerField(_("on hand change"), default=0)
    reserved_delta = models.IntegerField(_("reserved change"), default=0)
    # What caused it: "order:SO00100001", "receipt:PO-123", "stocktake:2026-11-21", ...
    reference = models.CharField(_("reference"), max_length=100, blank=True, default="")
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("order"))
    note = models.CharField(_("note"), max_length=255, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              verbose_name=_("actor"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["sku", "warehouse", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.warehouse_id}/{self.sku_id} {self.on_hand_delta:+}/{self.reserved_delta:+}"


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", pgettext_lazy("reservation", "Active")
    RELEASED = "released", _("Released")
    SHIPPED = "shipped", _("Shipped")


class Reservation(models.Model):
    """Stock held for one order line in one warehouse (a bundle line holds one row per component)."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="reservations",
                              verbose_name=_("order"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="reservations",
                                   verbose_name=_("order line"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    quantity = models.PositiveIntegerField(_("quantity"))
    status = models.CharField(_("status"), max_length=10, choices=ReservationStatus.choices,
                              default=ReservationStatus.ACTIVE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive")]
        indexes = [models.Index(fields=["order", "status"]), models.Index(fields=["sku", "warehouse", "status"])]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.order_line_id} {self.sku_id}@{self.warehouse_id} × {self.quantity} {self.status}"


class StaffScope(models.Model):
    """The warehouses (and optionally stores) one staff user works for; no row, or none ticked, means all.

    Read through inventory.selectors.warehouse_ids_for_user / store_ids_for_user: managers and admins see
    everything whatever is set here. It lives in inventory, above orders (Store) and beside Warehouse, so
    fulfillment and printing read it without importing upwards.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_scope",
                                verbose_name=_("user"))
    warehouses = models.ManyToManyField(
        Warehouse, blank=True, related_name="+", verbose_name=_("warehouses"),
        help_text=_("The warehouses whose parcels, waves and printers this user works with. "
                    "None ticked: every warehouse."))
    stores = models.ManyToManyField(
        "orders.Store", blank=True, related_name="+", verbose_name=_("stores"),
        help_text=_("Only parcels of these stores are shown. None ticked: every store."))

    class Meta:
        verbose_name = _("staff scope")
        verbose_name_plural = _("staff scopes")

    def __str__(self) -> str:
        return f"scope of user {self.user_id}"


class ChannelStockDirty(models.Model):
    """A (store, SKU) whose channel quantity changed and is not yet pushed: the stock push's work list.

    Written in the same transaction as the stock change (an upsert that bumps ``version``), so a crash
    after the commit cannot lose the push; the flusher deletes the row only when the version it pushed
    is still the row's version, so a change made during a push is pushed again.
    """

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    sku = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    version = models.BigIntegerField(_("version"), default=1)
    marked_at = models.DateTimeField(_("marked at"))

    class Meta:
        verbose_name = _("channel stock to push")
        verbose_name_plural = _("channel stock to push")
        constraints = [models.UniqueConstraint(fields=["store", "sku"], name="channel_stock_dirty_unique")]
        indexes = [models.Index(fields=["marked_at"], name="channel_stock_dirty_marked")]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.sku_id} v{self.version}"
