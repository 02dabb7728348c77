"""Channel ingestion benchmark: Shopify sandbox polled, inbox drained by N worker processes, raw-insert bound.

Phases: [1] store_poll over HTTP into the inbox; [2] ``--processes`` forked worker processes each call
pipeline.channel.inbox_process_store until nothing is due (the inbox's partitions and advisory locks share
the store out between them); [3] checks: nothing oversold, lost or duplicated, every order ready with its
lines held and parcelled, or (with ``--tight-skus``) awaiting stock holding nothing, counters = ledger;
[4] the same rows inserted raw (execute_values, executemany, COPY) as the bound; [5] cProfile and [6] SQL
statements per order by service step, both in this process.
"""

from __future__ import annotations

import cProfile
import csv
import io
import multiprocessing
import queue
import sys
import threading
import time
import traceback
from collections import Counter
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from unittest import mock

import psycopg2
import psycopg2.extras
from django.db import connection, connections
from django.db.models import Count
from django.utils import timezone
from psycopg2 import sql

import bench
from bench.common import (
    BenchShopifySandbox,
    Report,
    catalogue_fixture,
    check_stock_consistency,
    raw_connection_params,
    shopify_store,
    write_profile_areas,
    write_profile_stats,
)
from connectors import services as channel_services
from connectors.base import RawOrder
from connectors.models import InboxMessage, InboxStatus
from connectors.shopify.mapping import parse_shopify_time
from connectors.tasks import process_inbox_task
from fulfillment.models import ShipmentLine
from inventory.models import SKU, MovementKind, Reservation, ReservationStatus, StockLevel, StockMovement
from orders.models import Order, OrderLine, OrderStatus
from pipeline import channel

SEED = 17
UNITS_PER_SKU = 1_000_000  # far more than N orders can take, except on the --tight-skus
PAGE_ROWS = 1000  # execute_values page size of the raw bound
NULL = "\\N"  # how COPY … (FORMAT csv) is told a value is NULL (an empty string stays an empty string)
# A worker process that finds nothing it may take while rows are still due (another process holds their
# partitions) looks again after this long.
IDLE_WAIT_S = 0.02


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=20_000, help="orders placed in the sandbox (default 20000)")
    parser.add_argument("--skus", type=int, default=200, help="SKUs in the catalogue, all in stock (default 200)")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="worker OS processes draining the inbox in phase [2] (default 1; --workers means "
                             "threads in the other benchmarks and is not used here)")
    parser.add_argument("--tight-skus", type=int, default=0, metavar="K",
                        help="the first K SKUs of the catalogue get only --tight-units units, so some orders "
                             "cannot be reserved and wait in awaiting stock (default 0)")
    parser.add_argument("--tight-units", type=int, default=30, metavar="U",
                        help="units on hand of each tight SKU (default 30)")
    parser.add_argument("--progress", type=int, default=2000, metavar="N",
                        help="print a progress line every N processed orders (default 2000; 0: none)")
    parser.add_argument("--profile", type=int, default=500, metavar="N",
                        help="afterwards, process N more orders under cProfile and N more with every SQL statement "
                             "attributed to the service step that sent it (default 500; 0 skips)")


# --- Counting statements --------------------------------------------------------------------------

class StatementCounter:
    """execute_wrapper counting statements by their first keyword, and the time spent in them.

    COMMIT does not pass through execute_wrapper; ``commits()`` wraps the connection's _commit for that.
    """

    def __init__(self):
        self.kinds: Counter = Counter()
        self.db_s = 0.0

    def __call__(self, execute, sql_text, params, many, context):
        self.kinds[sql_text.lstrip()[:16].split(None, 1)[0].upper()] += 1
        begin = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            self.db_s += time.perf_counter() - begin

    @property
    def statements(self) -> int:
        return sum(count for kind, count in self.kinds.items() if kind != "COMMIT")

    @contextmanager
    def counting(self):
        db = connection
        real_commit = db._commit

        def timed_commit():
            begin = time.perf_counter()
            try:
                return real_commit()
            finally:
                self.db_s += time.perf_counter() - begin
                self.kinds["COMMIT"] += 1

        db._commit = timed_commit
        try:
            with db.execute_wrapper(self):
                yield self
        finally:
            del db._commit


