"""Desk search: bulk-load N orders with lines, parcels and tracking numbers, then time 1,000 searches per kind."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection

import bench
from bench.common import Report, percentile_ms
from desk.selectors import SearchKind, desk_search
from inventory.models import SKU, Warehouse
from orders.models import Platform, Store

SEED = 17
CHUNK = 100_000
AIM_P95_MS = 50
# Common surnames and given-name characters: two-character prefixes then match many orders, as at a real desk.
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "小明红丽伟芳娜秀英敏静强磊军洋勇艳杰娟涛超"


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders to bulk-load (default 1,000,000)")
    parser.add_argument("--searches", type=int, default=1000, help="searches per kind (default 1,000)")


def _load(report: Report, total: int) -> None:
    """Orders, one line, one reservation and one shipped parcel each, generated inside PostgreSQL.

    INSERT … SELECT over generate_series is the fastest bulk path there is (no rows cross the wire, unlike
    COPY or execute_values), and the generated last-four column is filled by the database as it would be
    for any bulk insert. Every tenth order is a Douyin one whose receiver came masked (133****1234).
    """
    store = Store.objects.create(code="bench-tb", name="Bench 淘宝", platform=Platform.TAOBAO)
    douyin = Store.objects.create(code="bench-dy", name="Bench 抖音", platform=Platform.DOUYIN)
    warehouse = Warehouse.objects.create(code="BSH", name="Bench 仓", provinces=[], priority=10)
    sku = SKU.objects.create(code="BENCH-SKU", name="Bench SKU", barcode="6900000000017", list_price=Decimal("9.90"))
    params = {"tb": store.pk, "dy": douyin.pk, "wh": warehouse.pk, "sku": sku.pk, "surnames": list(SURNAMES),
              "given": list(GIVEN)}
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for low in range(1, total + 1, CHUNK):
            high = min(low + CHUNK - 1, total)
            params.update(low=low, high=high)
            cursor.execute("""
                INSERT INTO orders_order (id, created_at, updated_at, number, platform_order_id, status,
                    status_before_hold, hold_reasons, buyer_id, buyer_name, buyer_email, buyer_phone, receiver_name,
                    receiver_phone, receiver_country, receiver_province, receiver_city, receiver_district,
                    receiver_address, receiver_zip, currency, goods_amount, discount_amount, shipping_amount,
                    tax_amount, total_amount, paid_amount, priority, tags, buyer_note, seller_note, placed_at,
                    version, raw_payload_ref, store_id, stock_shortages, receiver_ciphertext, promised_service)
                SELECT i, now(), now(), 'SO' || lpad(i::text, 8, '0'),
                    CASE WHEN i %% 10 = 0 THEN (6900000000000000000 + i)::text ELSE 'TB' || (3000000000 + i * 7) END,
                    'shipped', '', '[]', 'buyer-' || i, name, '', '', name,
                    CASE WHEN i %% 10 = 0 THEN '133****' || right(phone, 4) ELSE phone END,
                    'CN', '上海市', '上海市', '浦东新区', '张江路 ' || (i %% 500) || ' 号', '', 'CNY', 9.90, 0, 0, 0,
                    9.90, 9.90, 0, '[]', '', '', now() - (i %% 86400) * interval '1 minute', 1, '',
                    CASE WHEN i %% 10 = 0 THEN %(dy)s ELSE %(tb)s END, '[]', '{}', 'standard'
                FROM (SELECT i,
                        (%(surnames)s::text[])[1 + (i * 7) %% 20] || (%(given)s::text[])[1 + (i / 20) %% 20]
                            || (%(given)s::text[])[1 + (i / 400) %% 20] AS name,
                        '13' || lpad(((i::bigint * 2654435761) %% 1000000000)::text, 9, '0') AS phone
                      FROM generate_series(%(low)s, %(high)s) AS i) AS g
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
                SELECT i, now(), now(), 'SH' || lpad(i::text, 9, '0'), 'shipped', '', '', 'taobao',
                    'SO' || lpad(i::text, 8, '0'), 0, 9.90, 'CNY', md5(i::text), 'CN', '上海市', '上海市', 'standard',
                    now(), 100, 'YT' || (7000000000 + i), '', '{}', now(),
                    CASE WHEN i %% 10 = 0 THEN %(dy)s ELSE %(tb)s END, %(wh)s
                FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            cursor.execute("""
                INSERT INTO fulfillment_shipmentline (id, quantity, verified_quantity, order_id, order_line_id,
                    reservation_id, shipment_id, sku_id)
                SELECT i, 1, 1, i, i, i, i, %(sku)s FROM generate_series(%(low)s, %(high)s) AS i
            """, params)
            report.write(f"  loaded {high:,} orders ({time.perf_counter() - started:.0f} s)")
        for table in ("orders_order", "orders_orderline", "inventory_reservation", "fulfillment_shipment",
                      "fulfillment_shipmentline"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {total})")
            cursor.execute(f"ANALYZE {table}")


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


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    total, n = options["orders"], options["searches"]
    report.figures["orders"] = total
    with bench.production_like_settings(), bench.scratch_database(options["db_name"], keep=options["keep_db"],
                                                                   out=report):
        begin = time.perf_counter()
        _load(report, total)
        report.write(f"bulk load of {total:,} orders with lines, parcels and tracking numbers: "
                     f"{time.perf_counter() - begin:.1f} s (not timed below)")
        user = get_user_model().objects.create_user(username="bench-desk", is_superuser=True)
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
    report.finish()
    return not report.failures
