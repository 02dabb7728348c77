"""Print benchmark: a batch of shipping labels from one click to paper, through the print bridge and a virtual printer.

Set-up (not timed): ``--labels`` parcels with their orders, lines and tracking numbers, bulk-inserted (three
carriers, one to three lines each), a warehouse with one bridge-transport printer whose host:port is a
VirtualPrinter on 127.0.0.1, and a print bridge with its token. The OMS is served by gunicorn on 127.0.0.1 (a
subprocess on the scratch database, production settings), as a warehouse's bridge would reach it.

[1] Rendering: each label rendered by the pure renderer (printing.renderers.render_label) from its label data;
    the time of each render gives p50/p95 (the label data's database reads are timed apart).
[2] The batch, end to end: the bridge agent (printing.bridge.run, ``--workers`` claim loops, in this process)
    is polling; the clock starts at the click, labels_print_batch() over every parcel (render, one job each,
    in carrier order), and stops when the virtual printer has every label and every job is "printed". The
    agent claims, sends over TCP and acknowledges each job through the live HTTP API.
[3] Exactly once: what the printer received is compared with the jobs' bytes (printed, printed_twice must be
    0, nothing unknown); then the same click again must queue nothing and print nothing.
"""

from __future__ import annotations

import hashlib
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal

import requests
from django.utils import timezone

import bench
from bench.common import BATCH, Report, percentile_ms
from connectors.services import store_create_with_channel
from fulfillment.models import Carrier, CarrierKind, Shipment, ShipmentLine, ShipmentStatus
from inventory.models import SKU, Reservation, Warehouse
from orders.models import Order, OrderLine, OrderStatus, Platform
from pipeline import printing as print_flows
from printing import bridge as agent
from printing import labels, renderers, services
from printing.models import JobStatus, Printer, PrintJob, Transport
from printing.virtual_printer import VirtualPrinter

try:  # the subprocess helpers may have moved to bench.common (shared by the benchmarks that start servers)
    from bench.common import Child, bench_redis_url, free_port, server_env
except ImportError:
    from bench.webhook import Child, bench_redis_url, free_port, server_env

SEED = 41
TARGET_BATCH_S = 10.0  # seconds from the click to the last of 500 labels
READY_TIMEOUT_S = 60
DEFAULT_REDIS_DB = 11
SETTLE_S = 1.5  # after the second click: a label that must not print would arrive meanwhile
CARRIERS = [("SF", "顺丰速运"), ("YTO", "圆通速递"), ("ZTO", "中通快递")]
PROVINCES = [("上海市", "上海市", "浦东新区"), ("浙江省", "杭州市", "西湖区"), ("江苏省", "南京市", "鼓楼区")]
SKUS = [
    ("TEA-LJ-250G", "西湖龙井 250g 礼盒装"),
    ("CUP-CER-350", "陶瓷马克杯 350ml"),
    ("GIFT-BAG", "礼品袋"),
    ("PHONE-CASE-15", "手机壳 15 Pro 透明"),
    ("SCARF-SILK", "真丝围巾 90×90"),
]


def add_arguments(parser) -> None:
    parser.add_argument(
        "--labels", type=int, default=500, help="parcels whose labels are printed (default 500)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.2,
        help="the bridge's wait between polls when idle (default 0.2 s)",
    )
    parser.add_argument(
        "--gunicorn-workers", type=int, default=4, help="gunicorn worker processes (default 4)"
    )
    parser.add_argument(
        "--gunicorn-threads", type=int, default=2, help="threads per gunicorn worker (gthread; default 2)"
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=DEFAULT_REDIS_DB,
        help=f"Redis database of the server's cache and broker (nothing is enqueued; default {DEFAULT_REDIS_DB})",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the batch to print (default 300)"
    )
    parser.set_defaults(workers=4)
    for action in parser._actions:
        if action.dest == "workers":
            action.help = "claim loops of the print bridge agent (default 4)"


# --- Fixture ----------------------------------------------------------------------------------------


