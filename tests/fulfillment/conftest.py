"""Fixtures of the fulfilment tests: carriers, a second warehouse, and helpers that walk a parcel along."""

from decimal import Decimal

import pytest

from fulfillment.models import Carrier, CarrierKind
from inventory.models import Warehouse
from inventory.services import stock_receive


@pytest.fixture
def manual_carrier(db) -> Carrier:
    return Carrier.objects.create(code="YTO", name="圆通", kind=CarrierKind.MANUAL, cost_first_kg=Decimal("6"),
                                  cost_extra_kg=Decimal("2"))


@pytest.fixture
def beijing(skus) -> Warehouse:
    """A second warehouse serving Beijing, with 500 of each SKU."""
    warehouse = Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)
    for sku in skus.values():
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=500, reference="opening")
    return warehouse
