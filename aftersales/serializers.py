"""API shapes of after-sales tickets: the read representation and the inputs to open and move a ticket."""

from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aftersales.models import (
    Refund,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketLine,
    TicketReason,
    TicketType,
)
from aftersales.selectors import ticket_is_overdue
from aftersales.services import TicketLineInput
from oms.api_schema import StrictInputSerializer
from orders.models import AMOUNT_COLUMN_MAX, LINE_MAX_QUANTITY, ORDER_MAX_FEE, ORDER_MAX_LINES
from orders.serializers import AmountField
from pipeline.tickets import TICKET_ACTIONS

# Ids are PostgreSQL bigints; anything larger names nothing and is refused as input.
ID_MAX = 2**63 - 1


class TicketLineSerializer(serializers.ModelSerializer):
    order_line_id = serializers.IntegerField()
    line_no = serializers.IntegerField(source="order_line.line_no")
    sku_code = serializers.CharField(source="order_line.sku_code")
    title = serializers.CharField(source="order_line.title")
    replacement_sku = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True,
        help_text=_("Exchange only: the SKU the replacement sends instead of this line's; null for the same."))

    class Meta:
        model = TicketLine
        fields = ["order_line_id", "line_no", "sku_code", "title", "quantity", "requested_amount", "approved_amount",
                  "replacement_sku"]


class TicketEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_display")

    class Meta:
        model = TicketEvent
        fields = ["type", "actor", "from_status", "to_status", "reason", "data", "created_at"]


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "amount", "shipping_amount", "currency", "method", "status", "platform_refund_id",
                  "created_at", "confirmed_at"]


class ReturnUnitSerializer(serializers.ModelSerializer):
    order_line_id = serializers.IntegerField(source="ticket_line.order_line_id")
    sku_code = serializers.CharField(source="sku.code")
    warehouse = serializers.CharField(source="warehouse.code")

    class Meta:
        model = ReturnUnit
        fields = ["order_line_id", "unit_no", "sku_code", "grade", "warehouse", "graded_at"]


class CheckSerializer(serializers.Serializer):
    """One automatic check made when the ticket was opened (schema only)."""

    check = serializers.CharField(help_text="window, line, auto_approval...")
    ok = serializers.BooleanField()
    message = serializers.CharField()
    line_no = serializers.IntegerField(required=False)


class TicketSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", read_only=True)
    store = serializers.SlugRelatedField(slug_field="code", read_only=True)
    type_display = serializers.CharField(source="get_type_display", read_only=True)
    reason_display = serializers.CharField(source="get_reason_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    owner = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = ["id", "number", "order", "order_number", "store", "type", "type_display", "reason",
                  "reason_display", "reason_text", "status", "status_display", "source", "platform_after_sale_id",
                  "requested_amount", "requested_shipping", "approved_amount", "currency", "owner", "due_at",
                  "overdue", "first_response_at", "closed_at", "escalated_at", "return_tracking_number",
                  "replacement_order", "created_at", "updated_at"]

    @extend_schema_field({"type": "string", "nullable": True, "description": "The owner's user name; null when "
                                                                             "nobody has taken the ticket."})
    def get_owner(self, ticket: Ticket) -> str | None:
        return ticket.owner.get_username() if ticket.owner_id else None

    def get_overdue(self, ticket: Ticket) -> bool:
        """Open, not answered yet, and the first answer was due before now."""
        return ticket_is_overdue(ticket, timezone.now())


class TicketDetailSerializer(TicketSerializer):
    lines = TicketLineSerializer(many=True, read_only=True)
    checks = CheckSerializer(many=True, read_only=True)
    refunds = RefundSerializer(many=True, read_only=True)
    units = ReturnUnitSerializer(many=True, read_only=True)
    events = TicketEventSerializer(many=True, read_only=True)

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "lines", "checks", "refunds", "units", "events"]


class TicketLineInputSerializer(StrictInputSerializer):
    order_line_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    quantity = serializers.IntegerField(min_value=1, max_value=LINE_MAX_QUANTITY)
    amount = AmountField(max_value=AMOUNT_COLUMN_MAX, required=False,
                         help_text=_("Omit to ask for what was paid for these units."))
    replacement_sku = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text=_("Exchange only: the code of an active SKU sent instead of this line's (another size or "
                    "colour). Any other type, an unknown or inactive SKU: 400 ticket_invalid on "
                    "lines[i].replacement_sku."))


class TicketCreateSerializer(StrictInputSerializer):
    """A ticket on some lines of one order; what the order allows is checked by the service (ticket_invalid)."""

    order = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text=_("The order's id."))
    type = serializers.ChoiceField(choices=TicketType.choices)
    reason = serializers.ChoiceField(choices=TicketReason.choices)
    reason_text = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                        help_text=_("Required for reason “other”."))
    # A ListField rather than many=True: drf-spectacular states max_length (maxItems) only for ListField.
    lines = serializers.ListField(child=TicketLineInputSerializer(), allow_empty=False, min_length=1,
                                  max_length=ORDER_MAX_LINES)
    shipping_amount = AmountField(max_value=ORDER_MAX_FEE, required=False, default=Decimal("0"),
                                  help_text=_("Shipping to refund, at most the order's shipping."))
    return_tracking_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def line_inputs(self) -> list[TicketLineInput]:
        return [TicketLineInput(order_line_id=line["order_line_id"], quantity=line["quantity"],
                                amount=line.get("amount"), replacement_sku=line.get("replacement_sku", ""))
                for line in self.validated_data["lines"]]


@extend_schema_field({"type": "string", "enum": list(TICKET_ACTIONS)})
class TicketTransitionNameField(serializers.CharField):
    """An action name; an unknown one is refused by the flow with its own code (unknown_transition)."""


class TicketTransitionSerializer(StrictInputSerializer):
    name = TicketTransitionNameField(max_length=40)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    approved_amount = AmountField(max_value=AMOUNT_COLUMN_MAX, required=False,
                                  help_text=_("Approve only: at most what the ticket asks for (400 "
                                              "amount_out_of_range); omitted, the whole request."))
