"""API shapes of orders: the read representation (PII masked by permission) and the write inputs."""

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from oms.pii import can_view_pii, mask_address, mask_name, mask_phone
from orders.models import HoldReason, Order, OrderEvent, OrderLine, Priority, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput

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


class ReceiverSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    phone = serializers.RegexField(r"^\+?[0-9][0-9 -]{4,30}$", max_length=32,
                                   error_messages={"invalid": _("Enter a phone number (digits, optional +).")})
    country = serializers.CharField(max_length=2, default="CN")
    province = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    district = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    address = serializers.CharField(max_length=255)
    zip = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


class BuyerSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")


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

    @extend_schema_field(BuyerSerializer)
    def get_buyer(self, order: Order) -> dict:
        visible = self._pii_visible()
        return {"id": order.buyer_id, "name": order.buyer_name if visible else mask_name(order.buyer_name),
                "email": order.buyer_email if visible else "",
                "phone": order.buyer_phone if visible else mask_phone(order.buyer_phone)}

    @extend_schema_field(ReceiverSerializer)
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


class LineInputSerializer(serializers.Serializer):
    sku_code = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=100000)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"))
    discount_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                               default=Decimal("0"))
    title = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ManualOrderCreateSerializer(serializers.Serializer):
    """A WeChat/offline order typed in by staff or sent by another system."""

    store = serializers.SlugRelatedField(slug_field="code", queryset=Store.objects.all())
    platform_order_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    lines = LineInputSerializer(many=True, allow_empty=False)
    receiver = ReceiverSerializer()
    buyer = BuyerSerializer(required=False)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, allow_blank=True, default="",
                                      help_text=_("Defaults to the store's currency."))
    shipping_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                               default=Decimal("0"))
    discount_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                               default=Decimal("0"))
    tax_amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"),
                                          default=Decimal("0"))
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False,
                                            help_text=_("Optional check: must equal the computed total."))
    paid = serializers.BooleanField(default=False)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    tags = serializers.ListField(child=serializers.CharField(max_length=32), required=False, default=list)
    buyer_note = serializers.CharField(required=False, allow_blank=True, default="")
    seller_note = serializers.CharField(required=False, allow_blank=True, default="")

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
        )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class HoldSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=HoldReason.choices)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class TransitionSerializer(ReasonSerializer):
    transition = serializers.CharField(max_length=40)
