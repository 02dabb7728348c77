"""Stock push at scale: Shopify takes many SKUs per GraphQL call (ids looked up once, then cached), a throttled
call is waited out, and a store's batches go out in parallel with failures keeping their marks."""

import math
import threading
import time
from decimal import Decimal

import pytest

from connectors import stock_push
from connectors.models import ChannelStock
from connectors.pdd.connector import PddConnector
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.shopify.client import SET_QUANTITIES, ShopifyClient
from connectors.shopify.connector import ShopifyConnector
from inventory.models import SKU, ChannelStockDirty, PlatformSKUMapping
from inventory.selectors import available_by_sku
from inventory.services import stock_receive
from orders.models import Platform
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)

CODES = [f"BATCH-{n:02d}" for n in range(12)]


@pytest.fixture
def catalogue(warehouse) -> dict[str, SKU]:
    created = {code: SKU.objects.create(code=code, name=code, list_price=Decimal("9.90")) for code in CODES}
    for n, sku in enumerate(created.values()):
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=100 + n, reference="opening")
    return created


@pytest.fixture
def shopify(catalogue):
    sandbox = ShopifySandbox(port=0, skus=[(code, "9.90") for code in CODES], seed=3)
    sandbox.start()
    store = channel_store(platform=Platform.SHOPIFY, code="shop-batch", name="Shop", default_currency="USD",
                          credentials=sandbox.connector_credentials())
    PlatformSKUMapping.objects.bulk_create([
        PlatformSKUMapping(store=store, sku=sku, platform_sku_id=str(sandbox.variant(code)["variant_id"]),
                           platform_product_id=str(sandbox.variant(code)["product_id"]))
        for code, sku in catalogue.items()])
    yield sandbox, store
    sandbox.stop()


def operations(sandbox: ShopifySandbox) -> list[tuple[str, int]]:
    return [(call["operation"], call["size"]) for call in sandbox.graphql_calls]


def held(sandbox: ShopifySandbox) -> dict[int, int]:
    return {record["inventory_item_id"]: record["available"] for record in sandbox.pushed
            if record["kind"] == "inventory"}


def test_one_graphql_call_pushes_many_skus_and_the_second_push_reuses_the_cached_ids(shopify, catalogue, warehouse):
    sandbox, store = shopify
    stock_push.stock_changed([sku.pk for sku in catalogue.values()])

    counts = stock_push.channel_stock_flush()

    assert counts == {"calls": 12, "unchanged": 0, "errors": 0}
    # First push: the location and every variant's inventory item looked up once, then one mutation for all 12.
    assert operations(sandbox) == [("locations", 0), ("nodes", 12), ("inventorySetQuantities", 12)]
    assert sandbox.request_count == 3  # and no REST call at all
    available = available_by_sku([sku.pk for sku in catalogue.values()])
    assert held(sandbox) == {sandbox.variant(code)["inventory_item_id"]: available[sku.pk]
                             for code, sku in catalogue.items()}
    row = ChannelStock.objects.get(store=store, sku=catalogue["BATCH-03"])
    ids = sandbox.variant("BATCH-03")
    assert row.platform_ids == {"variant": str(ids["variant_id"]),
                                "inventory_item_id": f"gid://shopify/InventoryItem/{ids['inventory_item_id']}",
                                "location_id": f"gid://shopify/Location/{ids['location_id']}"}
    assert row.last_pushed_quantity == 103 and row.pushes == 1

    for sku in catalogue.values():
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=5, reference="PO-2")
    assert stock_push.channel_stock_flush()["calls"] == 12

    # Second push: the cached ids, no lookup; one call.
    assert operations(sandbox)[3:] == [("inventorySetQuantities", 12)]
    assert held(sandbox)[sandbox.variant("BATCH-03")["inventory_item_id"]] == 108
    assert not ChannelStockDirty.objects.exists()


def test_the_cache_is_dropped_when_the_mapping_points_at_another_variant(shopify, catalogue):
    sandbox, store = shopify
    tea = catalogue["BATCH-00"]
    ChannelStock.objects.create(store=store, sku=tea, platform_ids={
        "variant": "1", "inventory_item_id": "gid://shopify/InventoryItem/1", "location_id": "gid://shopify/Location/1"})
    stock_push.stock_changed([tea.pk])

    assert stock_push.channel_stock_flush()["calls"] == 1

    assert operations(sandbox) == [("locations", 0), ("nodes", 1), ("inventorySetQuantities", 1)]
    assert ChannelStock.objects.get(store=store, sku=tea).platform_ids["variant"] == str(
        sandbox.variant("BATCH-00")["variant_id"])


