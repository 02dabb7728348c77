"""Demo data loader: role users, stores, warehouses, SKUs and a few hundred orders spread over every state."""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from connectors import stock_push
from connectors.models import ChannelSyncState
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from fulfillment import services as fulfilment
from fulfillment.models import Carrier, CarrierKind, CarrierRule, Shipment, ShipmentStatus, WarehouseRule
from inventory.models import (
    SKU,
    MovementKind,
    PlatformSKUMapping,
    StaffScope,
    StockLevel,
    StockMovement,
    Warehouse,
)
from inventory.services import stock_receive, stock_take
from oms import roles
from orders import services
from orders.exceptions import OrderInvalid
from orders.models import HoldReason, Order, OrderStatus, Platform, Priority, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput

S = OrderStatus
DEMO_ACTOR = "demo"
CENT = Decimal("0.01")

# --- Master data -------------------------------------------------------------------------------

DEMO_USERS = [
    ("warehouse", roles.WAREHOUSE),
    ("cs", roles.CUSTOMER_SERVICE),
    ("finance", roles.FINANCE),
    ("manager", roles.MANAGER),
    ("admin", roles.ADMIN),
]
# Warehouse codes each demo user is limited to (inventory.StaffScope); a user not named here sees every
# warehouse. The warehouse clerk works in Shanghai only, to show the scope; the manager oversees all.
DEMO_SCOPES = {"warehouse": ["SH"]}

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

WAREHOUSES = [
    {"code": "SH", "name": "上海主仓", "country": "CN", "provinces": ["上海市", "江苏省", "浙江省", "安徽省"],
     "priority": 10, "address": "上海市青浦区华新镇物流园 3 号库", "contact_phone": "021-69880000"},
    {"code": "GZ", "name": "广州仓", "country": "CN",
     "provinces": ["广东省", "广西壮族自治区", "福建省", "海南省"],
     "priority": 20, "address": "广州市白云区太和镇物流园 B2 库", "contact_phone": "020-87650000"},
    {"code": "US-NJ", "name": "New Jersey 3PL", "country": "US", "provinces": [], "priority": 30,
     "address": "500 Meadowlands Pkwy, Secaucus, NJ 07094", "contact_phone": "+1 201-555-0100"},
]

# (code, name, category, weight in grams, list price in CNY, safety stock, is gift)
SKUS = [
    ("TEA-LJ-250G", "西湖龙井 250g", "茶叶", 320, "268.00", 10, False),
    ("TEA-LJ-500G", "西湖龙井 500g 礼盒装", "茶叶", 650, "498.00", 8, False),
    ("TEA-GIFT-1288", "明前龙井典藏礼盒 500g", "茶叶", 1200, "1288.00", 5, False),
    ("TEA-PE-357G", "云南普洱熟茶饼 357g", "茶叶", 420, "158.00", 10, False),
    ("TEA-TGY-250G", "安溪铁观音 250g", "茶叶", 300, "138.00", 10, False),
    ("TEA-DHP-200G", "武夷山大红袍 200g", "茶叶", 260, "198.00", 10, False),
    ("TEA-BMD-100G", "福鼎白茶 白牡丹 100g", "茶叶", 150, "88.00", 15, False),
    ("TEA-MLH-100G", "福州茉莉花茶 100g", "茶叶", 140, "49.90", 20, False),
    ("CUP-CER-350", "陶瓷马克杯 350ml", "杯具", 380, "39.00", 20, False),
    ("CUP-GLS-DW-300", "双层玻璃杯 300ml", "杯具", 260, "45.00", 20, False),
    ("CUP-THM-500-BLK", "不锈钢保温杯 500ml 黑色", "杯具", 420, "129.00", 15, False),
    ("CUP-THM-500-WHT", "不锈钢保温杯 500ml 白色", "杯具", 420, "129.00", 15, False),
    ("CUP-KF-SET-6", "景德镇功夫茶具 6 件套", "杯具", 1500, "299.00", 5, False),
    ("CUP-GAIWAN-150", "白瓷盖碗 150ml", "杯具", 300, "68.00", 10, False),
    ("PHN-CASE-IP15-BLK", "iPhone 15 液态硅胶手机壳 黑色", "手机配件", 60, "49.00", 20, False),
    ("PHN-CASE-IP15-PNK", "iPhone 15 液态硅胶手机壳 粉色", "手机配件", 60, "49.00", 20, False),
    ("PHN-CASE-IP15PM-CLR", "iPhone 15 Pro Max 透明防摔壳", "手机配件", 65, "59.00", 20, False),
    ("PHN-FILM-IP15-2P", "iPhone 15 钢化膜 2 片装", "手机配件", 40, "29.90", 20, False),
    ("PHN-CHG-20W-USBC", "20W PD 快充充电器 USB-C", "手机配件", 80, "69.00", 15, False),
    ("PHN-CBL-C2C-1M", "USB-C 编织数据线 1 米", "手机配件", 50, "25.00", 20, False),
    ("PHN-PB-10K-WHT", "10000mAh 磁吸充电宝 白色", "手机配件", 220, "149.00", 10, False),
    ("PHN-HLD-CAR", "车载出风口手机支架", "手机配件", 180, "39.90", 10, False),
    ("APP-TEE-M-WHT", "纯棉圆领 T 恤 白色 M", "服饰", 200, "79.00", 15, False),
    ("APP-TEE-L-WHT", "纯棉圆领 T 恤 白色 L", "服饰", 200, "79.00", 15, False),
    ("APP-TEE-L-BLK", "纯棉圆领 T 恤 黑色 L", "服饰", 200, "79.00", 15, False),
    ("APP-HOOD-XL-GRY", "加绒连帽卫衣 灰色 XL", "服饰", 650, "199.00", 10, False),
    ("APP-SOCK-5P", "精梳棉中筒袜 5 双装", "服饰", 180, "39.00", 20, False),
    ("APP-CAP-BLK", "刺绣棒球帽 黑色", "服饰", 120, "59.00", 10, False),
    ("FOOD-NUT-750G", "每日坚果 750g（30 袋）", "食品", 850, "129.00", 15, False),
    ("FOOD-HONEY-500G", "农家土蜂蜜 500g", "食品", 700, "68.00", 10, False),
    ("FOOD-DATE-XJ-1KG", "新疆和田大枣 1kg", "食品", 1100, "59.90", 15, False),
    ("FOOD-SNACK-BOX", "零食大礼包 1.2kg", "食品", 1400, "99.00", 10, False),
    ("FOOD-RICE-WC-5KG", "五常大米 5kg", "食品", 5200, "89.00", 10, False),
    ("FOOD-LSF-5P", "柳州螺蛳粉 5 袋装", "食品", 1600, "69.90", 10, False),
    ("HOME-TWL-2P", "新疆长绒棉毛巾 2 条装", "家居", 300, "35.00", 15, False),
    ("HOME-DIFF-USB", "USB 香薰加湿器", "家居", 600, "89.00", 10, False),
    ("HOME-PLW-MEM", "慢回弹记忆棉枕", "家居", 1300, "159.00", 5, False),
    ("HOME-TRAY-BMB", "竹制干泡茶盘", "家居", 1200, "128.00", 5, False),
    ("GIFT-TEA-SAMPLE", "龙井试饮装 5g（赠品）", "赠品", 10, "0.00", 20, True),
    ("GIFT-BAG-CANVAS", "帆布手提袋（赠品）", "赠品", 80, "0.00", 20, True),
]
# A fictitious GS1 China company prefix (69x), so barcodes look real and never change between runs.
BARCODE_PREFIX = "6923456"

