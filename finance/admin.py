"""Django admin for finance: payment snapshots and imported settlements are read-only (they are evidence)."""

from django.contrib import admin

from finance.models import (
    AccountMapping,
    BankMapping,
    Difference,
    FinancePeriod,
    PaymentSnapshot,
    SettlementFile,
    SettlementRow,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PaymentSnapshot)
class PaymentSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["order", "event", "paid_amount", "currency", "payment_id", "platform_fee", "taken_at"]
    search_fields = ["order__number", "payment_id"]
    list_select_related = ["order"]
    readonly_fields = ["order", "event", "paid_amount", "currency", "payment_id", "platform_fee", "reference",
                       "taken_at", "data"]


@admin.register(SettlementFile)
class SettlementFileAdmin(ReadOnlyAdmin):
    list_display = ["file_name", "source", "store", "status", "row_count", "skipped_count", "period_start",
                    "period_end", "uploaded_by", "uploaded_at"]
    list_filter = ["source", "status"]
    search_fields = ["file_name", "sha256"]
    list_select_related = ["store", "uploaded_by"]
    exclude = ["content"]  # the uploaded bytes: megabytes, never loaded into a page

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")


@admin.register(SettlementRow)
class SettlementRowAdmin(ReadOnlyAdmin):
    list_display = ["external_row_id", "source", "kind", "gross", "fee", "net", "currency", "occurred_at"]
    list_filter = ["source", "kind"]
    search_fields = ["external_row_id", "payment_id", "platform_order_id", "merchant_order_no"]
    raw_id_fields = ["file"]


@admin.register(BankMapping)
class BankMappingAdmin(admin.ModelAdmin):
    list_display = ["name", "date_column", "amount_column", "credit_column", "debit_column", "currency"]
    search_fields = ["name"]


@admin.register(FinancePeriod)
class FinancePeriodAdmin(ReadOnlyAdmin):
    # Closing and reopening go through the finance pages (a reason is required to reopen).
    list_display = ["month", "store", "status", "closed_by", "closed_at"]
    list_filter = ["status"]


@admin.register(Difference)
class DifferenceAdmin(ReadOnlyAdmin):
    list_display = ["month", "source", "store", "reason", "order", "expected_amount", "actual_amount", "currency",
                    "status"]
    list_filter = ["source", "reason", "status"]
    raw_id_fields = ["order", "settlement_row"]


@admin.register(AccountMapping)
class AccountMappingAdmin(admin.ModelAdmin):
    # Editable by the finance user: the chart of accounts is the seller's, the journal export follows it.
    list_display = ["kind", "store", "debit_account_code", "debit_account_name", "credit_account_code",
                    "credit_account_name", "updated_at"]
    list_filter = ["kind", "store"]
    search_fields = ["debit_account_code", "debit_account_name", "credit_account_code", "credit_account_name"]
