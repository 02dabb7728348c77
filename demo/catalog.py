"""Demo master data: three warehouses and Shanghai's returns quarantine, about forty SKUs with stable barcodes, and
their opening stock."""

from __future__ import annotations

from decimal import Decimal

from inventory.models import SKU, MovementKind, StockMovement, Warehouse
from inventory.services import stock_receive

WAREHOUSES = [
    {"code": "SH", "name": "上海主仓", "country": "CN", "provinces": ["上海市", "江苏省", "浙江省", "安徽省"],
     "priority": 10, "address": "上海市青浦区华新镇物流园 3 号库", "contact_phone": "021-69880000"},
    {"code": "GZ", "name": "广州仓", "country": "CN",
     "provinces": ["广东省", "广西壮族自治区", "福建省", "海南省"],
     "priority": 20, "address": "广州市白云区太和镇物流园 B2 库", "contact_phone": "020-87650000"},
    {"code": "US-NJ", "name": "New Jersey 3PL", "country": "US", "provinces": [], "priority": 30,
     "address": "500 Meadowlands Pkwy, Secaucus, NJ 07094", "contact_phone": "+1 201-555-0100"},
    # Where Shanghai's worn and broken returns go: routing, reservations and channel stock never use it, and it
    # comes last in every warehouse picker (the kanban opens on the first one).
    {"code": "SH-QC", "name": "上海退货隔离仓", "country": "CN", "provinces": [], "priority": 90,
     "is_quarantine": True, "address": "上海市青浦区华新镇物流园 3 号库 退货区", "contact_phone": "021-69880000"},
]
# Each site and its quarantine warehouse for returns (inventory.Warehouse.quarantine_warehouse).
QUARANTINE_OF = {"SH": "SH-QC"}

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


def ean13(index: int) -> str:
    digits = f"{BARCODE_PREFIX}{index:05d}"
    weighted = sum(int(d) * (3 if position % 2 else 1) for position, d in enumerate(digits))
    return digits + str((10 - weighted % 10) % 10)


def warehouses_load() -> int:
    created_count = 0
    for row in WAREHOUSES:
        values = dict(row)
        code = values.pop("code")
        _warehouse, created = Warehouse.objects.update_or_create(code=code, defaults={**values, "active": True})
        created_count += created
    for site, quarantine in QUARANTINE_OF.items():
        # Only where none is set: a manager may have pointed the site at another quarantine warehouse.
        Warehouse.objects.filter(code=site, quarantine_warehouse__isnull=True).update(
            quarantine_warehouse=Warehouse.objects.get(code=quarantine))
    return created_count


def skus_load() -> int:
    created_count = 0
    for index, (code, name, category, weight, price, safety_stock, is_gift) in enumerate(SKUS, start=1):
        # Always active: order creation refuses lines with inactive SKUs.
        _sku, created = SKU.objects.update_or_create(code=code, defaults={
            "name": name, "barcode": ean13(index), "weight_grams": weight, "category": category,
            "list_price": Decimal(price), "safety_stock": safety_stock, "is_gift": is_gift, "active": True,
        })
        created_count += created
    return created_count


# Opening stock per warehouse; the US warehouse stocks only what the Shopify store sells abroad.
OPENING_STOCK = {"SH": 400, "GZ": 250, "US-NJ": 120}
OPENING_REFERENCE = "demo:opening"


def stock_load() -> int:
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
