"""Django admin for printers, print bridges and print jobs (jobs and tokens are shown, never edited here)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from printing.models import PrintBridge, Printer, PrintJob


@admin.register(Printer)
class PrinterAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "warehouse", "paper_width", "transport", "host", "port", "active",
                    "offline_since"]
    list_filter = ["active", "transport", "paper_width", "warehouse"]
    search_fields = ["code", "name", "host"]
    list_select_related = ["warehouse"]
    # Written by the senders when a send fails or succeeds, not by a person.
    readonly_fields = ["offline_since", "last_error", "created_at", "updated_at"]


@admin.register(PrintBridge)
class PrintBridgeAdmin(admin.ModelAdmin):
    list_display = ["name", "warehouse", "token_prefix", "active", "last_seen_at"]
    list_filter = ["active", "warehouse"]
    search_fields = ["name", "token_prefix"]
    list_select_related = ["warehouse"]
    # The token is shown once on creation (printing pages); the admin never lets anyone set its hash,
    # or a hash typed here would let whoever knows its token pull the warehouse's labels.
    fields = ["name", "warehouse", "active", "token_prefix", "last_seen_at", "created_at", "updated_at"]
    readonly_fields = ["token_prefix", "last_seen_at", "created_at", "updated_at"]

    def has_add_permission(self, request):
        # A bridge needs a fresh token: the printing page creates it and shows the token once.
        return False


@admin.register(PrintJob)
class PrintJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "printer", "status", "attempts", "shipment", "wave", "created_at", "printed_at"]
    list_filter = ["status", "kind", "printer__warehouse", "printer"]
    search_fields = ["dedup_key", "reason"]
    list_select_related = ["printer", "shipment", "wave"]
    date_hierarchy = "created_at"
    # The payload is raw ESC/POS bytes: shown as its size, never as an editable field.
    exclude = ["payload"]
    readonly_fields = ["payload_size", "printer", "kind", "shipment", "wave", "dedup_key", "reprint_of", "reason",
                       "status", "attempts", "last_error", "next_attempt_at", "lease_until", "claimed_by",
                       "requested_by", "created_at", "printed_at"]

    @admin.display(description=_("label size (bytes)"))
    def payload_size(self, obj: PrintJob) -> int:
        return len(obj.payload or b"")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # State changes go through printing.services (queue page, reprint): the admin only shows jobs.
        return False
