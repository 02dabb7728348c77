"""Django admin for the customer API's rows, read-only: failed proofs (to lift a lock by hand) and WeChat bindings."""

from django.contrib import admin

from customer.models import ProofFailure, WeChatBinding


@admin.register(ProofFailure)
class ProofFailureAdmin(admin.ModelAdmin):
    """Deleting today's row lifts an order number's daily lock (a buyer who called customer service)."""

    list_display = ["day", "key", "count", "updated_at"]
    list_filter = ["day"]
    search_fields = ["=key"]
    readonly_fields = ["key", "day", "count", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WeChatBinding)
class WeChatBindingAdmin(admin.ModelAdmin):
    """Shows which order a WeChat user was bound through, never who they are (only a digest is kept)."""

    list_display = ["pk", "order", "created_at", "last_login_at", "unbound_at"]
    list_filter = ["unbound_at"]
    search_fields = ["=order__number"]
    list_select_related = ["order"]
    exclude = ["openid_digest", "phone_digest"]
    readonly_fields = ["app_id", "order", "created_at", "last_login_at", "unbound_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an ended binding stays, so support can see it happened
