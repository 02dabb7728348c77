"""Channel stock push: a burst of changes becomes a few platform calls, and every sandbox ends with the hub's number."""

from decimal import Decimal

import pytest

from connectors import stock_push
from connectors.models import ChannelStock, ChannelSyncState
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from inventory.models import PlatformSKUMapping
from inventory.selectors import available_by_sku
from inventory.services import stock_receive
from orders.models import Platform
from orders.services import LineInput
from pipeline import orders as flows
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platforms(skus):
    shopify = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=2)
    taobao = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00")], seed=2)
    shopify.start()
    taobao.start()
    tea = skus["TEA-LJ-250G"]
    shop = channel_store(platform=Platform.SHOPIFY, code="shop-stock", name="Shop", default_currency="USD",
                                credentials=shopify.connector_credentials(), stock_share=Decimal("0.5"),
                                stock_buffer=10)
    tb = channel_store(platform=Platform.TAOBAO, code="tb-stock", name="淘宝",
                              credentials=taobao.connector_credentials())
    PlatformSKUMapping.objects.create(store=shop, sku=tea, platform_sku_id=str(shopify.variant("TEA-LJ-250G")["variant_id"]))
    item = TaobaoSandbox._catalog_entry("TEA-LJ-250G", "268.00")  # the sandbox's ids for this SKU
    PlatformSKUMapping.objects.create(store=tb, sku=tea, platform_sku_id=item["sku_id"],
                                      platform_product_id=str(item["num_iid"]))
    stock_push.forget_mapping_cache()
    yield shopify, taobao, shop, tb, tea
    shopify.stop()
    taobao.stop()
    stock_push.forget_mapping_cache()


@pytest.fixture
def pdd_and_douyin(platforms):
    tea = platforms[4]
    pdd = PddSandbox(port=0, skus=[("TEA-LJ-250G", "168.0")], seed=2)
    douyin = DouyinSandbox(port=0, skus=[("TEA-LJ-250G", "26800")], seed=2)
    pdd.start()
    douyin.start()
    pdd_store = channel_store(platform=Platform.PDD, code="pdd-stock", name="拼多多",
                                     credentials=pdd.connector_credentials(), stock_buffer=2)
    dy_store = channel_store(platform=Platform.DOUYIN, code="dy-stock", name="抖店",
                                    credentials=douyin.connector_credentials(), stock_share=Decimal("0.3"))
    goods = PddSandbox._catalog_entry("TEA-LJ-250G", "168.0")
    PlatformSKUMapping.objects.create(store=pdd_store, sku=tea, platform_sku_id=str(goods["sku_id"]),
                                      platform_product_id=str(goods["goods_id"]))
    item = douyin.sku("TEA-LJ-250G")
    PlatformSKUMapping.objects.create(store=dy_store, sku=tea, platform_sku_id=str(item["sku_id"]),
                                      platform_product_id=str(item["product_id"]))
    stock_push.forget_mapping_cache()
    yield pdd, douyin
    pdd.stop()
    douyin.stop()


def last_quantity(records: list[dict], key: str) -> int | None:
    values = [int(r[key]) for r in records if r["kind"] in ("inventory", "stock")]
    return values[-1] if values else None


def test_burst_of_reservations_and_cancellations_ends_with_the_hub_quantity(platforms, pdd_and_douyin, make_order,
                                                                           manual_store):
    shopify, taobao, shop, tb, tea = platforms
    pdd, douyin = pdd_and_douyin
    orders = [make_order(store=manual_store, lines=[LineInput(sku_code="TEA-LJ-250G", quantity=3,
                                                             unit_price=Decimal("1"))]) for _ in range(40)]
    for order in orders[:15]:
        flows.order_cancel(order_id=order.pk, reason="burst")
    stock_receive(warehouse_id=orders[0].lines.first().reservations.first().warehouse_id, sku_id=tea.pk, quantity=7)

    counts = stock_push.channel_stock_flush()
    available = available_by_sku([tea.pk])[tea.pk]
    assert available == 1000 + 7 - 25 * 3  # 932 free after 25 orders hold 3 each
    assert counts["calls"] == 4  # one call per platform for the whole burst
    assert last_quantity(shopify.pushed, "available") == (932 // 2) - 10 == 456
    assert last_quantity(taobao.pushed, "quantity") == 932
    assert last_quantity(pdd.pushed, "quantity") == 930  # buffer 2
    assert last_quantity(douyin.pushed, "stock_num") == 279  # floor(932 × 0.3)
    rows = {row.store.code: row for row in ChannelStock.objects.filter(sku=tea).select_related("store")}
    assert {code: row.last_pushed_quantity for code, row in rows.items()} == {
        "shop-stock": 456, "tb-stock": 932, "pdd-stock": 930, "dy-stock": 279}
    assert all(row.change_seq == row.pushed_seq for row in rows.values())
    assert stock_push.channel_stock_flush()["calls"] == 0  # nothing new: no call


def test_quantity_never_below_zero_and_failures_retry(platforms, make_order, manual_store):
    shopify, taobao, shop, tb, tea = platforms
    ChannelSyncState.objects.filter(store=shop).update(stock_buffer=5000)
    taobao.faults.down = True
    make_order(store=manual_store, lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("1"))])
    counts = stock_push.channel_stock_flush()
    assert counts["calls"] == 1 and counts["errors"] == 1
    assert last_quantity(shopify.pushed, "available") == 0
    stale = ChannelStock.objects.get(store=tb, sku=tea)
    assert stale.change_seq > stale.pushed_seq and stale.last_error
    taobao.faults.down = False
    ChannelStock.objects.filter(pk=stale.pk).update(next_attempt_at=None)  # the retry time has come
    assert stock_push.channel_stock_flush()["calls"] == 1
    assert last_quantity(taobao.pushed, "quantity") == 999


def test_channel_stock_page_shows_last_pushed_next_to_the_hub(platforms, make_order, manual_store, role_users):
    from django.test import Client

    from tests.conftest import PASSWORD
    make_order(store=manual_store, lines=[LineInput(sku_code="TEA-LJ-250G", quantity=4, unit_price=Decimal("1"))])
    stock_push.channel_stock_flush()
    client = Client()
    assert client.login(username="u_manager", password=PASSWORD)
    page = client.get("/channels/stock/").content.decode()
    assert "TEA-LJ-250G" in page and ">996<" in page and ">488<" in page  # Taobao 996; Shopify 996//2 − 10
