"""Reconciliation of one store's month: settlement rows against payment snapshots and refunds, set-based in SQL.

Every step is one SQL statement over the whole period, never a Python loop per row, so a month of 200,000 rows
matches in seconds. The steps:

1. Each sale or refund row of the period finds its order: by payment id (the snapshot's, from issue 18's payment
   ids), else by the platform order id within the store (snapshots taken before payment ids were kept), else by
   our own order number (a merchant order number the provider echoes). Kept in a temporary table.
2. Open differences of the period are removed and found again, so a fix and a re-check leave only what is still
   wrong; a resolved difference is kept and not raised again.
3. One INSERT … SELECT per reason:
   - missing_in_hub: a sale or refund row whose order the hub does not know;
   - settled_twice: a second sale row for one order (another provider row id: overlapping re-downloads of the
     same row are already refused at import);
   - currency_differs: the row's currency is not the order's;
   - amount_differs: a sale's gross is not what the order's last payment snapshot says was paid;
   - fee_differs: the provider kept another fee (the sale row's own, plus the fee and commission lines that name
     the order) than the order's reported platform fee, or, with none, than the store's fee rate (``fee_rate``)
     applied to the gross;
   - missing_in_settlement: an order paid in the period (up to ``lag_days`` before its end: later payments settle
     next month) with no sale row at all;
   - refund_not_settled: a refund the hub paid out in the period (same lag) with no refund row of that amount.

Amounts differing by less than half a cent (0.005, written into the SQL: SQLite compares a bound Decimal as text)
are rounding, not differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count

from finance.models import Difference, DifferenceReason, DifferenceStatus, SettlementFileStatus, SettlementRow
from finance.readers.base import RowKind
from finance.services import finance_month_refuse_closed
from orders.models import Store

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The payment events that say what the buyer paid (an authorization is not yet money).
PAID_EVENTS = ("payment", "capture")
DEFAULT_LAG_DAYS = 3
# period_match's fee_rate when not given: the store's.
STORE_RATE = object()


@dataclass
class MatchSummary:
    """What one run found: matched rows and amounts, and the open differences by reason."""

    store_id: int
    source: str
    month: date
    rows: int = 0
    matched: int = 0
    matched_amount: Decimal = Decimal("0")
    differences_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return sum(self.differences_by_reason.values())


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in Beijing time."""
    first = month.replace(day=1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (datetime.combine(first, time.min, tzinfo=SHANGHAI), datetime.combine(following, time.min, tzinfo=SHANGHAI))


def _db_time(value: datetime):
    # Raw SQL on SQLite compares the stored UTC text: let the backend shape the parameter as the ORM would.
    return connection.ops.adapt_datetimefield_value(value)


def period_match(*, store_id: int, source: str, month: date, fee_rate: Decimal | None | object = STORE_RATE,
                 lag_days: int = DEFAULT_LAG_DAYS) -> MatchSummary:
    """Match one store's settlement rows of ``source`` for ``month`` and record what does not match.

    ``fee_rate`` is the store's own (Store.fee_rate) unless given; None checks fees only against a fee the
    order itself reported. Sources that book fees on lines of their own (Alipay's 收费 lines) carry a zero fee
    on each sale; a fee or commission line that names the order (its trade no or merchant order number) counts
    towards that order's fee. A fee line that names no order (a monthly service charge) is no difference."""
    finance_month_refuse_closed(store_id=store_id, month=month.replace(day=1))
    if fee_rate is STORE_RATE:
        fee_rate = Store.objects.filter(pk=store_id).values_list("fee_rate", flat=True).first()
    start, end = month_bounds(month)
    first = start.date()
    paid_until = end - timedelta(days=lag_days)
    params = {"store": store_id, "source": source, "start": _db_time(start), "end": _db_time(end),
              "paid_until": _db_time(paid_until), "month": first, "last_day": (end - timedelta(days=1)).date(),
              "sale": RowKind.SALE.value, "refund": RowKind.REFUND.value, "fee": RowKind.FEE.value,
              "commission": RowKind.COMMISSION.value, "open": DifferenceStatus.OPEN.value,
              "fee_rate": fee_rate, "imported": SettlementFileStatus.IMPORTED.value}
    summary = MatchSummary(store_id=store_id, source=source, month=first)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS finance_match_base")
        cursor.execute("DROP TABLE IF EXISTS finance_match_rows")
        postgresql = connection.vendor == "postgresql"
        if postgresql:
            # Compiling these statements costs more than it saves (a third of a second each at 200,000 rows);
            # the window's sort and the hashes of a month fit in memory with a little more than the default.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
        # Step 1: each row of the period with the order it belongs to (NULL when none). Its own table: as a
        # subquery the planner would repeat the order lookups for every use of order_id below.
        cursor.execute(f"CREATE TEMPORARY TABLE finance_match_base AS {_PERIOD_ROWS}", params)
        if postgresql:
            # A new table has no statistics: without them the planner guesses a handful of rows and picks
            # nested loops over 200,000.
            cursor.execute("ANALYZE finance_match_base")
        # Then what each reason compares, in one table so each reason below is one scan of it: the order's
        # currency, what its last paid snapshot says, and the row's place among the order's sale rows (1 = the
        # first). OFFSET 0 keeps PostgreSQL from folding the inner SELECT into the join, which would look the
        # snapshot up twice per row (SQLite has no such fold, and no OFFSET without LIMIT).
        fence = "OFFSET 0" if postgresql else ""
        cursor.execute(f"""
            CREATE TEMPORARY TABLE finance_match_rows AS
            SELECT y.row_id, y.kind, y.gross, y.fee, y.currency, y.order_id, o.currency AS order_currency,
                   p.paid_amount, p.platform_fee,
                   CASE WHEN y.kind = %(sale)s AND y.order_id IS NOT NULL
                        THEN ROW_NUMBER() OVER (PARTITION BY y.order_id, y.kind ORDER BY y.row_id) END AS sale_n,
                   SUM(CASE WHEN y.kind IN (%(fee)s, %(commission)s) AND y.fee > 0 THEN y.fee ELSE 0 END)
                       OVER (PARTITION BY y.order_id) AS fee_lines
            FROM (SELECT b.*, ({_LAST_PAID_ID.format(order='b.order_id')}) AS paid_snapshot_id
                  FROM finance_match_base b {fence}) y
            LEFT JOIN orders_order o ON o.id = y.order_id
            LEFT JOIN finance_paymentsnapshot p ON p.id = y.paid_snapshot_id
        """, params)
        cursor.execute("DROP TABLE finance_match_base")
        cursor.execute("CREATE INDEX finance_match_rows_order ON finance_match_rows (order_id, kind)")
        if postgresql:
            cursor.execute("ANALYZE finance_match_rows")
        # Step 2: forget the open differences of the period; resolved ones stay as they were closed.
        Difference.objects.filter(store_id=store_id, source=source, month=first,
                                  status=DifferenceStatus.OPEN).delete()
        # Step 3: one statement per reason.
        for sql in _DIFFERENCE_SQL:
            cursor.execute(_insert_difference(sql), params)
        cursor.execute("""
            SELECT COUNT(*), COUNT(order_id), COALESCE(SUM(CASE WHEN order_id IS NOT NULL THEN gross END), 0)
            FROM finance_match_rows WHERE kind = %(sale)s""", params)
        summary.rows, summary.matched, matched_amount = cursor.fetchone()
        summary.matched_amount = Decimal(str(matched_amount)).quantize(Decimal("0.01"))
        cursor.execute("DROP TABLE finance_match_rows")
    summary.differences_by_reason = dict(
        Difference.objects.filter(store_id=store_id, source=source, month=first, status=DifferenceStatus.OPEN)
        .values("reason").annotate(n=Count("id")).order_by("reason").values_list("reason", "n"))
    return summary


def _insert_difference(select_sql: str) -> str:
    """INSERT the rows of ``select_sql`` (reason, order, row, expected, actual, currency) as open differences,
    except one already resolved for the same reason, order and row."""
    return f"""
        INSERT INTO finance_difference (month, source, store_id, reason, order_id, settlement_row_id,
                                        expected_amount, actual_amount, currency, status, created_at,
                                        resolution_note)
        SELECT %(month)s, %(source)s, %(store)s, d.reason, d.order_id, d.row_id, d.expected, d.actual, d.currency,
               %(open)s, CURRENT_TIMESTAMP, ''
        FROM ({select_sql}) d
        WHERE NOT EXISTS (
            SELECT 1 FROM finance_difference x
            WHERE x.month = %(month)s AND x.source = %(source)s AND x.store_id = %(store)s AND x.reason = d.reason
              AND (x.order_id = d.order_id OR (x.order_id IS NULL AND d.order_id IS NULL))
              AND (x.settlement_row_id = d.row_id OR (x.settlement_row_id IS NULL AND d.row_id IS NULL)))
    """


# The sale and refund rows of the period with their order: by payment id (the snapshot's), else the platform
# order id within the store, else our order number. Correlated lookups by index rather than hash joins: COALESCE
# stops at the first that finds the order (nearly always the payment id), and the lookups cost what the file
# has, not what the store's whole history has. A file without a period (none is stored without one by an
# import; rows written by hand may lack it) is read whole.
_PERIOD_ROWS = """
    SELECT r.id AS row_id, r.kind, r.gross, r.fee, r.currency,
           COALESCE(
               (SELECT MIN(s.order_id) FROM finance_paymentsnapshot s
                JOIN orders_order so ON so.id = s.order_id
                WHERE r.payment_id <> '' AND s.payment_id = r.payment_id AND so.store_id = %(store)s),
               (SELECT o.id FROM orders_order o
                WHERE r.platform_order_id <> '' AND o.store_id = %(store)s
                  AND o.platform_order_id = r.platform_order_id),
               (SELECT o.id FROM orders_order o
                WHERE r.merchant_order_no <> '' AND o.store_id = %(store)s AND o.number = r.merchant_order_no)
           ) AS order_id
    FROM finance_settlementfile f JOIN finance_settlementrow r ON r.file_id = f.id
    WHERE f.store_id = %(store)s AND f.status = %(imported)s AND f.source = %(source)s
      AND (f.period_start IS NULL OR (f.period_start <= %(last_day)s AND f.period_end >= %(month)s))
      AND r.kind IN (%(sale)s, %(refund)s, %(fee)s, %(commission)s)
      AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s
"""

# The id of an order's last snapshot that says what was paid (a capture after its authorization, or the
# payment); {order} names the order id column.
_PAID_EVENTS_SQL = ", ".join(f"'{event}'" for event in PAID_EVENTS)
_LAST_PAID_ID = ("SELECT MAX(s2.id) FROM finance_paymentsnapshot s2 WHERE s2.order_id = {order} "
                 "AND s2.event IN (" + _PAID_EVENTS_SQL + ")")

_DIFFERENCE_SQL = [
    # missing_in_hub: a sale or a refund the hub has no order for.
    f"""SELECT '{DifferenceReason.MISSING_IN_HUB}' AS reason, CAST(NULL AS BIGINT) AS order_id, m.row_id,
               CAST(NULL AS NUMERIC) AS expected, m.gross AS actual, m.currency
        FROM finance_match_rows m WHERE m.order_id IS NULL AND m.kind IN (%(sale)s, %(refund)s)""",
    # settled_twice: every sale row of an order after its first.
    f"""SELECT '{DifferenceReason.SETTLED_TWICE}' AS reason, m.order_id, m.row_id, CAST(NULL AS NUMERIC) AS expected,
               m.gross AS actual, m.currency
        FROM finance_match_rows m WHERE m.sale_n > 1""",
    # currency_differs: the row is in another currency than the order.
    # No expected amount: the order's is in another currency than the row's, and one difference has one currency.
    f"""SELECT '{DifferenceReason.CURRENCY_DIFFERS}' AS reason, m.order_id, m.row_id,
               CAST(NULL AS NUMERIC) AS expected, m.gross AS actual, m.currency
        FROM finance_match_rows m
        WHERE m.order_id IS NOT NULL AND m.kind IN (%(sale)s, %(refund)s) AND m.currency <> m.order_currency""",
    # amount_differs: the first sale row of an order against the last paid snapshot, same currency.
    f"""SELECT '{DifferenceReason.AMOUNT_DIFFERS}' AS reason, m.order_id, m.row_id, m.paid_amount AS expected,
               m.gross AS actual, m.currency
        FROM finance_match_rows m
        WHERE m.sale_n = 1 AND m.currency = m.order_currency AND ABS(m.gross - m.paid_amount) > 0.005""",
    # fee_differs: what the provider kept for the order (the sale row's own fee and the fees and commissions
    # charged on lines of their own that name the order, in the period, as Alipay books its service fees)
    # against the platform's reported fee for the order, else the store's rate on the gross. A fee given back
    # (a refund's) is not counted: the check is of what the sale was charged. A fee line booked after the month
    # ends is not seen in either month's check.
    f"""SELECT '{DifferenceReason.FEE_DIFFERS}' AS reason, m.order_id, m.row_id,
               COALESCE(m.platform_fee, ROUND(m.gross * %(fee_rate)s, 2)) AS expected, m.fee + m.fee_lines AS actual,
               m.currency
        FROM finance_match_rows m
        WHERE m.sale_n = 1 AND m.currency = m.order_currency
          AND COALESCE(m.platform_fee, ROUND(m.gross * %(fee_rate)s, 2)) IS NOT NULL
          AND ABS(m.fee + m.fee_lines - COALESCE(m.platform_fee, ROUND(m.gross * %(fee_rate)s, 2))) > 0.005""",
    # missing_in_settlement: paid in the period (before the lag) and no sale row for it in any file of the
    # source. The paid amount is looked up only for the few orders left, in the outer query.
    f"""SELECT '{DifferenceReason.MISSING_IN_SETTLEMENT}' AS reason, u.order_id, CAST(NULL AS BIGINT) AS row_id,
               p.paid_amount AS expected, CAST(NULL AS NUMERIC) AS actual, u.currency
        FROM (
            SELECT o.id AS order_id, o.currency, ({_LAST_PAID_ID.format(order='o.id')}) AS paid_snapshot_id
            FROM orders_order o
            WHERE o.store_id = %(store)s AND o.paid_at >= %(start)s AND o.paid_at < %(paid_until)s
              AND NOT EXISTS (SELECT 1 FROM finance_match_rows m WHERE m.order_id = o.id AND m.kind = %(sale)s)
              AND NOT EXISTS (
                  SELECT 1 FROM finance_settlementrow r JOIN finance_settlementfile f ON f.id = r.file_id
                  WHERE f.store_id = %(store)s AND r.source = %(source)s AND r.kind = %(sale)s
                    AND r.platform_order_id = o.platform_order_id)
              -- Two NOT EXISTS, not one with an OR: each then looks its column up by index instead of scanning
              -- every sale row of the source once per unsettled order.
              AND NOT EXISTS (
                  SELECT 1 FROM finance_settlementrow r JOIN finance_settlementfile f ON f.id = r.file_id
                  WHERE f.store_id = %(store)s AND r.source = %(source)s AND r.kind = %(sale)s
                    AND r.merchant_order_no = o.number)
        ) u JOIN finance_paymentsnapshot p ON p.id = u.paid_snapshot_id""",
    # refund_not_settled: a refund paid out in the period with no refund row of that amount on its order.
    f"""SELECT '{DifferenceReason.REFUND_NOT_SETTLED}' AS reason, rf.order_id, CAST(NULL AS BIGINT) AS row_id,
               rf.amount AS expected, CAST(NULL AS NUMERIC) AS actual, rf.currency
        FROM aftersales_refund rf JOIN orders_order o ON o.id = rf.order_id
        WHERE o.store_id = %(store)s AND rf.status = 'confirmed'
          AND rf.confirmed_at >= %(start)s AND rf.confirmed_at < %(paid_until)s
          AND NOT EXISTS (SELECT 1 FROM finance_match_rows m
                          WHERE m.order_id = rf.order_id AND m.kind = %(refund)s
                            AND ABS(ABS(m.gross) - rf.amount) <= 0.005)""",
]


def settlement_rows_of_period(*, store_id: int, source: str, month: date):
    """The period's rows, as the difference list links them (for pages and exports)."""
    start, end = month_bounds(month)
    return SettlementRow.objects.filter(file__store_id=store_id, source=source, occurred_at__gte=start,
                                        occurred_at__lt=end)


# --- Payouts against the bank statement ----------------------------------------------------------------------

# A platform's payout reaches the bank from the day before (time zones, value dates) to five days after.
PAYOUT_WINDOW_BEFORE = timedelta(days=1)
PAYOUT_WINDOW_AFTER = timedelta(days=5)


@dataclass
class PayoutSummary:
    month: date
    payouts: int = 0
    bank_lines: int = 0
    matched: int = 0
    differences_by_reason: dict[str, int] = field(default_factory=dict)


def payouts_match(*, month: date) -> PayoutSummary:
    """Match the month's payouts in the platforms' files against the payout lines of the bank statements.

    Set-based and one to one: payouts and bank lines of the same amount and currency are paired in date order
    (the first payout of 1,234.50 with the first bank line of 1,234.50, and so on); a pair more than the window
    apart is not a match. A payout with no bank line is "missing in the settlement" (the bank statement), a bank
    line with no payout "missing in the hub" (no platform file shows it); both under source "bank", with the
    store of the payout (none for a bank line)."""
    finance_month_refuse_closed(store_id=None, month=month.replace(day=1))
    start, end = month_bounds(month)
    first = start.date()
    source = "bank"
    params = {"start": _db_time(start), "end": _db_time(end), "payout": RowKind.PAYOUT.value, "bank": source,
              "imported": SettlementFileStatus.IMPORTED.value, "month": first, "open": DifferenceStatus.OPEN.value,
              "before": PAYOUT_WINDOW_BEFORE.total_seconds(), "after": PAYOUT_WINDOW_AFTER.total_seconds()}
    summary = PayoutSummary(month=first)
    # Seconds between two times, in each database's own words.
    seconds = ("EXTRACT(EPOCH FROM (b.occurred_at - p.occurred_at))" if connection.vendor == "postgresql"
               else "(julianday(b.occurred_at) - julianday(p.occurred_at)) * 86400")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS finance_match_payouts")
        cursor.execute(f"""
            CREATE TEMPORARY TABLE finance_match_payouts AS
            WITH p AS (
                SELECT r.id, f.store_id, ABS(r.gross) AS amount, r.currency, r.occurred_at,
                       ROW_NUMBER() OVER (PARTITION BY ABS(r.gross), r.currency ORDER BY r.occurred_at, r.id) AS n
                FROM finance_settlementrow r JOIN finance_settlementfile f ON f.id = r.file_id
                WHERE r.kind = %(payout)s AND r.source <> %(bank)s AND f.status = %(imported)s
                  AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s),
            b AS (
                SELECT r.id, ABS(r.gross) AS amount, r.currency, r.occurred_at,
                       ROW_NUMBER() OVER (PARTITION BY ABS(r.gross), r.currency ORDER BY r.occurred_at, r.id) AS n
                FROM finance_settlementrow r JOIN finance_settlementfile f ON f.id = r.file_id
                WHERE r.kind = %(payout)s AND r.source = %(bank)s AND f.status = %(imported)s
                  AND r.occurred_at >= %(start)s AND r.occurred_at < %(end)s)
            SELECT p.id AS payout_id, p.store_id, p.amount AS payout_amount, p.currency AS payout_currency,
                   b.id AS bank_id, b.amount AS bank_amount, b.currency AS bank_currency
            FROM p LEFT JOIN b ON b.amount = p.amount AND b.currency = p.currency AND b.n = p.n
                AND {seconds} BETWEEN -%(before)s AND %(after)s
            UNION ALL
            SELECT NULL, NULL, NULL, NULL, b.id, b.amount, b.currency FROM b
            WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.amount = b.amount AND p.currency = b.currency AND p.n = b.n
                              AND {seconds} BETWEEN -%(before)s AND %(after)s)
        """, params)
        Difference.objects.filter(source=source, month=first, status=DifferenceStatus.OPEN).delete()
        cursor.execute(f"""
            INSERT INTO finance_difference (month, source, store_id, reason, order_id, settlement_row_id,
                                            expected_amount, actual_amount, currency, status, created_at,
                                            resolution_note)
            SELECT %(month)s, %(bank)s, m.store_id,
                   CASE WHEN m.bank_id IS NULL THEN '{DifferenceReason.MISSING_IN_SETTLEMENT}'
                        ELSE '{DifferenceReason.MISSING_IN_HUB}' END,
                   NULL, COALESCE(m.payout_id, m.bank_id), m.payout_amount, m.bank_amount,
                   COALESCE(m.payout_currency, m.bank_currency), %(open)s, CURRENT_TIMESTAMP, ''
            FROM finance_match_payouts m
            WHERE (m.bank_id IS NULL OR m.payout_id IS NULL)
              AND NOT EXISTS (SELECT 1 FROM finance_difference x
                              WHERE x.month = %(month)s AND x.source = %(bank)s
                                AND x.settlement_row_id = COALESCE(m.payout_id, m.bank_id))
        """, params)
        cursor.execute("""
            SELECT COUNT(payout_id), COUNT(bank_id), COUNT(CASE WHEN payout_id IS NOT NULL AND bank_id IS NOT NULL
                                                              THEN 1 END)
            FROM finance_match_payouts""")
        summary.payouts, summary.bank_lines, summary.matched = cursor.fetchone()
        cursor.execute("DROP TABLE finance_match_payouts")
    summary.differences_by_reason = dict(
        Difference.objects.filter(source=source, month=first, status=DifferenceStatus.OPEN)
        .values("reason").annotate(n=Count("id")).order_by("reason").values_list("reason", "n"))
    return summary