STATUS_MIX = [
    (S.PENDING_PAYMENT, 10), (S.READY, 10), (S.HELD, 8), (S.IN_FULFILMENT, 12), (S.PARTIALLY_SHIPPED, 5),
    (S.SHIPPED, 20), (S.DELIVERED, 10), (S.COMPLETED, 15), (S.CANCELLED, 8), (S.CLOSED, 2),
]
# How many days ago orders in each state were placed: unpaid orders are fresh, completed ones old.
STATUS_AGE_DAYS = {
    S.PENDING_PAYMENT: (0, 1.5), S.READY: (0, 3), S.HELD: (0, 5), S.IN_FULFILMENT: (0.5, 4),
    S.PARTIALLY_SHIPPED: (1, 6), S.SHIPPED: (2, 10), S.DELIVERED: (5, 15), S.COMPLETED: (10, 30),
    S.CANCELLED: (0, 30), S.CLOSED: (5, 30),
}

# --- Receivers ---------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹"
GIVEN_NAMES = ["小贝", "娜", "伟", "芳", "敏", "静", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超",
               "秀英", "晓燕", "子涵", "浩然", "欣怡", "思远", "雨桐", "建国", "春梅", "志强", "佳怡", "文博",
               "梓萱", "一鸣", "海燕"]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
                   "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185",
                   "186", "187", "188", "189", "191", "193", "195", "198", "199"]
# (province, city, district, streets)
CN_ADDRESSES = [
    ("上海市", "上海市", "浦东新区", ["张江路", "世纪大道", "锦绣路"]),
    ("上海市", "上海市", "徐汇区", ["漕溪北路", "肇嘉浜路", "虹桥路"]),
    ("上海市", "上海市", "静安区", ["南京西路", "江宁路"]),
    ("江苏省", "南京市", "鼓楼区", ["中山北路", "北京西路"]),
    ("江苏省", "苏州市", "姑苏区", ["人民路", "干将西路"]),
    ("浙江省", "杭州市", "西湖区", ["文三路", "教工路", "天目山路"]),
    ("浙江省", "杭州市", "余杭区", ["文一西路", "五常大道"]),
    ("浙江省", "宁波市", "鄞州区", ["天童南路", "四明中路"]),
    ("安徽省", "合肥市", "蜀山区", ["长江西路", "望江西路"]),
    ("广东省", "深圳市", "南山区", ["深南大道", "科技南十二路", "南海大道"]),
    ("广东省", "深圳市", "福田区", ["福华三路", "深南中路"]),
    ("广东省", "广州市", "天河区", ["天河路", "体育西路", "花城大道"]),
    ("广东省", "广州市", "海珠区", ["新港中路", "江南大道中"]),
    ("广东省", "佛山市", "禅城区", ["祖庙路", "季华五路"]),
    ("广西壮族自治区", "南宁市", "青秀区", ["民族大道", "东葛路"]),
    ("福建省", "厦门市", "思明区", ["湖滨南路", "中山路"]),
    ("福建省", "福州市", "鼓楼区", ["五四路", "杨桥中路"]),
    ("海南省", "海口市", "龙华区", ["滨海大道", "国贸大道"]),
    ("北京市", "北京市", "朝阳区", ["建国路", "朝阳北路", "望京街"]),
    ("北京市", "北京市", "海淀区", ["中关村大街", "学院路"]),
    ("天津市", "天津市", "和平区", ["南京路", "滨江道"]),
    ("四川省", "成都市", "锦江区", ["春熙路", "东大街"]),
    ("四川省", "成都市", "武侯区", ["科华北路", "人民南路四段"]),
    ("湖北省", "武汉市", "洪山区", ["珞喻路", "雄楚大道"]),
    ("湖南省", "长沙市", "岳麓区", ["麓山南路", "枫林三路"]),
    ("山东省", "青岛市", "市南区", ["香港中路", "东海西路"]),
    ("河南省", "郑州市", "金水区", ["花园路", "农业路"]),
    ("陕西省", "西安市", "雁塔区", ["小寨东路", "长安南路"]),
    ("重庆市", "重庆市", "渝中区", ["民族路", "中山三路"]),
    ("辽宁省", "沈阳市", "和平区", ["太原北街", "南京北街"]),
    ("黑龙江省", "哈尔滨市", "南岗区", ["西大直街", "红军街"]),
    ("云南省", "昆明市", "五华区", ["人民中路", "东风西路"]),
]
# Far-west addresses: large orders shipping there go through a manual risk review first.
REMOTE_ADDRESSES = [
    ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", ["解放北路", "中山路"]),
    ("新疆维吾尔自治区", "乌鲁木齐市", "沙依巴克区", ["友好北路", "西北路"]),
    ("新疆维吾尔自治区", "喀什地区", "喀什市", ["人民东路", "解放北路"]),
    ("西藏自治区", "拉萨市", "城关区", ["北京中路", "江苏路"]),
    ("西藏自治区", "日喀则市", "桑珠孜区", ["上海中路"]),
]
REMOTE_PROVINCES = {address[0] for address in REMOTE_ADDRESSES}
RISK_REVIEW_ABOVE = Decimal("500")