# Service functions a statement is attributed to: the chain of those on the stack, outermost first.
STEPS = {
    # draining: partitions, locks, batches
    "inbox_process_store", "inbox_process_messages", "inbox_due_partitions", "inbox_partition_lock",
    "inbox_partition_unlock", "inbox_due_ids", "inbox_claim", "inbox_mark_applied_many", "sync_state_for",
    "inbox_store_polled", "store_lease_take", "store_lease_release", "sync_count",
    # applying a batch of platform orders
    "channel_orders_apply", "_channel_orders_create", "_channel_order_follow", "authorized_counts_as_paid",
    "resolve_sku_codes_many", "sku_ids_and_titles", "orders_insert", "order_number_next",
    "orders_mark_paid", "orders_transition_many", "orders_lock", "payment_snapshots_take",
    "order_follow_channel", "payment_snapshot_capture",
    # processing: reserve, route, approve, parcels
    "orders_process", "order_facts_many", "_reserve", "active_warehouse_rules", "active_warehouses",
    "stock_reserve_for_orders", "read", "take_many", "give_back", "record", "channel_stock_mark",
    "orders_wait_for_stock", "orders_stock_arrived", "routing_record_warehouses", "shipments_create_for_orders",
    "_shipments_create_new", "events_record_many", "rows_update",
}
# the steps that only hand a batch on: "by first-level step" reports the first step under them
BATCH_WRAPPERS = ("inbox_process_store", "inbox_process_messages", "channel_orders_apply", "_channel_orders_create")
PROJECT_DIRS = ("/connectors/", "/orders/", "/inventory/", "/finance/", "/oms/", "/pipeline/", "/fulfillment/")


def _step_chain() -> str:
    frame, chain = sys._getframe(2), []
    while frame is not None:
        code = frame.f_code
        name = code.co_name
        if (name in STEPS or name.startswith("event_order_")) and any(d in code.co_filename for d in PROJECT_DIRS):
            if name.startswith("event_order_"):
                name = "events." + name[len("event_order_"):]
            elif code.co_filename.endswith("reservation_sql.py"):
                name = "reservation_sql." + name  # read, record: too plain alone
            chain.append(name)
        frame = frame.f_back
    return " > ".join(reversed(chain)) or "(outside the services)"


class StepAttributor(StatementCounter):
    """Also attributes every statement (and COMMIT) to the chain of service calls that sent it."""

    def __init__(self):
        super().__init__()
        self.by_step: Counter = Counter()
        self.db_by_step: Counter = Counter()

    def __call__(self, execute, sql_text, params, many, context):
        step = f"{_step_chain()}  [{sql_text.lstrip()[:16].split(None, 1)[0].upper()}]"
        begin = time.perf_counter()
        try:
            return execute(sql_text, params, many, context)
        finally:
            spent = time.perf_counter() - begin
            self.by_step[step] += 1
            self.db_by_step[step] += spent
            self.db_s += spent
            self.kinds[sql_text.lstrip()[:16].split(None, 1)[0].upper()] += 1

    @contextmanager
    def counting(self):
        db = connection
        real_commit = db._commit

        def counted_commit():
            step = f"{_step_chain()}  [COMMIT]"
            begin = time.perf_counter()
            try:
                return real_commit()
            finally:
                spent = time.perf_counter() - begin
                self.by_step[step] += 1
                self.db_by_step[step] += spent
                self.db_s += spent
                self.kinds["COMMIT"] += 1

        db._commit = counted_commit
        try:
            with db.execute_wrapper(self):
                yield self
        finally:
            del db._commit


# --- Fixtures -----------------------------------------------------------------------------------------

class TimedSandbox(BenchShopifySandbox):
    """Keeps the time the sandbox spends answering (it serves from this process, so it shares its CPU)."""

    busy_s = 0.0

    def dispatch(self, request):
        begin = time.perf_counter()
        try:
            response = super().dispatch(request)
            response.body = response.encoded()  # encoding 250 orders is the sandbox's work too
            return response
        finally:
            self.busy_s += time.perf_counter() - begin


def place_orders(sandbox: TimedSandbox, n: int, *, start, span: timedelta) -> list[dict]:
    """``n`` orders created at times spread evenly over [start, start + span), not pushed."""
    orders = []
    for i in range(n):
        sandbox.set_clock(start + span * ((i + 0.5) / n))
        orders.extend(sandbox.generate(1, push=False))
    sandbox.set_clock(None)
    return orders


def store_in_inbox(store, orders: list[dict]) -> None:
    """Put sandbox orders straight into the inbox (as a poll would), for the profile runs."""
    for begin in range(0, len(orders), 250):
        channel_services.inbox_store_polled(store=store, raws=[
            RawOrder(platform_order_id=str(order["id"]), updated_at=parse_shopify_time(order["updated_at"]),
                     payload=order) for order in orders[begin:begin + 250]])


