"""Stock reservation benchmark: a flash sale on one SKU, orders spread over many SKUs, and the raw-SQL bound."""

from __future__ import annotations

import cProfile
import queue
import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import psycopg2.errors
from django.db import connection, connections
from django.db.models import Sum
from django.utils import timezone

import bench
from bench.common import (
    Report,
    check_stock_consistency,
    percentile_ms,
    raw_connection_params,
    write_profile_stats,
)
from inventory.models import (
    SKU,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from inventory.services import stock_receive, stock_release_for_order, stock_reserve_for_order
from orders.models import Order, OrderLine, Platform, Store

HOT_STOCK = 100
SPREAD_SKUS = 1000
SPREAD_PRIORITIES = (10, 20, 30)
SEED = 7
BATCH = 1000
PRICE = Decimal("9.90")
ACTIVE = ReservationStatus.ACTIVE
# The capture orders get explicit ids far above anything the sequences hand out, so that in the captured
# statement parameters the order id and the line id cannot be mistaken for a warehouse id, SKU id or quantity.
CAPTURE_ORDER_ID = 7_000_000_000
CAPTURE_LINE_ID = 8_000_000_000
CAPTURE_REFERENCE = "bench:capture"
BARRIER_TIMEOUT_S = 120


def add_arguments(parser) -> None:
    parser.add_argument("--attempts", type=int, default=10_000,
                        help="flash-sale attempts on the hot SKU, also used by the raw phase (default 10000)")
    parser.add_argument("--orders", type=int, default=10_000, help="orders in the spread phase (default 10000)")
    parser.add_argument("--allow-split", action="store_true",
                        help="spread phase: let orders split across warehouses (allow_split=True)")
    parser.add_argument("--sample", type=int, default=500,
                        help="single-threaded attempts timed statement by statement for the DB/Python split")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also run N sequential attempts on a hot SKU under cProfile and print the top costs")


# --- Worker threads ----------------------------------------------------------------------------

@dataclass
class PhaseStats:
    attempts: int = 0
    successes: int = 0
    misses: int = 0  # the call returned reserved=False (sold out / short)
    deadlocks: int = 0
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    succeeded: list = field(default_factory=list)  # the work items that reserved
    missed: list = field(default_factory=list)
    extra: Counter = field(default_factory=Counter)  # counts a session keeps of its own
    wall: float = 0.0

    def merge(self, other: PhaseStats) -> None:
        self.attempts += other.attempts
        self.successes += other.successes
        self.misses += other.misses
        self.deadlocks += other.deadlocks
        self.errors.update(other.errors)
        self.error_samples.extend(other.error_samples[:5 - len(self.error_samples)])
        self.latencies.extend(other.latencies)
        self.succeeded.extend(other.succeeded)
        self.missed.extend(other.missed)
        self.extra.update(other.extra)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.attempts / self.wall if self.wall else 0.0

    def record_error(self, exc: BaseException) -> None:
        if is_deadlock(exc):
            self.deadlocks += 1
            return
        self.errors[type(exc).__name__] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append("".join(traceback.format_exception_only(type(exc), exc)).strip()[:500])


def is_deadlock(exc: BaseException) -> bool:
    """psycopg2's DeadlockDetected, also when Django wrapped it in its own OperationalError."""
    seen = exc
    while seen is not None:
        if isinstance(seen, psycopg2.errors.DeadlockDetected):
            return True
        seen = seen.__cause__ or seen.__context__
    return "deadlock" in str(exc).lower()


def run_threads(items: list, workers: int, open_session) -> PhaseStats:
    """Run ``session.attempt(item)`` for every item from ``workers`` threads pulling from one shared queue.

    Each thread opens its session (its database connection) before the barrier, so the timed section holds
    only the attempts; the barrier's action stamps the start when the last party arrives. Exceptions are
    counted per thread (deadlocks apart) and never stop the phase.
    """
    work: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        work.put(item)
    started = []
    barrier = threading.Barrier(workers + 1, action=lambda: started.append(time.perf_counter()))
    per_thread = [PhaseStats() for _ in range(workers)]

    def worker(stats: PhaseStats) -> None:
        session = None
        try:
            session = open_session()
            barrier.wait(timeout=BARRIER_TIMEOUT_S)
        except threading.BrokenBarrierError:
            if session is not None:
                session.close()
            return
        except Exception as exc:  # could not connect: counted, and the others are released
            stats.record_error(exc)
            barrier.abort()
            if session is not None:
                session.close()
            return
        clock = time.perf_counter
        try:
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    break
                begin = clock()
                try:
                    reserved = session.attempt(item)
                except Exception as exc:
                    stats.record_error(exc)
                else:
                    if reserved:
                        stats.successes += 1
                        stats.succeeded.append(item)
                    else:
                        stats.misses += 1
                        stats.missed.append(item)
                stats.latencies.append(clock() - begin)
                stats.attempts += 1
        finally:
            stats.extra.update(getattr(session, "extra", {}))
            session.close()

    threads = [threading.Thread(target=worker, args=(stats,), name=f"bench-{n}", daemon=True)
               for n, stats in enumerate(per_thread)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=BARRIER_TIMEOUT_S)
    except threading.BrokenBarrierError:
        pass  # a worker could not start; its error is in its stats
    for thread in threads:
        thread.join()
    finished = time.perf_counter()
    total = PhaseStats()
    for stats in per_thread:
        total.merge(stats)
    total.wall = finished - started[0] if started else 0.0
    return total


class ServiceSession:
    """One worker thread calling the real service through its own Django connection."""

    def __init__(self, allow_split: bool = False):
        self.allow_split = allow_split
        self.extra = Counter()
        connection.ensure_connection()  # connect now, outside the timed section

    def attempt(self, item) -> bool:
        order_id = item[0]
        result = stock_reserve_for_order(order_id=order_id, allow_split=self.allow_split, province="",
                                         reference=f"bench:{order_id}")
        if not result.reserved and not result.shortages:
            # Lost a race: the snapshot read showed enough, the conditional UPDATE found too little, and
            # the shortages computed from that same snapshot come out empty.
            self.extra["not_reserved_without_shortages"] += 1
        return result.reserved

    def close(self) -> None:
        connections.close_all()  # this thread's connections only; the main thread keeps its own


def print_phase(report: Report, label: str, stats: PhaseStats, unit: str = "attempts") -> None:
    report.write(f"  {stats.attempts} {unit} in {stats.wall:.2f} s = {stats.rate:.0f} {unit}/s; "
                 f"p50 {percentile_ms(stats.latencies, 50)} ms, p99 {percentile_ms(stats.latencies, 99)} ms, "
                 f"max {percentile_ms(stats.latencies, 100)} ms")
    report.write(f"  deadlocks {stats.deadlocks}, other exceptions {stats.error_count} {dict(stats.errors)}")
    for sample in stats.error_samples:
        report.write(f"    exception: {sample}")
    if stats.deadlocks:
        report.fail(f"{label}: {stats.deadlocks} deadlocks")
    if stats.error_count:
        report.fail(f"{label}: {stats.error_count} exceptions other than deadlocks")


# --- Fixtures ----------------------------------------------------------------------------------

def bulk_orders(store: Store, prefix: str, specs: list[list[tuple[SKU, int]]]) -> list[tuple[int, list[int]]]:
    """Insert orders with their lines directly (order_create is too slow for 10,000 fixtures): (id, line ids)."""
    now = timezone.now()
    orders = [Order(number=f"{prefix}{n:08d}", store=store, platform_order_id=f"{prefix}{n:08d}", placed_at=now)
              for n in range(len(specs))]
    Order.objects.bulk_create(orders, batch_size=BATCH)
    lines = [OrderLine(order_id=order.pk, line_no=line_no, sku_code=sku.code, sku_id=sku.pk, title=sku.name,
                       quantity=quantity, unit_price=PRICE)
             for order, spec in zip(orders, specs, strict=True) for line_no, (sku, quantity) in enumerate(spec, 1)]
    OrderLine.objects.bulk_create(lines, batch_size=BATCH)
    line_ids = defaultdict(list)
    for line in lines:
        line_ids[line.order_id].append(line.pk)
    return [(order.pk, line_ids[order.pk]) for order in orders]


def create_capture_order(store: Store, sku: SKU, n: int) -> tuple[int, int]:
    order_id, line_id = CAPTURE_ORDER_ID + n, CAPTURE_LINE_ID + n
    Order.objects.bulk_create([Order(pk=order_id, number=f"BC{n:08d}", store=store,
                                     platform_order_id=f"BC{n:08d}", placed_at=timezone.now())])
    OrderLine.objects.bulk_create([OrderLine(pk=line_id, order_id=order_id, line_no=1, sku_code=sku.code,
                                             sku_id=sku.pk, title=sku.name, quantity=1, unit_price=PRICE)])
    return order_id, line_id


def hot_sku(warehouse: Warehouse, code: str, units: int) -> SKU:
    """A SKU with ``units`` on hand in ``warehouse``, received through the real service."""
    sku = SKU.objects.create(code=code, name=f"bench {code}", list_price=PRICE)
    stock_receive(warehouse_id=warehouse.pk, sku_id=sku.pk, quantity=units, reference=f"bench:{code}")
    return sku


# --- Checks ------------------------------------------------------------------------------------

def check_hot_sku(report: Report, label: str, warehouse: Warehouse, sku: SKU, attempts: int,
                  successes: int) -> int:
    """Oversold units, plus FAIL lines when the counter row, the reservations and the ledger disagree."""
    level = StockLevel.objects.get(warehouse=warehouse, sku=sku)
    held = Reservation.objects.filter(warehouse=warehouse, sku=sku, status=ACTIVE).aggregate(
        total=Sum("quantity"))["total"] or 0
    ledger = StockMovement.objects.filter(warehouse=warehouse, sku=sku).aggregate(
        on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
    oversold = max(0, held - HOT_STOCK)
    expected = min(HOT_STOCK, attempts)
    report.write(f"  units reserved per Reservation table {held}, oversold {oversold}; stock row on_hand "
                 f"{level.on_hand} reserved {level.reserved}; ledger on_hand {ledger['on_hand']} "
                 f"reserved {ledger['reserved']}")
    if oversold:
        report.fail(f"{label}: oversold by {oversold} units")
    if level.reserved != expected or level.on_hand != HOT_STOCK:
        report.fail(f"{label}: stock row on_hand={level.on_hand} reserved={level.reserved}, "
                    f"expected {HOT_STOCK}/{expected}")
    if (ledger["reserved"], ledger["on_hand"]) != (level.reserved, level.on_hand):
        report.fail(f"{label}: ledger {ledger} differs from the stock row")
    if held != level.reserved or successes != held:
        report.fail(f"{label}: {successes} successes, {held} units held, {level.reserved} reserved on the row")
    return oversold


def check_spread_orders(report: Report, stats: PhaseStats, quantities: dict[int, int], allow_split: bool) -> int:
    """Reserved orders hold exactly their line quantities (one warehouse unless split); short ones hold nothing."""
    reserved_ids = {item[0] for item in stats.succeeded}
    holds = defaultdict(int)
    warehouses = defaultdict(set)
    holding_orders = set()
    for order_id, line_id, warehouse_id, quantity in Reservation.objects.filter(
            status=ACTIVE, order_id__in=reserved_ids | {item[0] for item in stats.missed}).values_list(
            "order_id", "order_line_id", "warehouse_id", "quantity").iterator():
        holds[line_id] += quantity
        warehouses[order_id].add(warehouse_id)
        holding_orders.add(order_id)
    mismatches = len(holding_orders ^ reserved_ids)
    for order_id, line_ids in stats.succeeded:
        if any(holds[line_id] != quantities[line_id] for line_id in line_ids):
            mismatches += 1
        elif not allow_split and len(warehouses[order_id]) != 1:
            mismatches += 1
    report.write(f"  orders checked against their reservations: {mismatches} mismatches")
    if mismatches:
        report.fail(f"spread: {mismatches} orders whose reservations do not match the service's answer")
    return mismatches


# --- Statement capture and raw replay ----------------------------------------------------------

def capture_service_call(order_id: int) -> tuple[bool, list[tuple[str, tuple | None]]]:
    """Call the service once and record every statement it sends (SQL text and parameters, in order)."""
    statements = []

    def record(execute, sql, params, many, context):
        if many:
            raise RuntimeError("executemany in the reservation path: the replay does not handle it")
        statements.append((sql, tuple(params) if params is not None else None))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        result = stock_reserve_for_order(order_id=order_id, allow_split=False, province="",
                                         reference=CAPTURE_REFERENCE)
    return result.reserved, statements


class Slot:
    """A parameter that changes per attempt in the replay (the order, its line, the reference, the time)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ORDER, LINE, REFERENCE, NOW = Slot("order"), Slot("line"), Slot("reference"), Slot("now")


@dataclass
class Statement:
    sql: str
    params: tuple | None

    def bind(self, values: dict[Slot, object]) -> tuple | None:
        if self.params is None:
            return None
        return tuple(values[param] if isinstance(param, Slot) else param for param in self.params)

    def same_as(self, other: Statement) -> bool:
        return self.sql == other.sql and repr(self.params) == repr(other.params)


def templatize(statements, order_id: int, line_id: int) -> list[Statement]:
    """Turn captured parameters into slots where they are the capture order's own values."""
    def slot(param):
        if type(param) is int and param == order_id:
            return ORDER
        if type(param) is int and param == line_id:
            return LINE
        if param == CAPTURE_REFERENCE:
            return REFERENCE
        if isinstance(param, datetime):
            return NOW
        return param

    return [Statement(sql, None if params is None else tuple(slot(p) for p in params)) for sql, params in statements]


@dataclass
class ReplayPlan:
    """The shape of one reservation attempt, as the service sends it, with its one branch point."""

    prefix: list[Statement]  # sent by every attempt; the last one reads the availability
    take: Statement  # the conditional UPDATE, sent when the read shows enough
    success_tail: list[Statement]  # the inserts after the UPDATE changed a row
    short_tail: list[Statement]  # the shortage read when nothing was reserved

    @classmethod
    def from_captures(cls, success: list[Statement], sold_out: list[Statement]) -> ReplayPlan:
        common = 0
        while common < min(len(success), len(sold_out)) and success[common].same_as(sold_out[common]):
            common += 1
        # The take is the conditional UPDATE (on PostgreSQL a WITH … FOR UPDATE … UPDATE statement).
        if common == 0 or common >= len(success) or not success[common].sql.lstrip().upper().startswith(
                ("UPDATE", "WITH WANTED")):
            raise RuntimeError("unexpected statement shape; the replay needs updating:\n"
                               + "\n".join(s.sql for s in success) + "\n--\n" + "\n".join(s.sql for s in sold_out))
        return cls(success[:common], success[common], success[common + 1:], sold_out[common:])

    def attempt(self, conn, order_id: int, line_id: int, reference: str, needed: int = 1,
                counts: Counter | None = None) -> bool:
        """One attempt with the service's transaction boundaries and branching, on a psycopg2 connection."""
        values = {ORDER: order_id, LINE: line_id, REFERENCE: reference, NOW: datetime.now(UTC)}
        try:
            with conn.cursor() as cursor:
                free = None
                for statement in self.prefix:
                    cursor.execute(statement.sql, statement.bind(values))
                    if cursor.description is not None:
                        rows = cursor.fetchall()
                        free = _free_units(cursor.description, rows)
                reserved = False
                if free is not None and free >= needed:
                    cursor.execute(self.take.sql, self.take.bind(values))
                    reserved = cursor.rowcount == 1
                    if not reserved and counts is not None:
                        counts["lost_races"] += 1
                for statement in self.success_tail if reserved else self.short_tail:
                    cursor.execute(statement.sql, statement.bind(values))
                    if cursor.description is not None:
                        cursor.fetchall()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return reserved


def _free_units(description, rows) -> int | None:
    """Best availability in the service's combined read, None for other reads.

    The read (inventory.reservation_sql.read) returns rows tagged by their first column:
    kind 1 rows carry on_hand − reserved − safety_stock of one warehouse in the fifth column.
    """
    if len(description) != 9 or not rows or any(row[0] not in (0, 1, 2) for row in rows):
        return None
    return max((row[4] for row in rows if row[0] == 1), default=0)


class RawSession:
    """One worker thread replaying the captured statements on its own psycopg2 connection."""

    def __init__(self, plan: ReplayPlan, params: dict):
        self.plan = plan
        self.extra = Counter()
        self.conn = psycopg2.connect(**params)
        self.conn.autocommit = False  # like Django inside atomic(): BEGIN before the first statement
        with self.conn.cursor() as cursor:  # Django sets the session to UTC when it connects
            cursor.execute("SET TIME ZONE 'UTC'")
        self.conn.commit()

    def attempt(self, item) -> bool:
        order_id, line_ids = item
        return self.plan.attempt(self.conn, order_id, line_ids[0], f"bench:{order_id}", counts=self.extra)

    def close(self) -> None:
        self.conn.close()


def release_all(warehouse: Warehouse, sku: SKU) -> int:
    """Give back every active hold on the SKU through the real service (keeps the ledger consistent)."""
    order_ids = sorted(set(Reservation.objects.filter(warehouse=warehouse, sku=sku, status=ACTIVE)
                           .values_list("order_id", flat=True)))
    return sum(stock_release_for_order(order_id=order_id, reference="bench:reset") for order_id in order_ids)


def short_sql(text: str, width: int = 170) -> str:
    return text if len(text) <= width else text[:width] + " …"


# --- Phases ------------------------------------------------------------------------------------

@dataclass
class Fixture:
    store: Store
    warehouse: Warehouse  # the flash-sale warehouse
    hot: SKU
    plan: ReplayPlan | None = None  # the hot SKU's statement shape, once phase 3 captured it


def phase_hot(report: Report, fx: Fixture, attempts: int, workers: int) -> PhaseStats:
    report.write(f"\n[1] flash sale: {attempts} attempts on one SKU with {HOT_STOCK} units, {workers} threads")
    begin = time.perf_counter()
    orders = bulk_orders(fx.store, "BH", [[(fx.hot, 1)]] * attempts)
    report.write(f"  fixtures: {len(orders)} orders inserted in {time.perf_counter() - begin:.1f} s (not timed)")
    stats = run_threads(orders, workers, ServiceSession)
    print_phase(report, "hot", stats)
    report.write(f"  successes {stats.successes}, sold out {stats.misses} (of which "
                 f"{stats.extra['not_reserved_without_shortages']} returned reserved=False with an empty "
                 "shortage list)")
    oversold = check_hot_sku(report, "hot", fx.warehouse, fx.hot, attempts, stats.successes)
    report.figures.update({
        "hot_attempts": stats.attempts, "hot_wall_s": round(stats.wall, 3),
        "hot_attempts_per_s": round(stats.rate, 1), "hot_successes": stats.successes,
        "hot_sold_out": stats.misses, "oversold": oversold, "hot_p50_ms": percentile_ms(stats.latencies, 50),
        "hot_p99_ms": percentile_ms(stats.latencies, 99), "hot_max_ms": percentile_ms(stats.latencies, 100),
        "hot_deadlocks": stats.deadlocks, "hot_errors": stats.error_count,
        "hot_not_reserved_without_shortages": stats.extra["not_reserved_without_shortages"],
    })
    return stats


def phase_spread(report: Report, fx: Fixture, n_orders: int, workers: int, allow_split: bool) -> PhaseStats:
    report.write(f"\n[3] spread: {n_orders} orders of 1-5 lines over {SPREAD_SKUS} SKUs in "
                 f"{len(SPREAD_PRIORITIES)} warehouses, {workers} threads, allow_split={allow_split}")
    begin = time.perf_counter()
    rng = random.Random(SEED)
    warehouses = [Warehouse.objects.create(code=f"bench-spread-{p}", name=f"bench spread {p}", priority=p)
                  for p in SPREAD_PRIORITIES]
    skus = SKU.objects.bulk_create([SKU(code=f"SPREAD-{n:04d}", name=f"bench spread {n}", list_price=PRICE)
                                    for n in range(SPREAD_SKUS)])
    # Stock rows and their receipt ledger rows inserted together (3,000 stock_receive calls would only add
    # set-up time); the counters equal the ledger sums, as the service guarantees.
    levels, receipts = [], []
    for warehouse in warehouses:
        for sku in skus:
            units = rng.randint(5, 50)
            levels.append(StockLevel(warehouse=warehouse, sku=sku, on_hand=units))
            receipts.append(StockMovement(warehouse=warehouse, sku=sku, kind=MovementKind.RECEIPT,
                                          on_hand_delta=units, reference="bench:receipt"))
    StockLevel.objects.bulk_create(levels, batch_size=BATCH)
    StockMovement.objects.bulk_create(receipts, batch_size=BATCH)
    specs = [[(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(1, 5))] for _ in range(n_orders)]
    orders = bulk_orders(fx.store, "BS", specs)
    quantities = {line_id: quantity for (_order_id, line_ids), spec in zip(orders, specs, strict=True)
                  for line_id, (_sku, quantity) in zip(line_ids, spec, strict=True)}
    report.write(f"  fixtures: {len(levels)} stock rows, {len(orders)} orders with {len(quantities)} lines, "
                 f"{sum(quantities.values())} units wanted of {sum(lv.on_hand for lv in levels)} on hand, "
                 f"inserted in {time.perf_counter() - begin:.1f} s (not timed)")
    stats = run_threads(orders, workers, lambda: ServiceSession(allow_split=allow_split))
    print_phase(report, "spread", stats, unit="orders")
    report.write(f"  reserved {stats.successes}, short {stats.misses} (of which "
                 f"{stats.extra['not_reserved_without_shortages']} with an empty shortage list)")
    mismatches = check_stock_consistency(report, "spread")
    mismatches += check_spread_orders(report, stats, quantities, allow_split)
    report.figures.update({
        "spread_orders": stats.attempts, "spread_wall_s": round(stats.wall, 3),
        "spread_orders_per_s": round(stats.rate, 1), "spread_reserved": stats.successes,
        "spread_short": stats.misses, "spread_p50_ms": percentile_ms(stats.latencies, 50),
        "spread_p99_ms": percentile_ms(stats.latencies, 99), "spread_deadlocks": stats.deadlocks,
        "spread_errors": stats.error_count, "spread_mismatches": mismatches,
        "spread_not_reserved_without_shortages": stats.extra["not_reserved_without_shortages"],
    })
    return stats


def phase_raw(report: Report, fx: Fixture, attempts: int, workers: int) -> PhaseStats:
    report.write(f"\n[2] raw bound: the service's statements replayed through psycopg2, {workers} threads")
    # A fresh SKU row, like the one the service phase started from (a row hammered by 10,000 attempts
    # carries dead row versions, which would slow the replay and flatter the ratio). With 1 unit, a
    # first capture order records the success shape and a second the sold-out shape; then the hold is
    # released and 99 more units arrive, so the replay starts at 100 units with nothing reserved.
    raw_sku = hot_sku(fx.warehouse, "HOT-RAW", 1)
    ok_order, ok_line = create_capture_order(fx.store, raw_sku, 1)
    ok_reserved, ok_statements = capture_service_call(ok_order)
    sold_order, sold_line = create_capture_order(fx.store, raw_sku, 2)
    sold_reserved, sold_statements = capture_service_call(sold_order)
    released = release_all(fx.warehouse, raw_sku)
    stock_receive(warehouse_id=fx.warehouse.pk, sku_id=raw_sku.pk, quantity=99, reference="bench:HOT-RAW")
    fx.hot = raw_sku  # the replay and its checks run on this row
    if sold_reserved or not ok_reserved:
        report.fail(f"raw: capture expected sold out then success, got reserved={sold_reserved}/{ok_reserved}")
    plan = ReplayPlan.from_captures(templatize(ok_statements, ok_order, ok_line),
                                    templatize(sold_statements, sold_order, sold_line))
    n_success, n_sold = len(ok_statements), len(sold_statements)
    n_race = len(plan.prefix) + 1 + len(plan.short_tail)
    report.write(f"  reset: {released} units released; SQL statements per attempt (+ COMMIT): success {n_success}, "
                 f"sold out {n_sold}, lost race (read showed stock, UPDATE matched nothing) {n_race}")
    for n, statement in enumerate(plan.prefix, 1):
        report.write(f"    {n}. every attempt: {short_sql(statement.sql)}  params={statement.params}")
    report.write(f"    {len(plan.prefix) + 1}. if available: {short_sql(plan.take.sql)}  params={plan.take.params}")
    for statement in plan.success_tail:
        report.write(f"       then if the UPDATE changed a row: {short_sql(statement.sql)}")
    for statement in plan.short_tail:
        report.write(f"       else: {short_sql(statement.sql)}  params={statement.params}")
    report.write("    then COMMIT")
    begin = time.perf_counter()
    orders = bulk_orders(fx.store, "BR", [[(fx.hot, 1)]] * attempts)
    report.write(f"  fixtures: {len(orders)} orders inserted in {time.perf_counter() - begin:.1f} s (not timed)")
    params = raw_connection_params()
    fx.plan = plan
    stats = run_threads(orders, workers, lambda: RawSession(plan, params))
    print_phase(report, "raw", stats)
    report.write(f"  successes {stats.successes}, sold out {stats.misses} (of which {stats.extra['lost_races']} "
                 "lost the race: the read showed stock, the UPDATE matched nothing)")
    oversold = check_hot_sku(report, "raw", fx.warehouse, fx.hot, attempts, stats.successes)
    report.figures.update({
        "raw_attempts_per_s": round(stats.rate, 1), "raw_successes": stats.successes,
        "raw_p50_ms": percentile_ms(stats.latencies, 50), "raw_p99_ms": percentile_ms(stats.latencies, 99),
        "raw_lost_races": stats.extra["lost_races"], "raw_deadlocks": stats.deadlocks, "raw_errors": stats.error_count, "raw_oversold": oversold,
        "statements_success": n_success, "statements_sold_out": n_sold, "statements_lost_race": n_race,
    })
    return stats


def phase_sample(report: Report, fx: Fixture, n: int) -> None:
    """Single-threaded attempts timed statement by statement: how much of an attempt is spent in the database."""
    if n <= 0:
        return
    report.write(f"\n[4] where the time goes: {n} single-threaded attempts, half succeed, half sold out")
    sku = hot_sku(fx.warehouse, "SAMPLE", n // 2)
    orders = bulk_orders(fx.store, "BT", [[(sku, 1)]] * n)
    db = connections["default"]
    spent = {"db": 0.0, "statements": 0}

    def timed(execute, sql, params, many, context):
        begin = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent["db"] += time.perf_counter() - begin
            spent["statements"] += 1

    # COMMIT does not pass through execute_wrapper; this instance attribute (removed below) times it too.
    real_commit = db._commit

    def timed_commit():
        begin = time.perf_counter()
        try:
            return real_commit()
        finally:
            spent["db"] += time.perf_counter() - begin
            spent["statements"] += 1

    outcomes = {True: [], False: []}
    db._commit = timed_commit
    try:
        with db.execute_wrapper(timed):
            for order_id, _lines in orders:
                spent.update(db=0.0, statements=0)
                begin = time.perf_counter()
                reserved = stock_reserve_for_order(order_id=order_id, allow_split=False, province="",
                                                   reference=f"bench:{order_id}").reserved
                outcomes[reserved].append((time.perf_counter() - begin, spent["db"], spent["statements"]))
    finally:
        del db._commit
    raw = sample_raw_replay(fx, n) if fx.plan is not None else {True: [], False: []}
    for reserved, name in ((True, "success"), (False, "sold_out")):
        rows = outcomes[reserved]
        if not rows:
            continue
        wall = sum(r[0] for r in rows) / len(rows) * 1000
        in_db = sum(r[1] for r in rows) / len(rows) * 1000
        round_trips = sum(r[2] for r in rows) / len(rows)
        share = in_db / wall * 100 if wall else 0.0
        report.write(f"  {name}: {len(rows)} attempts, {wall:.3f} ms each = {in_db:.3f} ms in {round_trips:.0f} "
                     f"database round trips (statements + COMMIT, {share:.0f}%) + {wall - in_db:.3f} ms Python "
                     f"({100 - share:.0f}%); {1000 / wall:.0f} attempts/s on one thread")
        report.figures.update({
            f"sample_{name}_ms": round(wall, 3), f"sample_{name}_db_ms": round(in_db, 3),
            f"sample_{name}_python_ms": round(wall - in_db, 3), f"sample_{name}_db_share": round(share / 100, 3),
        })
        if raw[reserved]:
            raw_ms = sum(raw[reserved]) / len(raw[reserved]) * 1000
            report.write(f"    the same statements through psycopg2 alone: {raw_ms:.3f} ms each "
                         f"({len(raw[reserved])} attempts), i.e. {wall - raw_ms:.3f} ms of the service's "
                         f"{wall:.3f} ms ({(wall - raw_ms) / wall * 100:.0f}%) is Django and service code")
            report.figures[f"sample_{name}_raw_ms"] = round(raw_ms, 3)


def sample_raw_replay(fx: Fixture, n: int) -> dict[bool, list[float]]:
    """Single-threaded psycopg2 replay of the hot SKU's shape: the database-only cost of an attempt."""
    release_all(fx.warehouse, fx.hot)  # back to 100 free units: successes first, then sold out
    orders = bulk_orders(fx.store, "BU", [[(fx.hot, 1)]] * n)
    timings: dict[bool, list[float]] = {True: [], False: []}
    session = RawSession(fx.plan, raw_connection_params())
    try:
        for item in orders:
            begin = time.perf_counter()
            reserved = session.attempt(item)
            timings[reserved].append(time.perf_counter() - begin)
    finally:
        session.close()
    return timings


def phase_profile(report: Report, fx: Fixture, n: int) -> None:
    """cProfile of one thread making ``n`` sequential attempts on a fresh hot SKU."""
    if n <= 0:
        return
    report.write(f"\n[5] profile: {n} sequential attempts on one thread, SKU with {HOT_STOCK} units")
    sku = hot_sku(fx.warehouse, "PROFILE", HOT_STOCK)
    orders = bulk_orders(fx.store, "BP", [[(sku, 1)]] * n)
    profiler = cProfile.Profile()
    begin = time.perf_counter()
    profiler.enable()
    for order_id, _lines in orders:
        stock_reserve_for_order(order_id=order_id, allow_split=False, province="", reference=f"bench:{order_id}")
    profiler.disable()
    wall = time.perf_counter() - begin
    report.write(f"  {n} attempts in {wall:.2f} s under the profiler ({n / wall:.0f}/s)")
    write_profile_stats(report, profiler)


def check_server(report: Report, workers: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        used = int(cursor.fetchone()[0])
    if workers + used + 2 > limit:
        report.fail(f"{workers} workers need {workers} connections; the server allows {limit} and {used} are "
                    "in use. Use fewer --workers or raise max_connections.")
        return False
    return True


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    attempts, workers = options["attempts"], options["workers"]
    report.figures.update({"attempts": attempts, "workers": workers, "orders": options["orders"]})
    with bench.production_like_settings(), bench.scratch_database(options["db_name"], keep=options["keep_db"],
                                                                   out=report):
        if check_server(report, workers):
            store = Store.objects.create(platform=Platform.MANUAL, code="bench", name="bench store")
            warehouse = Warehouse.objects.create(code="bench-hot", name="bench flash sale", priority=10)
            fx = Fixture(store, warehouse, hot_sku(warehouse, "HOT-1", HOT_STOCK))
            hot = phase_hot(report, fx, attempts, workers)
            # The raw bound runs right after the hot phase, on the same fresh-database footing.
            raw = phase_raw(report, fx, attempts, workers)
            spread = phase_spread(report, fx, options["orders"], workers, options["allow_split"])
            phase_sample(report, fx, options["sample"])
            phase_profile(report, fx, options["profile"])
            report.write("\n[end] every stock row of the scratch database")
            report.figures["end_mismatches"] = check_stock_consistency(report, "end")
            ratio = hot.rate / raw.rate if raw.rate else 0.0
            report.figures.update({"deadlocks": hot.deadlocks + spread.deadlocks + raw.deadlocks,
                                   "ratio": round(ratio, 3)})
            report.write(f"\nsummary: service {hot.rate:.0f} attempts/s vs raw SQL {raw.rate:.0f} attempts/s "
                         f"on the hot SKU: ratio {ratio:.2f}; spread {spread.rate:.0f} orders/s")
    report.finish()
    return not report.failures