# (country, region, city, street, postcode); 555-01xx and 020 7946 0xxx are numbers reserved for fiction.
OVERSEAS_ADDRESSES = [
    ("US", "NY", "New York", "Broadway", "10012"),
    ("US", "CA", "San Francisco", "Market Street", "94103"),
    ("US", "CA", "Los Angeles", "Sunset Boulevard", "90028"),
    ("US", "WA", "Seattle", "Pine Street", "98101"),
    ("US", "TX", "Austin", "Congress Avenue", "78701"),
    ("US", "IL", "Chicago", "North Michigan Avenue", "60611"),
    ("US", "NJ", "Jersey City", "Newark Avenue", "07302"),
    ("US", "MA", "Boston", "Boylston Street", "02116"),
    ("GB", "England", "London", "Baker Street", "NW1 6XE"),
    ("GB", "England", "Manchester", "Deansgate", "M3 2BW"),
    ("GB", "Scotland", "Edinburgh", "Princes Street", "EH2 2ER"),
    ("DE", "Berlin", "Berlin", "Friedrichstraße", "10117"),
    ("DE", "Bayern", "München", "Leopoldstraße", "80802"),
    ("DE", "Hamburg", "Hamburg", "Mönckebergstraße", "20095"),
    ("DE", "Hessen", "Frankfurt am Main", "Zeil", "60313"),
]
ENGLISH_NAMES = ["Emily Johnson", "Michael Smith", "Sarah Williams", "David Brown", "Jessica Miller",
                 "James Wilson", "Olivia Taylor", "Daniel Anderson", "Sophie Clarke", "Oliver Hughes"]
GERMAN_NAMES = ["Lukas Müller", "Anna Schmidt", "Felix Schneider", "Lena Fischer", "Jonas Weber", "Marie Becker"]
US_AREA_CODES = {"NY": "212", "CA": "415", "WA": "206", "TX": "512", "IL": "312", "NJ": "201", "MA": "617"}

BUYER_NOTES_CN = ["请发顺丰，谢谢", "工作日白天不在家，请放驿站", "送人的，请不要放价格单", "易碎品，麻烦包装好一点",
                  "急用，请尽快发货"]
BUYER_NOTES_EN = ["Please leave the parcel at the front door.", "It's a gift - please no invoice in the box."]
# Taobao only hands out opaque per-app buyer ids ("open uid"), never the buyer's nick.
OPEN_UID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"
CHASE_CHANNEL = {"taobao-demo": "旺旺", "douyin-demo": "飞鸽", "pdd-demo": "拼多多客服", "wechat-demo": "微信"}
SERVICE_NOTES = ["买家要求改发顺丰，运费差价已补", "买家来电确认收货地址无误", "老客户，已附手写感谢卡"]
SERVICE_NOTES_OVERSEAS = ["买家邮件确认收货地址无误", "买家要求礼品包装，已备注仓库"]
HELD_CANCEL_REASONS = {
    HoldReason.RISK: "风控拒单，已全额退款",
    HoldReason.GROUP_PENDING: "拼单超时未成团，自动取消并退款",
    HoldReason.ADDRESS: "地址无法送达，与买家协商取消",
    HoldReason.PRICE: "标价错误，与买家协商取消",
    HoldReason.MANUAL: "买家取消",
}


def demo_password(username: str) -> str:
    return f"demo-{username}-2026"


def _ean13(index: int) -> str:
    digits = f"{BARCODE_PREFIX}{index:05d}"
    weighted = sum(int(d) * (3 if position % 2 else 1) for position, d in enumerate(digits))
    return digits + str((10 - weighted % 10) % 10)


# --- Loading master data -----------------------------------------------------------------------

def _users_load() -> tuple[list[tuple[str, str, str | None]], int]:
    groups = roles.roles_sync()
    user_model = get_user_model()
    logins, created_count = [], 0
    for username, role in DEMO_USERS:
        password = demo_password(username)
        is_admin = role == roles.ADMIN
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"is_staff": is_admin, "is_superuser": is_admin, "email": f"{username}@example.com"},
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            created_count += 1
        elif not user.check_password(password):
            # The account was there before (or its password was changed): never print a password that fails.
            password = None
        user.groups.add(groups[role])
        Token.objects.get_or_create(user=user)
        logins.append((username, role, password))
    return logins, created_count


def _scopes_load() -> int:
    """Give the demo users their warehouse scopes once; a scope someone changed since is left as it is."""
    created_count = 0
    for username, codes in DEMO_SCOPES.items():
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            continue
        scope, created = StaffScope.objects.get_or_create(user=user)
        if created:
            scope.warehouses.set(Warehouse.objects.filter(code__in=codes))
            created_count += 1
    return created_count


def _stores_load() -> tuple[dict[str, Store], int]:
    stores, created_count = {}, 0
    for code, platform, name, currency in STORES:
        # Active and auto-approving, or the order flows below could not reach their target states.
        defaults = {"platform": platform, "name": name, "default_currency": currency, "active": True,
                    "auto_approve": True}
        # Credentials only on creation: someone may have put real sandbox keys into a demo store.
        credentials = {"app_key": f"demo-{platform}", "app_secret": "demo-secret", "sandbox": True}
        store, created = Store.objects.update_or_create(code=code, defaults=defaults,
                                                        create_defaults={**defaults, "credentials": credentials})
        if code in SANDBOX_CREDENTIALS and "base_url" not in store.credentials:
            # Point the demo store at its sandbox (kept if someone configured a real shop already).
            store.credentials = {**store.credentials, **SANDBOX_CREDENTIALS[code]}
            store.save(update_fields=["credentials"])
        ChannelSyncState.objects.get_or_create(store=store, defaults={
            "enabled": code in SANDBOX_CREDENTIALS, "poll_interval_seconds": SANDBOX_POLL_SECONDS})
        stores[code] = store
        created_count += created
    return stores, created_count