def parcels_fixture(count: int) -> tuple[Warehouse, list[int]]:
    """``count`` parcels to pick with orders, lines, reservations and tracking numbers, inserted in bulk.

    The rows are what the services would have written for paid orders that reserved and became parcels; the
    stock counters are left alone (this benchmark reads parcels, it does not check stock).
    """
    rng, now = random.Random(SEED), timezone.now()
    warehouse = Warehouse.objects.create(
        code="bench-print",
        name="上海主仓",
        priority=10,
        address="上海市浦东新区张江路 100 号 3 号库",
        contact_phone="021-55550000",
    )
    store = store_create_with_channel(
        platform=Platform.TAOBAO, code="bench-print", name="演示淘宝店", stock_push_enabled=False
    )
    carriers = [
        Carrier.objects.create(code=code, name=name, kind=CarrierKind.MANUAL) for code, name in CARRIERS
    ]
    skus = [SKU.objects.create(code=code, name=name, list_price=Decimal("39.90")) for code, name in SKUS]
    orders, plans = [], []
    for n in range(count):
        province, city, district = rng.choice(PROVINCES)
        orders.append(
            Order(
                number=f"SO-PB{n:06d}",
                store=store,
                platform_order_id=f"TB{n:09d}",
                status=OrderStatus.READY,
                receiver_name=f"买家{n}",
                receiver_phone=f"133{n:08d}",
                receiver_province=province,
                receiver_city=city,
                receiver_district=district,
                receiver_address=f"文三路 {n % 900 + 1} 号 {n % 30 + 1} 幢 {n % 12 + 1} 单元",
                total_amount=Decimal("79.80"),
                paid_amount=Decimal("79.80"),
                placed_at=now,
                paid_at=now,
            )
        )
        plans.append([(rng.choice(skus), rng.choice([1, 1, 2, 3])) for _ in range(rng.choice([1, 1, 2, 3]))])
    Order.objects.bulk_create(orders, batch_size=BATCH)
    lines = [
        OrderLine(
            order=order,
            line_no=i + 1,
            sku_code=sku.code,
            sku=sku,
            title=sku.name,
            quantity=qty,
            unit_price=sku.list_price,
        )
        for order, plan in zip(orders, plans, strict=True)
        for i, (sku, qty) in enumerate(plan)
    ]
    OrderLine.objects.bulk_create(lines, batch_size=BATCH)
    reservations = [
        Reservation(
            order_id=line.order_id, order_line=line, warehouse=warehouse, sku=line.sku, quantity=line.quantity
        )
        for line in lines
    ]
    Reservation.objects.bulk_create(reservations, batch_size=BATCH)
    shipments = [
        Shipment(
            number=f"PB{n:06d}",
            store=store,
            warehouse=warehouse,
            status=ShipmentStatus.TO_PICK,
            platform=store.platform,
            order_numbers=order.number,
            receiver_key=f"bench-print-{n}",
            receiver_province=order.receiver_province,
            receiver_city=order.receiver_city,
            sla_due_at=now + timedelta(minutes=rng.randint(30, 24 * 60)),
            carrier=carrier,
            tracking_number=f"{carrier.code}{7_000_000_000 + n}",
            amount=order.total_amount,
        )
        for n, (order, carrier) in enumerate(
            zip(orders, (rng.choice(carriers) for _ in orders), strict=False)
        )
    ]
    Shipment.objects.bulk_create(shipments, batch_size=BATCH)
    by_order = {order.pk: shipment for order, shipment in zip(orders, shipments, strict=True)}
    ShipmentLine.objects.bulk_create(
        [
            ShipmentLine(
                shipment=by_order[r.order_id],
                order_id=r.order_id,
                order_line=r.order_line,
                reservation=r,
                sku=r.sku,
                quantity=r.quantity,
            )
            for r in reservations
        ],
        batch_size=BATCH,
    )
    return warehouse, [s.pk for s in shipments]


# --- Phases -----------------------------------------------------------------------------------------


