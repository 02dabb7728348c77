"""API shapes of reconciliation: a difference and its settlement row, the inputs to resolve and re-check, and the
per-store, per-source summary of a month."""

import re
from datetime import date

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from finance.models import Difference, SettlementRow
from finance.readers.base import SettlementSource
from oms.api_schema import StrictInputSerializer

# A month as the API writes it. The years are bounded so a month always has a following one (month_bounds) and
# the schema promises nothing the server refuses ("2026-13" and "0000-01" do not match).
MONTH_PATTERN = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)
MONTH_SCHEMA = {"type": "string", "pattern": MONTH_PATTERN, "example": "2026-11",
                "description": "A month, YYYY-MM (Beijing time)."}
# The note a person leaves when resolving a difference.
RESOLUTION_NOTE_MAX_LENGTH = 2000
STORE_CODE_MAX_LENGTH = 50


def parse_month(value: str) -> date | None:
    """The first day of the month written as YYYY-MM, or None when it is not one."""
    if not isinstance(value, str) or not _MONTH.fullmatch(value):
        return None
    return date(int(value[:4]), int(value[5:7]), 1)


@extend_schema_field(MONTH_SCHEMA)
class MonthField(serializers.Field):
    """A month as "YYYY-MM" in and out; inside, the month's first day (as Difference.month keeps it)."""

    default_error_messages = {"invalid": _("Enter a month as YYYY-MM, e.g. 2026-11.")}

    def to_internal_value(self, data):
        month = parse_month(data)
        if month is None:
            self.fail("invalid")
        return month

    def to_representation(self, value: date) -> str:
        return f"{value:%Y-%m}"


class DifferenceRowSerializer(serializers.ModelSerializer):
    """The settlement row a difference is about."""

    file = serializers.IntegerField(source="file_id", help_text=_("The settlement file the row came from."))

    class Meta:
        model = SettlementRow
        fields = ["id", "file", "line_no", "external_row_id", "kind", "payment_id", "platform_order_id",
                  "merchant_order_no", "gross", "fee", "net", "currency", "occurred_at"]


class DifferenceSerializer(serializers.ModelSerializer):
    month = MonthField(read_only=True)
    store = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    source_display = serializers.CharField(source="get_source_display", read_only=True)
    reason_display = serializers.CharField(source="get_reason_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    order_number = serializers.CharField(source="order.number", read_only=True, allow_null=True, default=None)
    settlement_row = DifferenceRowSerializer(read_only=True, allow_null=True)
    resolved_by = serializers.SerializerMethodField()

    class Meta:
        model = Difference
        fields = ["id", "month", "store", "source", "source_display", "reason", "reason_display", "order",
                  "order_number", "settlement_row", "expected_amount", "actual_amount", "currency", "status",
                  "status_display", "created_at", "resolved_by", "resolved_at", "resolution_note"]

    @extend_schema_field({"type": "string", "nullable": True,
                          "description": "The user name of who resolved it; null while open."})
    def get_resolved_by(self, difference: Difference) -> str | None:
        return difference.resolved_by.get_username() if difference.resolved_by_id else None


class ResolveSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=RESOLUTION_NOTE_MAX_LENGTH,
                                 help_text=_("Why the difference is not a problem, or what was done about it."))


class RecheckSerializer(StrictInputSerializer):
    # Not trimmed: " tb" names no store (404), as the schema allows it.
    store = serializers.CharField(max_length=STORE_CODE_MAX_LENGTH, trim_whitespace=False,
                                  help_text=_("The store's code."))
    source = serializers.ChoiceField(choices=SettlementSource.choices)
    month = MonthField()


class SummaryQuerySerializer(StrictInputSerializer):
    """The query of the summary: the month, and optionally one store (by code) or one source."""

    month = MonthField()
    store = serializers.CharField(max_length=STORE_CODE_MAX_LENGTH, required=False, allow_blank=True,
                                  trim_whitespace=False,
                                  help_text=_("A store's code; an unknown code summarises nothing."))
    source = serializers.ChoiceField(choices=SettlementSource.choices, required=False)


class DifferencesByReasonSerializer(serializers.Serializer):
    """Open differences per reason; every reason is present, 0 when there is none."""

    missing_in_hub = serializers.IntegerField()
    missing_in_settlement = serializers.IntegerField()
    amount_differs = serializers.IntegerField()
    fee_differs = serializers.IntegerField()
    refund_not_settled = serializers.IntegerField()
    settled_twice = serializers.IntegerField()
    currency_differs = serializers.IntegerField()


class CurrencyAmountSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)


class SummarySerializer(serializers.Serializer):
    """One store's source in one month, from the stored rows and differences (no matching is run)."""

    store = serializers.CharField(allow_null=True, help_text=_("The store's code; null for a bank statement."))
    source = serializers.ChoiceField(choices=SettlementSource.choices)
    month = MonthField()
    rows = serializers.IntegerField(help_text=_("Sale rows of the month in imported files."))
    matched = serializers.IntegerField(help_text=_("Sale rows that found their order."))
    # Amounts are per currency, never summed across currencies.
    matched_amounts = CurrencyAmountSerializer(
        many=True, help_text=_("Gross of the matched sale rows, per currency."))
    differences = serializers.IntegerField(help_text=_("Open differences."))
    differences_by_reason = DifferencesByReasonSerializer()


class MatchSummarySerializer(serializers.Serializer):
    """What a re-check found (finance.matching.MatchSummary)."""

    store = serializers.CharField()
    source = serializers.ChoiceField(choices=SettlementSource.choices)
    month = MonthField()
    rows = serializers.IntegerField(help_text=_("Sale rows of the month in imported files."))
    matched = serializers.IntegerField(help_text=_("Sale rows that found their order."))
    matched_amount = serializers.DecimalField(max_digits=16, decimal_places=2,
                                              help_text=_("Gross of the matched sale rows."))
    differences = serializers.IntegerField(help_text=_("Open differences."))
    differences_by_reason = DifferencesByReasonSerializer()