def _warehouses_load() -> int:
    created_count = 0
    for row in WAREHOUSES:
        values = dict(row)
        code = values.pop("code")
        _warehouse, created = Warehouse.objects.update_or_create(code=code, defaults={**values, "active": True})
        created_count += created
    return created_count


def _skus_load() -> int:
    created_count = 0
    for index, (code, name, category, weight, price, safety_stock, is_gift) in enumerate(SKUS, start=1):
        # Always active: order creation refuses lines with inactive SKUs.
        _sku, created = SKU.objects.update_or_create(code=code, defaults={
            "name": name, "barcode": _ean13(index), "weight_grams": weight, "category": category,
            "list_price": Decimal(price), "safety_stock": safety_stock, "is_gift": is_gift, "active": True,
        })
        created_count += created
    return created_count


# Opening stock per warehouse; the US warehouse stocks only what the Shopify store sells abroad.
OPENING_STOCK = {"SH": 400, "GZ": 250, "US-NJ": 120}
OPENING_REFERENCE = "demo:opening"
# After the orders are in, this SKU runs short: a few WeChat orders wait for it (缺货待补) and it shows
# on the low-stock list until someone receives more.
SCARCE_SKU = "TEA-GIFT-1288"
SCARCE_ORDERS = 3


def _stock_load() -> int:
    """Receive the opening stock once per (warehouse, SKU); returns how many receipts were made."""
    done = set(StockMovement.objects.filter(reference=OPENING_REFERENCE, kind=MovementKind.RECEIPT)
               .values_list("warehouse_id", "sku_id"))
    receipts = 0
    for warehouse in Warehouse.objects.filter(code__in=OPENING_STOCK):
        for sku in SKU.objects.filter(code__in=[row[0] for row in SKUS]):
            if (warehouse.pk, sku.pk) in done:
                continue
            stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=OPENING_STOCK[warehouse.code],
                          reference=OPENING_REFERENCE, note="期初库存")
            receipts += 1
    return receipts


def _scarcity_load(stores: dict[str, Store]) -> int:
    """Count the scarce SKU down to what is reserved, then place orders that must wait for stock."""
    sku = SKU.objects.get(code=SCARCE_SKU)
    store = stores["wechat-demo"]
    created = 0
    for index in range(1, SCARCE_ORDERS + 1):
        platform_id = f"WX-SHORT-{index:03d}"
        if Order.objects.filter(store=store, platform_order_id=platform_id).exists():
            continue
        if created == 0:
            for level in StockLevel.objects.filter(sku=sku):
                stock_take(warehouse_id=level.warehouse_id, sku_id=sku.pk, counted=level.reserved + 1,
                           reference="demo:stocktake")
        with transaction.atomic():
            services.order_create(store=store, actor_label=DEMO_ACTOR, data=OrderInput(
                platform_order_id=platform_id,
                lines=[LineInput(sku_code=SCARCE_SKU, quantity=2, unit_price=Decimal("1288.00"))],
                receiver=ReceiverInput(name="陈静", phone="13916882345", province="上海市", city="上海市",
                                       district="徐汇区", address="漕溪北路 398 号 12 楼"),
                paid=True, buyer_note="公司年会礼品，急需", priority=Priority.VIP, tags=["团购"]))
        created += 1
    return created


# --- Generating orders -------------------------------------------------------------------------

@dataclass
class _DemoOrder:
    store_code: str
    target: str
    data: OrderInput
    # Service calls that bring the new order to its target state, each as (service, extra kwargs).
    steps: list[tuple[Callable, dict]] = field(default_factory=list)


def _status_plan(count: int, rng: random.Random) -> list[str]:
    """Exactly the STATUS_MIX proportions (largest remainder), in a shuffled order."""
    total = sum(weight for _status, weight in STATUS_MIX)
    quotas = [(status, count * weight / total) for status, weight in STATUS_MIX]
    counts = {status: int(quota) for status, quota in quotas}
    by_remainder = sorted(quotas, key=lambda item: item[1] - int(item[1]), reverse=True)
    for status, _quota in by_remainder[: count - sum(counts.values())]:
        counts[status] += 1
    plan = [status for status, _weight in STATUS_MIX for _ in range(counts[status])]
    rng.shuffle(plan)
    return plan


def _digits(rng: random.Random, length: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(length - 1))


def _platform_order_id(rng: random.Random, platform: str, placed_at: datetime) -> str:
    if platform == Platform.SHOPIFY:
        return _digits(rng, 10)
    if platform == Platform.TAOBAO:
        return _digits(rng, rng.choice([18, 19]))
    if platform == Platform.DOUYIN:
        return "69" + "".join(str(rng.randint(0, 9)) for _ in range(17))
    # Pinduoduo ids start with the order date.
    return f"{timezone.localtime(placed_at):%y%m%d}-{_digits(rng, 15)}"


def _cn_receiver(rng: random.Random, *, remote: bool) -> ReceiverInput:
    province, city, district, streets = rng.choice(REMOTE_ADDRESSES if remote else CN_ADDRESSES)
    address = f"{rng.choice(streets)}{rng.randint(1, 1200)}号"
    if rng.random() < 0.8:
        address += f" {rng.randint(1, 30)}栋{rng.randint(1, 32)}{rng.randint(1, 6):02d}室"
    return ReceiverInput(name=rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES),
                         phone=rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randint(0, 9)) for _ in range(8)),
                         country="CN", province=province, city=city, district=district, address=address)


