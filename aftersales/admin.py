"""Django admin of after-sales: tickets with their lines, units, refunds and history shown and never written here;
the store policies and auto-approval rules edited here."""

from django.contrib import admin

from aftersales.models import (
    AftersalesPolicy,
    AutoApprovalRule,
    Refund,
    RefundLine,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketLine,
)
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


@admin.register(ReturnUnit)
class ReturnUnitAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "ticket_line", "unit_no", "sku", "grade", "warehouse", "graded_by", "graded_at"]
    list_filter = ["grade"]
    list_select_related = ["ticket", "sku", "warehouse", "graded_by"]


class RefundLineInline(admin.TabularInline):
    model = RefundLine
    extra = 0
    can_delete = False
    readonly_fields = ["order_line", "amount"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["order", "ticket", "amount", "shipping_amount", "method", "status", "platform_refund_id",
                    "created_at", "confirmed_at"]
    list_filter = ["status", "method"]
    search_fields = ["order__number", "ticket__number", "platform_refund_id"]
    list_select_related = ["order", "ticket"]
    inlines = [RefundLineInline]


@admin.register(RefundLine)
class RefundLineAdmin(ReadOnlyAdmin):
    list_display = ["refund", "order_line", "amount"]
    list_select_related = ["refund", "order_line"]


@admin.register(AftersalesPolicy)
class AftersalesPolicyAdmin(admin.ModelAdmin):
    list_display = ["store", "first_response_minutes", "work_starts", "work_ends", "escalate_after_hours"]


@admin.register(AutoApprovalRule)
class AutoApprovalRuleAdmin(admin.ModelAdmin):
    list_display = ["store", "type", "max_amount", "enabled"]
    list_filter = ["store", "type", "enabled"]
