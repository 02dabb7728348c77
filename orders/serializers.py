"""API shapes of orders: the read representation (PII masked by permission) and the write inputs."""

import re
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from oms.api_schema import StrictInputSerializer
from oms.pii import can_view_pii, mask_address, mask_name, mask_phone
from orders.models import (
    AMOUNT_COLUMN_MAX,
    LINE_MAX_DISCOUNT,
    LINE_MAX_QUANTITY,
    LINE_MAX_UNIT_PRICE,
    ORDER_MAX_FEE,
    ORDER_MAX_LINES,
    CancelReason,
    HoldReason,
    Order,
    OrderEvent,
    OrderLine,
    Priority,
    Store,
)
from orders.services import USER_TRANSITION_PERMISSIONS, BuyerInput, LineInput, OrderInput, ReceiverInput

MONEY = {"max_digits": 14, "decimal_places": 2, "coerce_to_string": True}


class OrderLineSerializer(serializers.ModelSerializer):
    line_total = serializers.DecimalField(read_only=True, **MONEY)

    class Meta:
        model = OrderLine
        fields = ["line_no", "sku_code", "platform_sku_id", "title", "quantity", "unit_price", "discount_amount",
                  "line_total"]


class OrderEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_display")

    class Meta:
        model = OrderEvent
        fields = ["type", "actor", "from_status", "to_status", "reason", "data", "created_at"]


class ReceiverSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=128)
    phone = serializers.RegexField(r"^\+?[0-9][0-9 -]{4,30}$", max_length=32,
                                   error_messages={"invalid": _("Enter a phone number (digits, optional +).")})
    country = serializers.CharField(max_length=2, default="CN")
    province = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    district = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=255)
    zip = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


class BuyerSerializer(StrictInputSerializer):
    id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


_MASKED = "Masked for roles without the PII permission"


class ReceiverOutSerializer(serializers.Serializer):
    """The receiver as the API shows it (schema only): masked unless the caller may see personal data."""

    name = serializers.CharField(help_text=f"{_MASKED}: the first character, then * (王**).")
    phone = serializers.CharField(help_text=f"{_MASKED}: 133****3069 (first three and last four digits), or * "
                                            "for all but the last four digits of a shorter number.")
    country = serializers.CharField()
    province = serializers.CharField()
    city = serializers.CharField()
    district = serializers.CharField()
    address = serializers.CharField(help_text=f"{_MASKED}: the first characters, then ****.")
    zip = serializers.CharField()
    masked = serializers.BooleanField(help_text="true when name, phone and address are masked.")


class BuyerOutSerializer(serializers.Serializer):
    """The buyer as the API shows it (schema only)."""

    id = serializers.CharField()
    name = serializers.CharField(help_text=f"{_MASKED}, like the receiver's name.")
    email = serializers.CharField(help_text="Empty for roles without the PII permission.")
    phone = serializers.CharField(help_text=f"{_MASKED}, like the receiver's phone.")


class OrderSerializer(serializers.ModelSerializer):
    store = serializers.SlugRelatedField(slug_field="code", read_only=True)
    platform = serializers.CharField(source="store.platform", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    buyer = serializers.SerializerMethodField()
    receiver = serializers.SerializerMethodField()
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "number", "store", "platform", "platform_order_id", "status", "status_display",
                  "hold_reasons", "priority", "tags", "buyer", "receiver", "currency", "goods_amount",
                  "discount_amount", "shipping_amount", "tax_amount", "total_amount", "paid_amount", "placed_at",
                  "paid_at", "updated_at", "version", "buyer_note", "seller_note", "lines"]

    def _pii_visible(self) -> bool:
        request = self.context.get("request")
        return can_view_pii(getattr(request, "user", None))

    @extend_schema_field(BuyerOutSerializer)
    def get_buyer(self, order: Order) -> dict:
        visible = self._pii_visible()
        return {"id": order.buyer_id, "name": order.buyer_name if visible else mask_name(order.buyer_name),
                "email": order.buyer_email if visible else "",
                "phone": order.buyer_phone if visible else mask_phone(order.buyer_phone)}

    @extend_schema_field(ReceiverOutSerializer)
    def get_receiver(self, order: Order) -> dict:
        visible = self._pii_visible()
        return {
            "name": order.receiver_name if visible else mask_name(order.receiver_name),
            "phone": order.receiver_phone if visible else mask_phone(order.receiver_phone),
            "country": order.receiver_country, "province": order.receiver_province, "city": order.receiver_city,
            "district": order.receiver_district,
            "address": order.receiver_address if visible else mask_address(order.receiver_address),
            "zip": order.receiver_zip, "masked": not visible,
        }


class OrderDetailSerializer(OrderSerializer):
    events = OrderEventSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "events"]