def _overseas_receiver(rng: random.Random) -> ReceiverInput:
    country, region, city, street, postcode = rng.choice(OVERSEAS_ADDRESSES)
    number = rng.randint(1, 480)
    if country == "US":
        name = rng.choice(ENGLISH_NAMES)
        phone = f"+1 {US_AREA_CODES[region]}-555-01{rng.randint(0, 99):02d}"
        address = f"{number} {street}" + (f", Apt {rng.randint(1, 30)}{rng.choice('ABCD')}" if rng.random() < 0.5 else "")
    elif country == "GB":
        name = rng.choice(ENGLISH_NAMES)
        phone = f"+44 20 7946 0{rng.randint(0, 999):03d}"
        address = f"{number} {street}"
    else:
        name = rng.choice(GERMAN_NAMES)
        phone = f"+49 30 {rng.randint(1000000, 9999999)}"
        address = f"{street} {number}"
    return ReceiverInput(name=name, phone=phone, country=country, province=region, city=city,
                         address=address, zip=postcode)


def _unit_price(rng: random.Random, list_price: Decimal, currency: str) -> Decimal:
    if currency == "USD":
        # A fixed 7.2 CNY/USD with .99 endings, as a US storefront would price it.
        return Decimal(max(int(list_price / Decimal("7.2")), 1)) + Decimal("0.99")
    factor = rng.choice(["1", "1", "1", "0.95", "0.9", "0.88"])
    return (list_price * Decimal(factor)).quantize(Decimal("0.1")).quantize(CENT)


def _lines(rng: random.Random, store_code: str, currency: str, *, min_lines: int, big: bool) -> list[LineInput]:
    catalogue = [sku for sku in SKUS if sku[2] in STORE_CATEGORIES[store_code] and not sku[6]]
    count = max(min_lines, rng.choices([1, 2, 3, 4], weights=[50, 30, 14, 6])[0])
    chosen = rng.sample(catalogue, count)
    gift_box = next(sku for sku in SKUS if sku[0] == "TEA-GIFT-1288")
    if big and gift_box not in chosen:
        # Guarantees the amount that triggers the far-west risk review.
        chosen[0] = gift_box
    lines = []
    for code, _name, _category, _weight, price, _safety, _gift in chosen:
        quantity = rng.choices([1, 2, 3], weights=[70, 22, 8])[0]
        if Decimal(price) >= 400:
            quantity = 1  # gift boxes and tea sets are bought one at a time
        unit_price = _unit_price(rng, Decimal(price), currency)
        discount = Decimal("0")
        coupon = Decimal(rng.choice([1, 2, 5]) if currency == "USD" else rng.choice([5, 10, 15, 20]))
        # Shop coupons only apply when the line is worth several times the coupon.
        if rng.random() < 0.15 and unit_price * quantity >= coupon * 4:
            discount = coupon
        lines.append(LineInput(sku_code=code, quantity=quantity, unit_price=unit_price, discount_amount=discount))
    return lines


def _total(data: OrderInput) -> Decimal:
    goods = sum((line.unit_price * line.quantity - line.discount_amount for line in data.lines), Decimal("0"))
    return goods - data.discount_amount + data.shipping_amount + data.tax_amount


def _order_build(rng: random.Random, *, store_code: str, platform: str, target: str, now: datetime,
                 manual_number: int, seed: int, ref: str) -> _DemoOrder:
    """One order's input and the service calls that take it to ``target``; every choice comes from ``rng``."""
    overseas = platform == Platform.SHOPIFY
    currency = "USD" if overseas else "CNY"
    cancel_from = rng.choices(["pending", "ready", "held"], weights=[40, 45, 15])[0]
    held_on_purpose = target == S.HELD or (target == S.CANCELLED and cancel_from == "held")
    # Half of the deliberately held orders are the textbook risk case: a big order to 新疆/西藏.
    force_risk = held_on_purpose and not overseas and rng.random() < 0.5
    remote = force_risk or (not overseas and rng.random() < 0.05)
    partial_first = target == S.PARTIALLY_SHIPPED or (target == S.SHIPPED and rng.random() < 0.25)

    low, high = STATUS_AGE_DAYS[target]
    placed_at = now - timedelta(seconds=int(rng.uniform(low, high) * 86400) + 600)
    platform_order_id = (f"WX-{seed}-{manual_number:06d}" if platform == Platform.MANUAL
                         else _platform_order_id(rng, platform, placed_at))
    receiver = _overseas_receiver(rng) if overseas else _cn_receiver(rng, remote=remote)
    lines = _lines(rng, store_code, currency, min_lines=2 if partial_first else 1, big=force_risk)

    roll = rng.random()
    priority = Priority.VIP if roll < 0.04 else Priority.HIGH if roll < 0.10 else Priority.NORMAL
    tags = []
    if rng.random() < 0.15:
        tags.append("大促")
    if priority == Priority.VIP:
        tags.append("VIP")
    elif priority == Priority.HIGH:
        tags.append("加急")
    seller_note = ""
    if not overseas and (priority == Priority.VIP or rng.random() < 0.08):
        gift = rng.choice([sku for sku in SKUS if sku[6]])
        lines.append(LineInput(sku_code=gift[0], quantity=1, unit_price=Decimal("0")))
        tags.append("赠品")
        seller_note = f"随单赠送{gift[1]}"

    goods = sum((line.unit_price * line.quantity - line.discount_amount for line in lines), Decimal("0"))
    if overseas:
        shipping = Decimal("0") if goods >= 59 else Decimal("7.99") if receiver.country == "US" else Decimal("12.99")
        discount = Decimal("5.00") if goods >= 80 and rng.random() < 0.2 else Decimal("0")
        buyer = BuyerInput(id=_digits(rng, 13), name=receiver.name, phone=receiver.phone,
                           email=receiver.name.lower().replace(" ", ".").replace("ü", "ue") + "@example.com")
        buyer_note = rng.choice(BUYER_NOTES_EN) if rng.random() < 0.15 else ""
    else:
        shipping = (Decimal(rng.choice([6, 8, 10, 12])) if rng.random() < 0.15 else Decimal("0"))
        if remote:
            shipping = Decimal("25")
        discount = Decimal("20") if goods >= 199 and rng.random() < 0.25 else Decimal("0")  # 满199减20
        buyer_id = ""
        if platform == Platform.TAOBAO:
            buyer_id = "AAG" + "".join(rng.choice(OPEN_UID_ALPHABET) for _ in range(21))
        elif platform == Platform.DOUYIN:
            buyer_id = _digits(rng, 16)
        buyer = BuyerInput(id=buyer_id, name=receiver.name)
        buyer_note = rng.choice(BUYER_NOTES_CN) if rng.random() < 0.2 else ""

    paid = not (target == S.PENDING_PAYMENT or (target == S.CANCELLED and cancel_from == "pending"))
    data = OrderInput(
        platform_order_id=platform_order_id, lines=lines, receiver=receiver, buyer=buyer, currency=currency,
        shipping_amount=shipping, discount_amount=discount, paid=paid,
        paid_at=placed_at + timedelta(seconds=rng.randint(20, 1800)) if paid else None,
        placed_at=placed_at, platform_updated_at=placed_at, priority=priority, tags=tags,
        buyer_note=buyer_note, seller_note=seller_note, raw_payload_ref=ref,
    )
    order = _DemoOrder(store_code=store_code, target=target, data=data)
    order.steps = _steps(rng, order, cancel_from=cancel_from, partial_first=partial_first,
                         risky=paid and receiver.province in REMOTE_PROVINCES and _total(data) > RISK_REVIEW_ABOVE)
    return order


