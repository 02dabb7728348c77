"""Django admin for warehouses and SKUs."""

from django.contrib import admin

from inventory.models import SKU, Warehouse


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "country", "priority", "active"]
    list_filter = ["active", "country"]
    search_fields = ["code", "name"]


@admin.register(SKU)
class SKUAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "barcode", "category", "safety_stock", "is_gift", "active"]
    list_filter = ["category", "is_gift", "active"]
    search_fields = ["code", "name", "barcode"]
