"""Django admin for payment snapshots (read-only: they are evidence)."""

from django.contrib import admin

from finance.models import PaymentSnapshot


@admin.register(PaymentSnapshot)
class PaymentSnapshotAdmin(admin.ModelAdmin):
    list_display = ["order", "paid_amount", "currency", "taken_at"]
    search_fields = ["order__number"]
    list_select_related = ["order"]
    readonly_fields = ["order", "paid_amount", "currency", "taken_at", "data"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