def _steps(rng: random.Random, order: _DemoOrder, *, cancel_from: str, partial_first: bool,
           risky: bool) -> list[tuple[Callable, dict]]:
    target, store_code = order.target, order.store_code
    steps: list[tuple[Callable, dict]] = []
    if target == S.PENDING_PAYMENT:
        if store_code in CHASE_CHANNEL and rng.random() < 0.3:
            steps.append((services.order_add_note, {"note": f"已通过{CHASE_CHANNEL[store_code]}催付"}))
        return steps
    if target == S.CANCELLED and cancel_from == "pending":
        reason = rng.choice(["买家取消", "超时未支付，自动取消"])
        return [(services.order_cancel, {"reason": reason})]

    stays_held = target == S.HELD or (target == S.CANCELLED and cancel_from == "held")
    if risky:
        steps.append((services.order_hold, {"hold_reason": HoldReason.RISK,
                                            "note": f"新疆/西藏地区订单金额超过 {RISK_REVIEW_ABOVE}，人工风控复核"}))
        if not stays_held:
            steps.append((services.order_release_hold, {"hold_reason": HoldReason.RISK, "note": "人工复核通过"}))
    hold_reason = HoldReason.RISK
    if stays_held and not risky:
        if store_code == "pdd-demo":
            hold_reason, note = HoldReason.GROUP_PENDING, "拼单未成团，成团后再发货"
        else:
            hold_reason, note = rng.choice([(HoldReason.ADDRESS, "收货地址缺少门牌号，待联系买家确认"),
                                            (HoldReason.PRICE, "成交价低于最低售价，待运营核价"),
                                            (HoldReason.MANUAL, "买家要求暂缓发货")])
        steps.append((services.order_hold, {"hold_reason": hold_reason, "note": note}))
        if hold_reason == HoldReason.ADDRESS:
            steps.append((services.order_add_note, {"note": "已电话联系买家，等待回复"}))

    if target == S.HELD:
        return steps
    if target == S.CANCELLED:
        reason = (HELD_CANCEL_REASONS[hold_reason] if cancel_from == "held"
                  else rng.choice(["买家取消", "买家申请退款（未发货）"]))
        steps.append((services.order_cancel, {"reason": reason}))
        return steps
    if rng.random() < 0.05:
        notes = SERVICE_NOTES_OVERSEAS if store_code == "shopify-demo" else SERVICE_NOTES
        steps.append((services.order_add_note, {"note": rng.choice(notes)}))
    if target == S.READY:
        return steps

    steps.append((_parcels_start_picking, {}))
    if target == S.CLOSED:
        steps.append((services.order_close, {"reason": "仓库缺货无法发出，已全额退款关单"}))
        return steps
    if partial_first:
        steps.append((_parcel_ship_first_line, {}))
    if target in (S.IN_FULFILMENT, S.PARTIALLY_SHIPPED):
        return steps
    steps.append((_parcels_ship, {}))
    if target == S.SHIPPED:
        return steps
    delivered = target == S.DELIVERED or rng.random() < 0.85
    if delivered:
        steps.append((_parcels_deliver, {}))
    if target == S.COMPLETED:
        steps.append((services.order_complete, {"reason": "买家确认收货" if delivered else "超时自动确认收货"}))
    return steps


# --- Fulfilment: carriers, rules, bin locations, and the parcels of the demo orders ---------------

# (code, name, kind, services, first kg, each further kg)
CARRIERS = [
    ("SF", "顺丰速运", CarrierKind.SF, ["standard", "express", "next_morning"], "18.00", "6.00"),
    ("YTO", "圆通速递", CarrierKind.MANUAL, ["standard"], "5.50", "2.00"),
    ("ZTO", "中通快递", CarrierKind.MANUAL, ["standard"], "5.00", "2.50"),
    ("USPS", "USPS", CarrierKind.MANUAL, ["standard", "express"], "35.00", "12.00"),
]
SF_SANDBOX_PORT = int(os.environ.get("OMS_SF_SANDBOX_PORT", "8805"))


