"""Django admin for warehouses, SKUs with their bundle components, platform SKU mappings, read-only stock, and
staff scopes (inline on the user page)."""

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from inventory.models import (
    SKU,
    BundleComponent,
    ChannelStockDirty,
    PlatformSKUMapping,
    Reservation,
    StaffScope,
    StockLevel,
    StockMovement,
    Warehouse,
)
from inventory.services import bundle_components_check
from oms.admin import ReadOnlyAdmin
from oms.exceptions import DomainError
from pipeline import stock as pipeline_stock


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "country", "priority", "active", "is_quarantine", "quarantine_warehouse"]
    list_filter = ["active", "is_quarantine", "country"]
    search_fields = ["code", "name"]


class BundleComponentFormSet(BaseInlineFormSet):
    def clean(self):
        # The inline form leaves out the bundle field, so Django skips the database's "not its own
        # component" check and the INSERT would fail with a 500; say it on the row instead.
        super().clean()
        kept = []
        for form in self.forms:
            component = form.cleaned_data.get("component") if hasattr(form, "cleaned_data") else None
            if component is None or form.cleaned_data.get("DELETE"):
                continue
            if component.pk == self.instance.pk:
                form.add_error("component", _("A bundle cannot be its own component."))
            kept.append(component.pk)
        if kept and self.instance.pk:
            try:
                bundle_components_check(bundle_id=self.instance.pk, component_ids=kept)
            except DomainError as exc:
                raise ValidationError(exc.message) from None


class BundleComponentInline(admin.TabularInline):
    model = BundleComponent
    formset = BundleComponentFormSet
    fk_name = "bundle"
    extra = 0
    autocomplete_fields = ["component"]
    verbose_name = _("component")
    verbose_name_plural = _("bundle components (a bundle holds no stock; orders reserve its components)")


@admin.register(SKU)
class SKUAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "barcode", "category", "safety_stock", "is_gift", "active"]
    list_filter = ["category", "is_gift", "active"]
    search_fields = ["code", "name", "barcode"]
    inlines = [BundleComponentInline]

    def save_model(self, request, obj, form, change):
        # The safety stock is copied onto every stock row (the reservation UPDATE reads it there), so a
        # change goes through the service that updates both; the plain save keeps the stored value.
        if change and "safety_stock" in form.changed_data:
            new_safety_stock = obj.safety_stock
            obj.safety_stock = SKU.objects.values_list("safety_stock", flat=True).get(pk=obj.pk)
            super().save_model(request, obj, form, change)
            pipeline_stock.sku_set_safety_stock(sku_id=obj.pk, safety_stock=new_safety_stock)
            obj.safety_stock = new_safety_stock
        else:
            super().save_model(request, obj, form, change)


@admin.register(PlatformSKUMapping)
class PlatformSKUMappingAdmin(admin.ModelAdmin):
    list_display = ["store", "platform_sku_id", "sku"]
    list_filter = ["store"]
    search_fields = ["platform_sku_id", "sku__code", "sku__name"]
    autocomplete_fields = ["store", "sku"]
    list_select_related = ["store", "sku"]


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ["warehouse", "sku", "on_hand", "reserved", "safety_stock", "available_display", "location",
                    "updated_at"]
    list_filter = ["warehouse"]
    search_fields = ["sku__code", "sku__name", "sku__barcode"]
    list_select_related = ["warehouse", "sku"]

    @admin.display(description=_("available"))
    def available_display(self, level: StockLevel) -> int:
        return level.available


@admin.register(ChannelStockDirty)
class ChannelStockDirtyAdmin(ReadOnlyAdmin):
    """What the channel stock push still has to send (read-only: the stock services write it)."""

    list_display = ["store", "sku", "version", "marked_at"]
    list_filter = ["store"]
    search_fields = ["sku__code"]
    list_select_related = ["store", "sku"]


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "warehouse", "sku", "kind", "on_hand_delta", "reserved_delta", "reference",
                    "order", "actor"]
    list_filter = ["kind", "warehouse"]
    search_fields = ["sku__code", "reference", "order__number"]
    list_select_related = ["warehouse", "sku", "order", "actor"]
    date_hierarchy = "created_at"


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["order", "order_line", "warehouse", "sku", "quantity", "status", "created_at", "closed_at"]
    list_filter = ["status", "warehouse"]
    search_fields = ["order__number", "sku__code"]
    list_select_related = ["order", "order_line", "warehouse", "sku"]


class StaffScopeInline(admin.StackedInline):
    model = StaffScope
    can_delete = True
    extra = 0
    max_num = 1
    filter_horizontal = ["warehouses", "stores"]
    verbose_name_plural = _("staff scope (warehouses and stores this user works for; managers and admins see all)")


@admin.register(StaffScope)
class StaffScopeAdmin(admin.ModelAdmin):
    list_display = ["user", "warehouses_display", "stores_display"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["warehouses", "stores"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").prefetch_related("warehouses", "stores")

    @admin.display(description=_("warehouses"))
    def warehouses_display(self, scope: StaffScope) -> str:
        return ", ".join(w.code for w in scope.warehouses.all()) or _("every warehouse")

    @admin.display(description=_("stores"))
    def stores_display(self, scope: StaffScope) -> str:
        return ", ".join(s.code for s in scope.stores.all()) or _("every store")


# The scope is edited where the user is: extend whichever user admin is registered (auth's by default).
_User = get_user_model()
try:
    _UserAdminBase = type(admin.site.get_model_admin(_User))
    admin.site.unregister(_User)
except NotRegistered:
    _UserAdminBase = UserAdmin


@admin.register(_User)
class ScopedUserAdmin(_UserAdminBase):
    inlines = [*_UserAdminBase.inlines, StaffScopeInline]