def amount_pattern(maximum: Decimal) -> str:
    """A regular expression for the plain decimal strings from 0 to ``maximum`` with at most two decimals.

    The schema states the range in the pattern because drf-spectacular documents decimal strings
    without minimum and maximum. ``maximum`` is either all nines (999.99) or one digit then zeros.
    """
    digits = str(int(maximum))
    width = len(digits)
    cents = r"(?:\.[0-9]{1,2})?"
    if maximum == Decimal(10**width) - Decimal("0.01"):
        return rf"^[0-9]{{1,{width}}}{cents}$"
    lead = int(digits[0])
    if digits != digits[0] + "0" * (width - 1) or maximum != int(maximum):
        raise ValueError(f"unsupported maximum {maximum}")
    parts = [rf"[0-9]{{1,{width - 1}}}{cents}"]
    if lead > 1:
        parts.append(rf"[1-{lead - 1}][0-9]{{{width - 1}}}{cents}")
    parts.append(rf"{digits}(?:\.0{{1,2}})?")
    return "^(?:" + "|".join(parts) + ")$"


class AmountField(serializers.DecimalField):
    """A money input from 0 to ``max_value``: a plain decimal string ("12.50"), nothing else.

    Decimal() alone would also take " 1", "1e3" or full-width digits; the schema promises the pattern,
    so the input is held to it.
    """

    def __init__(self, *, max_value: Decimal, **kwargs):
        super().__init__(max_digits=14, decimal_places=2, min_value=Decimal("0"), max_value=max_value, **kwargs)
        self.pattern = amount_pattern(max_value)
        self.error_messages["out_of_range"] = _("Enter an amount from 0 to %(max)s with at most two decimals.") % {
            "max": max_value}

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(self.pattern, data):
            self.fail("out_of_range")
        return super().to_internal_value(data)


class AmountFieldExtension(OpenApiSerializerFieldExtension):
    """Documents an AmountField as a decimal string with its range in the pattern and the description."""

    target_class = "orders.serializers.AmountField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "decimal", "pattern": self.target.pattern,
                "description": f"0 to {self.target.max_value}, at most two decimals."}


def _amount(maximum: Decimal, **kwargs) -> AmountField:
    """A money input from 0 to ``maximum`` (orders.models states why these limits fit the columns)."""
    return AmountField(max_value=maximum, **kwargs)


class LineInputSerializer(StrictInputSerializer):
    sku_code = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=LINE_MAX_QUANTITY)
    unit_price = _amount(LINE_MAX_UNIT_PRICE)
    discount_amount = _amount(LINE_MAX_DISCOUNT, default=Decimal("0"),
                              help_text=_("At most the line's amount (unit price × quantity)."))
    title = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ManualOrderCreateSerializer(StrictInputSerializer):
    """A WeChat/offline order typed in by staff or sent by another system."""

    store = serializers.SlugRelatedField(slug_field="code", queryset=Store.objects.all())
    platform_order_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    # A ListField rather than many=True: drf-spectacular states max_length (maxItems) only for ListField.
    lines = serializers.ListField(child=LineInputSerializer(), allow_empty=False, min_length=1,
                                  max_length=ORDER_MAX_LINES)
    receiver = ReceiverSerializer()
    buyer = BuyerSerializer(required=False)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, allow_blank=True, default="",
                                      help_text=_("Defaults to the store's currency."))
    shipping_amount = _amount(ORDER_MAX_FEE, default=Decimal("0"))
    discount_amount = _amount(ORDER_MAX_FEE, default=Decimal("0"),
                              help_text=_("Order-level discount, on top of the lines' own discounts."))
    tax_amount = _amount(ORDER_MAX_FEE, default=Decimal("0"))
    total_amount = _amount(AMOUNT_COLUMN_MAX, required=False,
                           help_text=_("Optional check: must equal the computed total."))
    paid = serializers.BooleanField(default=False)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    tags = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list,
                                 max_length=20)
    buyer_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    seller_note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    payment_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="",
        help_text=_("The WeChat Pay transaction_id (or another payment's number), when known: settlements match on it."))

    def to_order_input(self, *, platform_order_id: str) -> OrderInput:
        data = self.validated_data
        buyer = data.get("buyer") or {}
        return OrderInput(
            platform_order_id=data["platform_order_id"] or platform_order_id,
            lines=[LineInput(**line) for line in data["lines"]],
            receiver=ReceiverInput(**data["receiver"]),
            buyer=BuyerInput(**{k: buyer.get(k, "") for k in ("id", "name", "email", "phone")}),
            currency=data["currency"].upper(), shipping_amount=data["shipping_amount"],
            discount_amount=data["discount_amount"], tax_amount=data["tax_amount"],
            expected_total=data.get("total_amount"), paid=data["paid"], priority=data["priority"],
            tags=data["tags"], buyer_note=data["buyer_note"], seller_note=data["seller_note"],
            payment_id=data["payment_id"].strip(),
        )


class ReasonSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CancelSerializer(ReasonSerializer):
    # The codes the order page offers; optional here, as integrations cancel with a sentence only.
    # "other" needs the reason text (400 cancel_reason_required, checked by the service).
    reason_code = serializers.ChoiceField(choices=CancelReason.choices, required=False, allow_blank=True, default="")


class HoldSerializer(StrictInputSerializer):
    reason = serializers.ChoiceField(choices=HoldReason.choices)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


@extend_schema_field({"type": "string", "enum": list(USER_TRANSITION_PERMISSIONS)})
class TransitionNameField(serializers.CharField):
    """A transition name; an unknown one is refused by the service with its own code (unknown_transition)."""


class TransitionSerializer(ReasonSerializer):
    transition = TransitionNameField(max_length=40)