def _fulfilment_load() -> int:
    """Carriers (SF talks to the local SF-like sandbox), a few routing rules and bin locations."""
    created = 0
    for code, name, kind, offered, first, extra in CARRIERS:
        config = ({"base_url": f"http://127.0.0.1:{SF_SANDBOX_PORT}", "partner_id": "OMS_DEMO",
                   "checkword": "sandbox-checkword"} if kind == CarrierKind.SF else {})
        _carrier, new = Carrier.objects.get_or_create(code=code, defaults={
            "name": name, "kind": kind, "services": offered, "cost_first_kg": Decimal(first),
            "cost_extra_kg": Decimal(extra), "config": config})
        created += new
    carriers = {c.code: c for c in Carrier.objects.all()}
    if not CarrierRule.objects.exists():
        CarrierRule.objects.create(name="VIP 一律顺丰次晨", position=10, priorities=[Priority.VIP],
                                   carrier=carriers["SF"], service="next_morning")
        CarrierRule.objects.create(name="美国订单走 USPS", position=20, countries=["US"], carrier=carriers["USPS"])
        CarrierRule.objects.create(name="承诺次晨达走顺丰", position=30, services=["next_morning", "express"],
                                   carrier=carriers["SF"], service="express")
    if not WarehouseRule.objects.exists():
        WarehouseRule.objects.create(name="海外订单走新泽西仓", position=10, countries=["US"],
                                     warehouse=Warehouse.objects.get(code="US-NJ"))
        WarehouseRule.objects.create(name="华南订单走广州仓", position=20, provinces=["广东省", "广西壮族自治区",
                                                                                "福建省", "海南省"],
                                     warehouse=Warehouse.objects.get(code="GZ"))
    for index, level in enumerate(StockLevel.objects.filter(location="").select_related("warehouse")
                                  .order_by("warehouse_id", "sku__code")):
        level.location = f"{'ABC'[index % 3]}-{index // 3 % 12 + 1:02d}-{index % 4 + 1}"
        level.save(update_fields=["location"])
    return created


# One network thermal printer per demo warehouse: the virtual printers that `make run` starts (supervisord.conf),
# each writing what it receives into var/virtual_printer/<warehouse code>/ (job-<n>.bin, .txt, .png).
VPRINTER_PORTS = {"SH": int(os.environ.get("OMS_VPRINTER_SH_PORT", "9101")),
                  "GZ": int(os.environ.get("OMS_VPRINTER_GZ_PORT", "9102")),
                  "US-NJ": int(os.environ.get("OMS_VPRINTER_US_NJ_PORT", "9103"))}


def _printing_load() -> int:
    """A label printer per warehouse on its virtual printer; a rerun points them at the current ports again
    (names and whatever staff changed otherwise stay). Returns how many were created."""
    from printing.models import PaperWidth, Printer, Transport

    created = 0
    for code, port in VPRINTER_PORTS.items():
        warehouse = Warehouse.objects.filter(code=code).first()
        if warehouse is None:
            continue
        _printer, new = Printer.objects.update_or_create(
            code=f"{code.lower()}-label-1",
            defaults={"warehouse": warehouse, "transport": Transport.NETWORK, "host": "127.0.0.1", "port": port},
            create_defaults={"warehouse": warehouse, "transport": Transport.NETWORK, "host": "127.0.0.1",
                             "port": port, "name": f"{code} 面单打印机 1", "paper_width": PaperWidth.MM80,
                             "active": True},
        )
        created += new
    return created


def _order_parcels(order_id: int, *statuses: str) -> list[int]:
    return list(Shipment.objects.filter(lines__order_id=order_id, status__in=statuses).distinct()
                .order_by("pk").values_list("pk", flat=True))


def _parcel_ship(shipment_id: int, actor_label: str) -> None:
    """Pick, scan every item, pack and ship with a made-up tracking number (no carrier runs yet)."""
    parcel = Shipment.objects.select_related("carrier").get(pk=shipment_id)
    if parcel.status == ShipmentStatus.TO_PICK:
        fulfilment.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
    for line in parcel.lines.select_related("sku"):
        for _unit in range(line.quantity - line.verified_quantity):
            fulfilment.shipment_scan_item(shipment_id=shipment_id, barcode=line.sku.code)
    fulfilment.shipment_pack(shipment_id=shipment_id)
    code = parcel.carrier.code if parcel.carrier else "YT"
    digits = f"{int(hashlib.sha1(parcel.number.encode()).hexdigest(), 16) % 10**12:012d}"
    fulfilment.shipment_ship(shipment_id=shipment_id, tracking_number=f"{code}{digits}"[:20])


