"""Return stock moves (restock, into quarantine, write-off) with their ledger rows, and quarantine warehouses kept
out of routing, reservations and channel stock."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from fulfillment import routing
from fulfillment.models import WarehouseRule
from inventory import services as stock
from inventory.exceptions import StockConflict, StockInvalid
from inventory.models import (
    SKU,
    ChannelStockDirty,
    MovementKind,
    PlatformSKUMapping,
    StockLevel,
    StockMovement,
    Warehouse,
)
from inventory.selectors import available_by_sku
from orders.models import OrderStatus
from orders.services import LineInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def quarantine(warehouse) -> Warehouse:
    qc = Warehouse.objects.create(code="SH-QC", name="上海仓隔离区", provinces=["上海市"], priority=1,
                                  is_quarantine=True)
    warehouse.quarantine_warehouse = qc
    warehouse.save(update_fields=["quarantine_warehouse"])
    return qc


def level(warehouse, sku) -> tuple[int, int]:
    row = StockLevel.objects.filter(warehouse=warehouse, sku=sku).first()
    return (row.on_hand, row.reserved) if row else (0, 0)


def ledger(reference: str) -> list[tuple]:
    return list(StockMovement.objects.filter(reference=reference).order_by("id").values_list(
        "warehouse__code", "kind", "on_hand_delta", "reserved_delta"))


def test_restock_return_in_and_write_off_move_the_counters_with_a_ledger_row_each(warehouse, quarantine, skus,
                                                                                   taobao_store):
    tea = skus["TEA-LJ-250G"]
    PlatformSKUMapping.objects.create(store=taobao_store, sku=tea, platform_sku_id="tb-tea")
    ChannelStockDirty.objects.all().delete()

    stock.stock_return_in(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=2, reference="return:R1")
    assert not ChannelStockDirty.objects.exists()  # quarantine stock is on no channel
    stock.stock_write_off(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=1, reference="return:R1")
    assert not ChannelStockDirty.objects.exists()
    row = stock.stock_return_restock(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=1, reference="return:R1",
                                     note="R1 #1")
    assert (row.on_hand, row.reserved) == (1001, 0)
    assert list(ChannelStockDirty.objects.values_list("store_id", "sku_id")) == [(taobao_store.pk, tea.pk)]
    assert level(quarantine, tea) == (1, 0)
    assert ledger("return:R1") == [("SH-QC", MovementKind.RETURN_IN, 2, 0), ("SH-QC", MovementKind.WRITE_OFF, -1, 0),
                                   ("SH", MovementKind.RETURN_RESTOCK, 1, 0)]
    assert stock.stock_reconcile() == []


def test_returns_go_to_the_right_kind_of_warehouse_and_a_write_off_never_goes_below_zero_or_reserved(
        warehouse, quarantine, skus, make_order):
    tea = skus["TEA-LJ-250G"]
    before = (StockMovement.objects.count(), list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved")))
    with pytest.raises(StockInvalid) as refused:
        stock.stock_return_restock(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=1)
    assert refused.value.code == "warehouse_kind_wrong"
    with pytest.raises(StockInvalid) as refused:
        stock.stock_return_in(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=1)
    assert refused.value.code == "warehouse_kind_wrong"
    with pytest.raises(StockConflict) as refused:
        stock.stock_write_off(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=1)
    assert refused.value.code == "write_off_exceeds_stock"
    with pytest.raises(StockInvalid):
        stock.stock_write_off(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=0)
    make_order()  # reserves 2 teas in SH: 1000 on hand, 2 reserved
    before = (StockMovement.objects.count(), list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved")))
    with pytest.raises(StockConflict) as refused:
        stock.stock_write_off(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=999)
    assert refused.value.code == "write_off_exceeds_stock"
    assert (StockMovement.objects.count(),
            list(StockLevel.objects.order_by("pk").values_list("on_hand", "reserved"))) == before
    stock.stock_write_off(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=998, reference="broken")
    assert level(warehouse, tea) == (2, 2)
    assert stock.stock_reconcile() == []


def test_a_quarantine_warehouse_is_never_routed_to_reserved_from_or_offered_on_a_channel(
        warehouse, quarantine, skus, make_order):
    # Only quarantine holds this SKU, and quarantine serves the province first with the best priority.
    worn = SKU.objects.create(code="WORN-1", name="退货样品", barcode="6900000000001", list_price=Decimal("9"))
    stock.stock_return_in(warehouse_id=quarantine.pk, sku_id=worn.pk, quantity=50, reference="return:R2")
    stock.stock_return_in(warehouse_id=quarantine.pk, sku_id=skus["TEA-LJ-250G"].pk, quantity=50)
    WarehouseRule.objects.create(name="全部去隔离仓", position=1, warehouse=quarantine)

    assert [w.code for w in routing.active_warehouses()] == ["SH"]
    order = make_order()
    facts = routing.order_facts(order)
    assert routing.warehouse_route(facts).ranking == [warehouse.pk]
    assert routing.warehouse_route(facts).rule is None  # the rule's quarantine warehouse is not a choice
    assert set(order.reservations.values_list("warehouse__code", flat=True)) == {"SH"}

    waiting = make_order(lines=[LineInput(sku_code="WORN-1", quantity=1, unit_price=Decimal("9"))])
    assert waiting.status == OrderStatus.AWAITING_STOCK
    assert waiting.stock_shortages == [{"sku": "WORN-1", "needed": 1, "available": 0, "short": 1}]
    assert not waiting.reservations.exists()
    assert level(quarantine, worn) == (50, 0)

    assert available_by_sku([worn.pk, skus["TEA-LJ-250G"].pk]) == {worn.pk: 0, skus["TEA-LJ-250G"].pk: 998}
    assert stock.stock_reconcile() == []


@pytest.mark.django_db(transaction=True)
def test_two_write_offs_of_the_last_unit_at_once_take_it_once(warehouse, quarantine, skus):
    tea = skus["TEA-LJ-250G"]
    stock.stock_return_in(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=1, reference="return:R3")
    barrier, outcomes = threading.Barrier(3), []

    def write_off():
        try:
            barrier.wait()
            stock.stock_write_off(warehouse_id=quarantine.pk, sku_id=tea.pk, quantity=1, reference="return:R3")
            outcomes.append("written_off")
        except StockConflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=write_off) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["write_off_exceeds_stock", "write_off_exceeds_stock", "written_off"]
    assert level(quarantine, tea) == (0, 0)
    assert ledger("return:R3") == [("SH-QC", MovementKind.RETURN_IN, 1, 0), ("SH-QC", MovementKind.WRITE_OFF, -1, 0)]
    assert stock.stock_reconcile() == []