def test_a_throttled_graphql_call_waits_for_the_bucket_and_is_applied_once(shopify):
    sandbox, _store = shopify
    sandbox.graphql_bucket = (10.0, 50.0)  # one mutation fills it; 10 points come back in 0.2 s
    sandbox._points = 10.0
    ids = sandbox.variant("BATCH-01")
    quantity = [{"inventoryItemId": f"gid://shopify/InventoryItem/{ids['inventory_item_id']}",
                 "locationId": f"gid://shopify/Location/{ids['location_id']}", "quantity": 7}]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    first = ShopifyClient(sandbox.connector_credentials())
    assert first.set_available_quantities(quantity) == []
    second = ShopifyClient(sandbox.connector_credentials(), sleep=sleep)  # knows nothing of the bucket yet

    assert second.set_available_quantities([{**quantity[0], "quantity": 8}]) == []

    assert len(waits) >= 1 and 0 < waits[0] <= 0.25  # told by the THROTTLED answer how long to wait
    assert sandbox.request_count == len(waits) + 2  # the throttled tries plus the two that went through
    assert [record["available"] for record in sandbox.pushed] == [7, 8]  # each applied once
    assert second.graphql_budget is not None and second.graphql_budget[1] == 50.0


def test_a_retried_mutation_with_the_same_idempotency_key_is_applied_once(shopify):
    sandbox, _store = shopify
    client = ShopifyClient(sandbox.connector_credentials())
    ids = sandbox.variant("BATCH-02")
    variables = {"key": "retry-1", "input": {
        "name": "available", "reason": "correction", "ignoreCompareQuantity": True,
        "quantities": [{"inventoryItemId": f"gid://shopify/InventoryItem/{ids['inventory_item_id']}",
                        "locationId": f"gid://shopify/Location/{ids['location_id']}", "quantity": 4,
                        "changeFromQuantity": None}]}}
    for _ in range(2):  # a lost response, sent again with the same key
        assert client.graphql(SET_QUANTITIES, variables)["inventorySetQuantities"]["userErrors"] == []
    assert len([record for record in sandbox.pushed if record["kind"] == "inventory"]) == 1


def test_marks_of_many_skus_become_ceil_n_over_batch_calls(shopify, catalogue, monkeypatch):
    sandbox, _store = shopify
    monkeypatch.setattr(ShopifyConnector, "stock_batch_size", 5)
    stock_push.stock_changed([sku.pk for sku in catalogue.values()])

    assert stock_push.channel_stock_flush()["calls"] == 12

    mutations = [size for operation, size in operations(sandbox) if operation == "inventorySetQuantities"]
    assert sorted(mutations) == [2, 5, 5] and len(mutations) == math.ceil(12 / 5)
    assert len(held(sandbox)) == 12


def test_a_failing_batch_keeps_its_marks_and_is_pushed_once_the_platform_is_back(shopify, catalogue, monkeypatch):
    sandbox, store = shopify
    monkeypatch.setattr(ShopifyConnector, "stock_batch_size", 5)
    stock_push.stock_changed([sku.pk for sku in catalogue.values()])
    sandbox.faults.down = True

    counts = stock_push.channel_stock_flush()

    assert counts == {"calls": 0, "unchanged": 0, "errors": 12}
    assert sandbox.pushed == []
    assert ChannelStockDirty.objects.filter(store=store).count() == 12  # every mark stays
    rows = ChannelStock.objects.filter(store=store)
    assert all(row.last_error and row.next_attempt_at and row.change_seq > row.pushed_seq for row in rows)
    assert stock_push.channel_stock_flush()["calls"] == 0  # backing off: not tried again yet

    sandbox.faults.down = False
    rows.update(next_attempt_at=None)  # the retry time has come
    assert stock_push.channel_stock_flush() == {"calls": 12, "unchanged": 0, "errors": 0}
    assert not ChannelStockDirty.objects.exists()
    assert all(row.last_error == "" and row.pushes == 1 for row in ChannelStock.objects.filter(store=store))


def test_an_unknown_variant_fails_alone_and_the_rest_of_its_batch_is_pushed(shopify, catalogue):
    sandbox, store = shopify
    PlatformSKUMapping.objects.filter(store=store, sku=catalogue["BATCH-05"]).update(platform_sku_id="999")
    stock_push.stock_changed([sku.pk for sku in catalogue.values()])

    assert stock_push.channel_stock_flush() == {"calls": 11, "unchanged": 0, "errors": 1}

    failed = ChannelStock.objects.get(store=store, sku=catalogue["BATCH-05"])
    assert "no variant '999'" in failed.last_error and failed.platform_ids == {}
    assert list(ChannelStockDirty.objects.values_list("sku__code", flat=True)) == ["BATCH-05"]
    assert len(held(sandbox)) == 11


