"""Channel stock marks: every change of available stock marks its (store, SKU) pairs in its own transaction."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from connectors import stock_push
from inventory import services as stock
from inventory.models import SKU, BundleComponent, ChannelStockDirty, PlatformSKUMapping
from inventory.selectors import available_by_sku
from orders.models import Platform
from orders.services import LineInput
from pipeline import orders as flows
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(skus):
    """Two pushing stores mapping the tea, a store with its push off and an inactive one mapping it too."""
    made = {}
    for code, platform, fields in [("tb-m", Platform.TAOBAO, {}), ("pdd-m", Platform.PDD, {}),
                                   ("off-m", Platform.DOUYIN, {"stock_push_enabled": False}),
                                   ("gone-m", Platform.SHOPIFY, {"active": False})]:
        made[code] = channel_store(platform=platform, code=code, name=code, **fields)
        PlatformSKUMapping.objects.create(store=made[code], sku=skus["TEA-LJ-250G"], platform_sku_id=f"{code}-tea")
    return made


def marks() -> dict[tuple[str, str], int]:
    return {(m.store.code, m.sku.code): m.version for m in ChannelStockDirty.objects.select_related("store", "sku")}


def test_a_receipt_marks_each_pushing_store_once_and_a_second_change_bumps_the_version(warehouse, skus, shops):
    tea = skus["TEA-LJ-250G"]
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=5)
    # Not the inactive store. The store whose push is off is marked too (the push switch is a connectors
    # setting, below which inventory cannot look): its mark waits, unpushed, until the push is switched on.
    assert marks() == {("tb-m", "TEA-LJ-250G"): 1, ("pdd-m", "TEA-LJ-250G"): 1, ("off-m", "TEA-LJ-250G"): 1}
    assert {mark.store.code for mark in stock_push._ready_marks(timezone.now())} == {"tb-m", "pdd-m"}
    stock.stock_adjust(warehouse_id=warehouse.pk, sku_id=tea.pk, delta=-2, reason="破损")
    assert marks() == {("tb-m", "TEA-LJ-250G"): 2, ("pdd-m", "TEA-LJ-250G"): 2, ("off-m", "TEA-LJ-250G"): 2}
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=skus["CUP-CER-350"].pk, quantity=5)  # mapped nowhere
    assert len(marks()) == 3


def test_a_change_that_rolls_back_leaves_no_mark(warehouse, skus, shops):
    with pytest.raises(RuntimeError), transaction.atomic():
        stock.stock_receive(warehouse_id=warehouse.pk, sku_id=skus["TEA-LJ-250G"].pk, quantity=5)
        assert len(marks()) == 3  # written in the change's own transaction...
        raise RuntimeError("the caller fails after the change")
    assert marks() == {}  # ...so it goes with it


@pytest.mark.parametrize("change", [
    lambda w, tea: stock.stock_take(warehouse_id=w.pk, sku_id=tea.pk, counted=990),
    lambda w, tea: stock.stock_take_many(counts=[stock.Count(warehouse_id=w.pk, sku_id=tea.pk, counted=1200)]),
    lambda w, tea: stock.sku_set_safety_stock(sku_id=tea.pk, safety_stock=10),
])
def test_stock_takes_and_safety_stock_mark_the_sku(warehouse, skus, shops, change):
    change(warehouse, skus["TEA-LJ-250G"])
    assert set(marks()) == {("tb-m", "TEA-LJ-250G"), ("pdd-m", "TEA-LJ-250G"), ("off-m", "TEA-LJ-250G")}


def test_reserving_and_releasing_mark_the_sku_and_shipping_does_not(warehouse, skus, shops, make_order):
    order = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=2, unit_price=Decimal("1"))])
    assert marks() == {("tb-m", "TEA-LJ-250G"): 1, ("pdd-m", "TEA-LJ-250G"): 1, ("off-m", "TEA-LJ-250G"): 1}
    ChannelStockDirty.objects.all().delete()
    stock.stock_ship(order_id=order.pk)  # on hand and reserved fall together: available is unchanged
    assert marks() == {}
    other = make_order(lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("1"))])
    ChannelStockDirty.objects.all().delete()
    flows.order_cancel(order_id=other.pk, reason="买家取消")
    assert set(marks()) == {("tb-m", "TEA-LJ-250G"), ("pdd-m", "TEA-LJ-250G"), ("off-m", "TEA-LJ-250G")}


def test_a_component_change_marks_the_bundles_made_of_it(warehouse, skus, shops):
    kit = SKU.objects.create(code="KIT-TEA-CUP", name="茶杯套装")
    BundleComponent.objects.create(bundle=kit, component=skus["TEA-LJ-250G"], quantity=2)
    BundleComponent.objects.create(bundle=kit, component=skus["CUP-CER-350"], quantity=1)
    PlatformSKUMapping.objects.create(store=shops["tb-m"], sku=kit, platform_sku_id="tb-kit")
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=skus["CUP-CER-350"].pk, quantity=3)
    assert marks() == {("tb-m", "KIT-TEA-CUP"): 1}
    assert available_by_sku([kit.pk]) == {kit.pk: 500}  # 1000 tea // 2, 1003 cups


def test_unmark_removes_only_the_version_that_was_pushed(warehouse, skus, shops):
    tea = skus["TEA-LJ-250G"]
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=5)
    store = shops["tb-m"]
    stock.stock_receive(warehouse_id=warehouse.pk, sku_id=tea.pk, quantity=5)  # a change while version 1 is pushed
    assert stock.channel_stock_unmark(store_id=store.pk, sku_id=tea.pk, version=1) is False
    assert marks()[("tb-m", "TEA-LJ-250G")] == 2
    assert stock.channel_stock_unmark(store_id=store.pk, sku_id=tea.pk, version=2) is True
    assert ("tb-m", "TEA-LJ-250G") not in marks() and ("pdd-m", "TEA-LJ-250G") in marks()
