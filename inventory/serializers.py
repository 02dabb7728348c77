"""API shapes of stock: the stock level representation and the receipt input."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from inventory.models import SKU, StockLevel, Warehouse
from inventory.services import MAX_QUANTITY
from oms.api_schema import StrictInputSerializer


class StockLevelSerializer(serializers.ModelSerializer):
    warehouse = serializers.SlugRelatedField(slug_field="code", read_only=True)
    sku = serializers.SlugRelatedField(slug_field="code", read_only=True)
    sku_name = serializers.CharField(source="sku.name", read_only=True)
    available = serializers.IntegerField(read_only=True,
                                         help_text=_("On hand − reserved − safety stock; below 0 means low stock."))

    class Meta:
        model = StockLevel
        fields = ["id", "warehouse", "sku", "sku_name", "on_hand", "reserved", "safety_stock", "available"]
        read_only_fields = fields


class StockReceiptSerializer(StrictInputSerializer):
    """Goods received into a warehouse. Warehouse and SKU are given by code."""

    # Any existing warehouse is accepted here: an inactive one is refused by the service with its
    # own code (warehouse_inactive), which tells the caller more than "does not exist".
    warehouse = serializers.SlugRelatedField(slug_field="code", queryset=Warehouse.objects.all())
    sku = serializers.SlugRelatedField(slug_field="code", queryset=SKU.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