def phase_render(report: Report, shipment_ids: list[int]) -> tuple[list[float], list[float]]:
    report.write(f"\n[1] rendering {len(shipment_ids)} labels (80 mm) with printing.renderers.render_label")
    data_times, render_times, sizes = [], [], []
    clock = time.perf_counter
    for shipment in Shipment.objects.filter(pk__in=shipment_ids).select_related("carrier", "warehouse"):
        begin = clock()
        data = labels.label_data(shipment)
        middle = clock()
        payload = renderers.render_label(data, paper_width=80)
        render_times.append(clock() - middle)
        data_times.append(middle - begin)
        sizes.append(len(payload))
    report.write(
        f"  render p50 {percentile_ms(render_times, 50)} ms, p95 {percentile_ms(render_times, 95)} ms, max "
        f"{percentile_ms(render_times, 100)} ms; label data (database reads) p50 {percentile_ms(data_times, 50)} "
        f"ms, p95 {percentile_ms(data_times, 95)} ms; {sum(sizes) // max(len(sizes), 1)} bytes per label"
    )
    return render_times, data_times


def wait_until_serving(base_url: str, server: Child) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.tail()}")
        try:
            requests.post(
                f"{base_url}/api/v1/print-bridge/claim/", timeout=2
            )  # any answer (401) means it serves
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {READY_TIMEOUT_S} s:\n{server.tail()}")


