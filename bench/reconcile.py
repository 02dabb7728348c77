"""Reconciliation: a month of N paid Taobao orders with refunds, its Alipay statement with planted differences,
imported and matched; every planted difference must be found and nothing else."""

from __future__ import annotations

import cProfile
import csv
import io
import random
import time
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg2
from django.db import connection

import bench
from bench.common import Report, raw_connection_params, write_profile_stats
from finance.imports import settlement_file_import
from finance.matching import month_bounds, period_match
from finance.models import Difference, DifferenceReason, SettlementFileStatus
from finance.readers.base import SettlementSource
from orders.models import Platform, Store

SEED = 18
CHUNK = 100_000
MONTH = date(2026, 9, 1)
# Orders are paid over the month's first 26 days, so every payment and refund falls before the matching lag
# (3 days) and is expected in this month's statement.
PAID_SPREAD_S = 26 * 86400
# Alipay books its service fees as their own 收费 lines, so a sale line carries no fee: the store's rate for a
# sale line's own fee is 0, and a fee difference is a fee the platform reported for the order that the
# statement did not keep (see the report's note on fees).
FEE_RATE = Decimal("0")
REPORTED_FEE = Decimal("1.23")
AIM_TOTAL_S = 60
AIM_RATIO = 0.15
KINDS = [reason.value for reason in DifferenceReason]
HEADER = ["账务流水号", "业务流水号", "商户订单号", "商品名称", "发生时间", "对方账号", "收入金额（+元）",
          "支出金额（-元）", "账户余额（元）", "交易渠道", "业务类型", "备注"]


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=200_000, help="orders paid in the month (default 200,000)")
    parser.add_argument("--profile", action="store_true", help="profile the import and print the top functions")


# --- The hub's side: orders, snapshots, refunds -------------------------------------------------------------

def _paid_cents(i: int) -> int:
    return 1000 + (i * 7919) % 49000  # 10.00 to 499.99 yuan


def _payment_id(i: int) -> str:
    return f"20260900{i:012d}"


def _platform_order_id(i: int) -> str:
    return str(3000000000 + i * 7)  # a Taobao tid: Alipay's merchant order number is "T200P" + it


