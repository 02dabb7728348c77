"""Demo stores: one per platform, the sandbox ones pointed at the local platform sandboxes, with their SKU
mappings and a first channel stock push."""

from __future__ import annotations

import os

from connectors import stock_push
from connectors.models import ChannelSyncState
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.services import store_credentials
from demo.catalog import SKUS
from inventory.models import SKU, PlatformSKUMapping
from orders.models import Platform, Store

# (code, platform, name, default currency)
STORES = [
    ("shopify-demo", Platform.SHOPIFY, "Demo Shopify Store", "USD"),
    ("taobao-demo", Platform.TAOBAO, "演示淘宝店", "CNY"),
    ("douyin-demo", Platform.DOUYIN, "演示抖店", "CNY"),
    ("pdd-demo", Platform.PDD, "演示拼多多店", "CNY"),
    ("wechat-demo", Platform.MANUAL, "微信/线下订单", "CNY"),
]
# The demo's Shopify and Taobao stores talk to the local sandboxes that `make run` starts
# (supervisord.conf); the keys here are the sandboxes' defaults.
SANDBOX_PORTS = {"shopify-demo": int(os.environ.get("OMS_SHOPIFY_SANDBOX_PORT", "8801")),
                 "taobao-demo": int(os.environ.get("OMS_TAOBAO_SANDBOX_PORT", "8802")),
                 "pdd-demo": int(os.environ.get("OMS_PDD_SANDBOX_PORT", "8803")),
                 "douyin-demo": int(os.environ.get("OMS_DOUYIN_SANDBOX_PORT", "8804"))}
SANDBOX_CREDENTIALS = {
    "shopify-demo": {"base_url": f"http://127.0.0.1:{SANDBOX_PORTS['shopify-demo']}", "access_token": "shpat_sandbox",
                     "api_secret": "shpss_sandbox", "api_version": "2024-01"},
    "taobao-demo": {"base_url": f"http://127.0.0.1:{SANDBOX_PORTS['taobao-demo']}/router/rest", "app_key": "12345678",
                    "app_secret": "sandbox-secret", "session": "sandbox-session", "sign_method": "md5"},
    "pdd-demo": {"base_url": f"http://127.0.0.1:{SANDBOX_PORTS['pdd-demo']}/api/router", "client_id": "pdd-sandbox-client",
                 "client_secret": "pdd-sandbox-secret", "access_token": "pdd-sandbox-token"},
    "douyin-demo": {"base_url": f"http://127.0.0.1:{SANDBOX_PORTS['douyin-demo']}", "app_key": "douyin-sandbox-key",
                    "app_secret": "douyin-sandbox-secret", "access_token": "douyin-sandbox-token"},
}
SANDBOX_POLL_SECONDS = 30
STORE_WEIGHTS = {"taobao-demo": 35, "douyin-demo": 25, "pdd-demo": 20, "shopify-demo": 12, "wechat-demo": 8}
# Each channel sells its own slice of the catalogue, so the demo lists look like real shops.
STORE_CATEGORIES = {
    "shopify-demo": {"茶叶", "杯具", "服饰"},
    "taobao-demo": {"茶叶", "杯具", "手机配件", "服饰", "食品", "家居"},
    "douyin-demo": {"茶叶", "手机配件", "服饰", "食品"},
    "pdd-demo": {"手机配件", "服饰", "食品", "家居"},
    "wechat-demo": {"茶叶", "杯具"},
}


def stores_load() -> tuple[dict[str, Store], int]:
    stores, created_count = {}, 0
    for code, platform, name, currency in STORES:
        # Active and auto-approving, or the order flows below could not reach their target states.
        defaults = {"platform": platform, "name": name, "default_currency": currency, "active": True,
                    "auto_approve": True}
        # Credentials only on creation: someone may have put real sandbox keys into a demo store.
        credentials = {"app_key": f"demo-{platform}", "app_secret": "demo-secret", "sandbox": True}
        store, created = Store.objects.update_or_create(code=code, defaults=defaults)
        state, _new = ChannelSyncState.objects.get_or_create(store=store, defaults={
            "enabled": code in SANDBOX_CREDENTIALS, "poll_interval_seconds": SANDBOX_POLL_SECONDS,
            "credentials": credentials})
        if code in SANDBOX_CREDENTIALS and "base_url" not in state.credentials:
            # Point the demo store at its sandbox (kept if someone configured a real shop already).
            state.credentials = {**state.credentials, **SANDBOX_CREDENTIALS[code]}
            state.save(update_fields=["credentials"])
        stores[code] = store
        created_count += created
    return stores, created_count


def sandbox_catalogue(platform: str) -> list[tuple[str, str, str]]:
    """(merchant code, platform SKU id, platform product id) of what the platform's sandbox sells by default.

    The ids come from the sandbox classes themselves (stable ids derived from the code), so a stock push
    names a SKU the running sandbox knows and succeeds instead of answering "no such SKU".
    """
    if platform == Platform.TAOBAO:
        return [(e["outer_sku_id"], str(e["sku_id"]), str(e["num_iid"])) for e in TaobaoSandbox().catalog]
    if platform == Platform.PDD:
        return [(e["outer_id"], str(e["sku_id"]), str(e["goods_id"])) for e in PddSandbox().catalog]
    if platform == Platform.DOUYIN:
        return [(e["code"], str(e["sku_id"]), str(e["product_id"])) for e in DouyinSandbox().catalog]
    if platform == Platform.SHOPIFY:
        shop = ShopifySandbox()
        return [(code, str(ids["variant_id"]), str(ids["product_id"]))
                for code, _price in shop.skus for ids in [shop.variant(code)]]
    return []


def sku_mappings_load(stores: dict[str, Store]) -> int:
    """Map each sandbox store's catalogue onto the demo SKUs, so the channel stock page has rows and the
    trial shows stock being pushed. A store pointed at a real shop is left alone (its ids would differ)."""
    skus = {sku.code: sku for sku in SKU.objects.filter(code__in=[row[0] for row in SKUS])}
    created = 0
    for code, store in stores.items():
        sandbox = SANDBOX_CREDENTIALS.get(code)
        if sandbox is None or store_credentials(store).get("base_url") != sandbox["base_url"]:
            continue
        for sku_code, platform_sku_id, platform_product_id in sandbox_catalogue(store.platform):
            if sku_code not in skus:
                continue
            _mapping, new = PlatformSKUMapping.objects.get_or_create(
                store=store, platform_sku_id=platform_sku_id,
                defaults={"sku": skus[sku_code], "platform_product_id": platform_product_id})
            created += new
    return created


def channel_stock_mark() -> int:
    """Mark every mapped (store, SKU) for a push now: the rows appear on the channel stock page at once and
    the next flush sends the sandboxes the hub's numbers (a rerun only pushes what differs)."""
    stock_push.forget_mapping_cache()
    sku_ids = set(PlatformSKUMapping.objects.filter(store__code__in=SANDBOX_CREDENTIALS)
                  .values_list("sku_id", flat=True))
    stock_push.stock_changed(sku_ids)
    return len(sku_ids)