class Tally:
    """What the virtual printer received: how many times each payload (by its SHA-256)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.total = 0

    def __call__(self, job) -> None:
        digest = hashlib.sha256(job.data).hexdigest()
        with self.lock:
            self.counts[digest] += 1
            self.total += 1


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    n, workers = options["labels"], options["workers"]
    report.figures.update({"labels": n, "workers": workers, "interval_s": options["interval"]})
    with ExitStack() as stack:
        # The agent logs a line per job, as it should in a warehouse; here only warnings and errors.
        for logger_name in ("print_bridge", "urllib3"):
            logger = logging.getLogger(logger_name)
            stack.callback(logger.setLevel, logger.level)
            logger.setLevel(logging.WARNING)
        stack.enter_context(bench.production_like_settings())
        name = stack.enter_context(
            bench.scratch_database(options["db_name"], keep=options["keep_db"], out=report)
        )
        log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-print-"))

        begin = time.perf_counter()
        warehouse, shipment_ids = parcels_fixture(n)
        tally = Tally()
        device = VirtualPrinter(host="127.0.0.1", port=0, max_jobs=max(n * 3, 200), on_job=tally)
        device.start()
        stack.callback(device.stop)
        printer = Printer.objects.create(
            code="bench-print-1",
            name="打包台 1",
            warehouse=warehouse,
            transport=Transport.BRIDGE,
            host="127.0.0.1",
            port=device.port,
            paper_width=80,
        )
        _bridge, token = services.bridge_create(name="bench PC", warehouse_id=warehouse.pk)
        report.write(
            f"fixtures: {n} parcels with orders, lines and tracking numbers (bulk) in "
            f"{time.perf_counter() - begin:.1f} s; printer {printer.code} (bridge transport) → virtual printer "
            f"127.0.0.1:{device.port}"
        )

        render_times, data_times = phase_render(report, shipment_ids)

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable, "-m", "gunicorn", "oms.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(options["gunicorn_workers"]), "--threads", str(options["gunicorn_threads"]),
            "--worker-class", "gthread", "--keep-alive", "30", "--log-level", "warning",
        ]  # fmt: skip
        server = Child("gunicorn", argv, server_env(name, bench_redis_url(options["redis_db"])), log_dir)
        stack.callback(server.stop)
        wait_until_serving(base_url, server)
        report.write(
            f"server: gunicorn {options['gunicorn_workers']} × {options['gunicorn_threads']} threads on "
            f"{base_url} (production settings, scratch database {name})"
        )

        # [2] The bridge is polling before the click, as it is all day in a warehouse.
        stop = threading.Event()
        outcome: dict = {}
        loop = threading.Thread(
            target=lambda: outcome.update(
                result=agent.run(
                    server=base_url, token=token, workers=workers, interval=options["interval"], stop=stop
                )
            ),
            name="bridge",
            daemon=True,
        )
        loop.start()
        stack.callback(lambda: (stop.set(), loop.join(timeout=30)))
        report.write(
            f"\n[2] the batch: labels_print_batch() over {n} parcels (the click), while the bridge agent polls "
            f"with {workers} workers (idle interval {options['interval']} s)"
        )
        started = time.perf_counter()
        result = print_flows.labels_print_batch(shipment_ids=shipment_ids)
        queued_s = time.perf_counter() - started
        deadline = time.monotonic() + options["timeout"]
        printed_jobs = 0
        while time.monotonic() < deadline:
            if tally.total >= n:
                printed_jobs = PrintJob.objects.filter(status=JobStatus.PRINTED).count()
                if printed_jobs >= n:
                    break
            if not loop.is_alive():
                break
            time.sleep(0.01)
        batch_s = time.perf_counter() - started
        if printed_jobs < n:
            report.fail(
                f"after {batch_s:.1f} s: {tally.total} labels received, {printed_jobs} of {n} jobs printed"
                + ("" if loop.is_alive() else f" (the agent stopped: {outcome.get('result')})")
            )
        rate = n / batch_s if batch_s else 0.0
        target_s = TARGET_BATCH_S * max(n, 500) / 500  # 10 s for 500 labels (and for fewer), pro rata above
        report.write(
            f"  queued {result['queued']} jobs in {queued_s:.2f} s ({result['already']} already, "
            f"{len(result['refused'])} refused); all {n} printed {batch_s:.2f} s after the click = "
            f"{rate:.0f} labels/s; target ≤ {target_s:.1f} s: {'met' if batch_s <= target_s else 'MISSED'}"
        )
        if result["queued"] != n or result["refused"]:
            report.fail(f"the click queued {result['queued']} of {n}: refused {result['refused'][:3]}")

        # [3] Exactly once, and the same click again prints nothing.
        again = print_flows.labels_print_batch(shipment_ids=shipment_ids)
        time.sleep(SETTLE_S)
        stop.set()
        loop.join(timeout=30)
        expected = {
            hashlib.sha256(bytes(p)).hexdigest() for p in PrintJob.objects.values_list("payload", flat=True)
        }
        printed = len(tally.counts)
        twice = sum(1 for count in tally.counts.values() if count > 1)
        unknown = len(set(tally.counts) - expected)
        not_printed = PrintJob.objects.exclude(status=JobStatus.PRINTED).count()
        attempts = Counter(PrintJob.objects.values_list("attempts", flat=True))
        report.write(
            f"\n[3] the virtual printer received {tally.total} jobs: {printed} distinct labels, {twice} printed "
            f"twice, {unknown} not from a job; jobs not in state printed: {not_printed}; attempts per job "
            f"{dict(sorted(attempts.items()))}; second click: {again['queued']} queued, {again['already']} already"
        )
        if printed != n or twice or unknown or tally.total != n:
            report.fail(
                f"{n} labels: {printed} printed, {twice} twice, {unknown} unknown, {tally.total} received"
            )
        if not_printed:
            report.fail(f"{not_printed} jobs are not in state printed")
        if again["queued"] or again["already"] != n:
            report.fail(f"the second click queued {again['queued']} (already {again['already']})")
        agent_result = outcome.get("result")
        report.figures.update(
            {
                "render_p50_ms": percentile_ms(render_times, 50),
                "render_p95_ms": percentile_ms(render_times, 95),
                "label_data_p50_ms": percentile_ms(data_times, 50),
                "label_data_p95_ms": percentile_ms(data_times, 95),
                "queue_s": round(queued_s, 3),
                "batch_s": round(batch_s, 3),
                "jobs_per_s": round(rate, 1),
                "printed": printed,
                "printed_twice": twice,
                "received": tally.total,
                "not_printed": not_printed,
                "agent_printed": len(agent_result.printed) if agent_result else None,
                "agent_failed": len(agent_result.failed) if agent_result else None,
                "second_click_queued": again["queued"],
                "target_s": target_s,
                "target_met": batch_s <= target_s,
            }
        )
        report.write(
            f"\nsummary: {n} labels, render p95 {percentile_ms(render_times, 95)} ms; click to last label "
            f"{batch_s:.2f} s ({rate:.0f}/s, bridge {workers} workers); printed {printed}, twice {twice}"
        )
    report.finish()
    return not report.failures
