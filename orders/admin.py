"""Django admin for stores, orders (read-mostly: status changes go through the services) and events."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from oms.exceptions import DomainError
from orders.models import IdempotencyRecord, Order, OrderEvent, OrderLine, Store
from pipeline import orders as flows


class StoreAdminForm(forms.ModelForm):
    """The store as the order core sees it; its platform is fixed once it has orders (their outbox rows,
    stock pushes and platform ids belong to that platform's API). Credentials and other platform-only
    settings are the channel's (connectors admin, or the channels page)."""

    class Meta:
        model = Store
        fields = ["platform", "code", "name", "active", "default_currency", "auto_approve"]

    def clean_platform(self):
        platform = self.cleaned_data["platform"]
        store = self.instance
        if store.pk and platform != Store.objects.get(pk=store.pk).platform and store.orders.exists():
            raise forms.ValidationError(_("A store with orders cannot move to another platform: create a new store."),
                                        code="platform_change")
        return platform


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    form = StoreAdminForm
    list_display = ["code", "name", "platform", "active", "auto_approve"]
    list_filter = ["platform", "active"]
    search_fields = ["code", "name"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["line_no", "sku_code", "platform_sku_id", "title", "quantity", "unit_price", "discount_amount"]

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "type", "from_status", "to_status", "actor", "actor_label", "reason", "data"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "store", "platform_order_id", "status", "total_amount", "currency", "placed_at"]
    list_filter = ["status", "store", "priority"]
    search_fields = ["number", "platform_order_id"]
    date_hierarchy = "placed_at"
    list_select_related = ["store"]
    inlines = [OrderLineInline, OrderEventInline]
    readonly_fields = ["number", "store", "platform_order_id", "status", "status_before_hold", "hold_reasons",
                       "version", "goods_amount", "discount_amount", "total_amount", "paid_amount", "paid_at",
                       "placed_at", "platform_updated_at", "raw_payload_ref"]
    actions = ["cancel_selected"]

    @admin.action(description=_("Cancel selected orders"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        done = 0
        for order in queryset:
            try:
                flows.order_cancel(order_id=order.pk, actor=request.user, reason="admin")
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.message}", messages.WARNING)
        self.message_user(request, _("%(n)d orders cancelled.") % {"n": done})


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ["order", "type", "from_status", "to_status", "actor", "actor_label", "created_at"]
    list_filter = ["type"]
    search_fields = ["order__number"]
    list_select_related = ["order", "actor"]

    def has_change_permission(self, request, obj=None):
        return False  # history is never edited


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ["order", "line_no", "sku_code", "quantity", "unit_price"]
    search_fields = ["order__number", "sku_code"]
    list_select_related = ["order"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "endpoint", "response_status", "order", "created_at"]
    search_fields = ["key"]
