"""Django admin for customer notes (read-only: notes are written from the customer view, with their author)."""

from django.contrib import admin

from desk.models import CustomerNote


@admin.register(CustomerNote)
class CustomerNoteAdmin(admin.ModelAdmin):
    list_display = ["created_at", "store", "buyer_id", "author", "text"]
    list_filter = ["store"]
    search_fields = ["buyer_id", "=phone"]
    list_select_related = ["store", "author"]
    readonly_fields = ["store", "buyer_id", "phone", "text", "author", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