def drain(store, *, chunk: int) -> int:
    """Process the store's inbox in this process until nothing is pending, ``chunk`` rows per call (phases 5, 6)."""
    processed = 0
    while True:
        handled = channel.inbox_process_store(store_id=store.pk, limit=chunk)
        processed += handled
        if handled == 0:
            return processed


def stock_tighten(*, skus: int, units: int) -> list[str]:
    """The first ``skus`` SKUs of the catalogue (by code) keep only ``units`` on hand; returns their codes.

    Set like catalogue_fixture sets them (stock row and its receipt ledger row together), so the counters
    still equal the ledger sums before the run.
    """
    tight = list(SKU.objects.order_by("code").values_list("pk", "code")[:skus])
    ids = [pk for pk, _code in tight]
    StockLevel.objects.filter(sku_id__in=ids).update(on_hand=units)
    StockMovement.objects.filter(sku_id__in=ids, kind=MovementKind.RECEIPT).update(on_hand_delta=units)
    return [code for _pk, code in tight]


def _drain_in_process(index: int, store_id: int, start, results) -> None:
    """Body of one worker process (forked): its own connection, then inbox_process_store until nothing is due.

    A call that handles nothing while rows are still due means other processes hold those partitions right
    now: look again shortly (they may leave a partition with rows in it at their limit; they do not here).
    Sends back what it handled and the statements it sent; only the service calls are counted, not the
    "anything still due?" checks, which a real worker does not make.
    """
    try:
        connections.close_all()  # the parent's were closed before the fork; this process opens its own
        InboxMessage.objects.filter(store_id=store_id).exists()  # connect before the clock starts
        start.wait(timeout=120)
        counter = StatementCounter()
        handled = calls = idle = 0
        begin = time.perf_counter()
        while True:
            with counter.counting():
                moved = channel.inbox_process_store(store_id=store_id, limit=10**9)
            calls += 1
            handled += moved
            if moved:
                continue
            if not channel_services.inbox_has_due(store_id=store_id):
                break
            idle += 1
            time.sleep(IDLE_WAIT_S)
        results.put({"index": index, "handled": handled, "statements": counter.statements,
                     "commits": counter.kinds["COMMIT"], "db_s": counter.db_s, "kinds": dict(counter.kinds),
                     "seconds": time.perf_counter() - begin, "calls": calls, "idle_waits": idle,
                     "finished_at": time.perf_counter()})
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the run; then re-raised
        results.put({"index": index, "error": traceback.format_exc()})
        raise
    finally:
        connections.close_all()


# --- Table marks and the raw bound -----------------------------------------------------------------

def table_marks() -> dict[str, int]:
    """max(id) of every table of the scratch database that has an id column (the rest never get inserts here)."""
    marks = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                       "AND column_name = 'id' AND table_name IN (SELECT tablename FROM pg_tables "
                       "WHERE schemaname = 'public') ORDER BY table_name")
        for (table,) in cursor.fetchall():
            cursor.execute(sql.SQL("SELECT COALESCE(MAX(id), 0) FROM {}").format(sql.Identifier(table)).as_string(
                cursor.connection))
            marks[table] = cursor.fetchone()[0]
    return marks


