"""Django admin for sync states and the inbox (read-mostly: processing goes through the services)."""

from django.contrib import admin

from connectors.models import ChannelSyncState, InboxMessage


@admin.register(ChannelSyncState)
class ChannelSyncStateAdmin(admin.ModelAdmin):
    list_display = ["store", "enabled", "poll_interval_seconds", "watermark", "last_success_at", "consecutive_failures",
                    "orders_created", "errors"]
    list_select_related = ["store"]
    readonly_fields = ["watermark", "poll_lease_until", "process_lease_until", "last_poll_started_at",
                       "last_success_at", "last_error", "last_error_at", "consecutive_failures", "orders_fetched",
                       "orders_created", "orders_updated", "webhooks_received", "duplicates", "stale_updates",
                       "signature_failures", "errors"]


@admin.register(InboxMessage)
class InboxMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "store", "kind", "topic", "platform_order_id", "status", "dead_reason", "attempts"]
    list_filter = ["status", "kind", "dead_reason", "store"]
    search_fields = ["platform_order_id", "delivery_key"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in InboxMessage._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
