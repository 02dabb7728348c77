"""Desk search: bulk-load N orders of repeat buyers, time 1,000 searches per kind and 200 customer views."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection

import bench
from bench.common import Report, percentile_ms
from desk.customers import BuyerKey, buyer_key, customer_view
from desk.selectors import SearchKind, desk_search
from inventory.models import SKU, Warehouse
from orders.models import Platform, Store

SEED = 17
CHUNK = 100_000
AIM_P95_MS = 50
# The customer view runs six queries and lists up to 50 orders with their parcels and tickets: a page's budget.
AIM_CUSTOMER_VIEW_P95_MS = 200
# Customer views timed: each is several times a search, so 200 keep the run short while a p95 still rests on
# ten slowest views.
CUSTOMER_VIEWS_MAX = 200
# Common surnames and given-name characters: two-character prefixes then match many orders, as at a real desk.
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "小明红丽伟芳娜秀英敏静强磊军洋勇艳杰娟涛超"


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to bulk-load (default 1,000,000)")
    parser.add_argument("--searches", type=int, default=1000, help="searches per kind (default 1,000)")


def _assign_buyers(cursor, total: int) -> None:
    """Fill bench_slot: which buyer places order i, with the buyer's name and phone.

    Most buyers order 1-4 times, one in fifty 20-40 times (about 3 orders per buyer in all); a buyer's orders
    are spread over the whole id range (the slots are shuffled). Name and phone come from a hash of the buyer,
    not from its number: the frequent buyers (every fiftieth number) would otherwise share a few surnames and
    last fours, and a two-character prefix or a last four would match ten times the orders it does at a desk.
    """
    cursor.execute("""
        CREATE TEMP TABLE bench_slot AS
        WITH buyers AS (
            SELECT p, CASE WHEN p %% 50 = 0 THEN 20 + (p / 50) %% 21 ELSE 1 + (p * 3) %% 4 END AS orders,
                ('x' || left(md5('bench-' || p), 15))::bit(60)::bigint AS h
            FROM generate_series(1, %(total)s / 2 + 50) AS p),
        placed AS (SELECT p, orders, h, sum(orders) OVER (ORDER BY p) - orders AS before FROM buyers)
        SELECT (row_number() OVER (ORDER BY md5(p || '-' || k)))::int AS i, p AS person,
            (%(surnames)s::text[])[1 + h %% 20] || (%(given)s::text[])[1 + (h / 20) %% 20]
                || (%(given)s::text[])[1 + (h / 400) %% 20] AS name,
            '13' || lpad(((h / 8000) %% 1000000000)::text, 9, '0') AS phone
        FROM placed, generate_series(1, orders) AS k WHERE before + k <= %(total)s
    """, {"total": total, "surnames": list(SURNAMES), "given": list(GIVEN)})
    cursor.execute("ALTER TABLE bench_slot ADD PRIMARY KEY (i)")
    cursor.execute("ANALYZE bench_slot")


def _load(report: Report, total: int, author_id: int) -> None:
    """Orders of repeat buyers, one line, one reservation and one shipped parcel with three checkpoints each,
    a ticket on one order in fifty and notes on some buyers, generated inside PostgreSQL.

    INSERT … SELECT over generate_series is the fastest bulk path there is (no rows cross the wire, unlike
    COPY or execute_values), and the generated last-four column is filled by the database as it would be
    for any bulk insert. A buyer keeps one name and one phone in every store, with a buyer id per store:
    every tenth order is a Douyin one whose receiver came masked (133****1234), every tenth another is a
    WeChat (manual) one with the full phone, the rest Taobao ones. So a full phone finds a buyer's orders in
    two stores, a store's buyer id those in one.
    """
    store = Store.objects.create(code="bench-tb", name="Bench 淘宝", platform=Platform.TAOBAO)
    douyin = Store.objects.create(code="bench-dy", name="Bench 抖音", platform=Platform.DOUYIN)
    wechat = Store.objects.create(code="bench-wx", name="Bench 微信", platform=Platform.MANUAL)
    warehouse = Warehouse.objects.create(code="BSH", name="Bench 仓", provinces=[], priority=10)
    sku = SKU.objects.create(code="BENCH-SKU", name="Bench SKU", barcode="6900000000017", list_price=Decimal("9.90"))
    params = {"tb": store.pk, "dy": douyin.pk, "wx": wechat.pk, "wh": warehouse.pk, "sku": sku.pk,
              "author": author_id}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        _assign_buyers(cursor, total)
        for low in range(1, total + 1, CHUNK):
            high = min(low + CHUNK - 1, total)
            params.update(low=low, high=high)
            cursor.execute("""
                INSERT INTO orders_order (id, created_at, updated_at, number, platform_order_id, status,
                    status_before_hold, hold_reasons, buyer_id, buyer_name, buyer_email, buyer_phone, receiver_name,
                    receiver_phone, receiver_country, receiver_province, receiver_city, receiver_district,
                    receiver_address, receiver_zip, currency, goods_amount, discount_amount, shipping_amount,
                    tax_amount, total_amount, paid_amount, priority, tags, buyer_note, seller_note, placed_at,
                    version, raw_payload_ref, store_id, stock_shortages, receiver_ciphertext, promised_service,
                    payment_id)
                SELECT i, now(), now(), 'SO' || lpad(i::text, 8, '0'),
                    CASE WHEN i %% 10 = 0 THEN (6900000000000000000 + i)::text
                         WHEN i %% 10 = 5 THEN 'WX' || (5000000000 + i * 7) ELSE 'TB' || (3000000000 + i * 7) END,
                    'shipped', '', '[]',
                    CASE WHEN i %% 10 = 0 THEN 'dy-' WHEN i %% 10 = 5 THEN 'wx-' ELSE 'tb-' END || person,
                    name, '', '', name,
                    CASE WHEN i %% 10 = 0 THEN '133****' || right(phone, 4) ELSE phone END,
                    'CN', '上海市', '上海市', '浦东新区', '张江路 ' || (person %% 500) || ' 号', '', 'CNY', 9.90, 0, 0, 0,
                    9.90, 9.90, 0, '[]', '', '', now() - (i %% 86400) * interval '1 minute', 1, '',
                    CASE WHEN i %% 10 = 0 THEN %(dy)s WHEN i %% 10 = 5 THEN %(wx)s ELSE %(tb)s END, '[]', '{}',
                    'standard', ''
                FROM bench_slot WHERE i BETWEEN %(low)s AND %(high)s
            """, params)
            cursor.execute("""
                INSERT INTO orders_orderline (id, line_no, sku_code, platform_sku_id, platform_line_id, title,
                    quantity, unit_price, discount_amount, order_id, sku_id)
                SELECT i, 1, 'BENCH-SKU', '', '', 'Bench SKU', 1, 9.90, 0, i, %(sku)s
                FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            cursor.execute("""
                INSERT INTO inventory_reservation (id, quantity, status, created_at, closed_at, order_id, order_line_id,
                    sku_id, warehouse_id)
                SELECT i, 1, 'consumed', now(), now(), i, i, %(sku)s, %(wh)s FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            cursor.execute("""
                INSERT INTO fulfillment_shipment (id, created_at, updated_at, number, status, status_before_exception,
                    exception_reason, platform, order_numbers, priority, amount, currency, receiver_key,
                    receiver_country, receiver_province, receiver_city, service_level, sla_due_at,
                    expected_weight_grams, tracking_number, handover_code, label_data, shipped_at, store_id,
                    warehouse_id)
                SELECT i, now(), now(), 'SH' || lpad(i::text, 9, '0'), 'shipped', '', '',
                    CASE WHEN i %% 10 = 0 THEN 'douyin' WHEN i %% 10 = 5 THEN 'manual' ELSE 'taobao' END,
                    'SO' || lpad(i::text, 8, '0'), 0, 9.90, 'CNY', md5(i::text), 'CN', '上海市', '上海市', 'standard',
                    now(), 100, 'YT' || (7000000000 + i), '', '{}', now(),
                    CASE WHEN i %% 10 = 0 THEN %(dy)s WHEN i %% 10 = 5 THEN %(wx)s ELSE %(tb)s END, %(wh)s
                FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            cursor.execute("""
                INSERT INTO fulfillment_shipmentline (id, quantity, verified_quantity, order_id, order_line_id,
                    reservation_id, shipment_id, sku_id)
                SELECT i, 1, 1, i, i, i, i, %(sku)s FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            # The customer view shows each parcel's timeline: collected, in transit, signed for.
            cursor.execute("""
                INSERT INTO fulfillment_trackingevent (shipment_id, occurred_at, code, description, location)
                SELECT i, now() - (4 - step) * interval '1 day', (ARRAY['collected', 'in_transit', 'signed'])[step],
                    (ARRAY['已揽收', '运输中', '已签收'])[step], '上海市'
                FROM generate_series(%(low)s, %(high)s) AS i, generate_series(1, 3) AS step
            """, params)
            cursor.execute("""
                INSERT INTO aftersales_ticket (created_at, updated_at, number, type, reason, reason_text, status,
                    source, platform_after_sale_id, requested_amount, requested_shipping, approved_amount, currency,
                    closed_at, checks, order_id, store_id, last_activity_at, platform_status, return_tracking_number)
                SELECT now(), now(), 'RMA' || lpad(i::text, 10, '0'), 'refund_only', 'quality', '', 'closed', 'desk',
                    '', 9.90, 0, 9.90, 'CNY', now(), '[]', i,
                    CASE WHEN i %% 10 = 0 THEN %(dy)s WHEN i %% 10 = 5 THEN %(wx)s ELSE %(tb)s END, now(), '', ''
                FROM generate_series(%(low)s, %(high)s) AS i WHERE i %% 50 = 7
            """, params)
            report.write(f"  loaded {high:,} orders ({time.perf_counter() - started:.0f} s)")
        # Notes on one Taobao buyer in 25 (by buyer id) and on one buyer in 40 (by phone).
        cursor.execute("""
            INSERT INTO desk_customernote (store_id, buyer_id, phone, text, author_id, created_at)
            SELECT CASE WHEN by_id THEN %(tb)s END, CASE WHEN by_id THEN 'tb-' || person ELSE '' END,
                CASE WHEN by_id THEN '' ELSE phone END, '老顾客，发货前电话确认', %(author)s, now()
            FROM (SELECT DISTINCT person, phone, person %% 25 = 0 AS by_id FROM bench_slot
                  WHERE person %% 25 = 0 OR person %% 40 = 0) AS noted
        """, params)
        cursor.execute("""
            SELECT count(*), max(orders), count(*) FILTER (WHERE orders >= 20)
            FROM (SELECT count(*) AS orders FROM bench_slot GROUP BY person) AS per_buyer""")
        buyers, most, regulars = cursor.fetchone()
        report.write(f"  {buyers:,} buyers, {total / buyers:.1f} orders each on average, {regulars:,} with 20 or "
                     f"more (at most {most})")
        for table in ("orders_order", "orders_orderline", "inventory_reservation", "fulfillment_shipment",
                      "fulfillment_shipmentline"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {total})")
        for table in ("orders_order", "orders_orderline", "inventory_reservation", "fulfillment_shipment",
                      "fulfillment_shipmentline", "fulfillment_trackingevent", "aftersales_ticket",
                      "desk_customernote"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute("DROP TABLE bench_slot")


def _samples(n: int, total: int) -> dict[str, list[str]]:
    """Search inputs of each kind, taken from n random orders (a name kind: a two-character prefix)."""
    rng = random.Random(SEED)
    ids = [rng.randint(1, total) for _ in range(n)]
    rows = {}
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT o.id, o.number, o.platform_order_id, o.receiver_phone, o.receiver_phone_last4, s.tracking_number,
                   o.receiver_name
            FROM orders_order o JOIN fulfillment_shipmentline l ON l.order_id = o.id
            JOIN fulfillment_shipment s ON s.id = l.shipment_id WHERE o.id = ANY(%s)""", [ids])
        for row in cursor.fetchall():
            rows[row[0]] = row
    picked = [rows[i] for i in ids]
    plain = [row for row in picked if "*" not in row[3]] or picked
    return {
        SearchKind.ORDER_NUMBER: [row[1] for row in picked],
        SearchKind.PLATFORM_ORDER_ID: [row[2] for row in picked],
        SearchKind.PHONE: [plain[k % len(plain)][3] for k in range(n)],
        SearchKind.LAST_FOUR: [row[4] for row in picked],
        SearchKind.TRACKING_NUMBER: [row[5] for row in picked],
        "partial_name": [row[6][:2] for row in picked],
    }


def _buyer_keys(n: int, total: int) -> list[BuyerKey]:
    """Buyers of n random orders (as the desk opens the view from an order): every other one keyed by its store
    and platform buyer id, the others by a full phone (from an order whose receiver came unmasked)."""
    rng = random.Random(SEED + 1)
    ids = [rng.randint(1, total) for _ in range(n)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, store_id, buyer_id, receiver_phone FROM orders_order WHERE id = ANY(%s)", [ids])
        rows = {row[0]: row for row in cursor.fetchall()}
    picked = [rows[i] for i in ids]
    plain = [row for row in picked if "*" not in row[3]] or picked
    return [buyer_key(store_id=picked[k][1], buyer_id=picked[k][2]) if k % 2 == 0
            else buyer_key(phone=plain[k % len(plain)][3]) for k in range(n)]


def _time_customer_views(report: Report, user, n: int, total: int) -> None:
    keys = _buyer_keys(n, total)
    customer_view(key=keys[0], user=user)  # warm-up
    durations, empty, orders_shown = [], 0, 0
    for key in keys:
        start = time.perf_counter()
        view = customer_view(key=key, user=user)
        durations.append(time.perf_counter() - start)
        empty += not view.orders
        orders_shown += len(view.orders)
    p50, p95 = percentile_ms(durations, 50), percentile_ms(durations, 95)
    report.write(f"     customer_view: {n} buyers (at most {CUSTOMER_VIEWS_MAX}, half by store and buyer id, half "
                 f"by full phone; {orders_shown / max(n, 1):.1f} orders shown each), p50 {p50} ms, p95 {p95} ms "
                 f"(aim ≤ {AIM_CUSTOMER_VIEW_P95_MS} ms)")
    if empty:
        report.fail(f"{empty} customer views showed no order")
    report.figures.update({"customer_views": n, "customer_view_p50_ms": p50, "customer_view_p95_ms": p95})


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    total, n = options["orders"], options["searches"]
    report.figures["orders"] = total
    with bench.production_like_settings(), bench.scratch_database(options["db_name"], keep=options["keep_db"],
                                                                   out=report):
        user = get_user_model().objects.create_user(username="bench-desk", is_superuser=True)
        begin = time.perf_counter()
        _load(report, total, user.pk)
        load_s = round(time.perf_counter() - begin, 1)
        report.write(f"bulk load of {total:,} orders with lines, parcels, tracking, tickets and notes: "
                     f"{load_s} s (not timed below)")
        report.figures["load_s"] = load_s
        samples = _samples(n, total)
        desk_search(query=samples[SearchKind.ORDER_NUMBER][0], user=user)  # warm-up
        p95_by_kind, p50_by_kind = {}, {}
        for kind, queries in samples.items():
            durations, empty = [], 0
            for query in queries:
                start = time.perf_counter()
                result = desk_search(query=query, user=user)
                durations.append(time.perf_counter() - start)
                empty += not result.hits
            name = str(kind)
            p50_by_kind[name], p95_by_kind[name] = percentile_ms(durations, 50), percentile_ms(durations, 95)
            report.write(f"{name:>18}: {len(queries)} searches, p50 {p50_by_kind[name]} ms, "
                         f"p95 {p95_by_kind[name]} ms")
            if empty:
                report.fail(f"{empty} {name} searches found nothing")
        worst = max(p95_by_kind.values())
        report.write(f"worst p95 {worst} ms (aim ≤ {AIM_P95_MS} ms)")
        report.figures.update({"searches_per_kind": n, "p50_ms_by_kind": p50_by_kind, "p95_ms_by_kind": p95_by_kind,
                               "worst_p95_ms": worst})
        _time_customer_views(report, user, min(n, CUSTOMER_VIEWS_MAX), total)
    report.finish()
    return not report.failures
