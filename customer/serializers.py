"""Shapes of the customer API: the proof, the buyer's orders (PII masked), after-sales and expedite requests."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from aftersales.models import TicketReason, TicketType
from oms.api_schema import StrictInputSerializer
from orders.models import LINE_MAX_QUANTITY, ORDER_MAX_LINES


class ProofSerializer(StrictInputSerializer):
    order = serializers.CharField(max_length=64, help_text=_("The order number, or the platform's order id."))
    phone = serializers.CharField(max_length=20, help_text=_("The receiver's phone: in full, or its last four digits."))


class WeChatProofSerializer(ProofSerializer):
    wechat_ticket = serializers.CharField(
        max_length=512, required=False, allow_blank=True,
        help_text=_("From a WeChat login that found no binding: proving the order binds the WeChat user to you."))


class WeChatLoginSerializer(StrictInputSerializer):
    code = serializers.CharField(max_length=128, help_text=_("The code wx.login() gave the mini-program."))


class WeChatLoginOutSerializer(serializers.Serializer):
    bound = serializers.BooleanField(help_text=_("Whether this WeChat user is bound to a buyer already."))
    token = serializers.CharField(required=False, help_text=_("When bound: send it as Authorization: Bearer <token>."))
    token_type = serializers.CharField(required=False)
    expires_in = serializers.IntegerField(help_text=_("Seconds the token (or the WeChat ticket) stays valid."))
    wechat_ticket = serializers.CharField(
        required=False, help_text=_("When not bound: send it with the first order proof to bind."))


class WeChatUnbindAllSerializer(serializers.Serializer):
    unbound = serializers.IntegerField(help_text=_("How many WeChat users were unbound."))


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text=_("Send it as Authorization: Bearer <token>."))
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text=_("Seconds the token stays valid."))
    wechat_bound = serializers.BooleanField(required=False, help_text=_("True when the proof bound a WeChat user."))


class StageSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["placed", "paid", "preparing", "shipped", "delivered", "cancelled"])
    label = serializers.CharField(help_text=_("The stage in words, in the caller's language."))
    step = serializers.IntegerField(help_text=_("1 to steps along the way; 0 when cancelled."))
    steps = serializers.IntegerField()
    labels = serializers.ListField(child=serializers.CharField())


class CarrierEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    code = serializers.CharField()
    description = serializers.CharField()
    location = serializers.CharField()


class TimelineRowSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=["placed", "paid", "packed", "shipped", "carrier", "delivered",
                                            "cancelled"])
    text = serializers.CharField()


class ParcelSerializer(serializers.Serializer):
    number = serializers.CharField()
    carrier = serializers.CharField(allow_null=True)
    tracking_number = serializers.CharField()
    stage = StageSerializer()
    latest_event = CarrierEventSerializer(allow_null=True)
    estimated_delivery = serializers.DateTimeField(allow_null=True)
    tracking_url = serializers.CharField(help_text=_("The parcel's public tracking page (a path on this site)."))


class ReceiverSerializer(serializers.Serializer):
    name = serializers.CharField(help_text=_("Masked."))
    phone = serializers.CharField(help_text=_("Masked, unless it is the full number the buyer typed."))
    province = serializers.CharField()
    city = serializers.CharField()


class LineSerializer(serializers.Serializer):
    line_no = serializers.IntegerField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)


class OrderSummarySerializer(serializers.Serializer):
    number = serializers.CharField()
    store = serializers.CharField()
    placed_at = serializers.DateTimeField()
    stage = StageSerializer()
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()


class OrderDetailSerializer(OrderSummarySerializer):
    lines = LineSerializer(many=True)
    receiver = ReceiverSerializer()
    parcels = ParcelSerializer(many=True)
    latest_carrier_event = CarrierEventSerializer(allow_null=True)
    estimated_delivery = serializers.DateTimeField(allow_null=True, help_text=_(
        "The latest estimate over the order's parcels; null before any parcel is handed over."))
    timeline = TimelineRowSerializer(many=True)
    can_expedite = serializers.BooleanField()


class AfterSalesLineSerializer(StrictInputSerializer):
    line_no = serializers.IntegerField(min_value=1, max_value=ORDER_MAX_LINES)
    quantity = serializers.IntegerField(min_value=1, max_value=LINE_MAX_QUANTITY)
    replacement_sku = serializers.CharField(max_length=64, required=False, allow_blank=True, default="",
                                            help_text=_("Exchange only: the SKU code sent instead."))


class AfterSalesSerializer(StrictInputSerializer):
    """What the buyer asks for; the amount is what they paid for those units (the service's checks apply)."""

    type = serializers.ChoiceField(choices=TicketType.choices)
    reason = serializers.ChoiceField(choices=TicketReason.choices)
    reason_text = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    lines = serializers.ListField(child=AfterSalesLineSerializer(), allow_empty=False, min_length=1,
                                  max_length=ORDER_MAX_LINES)
    return_tracking_number = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class TicketOutSerializer(serializers.Serializer):
    number = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    requested_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    created_at = serializers.DateTimeField()


class ExpediteSerializer(serializers.Serializer):
    number = serializers.CharField()
    expedited = serializers.BooleanField()
    message = serializers.CharField()