def rows_since(params: dict, marks: dict[str, int]) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row inserted after ``marks``, table by table: (column names, rows), json columns kept as text."""
    conn = psycopg2.connect(**params)
    try:
        keep_text = lambda value: value  # noqa: E731 - json(b) arrives as text and goes back as text
        psycopg2.extras.register_default_json(conn, loads=keep_text)
        psycopg2.extras.register_default_jsonb(conn, loads=keep_text)
        inserted = {}
        with conn.cursor() as cursor:
            for table, mark in marks.items():
                # Columns the database computes (the inbox partition) are computed again by the copy.
                cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                               "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position", [table])
                names = sql.SQL(", ").join(sql.Identifier(name) for (name,) in cursor.fetchall())
                cursor.execute(sql.SQL("SELECT {} FROM {} WHERE id > %s ORDER BY id").format(
                    names, sql.Identifier(table)), [mark])
                rows = cursor.fetchall()
                if rows:
                    inserted[table] = ([column.name for column in cursor.description], rows)
        conn.rollback()
    finally:
        conn.close()
    return inserted


def raw_insert(params: dict, tables: dict[str, tuple[list[str], list[tuple]]], *, method: str,
               like: str = "INCLUDING DEFAULTS INCLUDING GENERATED") -> tuple[float, dict[str, float]]:
    """Insert the rows into fresh empty copies ``<table>_raw (LIKE <table> …)`` on one connection, in one
    transaction; returns the seconds from the first INSERT to the end of COMMIT, and per table (and COMMIT).
    The copies are dropped after."""
    conn = psycopg2.connect(**params)
    copies = {table: sql.Identifier(f"{table}_raw") for table in tables}
    try:
        with conn.cursor() as cursor:
            for table, copy in copies.items():
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(copy))
                cursor.execute(sql.SQL("CREATE TABLE {} (LIKE {} " + like + ")").format(copy, sql.Identifier(table)))
        conn.commit()
        spent: dict[str, float] = {}
        begin = time.perf_counter()
        with conn.cursor() as cursor:
            for table, (columns, rows) in tables.items():
                started = time.perf_counter()
                names = sql.SQL(", ").join(sql.Identifier(column) for column in columns)
                if method == "copy":
                    buffer = io.StringIO()
                    writer = csv.writer(buffer)
                    for row in rows:
                        writer.writerow([NULL if value is None else value for value in row])
                    buffer.seek(0)
                    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL {})").format(
                        copies[table], names, sql.Literal(NULL))
                    cursor.copy_expert(statement, buffer)
                elif method == "executemany":
                    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        copies[table], names, sql.SQL(", ").join(sql.Placeholder() * len(columns)))
                    cursor.executemany(statement, rows)
                else:
                    statement = sql.SQL("INSERT INTO {} ({}) VALUES %s").format(copies[table], names)
                    psycopg2.extras.execute_values(cursor, statement.as_string(conn), rows, page_size=PAGE_ROWS)
                spent[table] = time.perf_counter() - started
        started = time.perf_counter()
        conn.commit()
        spent["COMMIT"] = time.perf_counter() - started
        elapsed = time.perf_counter() - begin
        with conn.cursor() as cursor:
            for copy in copies.values():
                cursor.execute(sql.SQL("DROP TABLE {}").format(copy))
        conn.commit()
    finally:
        conn.close()
    return elapsed, spent


# --- Phases --------------------------------------------------------------------------------------------

def phase_poll(report: Report, store, sandbox: TimedSandbox, n: int) -> tuple[float, StatementCounter]:
    report.write("\n[1] poll: store_poll through the real ShopifyConnector over HTTP (250 orders a page) into "
                 "the inbox")
    counter = StatementCounter()
    busy_before = sandbox.busy_s
    requests_before = sandbox.request_count
    with counter.counting():
        begin = time.perf_counter()
        result = channel_services.store_poll(store_id=store.pk)
        poll_s = time.perf_counter() - begin
    sandbox_s = sandbox.busy_s - busy_before
    pages = sandbox.request_count - requests_before
    report.write(f"  {result.status}: fetched {result.fetched}, stored {result.stored} in {poll_s:.2f} s = "
                 f"{n / poll_s:.0f} orders/s over {pages} pages; the sandbox spent {sandbox_s:.2f} s of it answering "
                 f"(same process), so the hub side took {poll_s - sandbox_s:.2f} s = "
                 f"{n / max(poll_s - sandbox_s, 1e-9):.0f} orders/s")
    report.write(f"  SQL: {counter.statements} statements ({dict(counter.kinds)}), "
                 f"{counter.statements / n:.3f} per order, {counter.db_s:.2f} s in the database")
    if result.status != "ok" or result.stored != n or result.fetched != n:
        report.fail(f"poll: status {result.status}, fetched {result.fetched}, stored {result.stored}, expected {n}")
    report.figures.update({
        "poll_s": round(poll_s, 3), "poll_orders_per_s": round(n / poll_s, 1), "poll_pages": pages,
        "poll_sandbox_s": round(sandbox_s, 3), "poll_hub_s": round(poll_s - sandbox_s, 3),
        "poll_queries": counter.statements, "poll_commits": counter.kinds["COMMIT"],
    })
    return poll_s, counter


def phase_process(report: Report, store, n: int, processes: int, progress: int) -> tuple[float, dict]:
    report.write(f"\n[2] process: {processes} worker process(es) (fork), each calling inbox_process_store until "
                 "nothing is due (partition by partition under advisory locks, batch by batch: map, create, pay, "
                 "reserve, route, approve, parcels); timed from the start signal to the end of the last process")
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    connections.close_all()  # a forked child must not share the parent's socket
    children = [context.Process(target=_drain_in_process, args=(index, store.pk, start, results),
                                name=f"bench-ingest-{index}", daemon=True) for index in range(processes)]
    for child in children:
        child.start()
    try:
        start.wait(timeout=120)  # every child connected and waiting
    except threading.BrokenBarrierError:
        report.fail("process: the worker processes did not all start")
    begin = time.perf_counter()
    received: dict[int, dict] = {}
    shown, last_check = 0, begin
    while len(received) < processes:
        try:
            item = results.get(timeout=0.5)
            received[item["index"]] = item
            continue
        except queue.Empty:
            pass
        if not any(child.is_alive() for child in children) and results.empty():
            break  # a child died without a word: reported below
        now = time.perf_counter()
        if progress and now - last_check >= 2:
            last_check = now
            done = InboxMessage.objects.filter(store=store).exclude(status=InboxStatus.PENDING).count()
            if done >= shown + progress:
                report.write(f"  {done:>6}/{n} processed, {now - begin:7.1f} s, {done / (now - begin):6.0f} "
                             "orders/s overall")
                shown = done - done % progress
    for child in children:
        child.join(timeout=60)
    connection.close()  # the progress queries' connection; the next phase opens a fresh one
    errors = [item["error"] for item in received.values() if "error" in item]
    finished = [item for _index, item in sorted(received.items()) if "error" not in item]
    for error in errors:
        report.write("  a worker process failed:\n" + error)
    if errors or len(finished) < processes:
        exit_codes = [child.exitcode for child in children]
        report.fail(f"process: {len(finished)} of {processes} worker processes finished (exit codes {exit_codes})")
    process_s = max([item["finished_at"] for item in finished], default=time.perf_counter()) - begin
    handled = sum(item["handled"] for item in finished)
    statements = sum(item["statements"] for item in finished)
    commits = sum(item["commits"] for item in finished)
    db_s = sum(item["db_s"] for item in finished)
    kinds = Counter()
    for item in finished:
        kinds.update(item["kinds"])
        report.write(f"  process {item['index'] + 1}: handled {item['handled']} in {item['seconds']:.2f} s "
                     f"({item['handled'] / max(item['seconds'], 1e-9):.1f}/s), {item['calls']} calls of "
                     f"inbox_process_store, {item['idle_waits']} short waits for partitions held by another; "
                     f"{item['statements']} statements, {item['db_s']:.2f} s in the database")
    busy_s = sum(item["seconds"] for item in finished) or 1e-9
    report.write(f"  {handled} inbox rows processed in {process_s:.2f} s = {n / process_s:.1f} orders/s with "
                 f"{processes} process(es)")
    report.write(f"  SQL: {statements} statements, {statements / n:.2f} per order "
                 f"({', '.join(f'{k} {v / n:.3f}' for k, v in kinds.most_common())} per order); "
                 f"{db_s:.2f} s = {db_s / busy_s * 100:.0f}% of the processes' time in database round trips")
    report.figures.update({
        "processes": processes, "process_s": round(process_s, 3), "process_orders_per_s": round(n / process_s, 1),
        "process_handled": [item["handled"] for item in finished],
        "process_queries_per_order": round(statements / n, 3),
        "process_commits_per_order": round(commits / n, 3),
        "process_db_share": round(db_s / busy_s, 3),
    })
    return process_s, {"statements": statements, "commits": commits}


def verify(report: Report, store, n: int, placed_ids: set[str], tight: bool) -> None:
    report.write("\n[3] checks")
    inbox = Counter(dict(InboxMessage.objects.filter(store=store).values_list("status").annotate(
        count=Count("id")).order_by()))
    statuses = Counter(dict(Order.objects.filter(store=store).values_list("status").annotate(
        count=Count("id")).order_by()))
    with connection.cursor() as cursor:
        # Per line of the store's orders: its active holds and the units in parcels.
        cursor.execute(f"""
            SELECT o.id, o.status, l.quantity,
                   COALESCE((SELECT SUM(r.quantity) FROM {Reservation._meta.db_table} r
                             WHERE r.order_line_id = l.id AND r.status = %s), 0),
                   COALESCE((SELECT SUM(s.quantity) FROM {ShipmentLine._meta.db_table} s
                             WHERE s.order_line_id = l.id), 0)
            FROM {Order._meta.db_table} o JOIN {OrderLine._meta.db_table} l ON l.order_id = o.id
            WHERE o.store_id = %s""", [ReservationStatus.ACTIVE, store.pk])
        lines = cursor.fetchall()
        cursor.execute(f"""SELECT COUNT(*) FROM (SELECT platform_order_id FROM {Order._meta.db_table}
                           WHERE store_id = %s GROUP BY platform_order_id HAVING COUNT(*) > 1) AS twice""", [store.pk])
        duplicated = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM {StockLevel._meta.db_table} "
                       "WHERE reserved > on_hand OR reserved < 0 OR on_hand < 0")
        stock_over = cursor.fetchone()[0]
    hub_ids = set(Order.objects.filter(store=store).values_list("platform_order_id", flat=True))
    over_held_lines = sum(1 for _o, _s, quantity, held, _p in lines if held > quantity)
    wrong_ready, holding_awaiting = set(), set()
    for order_id, status, quantity, held, parcelled in lines:
        if status == OrderStatus.READY and (held != quantity or parcelled != quantity):
            wrong_ready.add(order_id)
        elif status == OrderStatus.AWAITING_STOCK and (held or parcelled):
            holding_awaiting.add(order_id)
    ready, awaiting = statuses.get(OrderStatus.READY, 0), statuses.get(OrderStatus.AWAITING_STOCK, 0)
    elsewhere = sum(statuses.values()) - ready - awaiting
    not_done = sum(inbox.values()) - inbox.get(InboxStatus.DONE, 0)
    missing = len(placed_ids - hub_ids)
    oversold = stock_over + over_held_lines
    lost = missing + not_done
    report.write(f"  inbox rows by status {dict(inbox)}; orders {sum(statuses.values())} by status {dict(statuses)}")
    report.write(f"  oversold {oversold} (stock rows with reserved above on hand or below zero {stock_over}, lines "
                 f"holding more than ordered {over_held_lines}); lost {lost} (placed in the sandbox, not in the hub "
                 f"{missing}; inbox rows not done {not_done}); duplicated {duplicated} (platform ids imported twice)")
    report.write(f"  ready {ready} ({len(wrong_ready)} of them with a line not held or not in parcels exactly); "
                 f"awaiting stock {awaiting} ({len(holding_awaiting)} of them holding stock); other statuses "
                 f"{elsewhere}")
    if oversold:
        report.fail(f"{oversold} oversold: {stock_over} stock rows, {over_held_lines} lines")
    if lost:
        report.fail(f"{lost} lost: {missing} sandbox orders not in the hub, {not_done} inbox rows not done")
    if duplicated:
        report.fail(f"{duplicated} platform orders imported twice")
    if wrong_ready or holding_awaiting or elsewhere or ready + awaiting != n:
        report.fail(f"orders: {dict(statuses)}; expected {n} ready or awaiting stock, {len(wrong_ready)} ready "
                    f"ones held or parcelled wrongly, {len(holding_awaiting)} awaiting ones holding stock")
    if tight and not awaiting:
        report.fail("tight stock, yet no order waits for it: raise --tight-skus or lower --tight-units")
    if not tight and ready != n:
        report.fail(f"orders: {dict(statuses)}, expected {n} ready (no SKU is short)")
    mismatches = check_stock_consistency(report, "ingest")
    report.figures.update({
        "oversold": oversold, "lost": lost, "duplicated": duplicated, "ready": ready, "awaiting_stock": awaiting,
        "inbox_done": inbox.get(InboxStatus.DONE, 0), "duplicates": duplicated, "stock_mismatches": mismatches,
        "ready_held_wrongly": len(wrong_ready), "awaiting_holding": len(holding_awaiting),
    })


def phase_raw(report: Report, marks: dict[str, int], n: int, service_rate: float) -> None:
    report.write("\n[4] raw bound: the rows the run inserted, inserted again into empty copies "
                 "(CREATE TABLE x_raw (LIKE x INCLUDING DEFAULTS): no indexes, no constraints) on one psycopg2 "
                 "connection, one transaction")
    params = raw_connection_params()
    begin = time.perf_counter()
    tables = rows_since(params, marks)
    total = sum(len(rows) for _columns, rows in tables.values())
    report.write(f"  {total} rows in {len(tables)} tables read back in {time.perf_counter() - begin:.1f} s "
                 "(not timed):")
    for table, (_columns, rows) in sorted(tables.items(), key=lambda item: -len(item[1][1])):
        report.write(f"    {table:<32} {len(rows):>8} rows  {len(rows) / n:5.2f} per order")
    results = {}
    for key, method, like, label in (
            ("raw", "execute_values", "INCLUDING DEFAULTS INCLUDING GENERATED", f"execute_values, {PAGE_ROWS} rows a statement"),
            ("raw_executemany", "executemany", "INCLUDING DEFAULTS INCLUDING GENERATED", "executemany, one statement a row"),
            ("raw_indexed", "execute_values", "INCLUDING ALL",
             "execute_values into copies WITH the indexes (LIKE … INCLUDING ALL)"),
            ("raw_copy", "copy", "INCLUDING DEFAULTS INCLUDING GENERATED", "COPY FROM STDIN (csv built in Python, timed)")):
        seconds, spent = raw_insert(params, tables, method=method, like=like)
        rate = n / seconds
        results[key] = rate
        report.write(f"  {label}: {seconds:.2f} s = {rate:.0f} orders/s ({total / seconds:.0f} rows/s); "
                     f"service/raw = {service_rate / rate:.4f}")
        report.write("    " + ", ".join(f"{table.split('_', 1)[-1]} {took:.2f} s" for table, took in spent.items()))
        report.figures.update({f"{key}_s": round(seconds, 3), f"{key}_orders_per_s": round(rate, 1)})
    report.figures.update({
        "raw_tables": {table: len(rows) for table, (_columns, rows) in tables.items()}, "raw_rows": total,
        "ratio": round(service_rate / results["raw"], 5),
        "ratio_executemany": round(service_rate / results["raw_executemany"], 5),
    })


def phase_profile(report: Report, store, sandbox: TimedSandbox, n: int) -> None:
    if n <= 0:
        return
    report.write(f"\n[5] where the time goes: {n} more orders processed on one thread under cProfile")
    now = timezone.now()
    store_in_inbox(store, place_orders(sandbox, n, start=now - timedelta(minutes=2), span=timedelta(minutes=1)))
    profiler = cProfile.Profile()
    begin = time.perf_counter()
    profiler.enable()
    processed = drain(store, chunk=n)
    profiler.disable()
    wall = time.perf_counter() - begin
    report.write(f"  {processed} orders in {wall:.2f} s under the profiler ({processed / wall:.0f}/s)")
    write_profile_areas(report, profiler, per=processed, unit="order")
    write_profile_stats(report, profiler, top=40, orders=("cumulative", "tottime"))

    report.write(f"\n[6] SQL per order by service step: {n} more orders, every statement attributed to the chain "
                 "of service calls on the stack")
    store_in_inbox(store, place_orders(sandbox, n, start=now - timedelta(minutes=1), span=timedelta(minutes=1)))
    attributor = StepAttributor()
    with attributor.counting():
        begin = time.perf_counter()
        processed = drain(store, chunk=n)
        wall = time.perf_counter() - begin
    report.write(f"  {processed} orders in {wall:.2f} s; {attributor.statements / processed:.1f} statements + "
                 f"{attributor.kinds['COMMIT'] / processed:.2f} COMMIT per order, {attributor.db_s / wall * 100:.0f}% "
                 "of the time in the database")
    report.write(f"  {'per order':>9} {'db ms':>7}  step > … > innermost step  [statement]")
    for step, count in sorted(attributor.by_step.items(), key=lambda item: (-item[1], item[0])):
        report.write(f"  {count / processed:9.2f} {attributor.db_by_step[step] / processed * 1000:7.3f}  {step}")
    per_top = Counter()
    for step, count in attributor.by_step.items():
        chain = step.split("  [")[0].split(" > ")
        # the first step under the ones that only hand the batch on (the first level of a batch's processing)
        top = next((part for part in chain if part not in BATCH_WRAPPERS), chain[-1])
        per_top[top] += count
    report.write("  by first-level step: " + ", ".join(f"{name} {count / processed:.1f}"
                                                         for name, count in per_top.most_common()))
    report.figures["statements_by_step"] = {name: round(count / processed, 2) for name, count in per_top.items()}


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    n, processes = options["orders"], options["processes"]
    tight_skus, tight_units = options["tight_skus"], options["tight_units"]
    if processes < 1 or not 0 <= tight_skus <= options["skus"] or tight_units < 0:
        report.fail("--processes must be at least 1, --tight-skus between 0 and --skus, --tight-units not negative")
        report.finish()
        return False
    report.figures.update({"orders": n, "skus": options["skus"], "processes": processes,
                           "tight_skus": tight_skus, "tight_units": tight_units if tight_skus else None})
    with ExitStack() as stack:
        stack.enter_context(bench.production_like_settings())
        stack.enter_context(bench.scratch_database(options["db_name"], keep=options["keep_db"], out=report))
        # Each stored page schedules "drain this store's inbox" after commit; with Celery eager that would drain
        # inside the poll. The bench drives the drain itself (phase 2), so the task is counted, not run.
        enqueued = Counter()
        stack.enter_context(mock.patch.object(process_inbox_task, "delay",
                                              lambda **kwargs: enqueued.update(["process_inbox_task"])))
        sandbox = TimedSandbox(skus=[], seed=SEED, throttle=False)
        begin = time.perf_counter()
        sandbox.skus = catalogue_fixture(skus=options["skus"], units=UNITS_PER_SKU)
        tight_codes = stock_tighten(skus=tight_skus, units=tight_units) if tight_skus else []
        sandbox.start()
        stack.callback(sandbox.stop)
        store = shopify_store(code="bench-shopify", credentials=sandbox.connector_credentials())
        now = timezone.now()
        placed = place_orders(sandbox, n, start=now - timedelta(hours=1), span=timedelta(hours=1))
        stock_text = f"{UNITS_PER_SKU} units each"
        if tight_codes:
            stock_text += (f", except {len(tight_codes)} tight SKUs ({tight_codes[0]}…{tight_codes[-1]}) with "
                           f"{tight_units} units each")
        report.write(f"fixtures: {options['skus']} SKUs with {stock_text} in one warehouse, a Shopify "
                     f"store, {n} paid orders of 1-5 lines in the in-process sandbox spread over the last hour, "
                     f"in {time.perf_counter() - begin:.1f} s (not timed). Sandbox throttle OFF (no leaky bucket), so "
                     "the figures are the hub's, not Shopify's 2 calls/s.")
        marks = table_marks()
        poll_s, poll_counter = phase_poll(report, store, sandbox, n)
        process_s, process_counts = phase_process(report, store, n, processes, options["progress"])
        total_s = poll_s + process_s
        queries = poll_counter.statements + process_counts["statements"]
        commits = poll_counter.kinds["COMMIT"] + process_counts["commits"]
        rate = n / total_s
        report.write(f"\nend to end: {n} orders in {total_s:.2f} s = {rate:.1f} orders/s (poll {n / poll_s:.0f}/s, "
                     f"process {n / process_s:.1f}/s with {processes} process(es)); {queries / n:.2f} SQL statements "
                     f"per order (+ {commits / n:.3f} COMMIT); 'drain the inbox' tasks scheduled and not run: "
                     f"{enqueued['process_inbox_task']}")
        report.figures.update({"seconds": round(total_s, 3), "orders_per_s": round(rate, 1),
                               "queries_per_order": round(queries / n, 3),
                               "commits_per_order": round(commits / n, 4),
                               "tasks_scheduled": enqueued["process_inbox_task"]})
        verify(report, store, n, {str(order["id"]) for order in placed}, tight=bool(tight_codes))
        phase_raw(report, marks, n, rate)
        # The sandbox answers the poll from this process: its time is the platform's, not the hub's.
        hub_rate = n / (report.figures["poll_hub_s"] + process_s)
        report.figures.update({"hub_orders_per_s": round(hub_rate, 1),
                               "ratio_hub": round(hub_rate / report.figures["raw_orders_per_s"], 5)})
        report.write(f"  without the sandbox's answering time in the poll: {hub_rate:.1f} orders/s, "
                     f"ratio {report.figures['ratio_hub']}")
        phase_profile(report, store, sandbox, options["profile"])
        figures = report.figures
        report.write(f"\nsummary: {processes} process(es): {rate:.1f} orders/s end to end (poll {n / poll_s:.0f}/s, "
                     f"process {n / process_s:.1f}/s), {queries / n:.2f} statements per order; raw insert bound "
                     f"{figures.get('raw_orders_per_s', 0):.0f} orders/s (execute_values; COPY "
                     f"{figures.get('raw_copy_orders_per_s', 0):.0f}/s); ratio {figures.get('ratio')}; oversold "
                     f"{figures['oversold']}, lost {figures['lost']}, duplicated {figures['duplicated']}; ready "
                     f"{figures['ready']}, awaiting stock {figures['awaiting_stock']}")
    report.finish()
    return not report.failures
