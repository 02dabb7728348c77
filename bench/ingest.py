"""Channel ingestion benchmark: poll a Shopify sandbox, process the inbox into ready orders, and the raw-insert bound."""

from __future__ import annotations

import cProfile
import csv
import io
import sys
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from unittest import mock

import psycopg2
import psycopg2.extras
from django.db import connection
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
from inventory.models import Reservation, ReservationStatus
from orders.models import Order, OrderLine, OrderStatus
from pipeline import channel

SEED = 17
UNITS_PER_SKU = 1_000_000  # far more than N orders can take: the bench measures ingestion, not shortages
PAGE_ROWS = 1000  # execute_values page size of the raw bound
NULL = "\\N"  # how COPY … (FORMAT csv) is told a value is NULL (an empty string stays an empty string)


def add_arguments(parser) -> None:
    parser.add_argument("--orders", type=int, default=20_000, help="orders placed in the sandbox (default 20000)")
    parser.add_argument("--skus", type=int, default=200, help="SKUs in the catalogue, all in stock (default 200)")
    parser.add_argument("--progress", type=int, default=2000, metavar="N",
                        help="print a progress line every N processed orders (default 2000)")
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
    "inbox_process_store", "inbox_process_message", "inbox_store_polled", "store_lease_take", "store_lease_release",
    "sync_count", "sync_state_for", "channel_order_apply", "resolve_sku_codes", "order_create", "order_insert",
    "_validate_order_input", "order_number_next", "order_follow_channel", "order_record_platform_update",
    "order_pay", "order_mark_paid", "orders_process", "_process_one", "order_approve", "order_mark_approved",
    "order_transition", "_get_order_for_update", "payment_snapshot_take", "stock_reserve_for_order", "_reserve",
    "sku_ids_and_titles", "routing_record_warehouse", "shipments_create_for_order",
}
PROJECT_DIRS = ("/connectors/", "/orders/", "/inventory/", "/finance/", "/oms/", "/pipeline/", "/fulfillment/")


def _step_chain() -> str:
    frame, chain = sys._getframe(2), []
    while frame is not None:
        code = frame.f_code
        name = code.co_name
        if (name in STEPS or name.startswith("event_order_")) and any(d in code.co_filename for d in PROJECT_DIRS):
            chain.append("events." + name[len("event_order_"):] if name.startswith("event_order_") else name)
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


def drain(store, *, chunk: int, on_progress=None) -> int:
    """Process the store's inbox until nothing is pending, ``chunk`` rows per call of the service."""
    processed = 0
    while True:
        handled = channel.inbox_process_store(store_id=store.pk, limit=chunk)
        processed += handled
        if handled and on_progress is not None:
            on_progress(processed)
        if handled == 0:
            return processed


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
                cursor.execute(sql.SQL("SELECT * FROM {} WHERE id > %s ORDER BY id").format(sql.Identifier(table)),
                               [mark])
                rows = cursor.fetchall()
                if rows:
                    inserted[table] = ([column.name for column in cursor.description], rows)
        conn.rollback()
    finally:
        conn.close()
    return inserted


def raw_insert(params: dict, tables: dict[str, tuple[list[str], list[tuple]]], *, method: str,
               like: str = "INCLUDING DEFAULTS") -> tuple[float, dict[str, float]]:
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


def phase_process(report: Report, store, n: int, progress: int) -> tuple[float, StatementCounter]:
    report.write(f"\n[2] process: inbox_process_store until nothing is pending (map, create, pay, reserve, approve), "
                 f"one thread, a progress line every {progress} orders")
    counter = StatementCounter()
    marks = {"at": time.perf_counter(), "done": 0}

    def on_progress(done: int) -> None:
        now = time.perf_counter()
        report.write(f"  {done:>6}/{n} processed, {now - begin:7.1f} s, {done / (now - begin):6.0f} orders/s overall, "
                     f"{(done - marks['done']) / (now - marks['at']):6.0f} orders/s for the last "
                     f"{done - marks['done']}")
        marks.update(at=now, done=done)

    with counter.counting():
        begin = time.perf_counter()
        processed = drain(store, chunk=progress, on_progress=on_progress)
        process_s = time.perf_counter() - begin
    report.write(f"  {processed} inbox rows processed in {process_s:.2f} s = {n / process_s:.1f} orders/s")
    report.write(f"  SQL: {counter.statements} statements, {counter.statements / n:.1f} per order "
                 f"({', '.join(f'{k} {v / n:.2f}' for k, v in counter.kinds.most_common())} per order); "
                 f"{counter.db_s:.2f} s = {counter.db_s / process_s * 100:.0f}% of the phase in database round "
                 f"trips, {process_s - counter.db_s:.2f} s in Python")
    report.figures.update({
        "process_s": round(process_s, 3), "process_orders_per_s": round(n / process_s, 1),
        "process_queries_per_order": round(counter.statements / n, 2),
        "process_commits_per_order": round(counter.kinds["COMMIT"] / n, 2),
        "process_db_share": round(counter.db_s / process_s, 3),
    })
    return process_s, counter


