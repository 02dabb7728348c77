"""Django admin for sync states, the inbox, shipment pushes, channel stock and completeness checks (read-mostly)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from connectors.models import (
    ChannelStock,
    ChannelSyncState,
    InboxMessage,
    PaymentCapture,
    RefundPush,
    ShipmentPush,
    SyncCheck,
)
from oms.admin import ReadOnlyAdmin as BaseReadOnlyAdmin


class ChannelSyncStateAdminForm(forms.ModelForm):
    """Credentials are write-only here: the current values are never sent back to the browser."""

    new_credentials = forms.JSONField(label=_("Replace credentials (JSON)"), required=False,
                                      help_text=_("Leave empty to keep the stored credentials."))

    class Meta:
        model = ChannelSyncState
        fields = ["store", "enabled", "poll_interval_seconds", "initial_lookback_hours", "next_poll_at", "api_version",
                  "authorized_counts_as_paid", "stock_push_enabled", "stock_share", "stock_buffer"]

    def clean_new_credentials(self):
        value = self.cleaned_data.get("new_credentials")
        if value in (None, "", {}):
            return None
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise forms.ValidationError(_("Give the credentials as a JSON object of names and values."),
                                        code="credentials_not_object")
        return value

    def save(self, commit=True):
        state = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            state.credentials = self.cleaned_data["new_credentials"]
        if commit:
            state.save()
        return state


@admin.register(ChannelSyncState)
class ChannelSyncStateAdmin(admin.ModelAdmin):
    form = ChannelSyncStateAdminForm
    list_display = ["store", "enabled", "poll_interval_seconds", "watermark", "last_success_at", "consecutive_failures",
                    "orders_created", "errors"]
    list_select_related = ["store"]
    readonly_fields = ["watermark", "poll_lease_until", "process_lease_until", "last_poll_started_at",
                       "last_success_at", "last_error", "last_error_at", "consecutive_failures", "orders_fetched",
                       "orders_created", "orders_updated", "webhooks_received", "duplicates", "stale_updates",
                       "signature_failures", "errors", "api_version_served", "credentials_summary"]

    @admin.display(description=_("Stored credentials"))
    def credentials_summary(self, state: ChannelSyncState) -> str:
        return ", ".join(f"{key}=***" for key in sorted(state.credentials)) or "—"


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


class ReadOnlyAdmin(BaseReadOnlyAdmin):
    """Written by the push and check services only; the admin shows the rows (and may delete one)."""

    allow_delete = True


@admin.register(ShipmentPush)
class ShipmentPushAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "store", "order", "carrier_code", "tracking_number", "status", "attempts",
                    "sent_at"]
    list_filter = ["status", "store"]
    search_fields = ["tracking_number", "shipment_key"]
    list_select_related = ["store", "order"]


@admin.register(ChannelStock)
class ChannelStockAdmin(ReadOnlyAdmin):
    list_display = ["store", "sku", "change_seq", "pushed_seq", "last_pushed_quantity", "last_pushed_at",
                    "next_attempt_at"]
    list_filter = ["store"]
    search_fields = ["sku__code"]
    list_select_related = ["store", "sku"]


@admin.register(SyncCheck)
class SyncCheckAdmin(ReadOnlyAdmin):
    list_display = ["checked_at", "store", "window_start", "window_end", "platform_count", "hub_count"]
    list_filter = ["store"]
    list_select_related = ["store"]


@admin.register(PaymentCapture)
class PaymentCaptureAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "store", "order", "status", "attempts", "captured_at"]
    list_filter = ["status", "store"]
    list_select_related = ["store", "order"]


@admin.register(RefundPush)
class RefundPushAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "store", "order", "amount", "status", "attempts", "platform_refund_id", "sent_at"]
    list_filter = ["status", "store"]
    list_select_related = ["store", "order"]
