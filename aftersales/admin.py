"""Django admin of after-sales: tickets with their lines and history, shown and never written here."""

from django.contrib import admin

from aftersales.models import Ticket, TicketEvent, TicketLine
from oms.admin import ReadOnlyAdmin


class TicketLineInline(admin.TabularInline):
    model = TicketLine
    extra = 0
    can_delete = False
    readonly_fields = ["order_line", "quantity", "requested_amount", "approved_amount"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["number", "order", "type", "reason", "status", "requested_amount", "approved_amount", "due_at",
                    "created_at"]
    list_filter = ["status", "type", "source", "store"]
    search_fields = ["number", "order__number", "platform_after_sale_id"]
    list_select_related = ["order"]
    inlines = [TicketLineInline]


@admin.register(TicketLine)
class TicketLineAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "order_line", "quantity", "requested_amount", "approved_amount"]
    list_select_related = ["ticket", "order_line"]


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "type", "from_status", "to_status", "actor_display", "created_at"]
    list_filter = ["type"]
    list_select_related = ["ticket", "actor"]