def verify(report: Report, store, n: int) -> None:
    report.write("\n[3] checks")
    inbox = Counter(dict(InboxMessage.objects.filter(store=store).values_list("status").annotate(
        count=Count("id")).order_by()))
    orders = Order.objects.filter(store=store)
    statuses = Counter(dict(orders.values_list("status").annotate(
        count=Count("id")).order_by()))
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT COUNT(*) FROM (
                SELECT l.id FROM {OrderLine._meta.db_table} l
                JOIN {Order._meta.db_table} o ON o.id = l.order_id
                LEFT JOIN {Reservation._meta.db_table} r ON r.order_line_id = l.id AND r.status = %s
                WHERE o.store_id = %s GROUP BY l.id, l.quantity HAVING COALESCE(SUM(r.quantity), 0) <> l.quantity
            ) AS wrong""", [ReservationStatus.ACTIVE, store.pk])
        wrong_lines = cursor.fetchone()[0]
        cursor.execute(f"""SELECT COUNT(*) FROM (SELECT platform_order_id FROM {Order._meta.db_table}
                           WHERE store_id = %s GROUP BY platform_order_id HAVING COUNT(*) > 1) AS twice""", [store.pk])
        duplicates = cursor.fetchone()[0]
    holding = Reservation.objects.filter(order__store=store, status=ReservationStatus.ACTIVE).values(
        "order_id").distinct().count()
    report.write(f"  inbox rows by status {dict(inbox)}; orders {sum(statuses.values())} by status {dict(statuses)}")
    report.write(f"  orders holding active reservations {holding}; lines whose active holds differ from their "
                 f"quantity {wrong_lines}; platform ids imported twice {duplicates}")
    if inbox.get(InboxStatus.DONE, 0) != n or sum(inbox.values()) != n:
        report.fail(f"inbox: {dict(inbox)}, expected {n} done")
    if statuses.get(OrderStatus.READY, 0) != n:
        report.fail(f"orders: {dict(statuses)}, expected {n} ready")
    if holding != n or wrong_lines:
        report.fail(f"reservations: {holding} orders hold stock (expected {n}), {wrong_lines} lines held wrongly")
    if duplicates:
        report.fail(f"{duplicates} platform orders imported twice")
    mismatches = check_stock_consistency(report, "ingest")
    report.figures.update({"ready": statuses.get(OrderStatus.READY, 0), "inbox_done": inbox.get(InboxStatus.DONE, 0),
                           "duplicates": duplicates, "stock_mismatches": mismatches})


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
            ("raw", "execute_values", "INCLUDING DEFAULTS", f"execute_values, {PAGE_ROWS} rows a statement"),
            ("raw_executemany", "executemany", "INCLUDING DEFAULTS", "executemany, one statement a row"),
            ("raw_indexed", "execute_values", "INCLUDING ALL",
             "execute_values into copies WITH the indexes (LIKE … INCLUDING ALL)"),
            ("raw_copy", "copy", "INCLUDING DEFAULTS", "COPY FROM STDIN (csv built in Python, timed)")):
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
        # the step under inbox_process_message that sent it (the first level of the order's processing)
        top = next((part for part in chain if part not in ("inbox_process_store", "inbox_process_message")),
                   chain[-1])
        per_top[top] += count
    report.write("  by first-level step: " + ", ".join(f"{name} {count / processed:.1f}"
                                                         for name, count in per_top.most_common()))
    report.figures["statements_by_step"] = {name: round(count / processed, 2) for name, count in per_top.items()}


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    n = options["orders"]
    report.figures.update({"orders": n, "skus": options["skus"]})
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
        sandbox.start()
        stack.callback(sandbox.stop)
        store = shopify_store(code="bench-shopify", credentials=sandbox.connector_credentials())
        now = timezone.now()
        place_orders(sandbox, n, start=now - timedelta(hours=1), span=timedelta(hours=1))
        report.write(f"fixtures: {options['skus']} SKUs with {UNITS_PER_SKU} units each in one warehouse, a Shopify "
                     f"store, {n} paid orders of 1-5 lines in the in-process sandbox spread over the last hour, "
                     f"in {time.perf_counter() - begin:.1f} s (not timed). Sandbox throttle OFF (no leaky bucket), so "
                     "the figures are the hub's, not Shopify's 2 calls/s.")
        marks = table_marks()
        poll_s, poll_counter = phase_poll(report, store, sandbox, n)
        process_s, process_counter = phase_process(report, store, n, options["progress"])
        total_s = poll_s + process_s
        queries = poll_counter.statements + process_counter.statements
        rate = n / total_s
        report.write(f"\nend to end: {n} orders in {total_s:.2f} s = {rate:.1f} orders/s (poll {n / poll_s:.0f}/s, "
                     f"process {n / process_s:.1f}/s); {queries / n:.1f} SQL statements per order "
                     f"(+ {(poll_counter.kinds['COMMIT'] + process_counter.kinds['COMMIT']) / n:.2f} COMMIT); "
                     f"'drain the inbox' tasks scheduled and not run: {enqueued['process_inbox_task']}")
        report.figures.update({"seconds": round(total_s, 3), "orders_per_s": round(rate, 1),
                               "queries_per_order": round(queries / n, 2),
                               "tasks_scheduled": enqueued["process_inbox_task"]})
        verify(report, store, n)
        phase_raw(report, marks, n, rate)
        phase_profile(report, store, sandbox, options["profile"])
        report.write(f"\nsummary: {rate:.1f} orders/s end to end (poll {n / poll_s:.0f}/s, process "
                     f"{n / process_s:.1f}/s), {queries / n:.1f} statements per order; raw insert bound "
                     f"{report.figures.get('raw_orders_per_s', 0):.0f} orders/s; ratio {report.figures.get('ratio')}")
    report.finish()
    return not report.failures
