"""Django admin for fulfilment: carriers (API secrets write-only) and routing rules are edited here as on the
rules pages; shipments, waves, decisions, events, tracking and notifications are shown read-only, because
they change only through the services (fulfillment.services) that lock, check and record."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from fulfillment.forms import CarrierForm, CarrierRuleForm, WarehouseRuleForm, config_keys_summary
from fulfillment.models import (
    Carrier,
    CarrierRule,
    CustomerNotification,
    RoutingDecision,
    Shipment,
    ShipmentEvent,
    ShipmentLine,
    TrackingEvent,
    WarehouseRule,
    Wave,
)
from oms.admin import ReadOnlyAdmin


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Carrier)
class CarrierAdmin(admin.ModelAdmin):
    # The same form as the carriers page: secrets show as "••• set" and are kept unless replaced.
    form = CarrierForm
    list_display = ["code", "name", "kind", "active", "cost_first_kg", "cost_extra_kg", "settings_summary"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name"]

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return super().get_fields(request, obj)
        # A view-only page shows every field's raw value: the settings are summarised instead.
        return [f for f in CarrierForm._meta.fields if f != "config"] + ["settings_summary"]

    def get_readonly_fields(self, request, obj=None):
        return [] if self.has_change_permission(request, obj) else ["settings_summary"]

    @admin.display(description=_("API settings"))
    def settings_summary(self, carrier: Carrier) -> str:
        return ", ".join(f"{key}={shown}" for key, shown in config_keys_summary(carrier.config)) or "—"


class _RuleAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "active", "target", "store"]
    list_display_links = ["name"]
    list_editable = ["position", "active"]
    list_filter = ["active"]
    search_fields = ["name"]
    ordering = ["position", "id"]

    def get_fields(self, request, obj=None):
        return ["position", *self.form._meta.fields]


@admin.register(WarehouseRule)
class WarehouseRuleAdmin(_RuleAdmin):
    form = WarehouseRuleForm
    list_select_related = ["warehouse", "store"]

    @admin.display(description=_("warehouse"))
    def target(self, rule: WarehouseRule) -> str:
        return rule.warehouse.code


@admin.register(CarrierRule)
class CarrierRuleAdmin(_RuleAdmin):
    form = CarrierRuleForm
    list_select_related = ["carrier", "store"]

    @admin.display(description=_("carrier"))
    def target(self, rule: CarrierRule) -> str:
        return f"{rule.carrier.code} {rule.service}"


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "order",
        "shipment",
        "kind",
        "rule_name",
        "carrier",
        "service",
        "overridden",
        "actor",
    ]
    list_filter = ["kind", "overridden"]
    search_fields = ["order__number", "shipment__number", "rule_name"]
    list_select_related = ["order", "shipment", "carrier", "actor"]
    date_hierarchy = "created_at"


class ShipmentLineInline(ReadOnlyInline):
    model = ShipmentLine
    fields = ["order", "sku", "quantity", "verified_quantity", "reservation"]
    readonly_fields = fields


class ShipmentEventInline(ReadOnlyInline):
    model = ShipmentEvent
    fields = ["created_at", "type", "from_status", "to_status", "actor", "actor_label", "reason", "data"]
    readonly_fields = fields


class TrackingEventInline(ReadOnlyInline):
    model = TrackingEvent
    fields = ["occurred_at", "code", "description", "location"]
    readonly_fields = fields


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "warehouse",
        "status",
        "carrier",
        "tracking_number",
        "order_numbers",
        "sla_due_at",
    ]
    list_filter = ["status", "warehouse", "carrier", "platform"]
    search_fields = ["number", "tracking_number", "order_numbers"]
    list_select_related = ["warehouse", "carrier"]
    date_hierarchy = "created_at"
    inlines = [ShipmentLineInline, ShipmentEventInline, TrackingEventInline]


@admin.register(ShipmentLine)
class ShipmentLineAdmin(ReadOnlyAdmin):
    list_display = ["shipment", "order", "sku", "quantity", "verified_quantity"]
    search_fields = ["shipment__number", "order__number", "sku__code"]
    list_select_related = ["shipment", "order", "sku"]


@admin.register(ShipmentEvent)
class ShipmentEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "shipment", "type", "from_status", "to_status", "actor", "actor_label"]
    list_filter = ["type"]
    search_fields = ["shipment__number"]
    list_select_related = ["shipment", "actor"]


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "shipment", "code", "description", "location"]
    list_filter = ["code"]
    search_fields = ["shipment__number", "shipment__tracking_number"]
    list_select_related = ["shipment"]


@admin.register(Wave)
class WaveAdmin(ReadOnlyAdmin):
    list_display = ["number", "warehouse", "status", "description", "created_by", "created_at", "started_at"]
    list_filter = ["status", "warehouse"]
    search_fields = ["number"]
    readonly_fields = ["parcels"]

    @admin.display(description=_("parcels"))
    def parcels(self, wave: Wave):
        return format_html_join(", ", "{}", ((s.number,) for s in wave.shipments.order_by("pk"))) or "—"


@admin.register(CustomerNotification)
class CustomerNotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "order", "shipment", "kind", "channel", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["order__number", "shipment__number"]
    list_select_related = ["order", "shipment"]