def test_single_sku_platforms_get_several_calls_in_flight_per_store_and_no_more(catalogue, monkeypatch):
    sandbox = PddSandbox(port=0, skus=[(code, "9.9") for code in CODES], seed=3)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.PDD, code="pdd-batch", name="拼多多",
                              credentials=sandbox.connector_credentials())
        for code, sku in catalogue.items():
            goods = PddSandbox._catalog_entry(code, "9.9")
            PlatformSKUMapping.objects.create(store=store, sku=sku, platform_sku_id=str(goods["sku_id"]),
                                              platform_product_id=str(goods["goods_id"]))
        lock, active, peak = threading.Lock(), [0], [0]
        original = PddConnector.set_stock

        def counted(self, **kwargs):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                time.sleep(0.05)  # long enough for the calls of the pool to overlap
                return original(self, **kwargs)
            finally:
                with lock:
                    active[0] -= 1

        monkeypatch.setattr(PddConnector, "set_stock", counted)
        monkeypatch.setattr(PddConnector, "stock_batch_size", 1)  # 12 handfuls of one for 4 places
        stock_push.stock_changed([sku.pk for sku in catalogue.values()])

        assert stock_push.channel_stock_flush() == {"calls": 12, "unchanged": 0, "errors": 0}

        # No batch endpoint: one SKU a call, at most stock_concurrency of them out at once.
        assert 1 < peak[0] <= PddConnector.stock_concurrency
        assert sandbox.request_count == 12
        assert len([r for r in sandbox.pushed if r["kind"] == "stock"]) == 12
        assert not ChannelStockDirty.objects.exists()
    finally:
        sandbox.stop()


VARIANTS = ["TEE-RED-S", "TEE-RED-M", "TEE-RED-L", "MUG-BLUE"]  # three SKUs of one item, and a lone one


@pytest.fixture
def variants(warehouse) -> dict[str, SKU]:
    created = {code: SKU.objects.create(code=code, name=code, list_price=Decimal("9.90")) for code in VARIANTS}
    for n, sku in enumerate(created.values()):
        stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=50 + n, reference="opening")
    return created


def test_taobao_sets_the_skus_of_one_item_in_one_call(variants):
    sandbox = TaobaoSandbox(port=0, skus=[(code, "9.90") for code in VARIANTS], seed=3)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.TAOBAO, code="tb-items", name="淘宝",
                              credentials=sandbox.connector_credentials())
        for code, sku in variants.items():
            item = TaobaoSandbox._catalog_entry(code, "9.90")
            PlatformSKUMapping.objects.create(store=store, sku=sku, platform_sku_id=item["sku_id"],
                                              platform_product_id=str(item["num_iid"]))
        stock_push.stock_changed([sku.pk for sku in variants.values()])

        assert stock_push.channel_stock_flush() == {"calls": 4, "unchanged": 0, "errors": 0}

        methods = [call["method"] for call in sandbox.api_calls]
        assert sorted(methods) == ["taobao.item.quantity.update", "taobao.skus.quantity.update"]
        tee = TaobaoSandbox._catalog_entry("TEE-RED-S", "9.90")["num_iid"]
        assert {sku_id: quantity for (num_iid, sku_id), quantity in sandbox.stock.items() if num_iid == tee} == {
            TaobaoSandbox._catalog_entry(code, "9.90")["sku_id"]: 50 + n for n, code in enumerate(VARIANTS[:3])}
        assert len([r for r in sandbox.pushed if r["kind"] == "stock"]) == 4  # one record per SKU
    finally:
        sandbox.stop()


def test_douyin_sets_the_skus_of_one_product_in_one_call_and_a_refusal_fails_them_all(variants):
    sandbox = DouyinSandbox(port=0, skus=[(code, "990") for code in VARIANTS], seed=3)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.DOUYIN, code="dy-items", name="抖店",
                              credentials=sandbox.connector_credentials())
        for code, sku in variants.items():
            entry = sandbox.sku(code)
            PlatformSKUMapping.objects.create(store=store, sku=sku, platform_sku_id=str(entry["sku_id"]),
                                              platform_product_id=str(entry["product_id"]))
        stock_push.stock_changed([sku.pk for sku in variants.values()])

        assert stock_push.channel_stock_flush() == {"calls": 4, "unchanged": 0, "errors": 0}

        assert sorted(call["method"] for call in sandbox.api_calls) == ["sku.syncStock", "sku.syncStockBatch"]
        assert sandbox.stock[sandbox.sku("TEE-RED-M")["sku_id"]] == 51

        # A SKU the platform does not know in the batch: it refuses the whole call, every SKU keeps its mark.
        PlatformSKUMapping.objects.filter(store=store, sku=variants["TEE-RED-L"]).update(
            platform_sku_id="1700000000000001")
        stock_push.stock_changed([variants[code].pk for code in VARIANTS[:3]])
        ChannelStock.objects.filter(store=store).update(last_pushed_quantity=None)
        assert stock_push.channel_stock_flush() == {"calls": 0, "unchanged": 0, "errors": 3}
        assert ChannelStockDirty.objects.filter(store=store).count() == 3
    finally:
        sandbox.stop()