def _parcels_start_picking(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in _order_parcels(order_id, ShipmentStatus.TO_PICK):
        fulfilment.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
    return Order.objects.get(pk=order_id)


def _parcel_ship_first_line(*, order_id: int, actor_label: str) -> Order:
    """A part ships first: the first line goes into a parcel of its own, which ships."""
    for shipment_id in _order_parcels(order_id, ShipmentStatus.TO_PICK, ShipmentStatus.PICKING):
        parcel = Shipment.objects.get(pk=shipment_id)
        first = parcel.lines.order_by("order_line__line_no", "pk").first()
        if parcel.lines.count() < 2 or first is None:
            continue
        if parcel.status == ShipmentStatus.PICKING:
            fulfilment.shipment_unpick(shipment_id=shipment_id)
        part = fulfilment.shipment_split(shipment_id=shipment_id, quantities={first.pk: first.quantity},
                                         reason="部分商品缺货，先发有货商品")
        _parcel_ship(part.pk, actor_label)
        fulfilment.shipment_start_picking(shipment_id=shipment_id, actor_label=actor_label)
        break
    return Order.objects.get(pk=order_id)


def _parcels_ship(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in _order_parcels(order_id, ShipmentStatus.TO_PICK, ShipmentStatus.PICKING):
        _parcel_ship(shipment_id, actor_label)
    return Order.objects.get(pk=order_id)


def _parcels_deliver(*, order_id: int, actor_label: str) -> Order:
    for shipment_id in _order_parcels(order_id, ShipmentStatus.SHIPPED):
        fulfilment.shipment_deliver(shipment_id=shipment_id, actor_label=actor_label)
    return Order.objects.get(pk=order_id)


def _parcels_backdate(order: Order, *, now: datetime) -> None:
    """Demo orders are placed days ago; their parcels get times that fit (the kanban shows ages and
    shipping times), instead of all being made and shipped "just now"."""
    start = order.paid_at or order.placed_at
    shipped = min(start + timedelta(hours=20), now)
    for parcel in Shipment.objects.filter(lines__order=order).distinct():
        values = {"created_at": start}
        if parcel.status in (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED):
            values.update(picked_at=shipped - timedelta(hours=2), packed_at=shipped - timedelta(hours=1),
                          shipped_at=shipped)
        if parcel.status == ShipmentStatus.DELIVERED:
            values["delivered_at"] = min(shipped + timedelta(days=2), now)
        Shipment.objects.filter(pk=parcel.pk).update(**values)


def _orders_load(*, count: int, seed: int, stores: dict[str, Store]) -> tuple[int, int]:
    plan = _status_plan(count, random.Random(seed))
    now = timezone.now().replace(microsecond=0)
    existing_ids = set(Order.objects.filter(store__in=stores.values()).values_list("store_id", "platform_order_id"))
    # Pinduoduo ids carry the order date, which moves with "now"; the reference keeps reruns on
    # later days from loading the same demo order a second time.
    existing_refs = set(Order.objects.filter(raw_payload_ref__startswith=f"demo:{seed}:")
                        .values_list("raw_payload_ref", flat=True))
    codes, weights = zip(*STORE_WEIGHTS.items(), strict=True)
    created = skipped = manual_number = 0
    for index, target in enumerate(plan):
        # One generator per order: order N is the same whatever --orders says and whatever exists.
        rng = random.Random(f"{seed}:{index}")
        store = stores[rng.choices(codes, weights=weights)[0]]
        if store.platform == Platform.MANUAL:
            manual_number += 1
        ref = f"demo:{seed}:{index}"
        spec = _order_build(rng, store_code=store.code, platform=store.platform, target=target, now=now,
                            manual_number=manual_number, seed=seed, ref=ref)
        if (store.pk, spec.data.platform_order_id) in existing_ids or ref in existing_refs:
            skipped += 1
            continue
        try:
            with transaction.atomic():
                order = services.order_create(store=store, data=spec.data, actor_label=DEMO_ACTOR)
                for service, kwargs in spec.steps:
                    order = service(order_id=order.pk, actor_label=DEMO_ACTOR, **kwargs)
                _parcels_backdate(order, now=now)
        except OrderInvalid as exc:
            # Another run loaded the same order since the check above.
            if exc.code != "duplicate_order":
                raise
            skipped += 1
            continue
        created += 1
    return created, skipped


# --- Platform SKU mappings ---------------------------------------------------------------------

def _sandbox_catalogue(platform: str) -> list[tuple[str, str, str]]:
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


def _sku_mappings_load(stores: dict[str, Store]) -> int:
    """Map each sandbox store's catalogue onto the demo SKUs, so the channel stock page has rows and the
    trial shows stock being pushed. A store pointed at a real shop is left alone (its ids would differ)."""
    skus = {sku.code: sku for sku in SKU.objects.filter(code__in=[row[0] for row in SKUS])}
    created = 0
    for code, store in stores.items():
        sandbox = SANDBOX_CREDENTIALS.get(code)
        if sandbox is None or store.credentials.get("base_url") != sandbox["base_url"]:
            continue
        for sku_code, platform_sku_id, platform_product_id in _sandbox_catalogue(store.platform):
            if sku_code not in skus:
                continue
            _mapping, new = PlatformSKUMapping.objects.get_or_create(
                store=store, platform_sku_id=platform_sku_id,
                defaults={"sku": skus[sku_code], "platform_product_id": platform_product_id})
            created += new
    return created


def _channel_stock_mark() -> int:
    """Mark every mapped (store, SKU) for a push now: the rows appear on the channel stock page at once and
    the next flush sends the sandboxes the hub's numbers (a rerun only pushes what differs)."""
    stock_push.forget_mapping_cache()
    sku_ids = set(PlatformSKUMapping.objects.filter(store__code__in=SANDBOX_CREDENTIALS)
                  .values_list("sku_id", flat=True))
    stock_push.stock_changed(sku_ids)
    return len(sku_ids)


# --- Entry point -------------------------------------------------------------------------------

def demo_load(*, orders: int = 300, seed: int = 2026,
              log: Callable[[str], None] | None = None) -> list[tuple[str, str, str | None]]:
    """Load the demo data; safe to run again (nothing is duplicated, changed passwords are kept).

    Returns one ``(username, role, password)`` per demo user. ``password`` is None when the account
    existed before with another password, since a rerun never resets it.
    """
    say = log or (lambda _message: None)
    logins, users_created = _users_load()
    say(f"Roles synced; demo users: {len(logins)} ({users_created} new), each with an API token.")
    stores, stores_created = _stores_load()
    say(f"Stores: {len(stores)} ({stores_created} new).")
    say(f"Warehouses: {len(WAREHOUSES)} ({_warehouses_load()} new).")
    say(f"Staff scopes: {_scopes_load()} new (the warehouse user works in {', '.join(DEMO_SCOPES['warehouse'])}).")
    say(f"SKUs: {len(SKUS)} ({_skus_load()} new).")
    say(f"Opening stock: {_stock_load()} receipts.")
    say(f"Carriers: {len(CARRIERS)} ({_fulfilment_load()} new), with routing rules and bin locations.")
    say(f"Label printers: {len(VPRINTER_PORTS)} ({_printing_load()} new), one per warehouse (virtual).")
    created, skipped = _orders_load(count=orders, seed=seed, stores=stores)
    say(f"Orders: {created} created, {skipped} already there.")
    say(f"Orders awaiting stock of {SCARCE_SKU}: {_scarcity_load(stores)} new.")
    say(f"Platform SKU mappings: {_sku_mappings_load(stores)} new; "
        f"{_channel_stock_mark()} SKUs queued for a stock push to the sandboxes.")
    statuses = Counter(Order.objects.filter(store__in=stores.values()).values_list("status", flat=True))
    say("Demo orders by status: " + ", ".join(f"{status} {statuses[status]}" for status, _w in STATUS_MIX
                                              if statuses[status]))
    return logins