def _paid_at(i: int, total: int) -> datetime:
    start, _end = month_bounds(MONTH)
    return start + timedelta(seconds=(i - 1) * PAID_SPREAD_S // total)


def _is_refunded(i: int) -> bool:
    return i % 20 == 3  # 5 % of the orders


def _plant(total: int) -> dict[str, list[int]]:
    """Which orders carry which planted difference (disjoint sets; missing_in_hub counts made-up rows)."""
    per_kind = max(5, total // 2000)
    rng = random.Random(SEED)
    plain = [i for i in range(1, total + 1) if not _is_refunded(i)]
    refunded = [i for i in range(1, total + 1) if _is_refunded(i)]
    chosen = iter(rng.sample(plain, 5 * per_kind))
    plants = {kind: sorted(next(chosen) for _ in range(per_kind))
              for kind in (DifferenceReason.MISSING_IN_SETTLEMENT, DifferenceReason.AMOUNT_DIFFERS,
                           DifferenceReason.FEE_DIFFERS, DifferenceReason.SETTLED_TWICE,
                           DifferenceReason.CURRENCY_DIFFERS)}
    plants[DifferenceReason.REFUND_NOT_SETTLED] = sorted(rng.sample(refunded, per_kind))
    plants[DifferenceReason.MISSING_IN_HUB] = list(range(1, per_kind + 1))  # made-up order numbers
    return {str(kind): ids for kind, ids in plants.items()}


def _load(report: Report, total: int, plants: dict[str, list[int]]) -> int:
    """Orders, their payment snapshots (payment id = the Alipay trade no) and 5 % confirmed refunds, generated
    inside PostgreSQL (INSERT … SELECT generate_series, the bulk path bench/search.py explains)."""
    store = Store.objects.create(code="bench-tb", name="Bench 淘宝", platform=Platform.TAOBAO)
    start, _end = month_bounds(MONTH)
    params = {"store": store.pk, "start": start, "total": total, "spread": PAID_SPREAD_S,
              "usd": plants[DifferenceReason.CURRENCY_DIFFERS], "fee": plants[DifferenceReason.FEE_DIFFERS],
              "reported_fee": REPORTED_FEE}
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for low in range(1, total + 1, CHUNK):
            params.update(low=low, high=min(low + CHUNK - 1, total))
            cursor.execute("""
                INSERT INTO orders_order (id, created_at, updated_at, number, platform_order_id, status,
                    status_before_hold, hold_reasons, buyer_id, buyer_name, buyer_email, buyer_phone, receiver_name,
                    receiver_phone, receiver_country, receiver_province, receiver_city, receiver_district,
                    receiver_address, receiver_zip, currency, goods_amount, discount_amount, shipping_amount,
                    tax_amount, total_amount, paid_amount, payment_id, platform_fee, priority, tags, buyer_note,
                    seller_note, placed_at, paid_at, version, raw_payload_ref, store_id, stock_shortages,
                    receiver_ciphertext, promised_service)
                SELECT i, now(), now(), 'SO' || lpad(i::text, 8, '0'), (3000000000 + i * 7)::text, 'shipped', '',
                    '[]', 'tb-' || i, '买家' || i, '', '', '买家' || i, '13800000000', 'CN', '上海市', '上海市',
                    '浦东新区', '张江路 1 号', '', CASE WHEN i = ANY(%(usd)s) THEN 'USD' ELSE 'CNY' END, amount, 0, 0,
                    0, amount, amount, '20260900' || lpad(i::text, 12, '0'), NULL, 0, '[]', '', '', paid, paid, 1, '',
                    %(store)s, '[]', '{}', 'standard'
                FROM (SELECT i, (1000 + (i * 7919) %% 49000) / 100.0 AS amount,
                             %(start)s + ((i - 1)::bigint * %(spread)s / %(total)s) * interval '1 second' AS paid
                      FROM generate_series(%(low)s, %(high)s) AS i) AS g
            """, params)
            # The snapshot of each payment; the planted fee orders carry a fee the platform reported.
            cursor.execute("""
                INSERT INTO finance_paymentsnapshot (order_id, taken_at, currency, paid_amount, data, event, reference,
                    payment_id, platform_fee)
                SELECT id, paid_at, currency, paid_amount, '{}', 'payment', '', payment_id,
                    CASE WHEN id = ANY(%(fee)s) THEN %(reported_fee)s END
                FROM orders_order WHERE id BETWEEN %(low)s AND %(high)s
            """, params)
            cursor.execute("""
                INSERT INTO aftersales_refund (created_at, updated_at, order_id, amount, shipping_amount, currency,
                    method, status, platform_refund_id, confirmed_at)
                SELECT paid_at + interval '1 day', paid_at + interval '1 day', id, trunc(paid_amount * 50) / 100, 0,
                    currency, 'platform', 'confirmed', '', paid_at + interval '1 day'
                FROM orders_order WHERE id BETWEEN %(low)s AND %(high)s AND id %% 20 = 3
            """, params)
        cursor.execute("SELECT setval(pg_get_serial_sequence('orders_order', 'id'), %s)", [total])
        for table in ("orders_order", "finance_paymentsnapshot", "aftersales_refund"):
            cursor.execute(f"ANALYZE {table}")
    report.write(f"  loaded {total:,} orders with snapshots and {total // 20:,} refunds "
                 f"({time.perf_counter() - began:.0f} s)")
    return store.pk


# --- The provider's side: the Alipay statement ---------------------------------------------------------------

def _statement(total: int, plants: dict[str, list[int]]) -> tuple[bytes, int, list[str]]:
    """The month's Alipay statement (GBK, "#" lines around the table, values padded with a tab as Alipay
    writes them): a sale line per order, a refund line per refund, a 收费 line per day and a payout per week,
    with the planted differences. Returns the bytes, the table's row count and the made-up platform order ids
    of the missing_in_hub lines."""
    skip_sale = set(plants[DifferenceReason.MISSING_IN_SETTLEMENT])
    amount_off = set(plants[DifferenceReason.AMOUNT_DIFFERS])
    twice = set(plants[DifferenceReason.SETTLED_TWICE])
    unsettled = set(plants[DifferenceReason.REFUND_NOT_SETTLED])
    lines: list[tuple[datetime, str, str, str, str, int, str, str]] = []  # when, trade no, merchant no, goods…
    for i in range(1, total + 1):
        paid_at = _paid_at(i, total)
        cents = _paid_cents(i)
        # One line in ten without the trade no: matched by the Taobao order id in the merchant order number.
        trade_no = "" if i % 10 == 7 else _payment_id(i)
        merchant_no = "T200P" + _platform_order_id(i)
        if i not in skip_sale:
            gross = cents - 100 if i in amount_off else cents
            lines.append((paid_at + timedelta(seconds=30), trade_no, merchant_no, "商品", "在线支付", gross, "", ""))
            if i in twice:
                lines.append((paid_at + timedelta(hours=2), trade_no, merchant_no, "商品", "在线支付", gross, "", ""))
        if _is_refunded(i) and i not in unsettled:
            lines.append((paid_at + timedelta(days=1, seconds=5), trade_no, merchant_no, "商品", "交易退款",
                          -(cents // 2), "退款", ""))
    unknown = []
    for k in plants[DifferenceReason.MISSING_IN_HUB]:
        platform_order_id = str(9000000000 + k)
        unknown.append(platform_order_id)
        lines.append((_paid_at(k, len(plants[DifferenceReason.MISSING_IN_HUB])) + timedelta(minutes=5),
                      f"2026099900{k:012d}", "T200P" + platform_order_id, "商品", "在线支付", 1990, "", ""))
    start, end = month_bounds(MONTH)
    day = start
    while day < end:
        lines.append((day + timedelta(hours=23, minutes=59, seconds=59), "", "", "技术服务费", "收费", -1234, "服务费",
                      "示例平台"))
        if day.weekday() == 0:
            lines.append((day + timedelta(hours=9), "", "", "提现", "提现", -100000, "提现到银行卡", ""))
        day += timedelta(days=1)
    lines.sort(key=lambda line: line[0])

    out = io.StringIO()
    out.write("#支付宝账务明细查询\n#账号：[20880000000000000156]\n")
    out.write(f"#起始日期：[{start:%Y年%m月%d日 %H:%M:%S}]   终止日期：[{end:%Y年%m月%d日 %H:%M:%S}]\n")
    out.write("#-----------------------------------------账务明细列表----------------------------------------\n")
    out.write(",".join(HEADER) + "\n")
    balance, income_total, expense_total, incomes, expenses = 10_000_000, 0, 0, 0, 0
    for seq, (when, trade_no, merchant_no, goods, business_type, cents, memo, counterparty) in enumerate(lines, 1):
        balance += cents
        if cents >= 0:
            income, expense = _yuan(cents), "0.00"
            income_total, incomes = income_total + cents, incomes + 1
        else:
            income, expense = "0.00", _yuan(-cents)
            expense_total, expenses = expense_total - cents, expenses + 1
        out.write(f"{when:%Y%m%d}{seq:08d}\t,{trade_no}\t,{merchant_no}\t,{goods}\t,{when:%Y-%m-%d %H:%M:%S},"
                  f"{counterparty or '买家'}\t,{income},{expense},{_yuan(balance)},支付宝,{business_type},{memo}\n")
    out.write("#-----------------------------------------账务明细列表结束------------------------------------\n")
    out.write(f"#支出合计：{expenses}笔，共{_yuan(expense_total)}元\n#收入合计：{incomes}笔，共{_yuan(income_total)}元\n")
    out.write(f"#导出时间：[{end + timedelta(hours=9):%Y年%m月%d日 %H:%M:%S}]\n")
    return out.getvalue().encode("gbk"), len(lines), unknown


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# --- What was found -------------------------------------------------------------------------------------------

def _found(store_id: int, plants: dict[str, list[int]], unknown: list[str]) -> tuple[Counter, int, list]:
    """Differences that are the planted ones, by kind, and every other (a false difference)."""
    expected = {kind: set(ids) for kind, ids in plants.items()}
    expected[DifferenceReason.MISSING_IN_HUB] = set(unknown)
    found: Counter = Counter()
    false = []
    differences = (Difference.objects.filter(store_id=store_id, month=MONTH)
                   .values_list("reason", "order_id", "settlement_row__platform_order_id"))
    for reason, order_id, row_order_id in differences.iterator():
        key = row_order_id if reason == DifferenceReason.MISSING_IN_HUB else order_id
        if key in expected.get(reason, ()):
            expected[reason].discard(key)  # each planted item counts once
            found[reason] += 1
        else:
            false.append((reason, order_id, row_order_id))
    return found, len(false), false[:10]


# --- The raw bound ----------------------------------------------------------------------------------------------

def _raw_bound(data: bytes) -> float:
    """The least work the same result needs: csv.reader over the decoded file, COPY of the rows into a plain
    table, one join of the rows against the snapshots by trade no. Seconds."""
    began = time.perf_counter()
    text = data.decode("gbk")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header_seen = False
    for cells in csv.reader(io.StringIO(text, newline="")):
        if not cells or cells[0].startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        writer.writerow([cells[0].strip(), cells[1].strip(), cells[2].strip(), cells[4], cells[6], cells[7],
                         cells[10]])
    buffer.seek(0)
    conn = psycopg2.connect(**raw_connection_params())
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE raw_statement (row_id text, trade_no text, merchant_no text, "
                           "occurred_at timestamp, income numeric, expense numeric, business_type text)")
            cursor.copy_expert("COPY raw_statement FROM STDIN WITH (FORMAT csv)", buffer)
            cursor.execute("""
                SELECT count(*), count(*) FILTER (WHERE r.income <> s.paid_amount)
                FROM raw_statement r JOIN finance_paymentsnapshot s ON s.payment_id = r.trade_no
                WHERE r.trade_no <> ''""")
            cursor.fetchone()
        conn.rollback()
    finally:
        conn.close()
    return time.perf_counter() - began


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    total = options["orders"]
    report.figures["orders"] = total
    plants = _plant(total)
    with bench.production_like_settings(), bench.scratch_database(options["db_name"], keep=options["keep_db"],
                                                                   out=report):
        store_id = _load(report, total, plants)
        began = time.perf_counter()
        data, rows, unknown = _statement(total, plants)
        report.write(f"  statement: {rows:,} rows, {len(data) / 1e6:.1f} MB GBK, made in "
                     f"{time.perf_counter() - began:.1f} s (not timed)")
        store = Store.objects.get(pk=store_id)

        profiler = cProfile.Profile() if options["profile"] else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        settlement_file = settlement_file_import(source=SettlementSource.ALIPAY, data=data,
                                                 file_name="alipay-2026-09.csv", store=store)
        if profiler:
            profiler.disable()
        import_s = time.perf_counter() - began
        if settlement_file.status != SettlementFileStatus.IMPORTED:
            report.fail(f"import {settlement_file.status}: {settlement_file.error_report[:3]}")
        report.write(f"  import: {settlement_file.row_count:,} rows in {import_s:.1f} s "
                     f"({settlement_file.row_count / import_s:,.0f} rows/s)")
        if profiler:
            write_profile_stats(report, profiler, top=15, orders=("tottime",))

        began = time.perf_counter()
        summary = period_match(store_id=store_id, source=SettlementSource.ALIPAY, month=MONTH, fee_rate=FEE_RATE)
        match_s = time.perf_counter() - began
        total_s = import_s + match_s
        report.write(f"  match: {summary.rows:,} sale rows, {summary.matched:,} matched, {summary.differences} "
                     f"differences in {match_s:.1f} s")

        found_by_kind, false_differences, false_sample = _found(store_id, plants, unknown)
        planted_by_kind = {kind: len(plants[kind]) for kind in KINDS}
        found_by_kind = {kind: found_by_kind.get(kind, 0) for kind in KINDS}
        planted, found = sum(planted_by_kind.values()), sum(found_by_kind.values())
        for kind in KINDS:
            report.write(f"    {kind:24} planted {planted_by_kind[kind]:5}  found {found_by_kind[kind]:5}")
        if found != planted:
            report.fail(f"found {found} of {planted} planted differences")
        if false_differences:
            report.fail(f"{false_differences} differences that were not planted, e.g. {false_sample}")

        raw_s = _raw_bound(data)
        ratio = raw_s / total_s if total_s else 0.0
        report.write(f"  total {total_s:.1f} s (aim ≤ {AIM_TOTAL_S} s); raw bound (csv module, COPY, one join) "
                     f"{raw_s:.1f} s, ratio {ratio:.2f} (aim ≥ {AIM_RATIO})")
        report.figures.update({
            "settlement_rows": settlement_file.row_count, "total_s": round(total_s, 2),
            "import_s": round(import_s, 2), "import_rows_per_s": round(settlement_file.row_count / import_s),
            "match_s": round(match_s, 2), "planted": planted, "found": found, "planted_by_kind": planted_by_kind,
            "found_by_kind": found_by_kind, "false_differences": false_differences, "raw_s": round(raw_s, 2),
            "ratio": round(ratio, 3), "fee_rate": str(FEE_RATE)})
    report.finish()
    return not report.failures
