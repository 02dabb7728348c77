"""Fulfilment models: carriers, routing rules and decisions, shipments with lines and events, waves, notifications."""

from decimal import Decimal
from math import ceil

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from oms.models import Event, TimeStampedModel


class ServiceLevel(models.TextChoices):
    STANDARD = "standard", _("Standard")
    EXPRESS = "express", _("Express")
    NEXT_MORNING = "next_morning", _("Next morning")


class CarrierKind(models.TextChoices):
    SF = "sf", _("SF-Express API (or its sandbox)")
    MANUAL = "manual", _("Manual (scan or type the number)")


class Carrier(TimeStampedModel):
    """A carrier account. ``config`` holds the API address and credentials; it is never shown or logged."""

    code = models.CharField(_("code"), max_length=16, unique=True, help_text=_("SF, YTO, ZTO, USPS…"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("integration"), max_length=10, choices=CarrierKind.choices, default=CarrierKind.MANUAL)
    active = models.BooleanField(_("active"), default=True)
    services = models.JSONField(_("services offered"), default=list, blank=True,
                                help_text=_("Service levels this carrier can book; empty means standard only."))
    # Price of a parcel: the first kilogram, then each started kilogram after it.
    cost_first_kg = models.DecimalField(_("cost of the first kg"), max_digits=10, decimal_places=2,
                                        default=Decimal("0"))
    cost_extra_kg = models.DecimalField(_("cost of each further kg"), max_digits=10, decimal_places=2,
                                        default=Decimal("0"))
    config = models.JSONField(_("API settings"), default=dict, blank=True)

    class Meta:
        verbose_name = _("carrier")
        verbose_name_plural = _("carriers")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Carrier {self.code} kind={self.kind} config=***>"

    def cost_for(self, weight_grams: int) -> Decimal:
        extra_kg = max(ceil(max(weight_grams, 1) / 1000) - 1, 0)
        return self.cost_first_kg + self.cost_extra_kg * extra_kg

    def offers(self, service: str) -> bool:
        return service in (self.services or [ServiceLevel.STANDARD])


class RuleConditions(models.Model):
    """What a routing rule looks at; an empty condition matches everything."""

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(_("position"), default=100, help_text=_("Rules are tried from low to high."))
    active = models.BooleanField(_("active"), default=True)
    store = models.ForeignKey("orders.Store", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("only for store"))
    countries = models.JSONField(_("destination countries"), default=list, blank=True)
    provinces = models.JSONField(_("destination provinces/states"), default=list, blank=True)
    priorities = models.JSONField(_("customer tiers"), default=list, blank=True,
                                  help_text=_("Order priorities: 0 normal, 1 high, 2 VIP."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class WarehouseRule(RuleConditions):
    """Send matching orders to a warehouse first; stock decides in the end (selectors.routing)."""

    categories = models.JSONField(_("SKU categories"), default=list, blank=True,
                                  help_text=_("Matches when any line's SKU is in one of these categories."))
    min_amount = models.DecimalField(_("minimum amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    max_amount = models.DecimalField(_("maximum amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.CASCADE, related_name="+",
                                  verbose_name=_("warehouse"))

    class Meta(RuleConditions.Meta):
        verbose_name = _("warehouse rule")
        verbose_name_plural = _("warehouse rules")


class CarrierRule(RuleConditions):
    """Book matching shipments with a carrier and service."""

    services = models.JSONField(_("promised services"), default=list, blank=True,
                                help_text=_("Matches orders promised one of these service levels."))
    warehouses = models.JSONField(_("from warehouses (codes)"), default=list, blank=True)
    min_weight_grams = models.PositiveIntegerField(_("minimum weight (g)"), null=True, blank=True)
    max_weight_grams = models.PositiveIntegerField(_("maximum weight (g)"), null=True, blank=True)
    carrier = models.ForeignKey(Carrier, on_delete=models.CASCADE, related_name="+", verbose_name=_("carrier"))
    service = models.CharField(_("book service"), max_length=20, choices=ServiceLevel.choices,
                               default=ServiceLevel.STANDARD)

    class Meta(RuleConditions.Meta):
        verbose_name = _("carrier rule")
        verbose_name_plural = _("carrier rules")


class DecisionKind(models.TextChoices):
    WAREHOUSE = "warehouse", _("Warehouse")
    CARRIER = "carrier", _("Carrier")


class RoutingDecision(models.Model):
    """Why an order went to a warehouse, or a shipment to a carrier: by rule, by fallback, or overridden."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="routing_decisions",
                              verbose_name=_("order"))
    shipment = models.ForeignKey("Shipment", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="routing_decisions", verbose_name=_("shipment"))
    kind = models.CharField(_("kind"), max_length=10, choices=DecisionKind.choices)
    warehouse_rule = models.ForeignKey(WarehouseRule, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", verbose_name=_("warehouse rule"))
    carrier_rule = models.ForeignKey(CarrierRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     verbose_name=_("carrier rule"))
    # The rule's name at decision time (rules are edited and deleted later).
    rule_name = models.CharField(_("rule"), max_length=100, blank=True, default="")
    # The warehouse the rules ranked first, and where the stock was reserved in the end.
    preferred_warehouse = models.ForeignKey("inventory.Warehouse", null=True, blank=True, on_delete=models.SET_NULL,
                                            related_name="+", verbose_name=_("first choice"))
    warehouse_ids = models.JSONField(_("warehouses"), default=list, blank=True)
    carrier = models.ForeignKey(Carrier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("carrier"))
    service = models.CharField(_("service"), max_length=20, blank=True, default="")
    cost = models.DecimalField(_("cost"), max_digits=10, decimal_places=2, null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500)
    overridden = models.BooleanField(_("overridden by hand"), default=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("routing decision")
        verbose_name_plural = _("routing decisions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["order", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id}: {self.reason}"


class ShipmentStatus(models.TextChoices):
    TO_PICK = "to_pick", _("To pick")
    PICKING = "picking", _("Picking")
    PACKED = "packed", _("Packed")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    EXCEPTION = "exception", _("Exception")
    CANCELLED = "cancelled", _("Cancelled")


SS = ShipmentStatus
# Shipments the warehouse still works on.
OPEN_SHIPMENT_STATES = [SS.TO_PICK, SS.PICKING, SS.PACKED, SS.EXCEPTION]
# The kanban's columns, left to right.
KANBAN_COLUMNS = [SS.TO_PICK, SS.PICKING, SS.PACKED, SS.SHIPPED, SS.EXCEPTION]


class Wave(TimeStampedModel):
    """A batch of shipments picked together from one consolidated pick list."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PICKING = "picking", _("Picking")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    number = models.CharField(_("wave number"), max_length=32, unique=True)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.PROTECT, related_name="waves",
                                  verbose_name=_("warehouse"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)

    class Meta:
        verbose_name = _("wave")
        verbose_name_plural = _("waves")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.number


class Shipment(FSMModelMixin, TimeStampedModel):
    """One parcel: lines of one or more orders (merge) from one warehouse. Status changes only in services."""

    number = models.CharField(_("shipment number"), max_length=32, unique=True)
    store = models.ForeignKey("orders.Store", on_delete=models.PROTECT, related_name="shipments",
                              verbose_name=_("store"))
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.PROTECT, related_name="shipments",
                                  verbose_name=_("warehouse"))
    status = FSMField(_("status"), max_length=16, choices=ShipmentStatus.choices, default=SS.TO_PICK,
                      protected=True)
    # Where an exception came from, so resolving it returns there.
    status_before_exception = models.CharField(_("status before the exception"), max_length=16, blank=True, default="")
    exception_reason = models.CharField(_("exception"), max_length=300, blank=True, default="")

    # Copied from the orders when the shipment is built or merged, so the kanban reads one table.
    platform = models.CharField(_("channel"), max_length=20)
    order_numbers = models.CharField(_("orders"), max_length=300)
    priority = models.PositiveSmallIntegerField(_("priority"), default=0)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    # Same buyer and address ⇒ same key: merge candidates are found by it.
    receiver_key = models.CharField(_("buyer and address key"), max_length=64, db_index=True)
    receiver_country = models.CharField(_("country"), max_length=2, default="CN")
    receiver_province = models.CharField(_("province"), max_length=64, blank=True, default="")
    receiver_city = models.CharField(_("city"), max_length=64, blank=True, default="")
    service_level = models.CharField(_("service"), max_length=20, choices=ServiceLevel.choices,
                                     default=ServiceLevel.STANDARD)
    sla_due_at = models.DateTimeField(_("ship by"))
    expected_weight_grams = models.PositiveIntegerField(_("expected weight (g)"), default=0)
    measured_weight_grams = models.PositiveIntegerField(_("measured weight (g)"), null=True, blank=True)

    carrier = models.ForeignKey(Carrier, null=True, blank=True, on_delete=models.PROTECT, related_name="shipments",
                                verbose_name=_("carrier"))
    carrier_cost = models.DecimalField(_("carrier cost"), max_digits=10, decimal_places=2, null=True, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64, blank=True, default="", db_index=True)
    # The carrier's sorting / hand-over code for the label and the manifest; never shown to customers.
    handover_code = models.CharField(_("hand-over code"), max_length=64, blank=True, default="")
    label_data = models.JSONField(_("label data"), default=dict, blank=True)
    # A cancelled parcel's waybill must be voided at the carrier; set once the carrier has done it
    # (a sweeper retries the rest, so a lost task never leaves a live waybill behind).
    waybill_voided_at = models.DateTimeField(_("waybill voided at"), null=True, blank=True)

    wave = models.ForeignKey(Wave, null=True, blank=True, on_delete=models.SET_NULL, related_name="shipments",
                             verbose_name=_("wave"))
    picked_at = models.DateTimeField(_("picking started"), null=True, blank=True)
    packed_at = models.DateTimeField(_("packed at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    last_tracking_at = models.DateTimeField(_("last tracking update"), null=True, blank=True)
    tracking_checked_at = models.DateTimeField(_("tracking checked"), null=True, blank=True)
    # Set when the parcel went N days without a tracking update: customer service sees it.
    tracking_stale_since = models.DateTimeField(_("no tracking update since"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["sla_due_at", "id"]
        indexes = [
            models.Index(fields=["warehouse", "status", "sla_due_at", "id"], name="shipment_kanban_idx"),
            models.Index(fields=["status", "shipped_at"], name="shipment_status_shipped_idx"),
            # The kanban's shipped lane (today's hand-overs of one warehouse, latest first): its page and its
            # capped count are one range of this small index, not a merge of two big ones.
            models.Index(fields=["warehouse", "shipped_at", "id"], condition=Q(status="shipped"),
                         name="shipment_kanban_shipped_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["carrier", "tracking_number"], condition=~Q(tracking_number=""),
                                    name="shipment_unique_tracking_per_carrier"),
        ]
        permissions = [
            ("move_shipment", _("Can move shipments on the kanban and pack them")),
            ("route_shipment", _("Can override routing and merge or split shipments")),
            ("edit_routing_rules", _("Can edit routing rules")),
        ]

    def __str__(self) -> str:
        return self.number

    # --- State machine -------------------------------------------------------------------------
    # Only fulfillment.services calls these, under the row lock, and writes the event.

    @transition(field=status, source=SS.TO_PICK, target=SS.PICKING, custom={"label": _("Start picking")})
    def start_picking(self):
        pass

    @transition(field=status, source=SS.PICKING, target=SS.TO_PICK, custom={"label": _("Back to pick")})
    def unpick(self):
        pass

    @transition(field=status, source=SS.PICKING, target=SS.PACKED, custom={"label": _("Pack")},
                conditions=[lambda shipment: shipment.all_lines_verified()])
    def pack(self):
        pass

    @transition(field=status, source=SS.PACKED, target=SS.SHIPPED, custom={"label": _("Ship")},
                conditions=[lambda shipment: bool(shipment.tracking_number)])
    def ship(self):
        pass

    @transition(field=status, source=SS.SHIPPED, target=SS.DELIVERED, custom={"label": _("Mark delivered")})
    def deliver(self):
        pass

    @transition(field=status, source=[SS.TO_PICK, SS.PICKING, SS.PACKED, SS.SHIPPED], target=SS.EXCEPTION,
                custom={"label": _("Report exception")})
    def raise_exception(self):
        self.status_before_exception = self.status

    @transition(field=status, source=SS.EXCEPTION, target=SS.TO_PICK, custom={"label": _("Resolve: back to pick")})
    def resolve(self):
        pass

    @transition(field=status, source=SS.EXCEPTION, target=SS.SHIPPED, custom={"label": _("Resolve: still in transit")},
                conditions=[lambda shipment: shipment.status_before_exception == SS.SHIPPED])
    def resolve_in_transit(self):
        pass

    @transition(field=status, source=[SS.TO_PICK, SS.PICKING, SS.PACKED, SS.EXCEPTION], target=SS.CANCELLED,
                custom={"label": _("Cancel"), "internal": True})
    def cancel(self):
        pass

    def all_lines_verified(self) -> bool:
        return not self.lines.filter(verified_quantity__lt=F("quantity")).exists()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_SHIPMENT_STATES


class ShipmentLine(models.Model):
    """Units of one reservation (order line × SKU × warehouse) travelling in this shipment."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines",
                                 verbose_name=_("shipment"))
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="shipment_lines",
                              verbose_name=_("order"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="shipment_lines",
                                   verbose_name=_("order line"))
    # Each reservation travels in exactly one shipment; shipping the shipment ships its reservations.
    reservation = models.OneToOneField("inventory.Reservation", on_delete=models.PROTECT, related_name="shipment_line",
                                       verbose_name=_("reservation"))
    sku = models.ForeignKey("inventory.SKU", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    quantity = models.PositiveIntegerField(_("quantity"))
    verified_quantity = models.PositiveIntegerField(_("scanned"), default=0)
    # The SKU's unit cost when the parcel shipped (finance.profit's cost of goods), so a later change of the cost
    # does not rewrite history. Empty: the SKU had no cost then, or the line shipped before this was recorded.
    unit_cost = models.DecimalField(_("unit cost when shipped"), max_digits=14, decimal_places=2, null=True,
                                    blank=True)

    class Meta:
        verbose_name = _("shipment line")
        verbose_name_plural = _("shipment lines")
        ordering = ["shipment_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="shipmentline_quantity_positive"),
            models.CheckConstraint(condition=Q(verified_quantity__lte=F("quantity")),
                                   name="shipmentline_verified_not_above_quantity"),
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id}: {self.sku_id} × {self.quantity}"


class ShipmentEventType(models.TextChoices):
    CREATED = "created", _("Created")
    STATUS_CHANGED = "status_changed", _("Status changed")
    ROUTED = "routed", _("Routed")
    ROUTING_OVERRIDDEN = "routing_overridden", _("Routing overridden")
    MERGED = "merged", _("Merged")
    UNMERGED = "unmerged", _("Unmerged")
    SPLIT = "split", _("Split")
    SCAN_REFUSED = "scan_refused", _("Scan refused")
    WAYBILL = "waybill", _("Waybill")
    TRACKING = "tracking", _("Tracking update")
    TRACKING_STALE = "tracking_stale", _("No tracking update")
    WEIGHT_MISMATCH = "weight_mismatch", _("Weight mismatch")
    WAVE_REMOVED = "wave_removed", _("Removed from the wave")
    WAVE_CANCELLED = "wave_cancelled", _("Wave cancelled")
    WAVE_SKIPPED = "wave_skipped", _("Not picked with the wave")


class ShipmentEvent(Event):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events",
                                 verbose_name=_("shipment"))
    type = models.CharField(_("type"), max_length=32, choices=ShipmentEventType.choices)
    # Shipment statuses are short: these columns were made 16 wide, not the 32 of the base.
    from_status = models.CharField(_("from"), max_length=16, blank=True, default="")
    to_status = models.CharField(_("to"), max_length=16, blank=True, default="")

    class Meta(Event.Meta):
        verbose_name = _("shipment event")
        verbose_name_plural = _("shipment events")
        indexes = [models.Index(fields=["shipment", "created_at"])]

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.type}"


class TrackingEvent(models.Model):
    """One checkpoint the carrier reported for a shipment."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="tracking_events",
                                 verbose_name=_("shipment"))
    occurred_at = models.DateTimeField(_("time"))
    code = models.CharField(_("code"), max_length=20)
    description = models.CharField(_("description"), max_length=300, blank=True, default="")
    location = models.CharField(_("location"), max_length=100, blank=True, default="")

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["occurred_at", "id"]
        constraints = [models.UniqueConstraint(fields=["shipment", "occurred_at", "code"],
                                               name="trackingevent_unique_checkpoint")]

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.code} {self.occurred_at:%Y-%m-%d %H:%M}"


class NotificationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (no address)")


class CustomerNotification(models.Model):
    """An outbox row: a message to the buyer, sent by a task and swept until done."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="notifications",
                              verbose_name=_("order"))
    shipment = models.ForeignKey(Shipment, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="notifications", verbose_name=_("shipment"))
    kind = models.CharField(_("kind"), max_length=20, default="shipped")
    channel = models.CharField(_("channel"), max_length=20, default="email")
    recipient = models.CharField(_("recipient"), max_length=200, blank=True, default="")
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=10, choices=NotificationStatus.choices,
                              default=NotificationStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer notification")
        verbose_name_plural = _("customer notifications")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["order", "shipment", "kind"],
                                               name="notification_once_per_shipment")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient or '-'} ({self.status})"
