"""Channel stock push benchmark: a stock burst on every SKU reaches four platform sandboxes through a real worker.

Set-up (not timed): ``--skus`` SKUs in stock in one warehouse; four stores (Shopify, Taobao, PDD, Douyin), each
pointing at an in-process sandbox of its platform started on a free port, every SKU mapped in every store with the
sandbox's own ids, and every platform starting in sync with the hub (a ChannelStock row per store and SKU holding
the pushed quantity). A real Celery worker subprocess (threads pool) consumes a Redis database of its own; the
beat is NOT run, so the only thing that makes pushes happen is what pipeline.stock asks for after commit
(channel_stock_flush_soon → flush_channel_stock_task with a 1 s countdown; the marks themselves are committed
with each stock change), as in production between two beat ticks.

[1] burst: one stock change (pipeline.stock.stock_adjust, ±4..9 units, so every store's channel quantity moves) per SKU from
    ``--workers`` threads, the commit time of each recorded; the sandboxes' ``pushed`` records are polled every
    ``--poll-interval`` s until every store holds, for every SKU, the quantity the hub computes
    (channel_quantity over available_by_sku), or ``--settle-timeout``. Delay = first poll that saw the new
    quantity − the SKU's commit.
[2] hot SKU: ``--hot-orders`` one-unit orders on one SKU (bulk-inserted beforehand), reserved through
    stock_reserve_for_order (then pipeline.stock.channel_stock_flush_soon, as the order pipeline does) from the
    same threads; how many platform calls that causes per store.

Shopify's rate limits stay on: ``--shopify-bucket plus`` (default) is Shopify Plus's (REST: bucket 400, 20
requests/s; GraphQL calculated cost: 1000 points/s restored, bucket 2000); ``standard`` (REST 40, 2/s; GraphQL
100 points/s, bucket 1000) is what most shops have; ``off`` shows the hub's own pace. Stock goes through GraphQL
``inventorySetQuantities`` (up to 250 SKUs a call); the REST bucket only meets the rare REST lookup.
"""

from __future__ import annotations

import os
import random
import re
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import redis
from django.db import connections, transaction
from django.db.models import F, Sum
from django.test.utils import override_settings
from django.utils import timezone

import bench
from bench.common import Report, catalogue_fixture, check_stock_consistency, percentile_ms
from connectors import stock_push
from connectors.models import ChannelStock
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import GRAPHQL_BUCKETS, ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.services import store_create_with_channel
from inventory.models import SKU, ChannelStockDirty, PlatformSKUMapping, Warehouse
from inventory.selectors import available_by_sku
from inventory.services import stock_reserve_for_order
from orders.models import Order, OrderLine, Platform, Store
from pipeline.stock import channel_stock_flush_soon, stock_adjust

try:  # the subprocess helpers may have moved to bench.common (shared by the benchmarks that start servers)
    from bench.common import Child, bench_redis_url, server_env
except ImportError:
    from bench.webhook import Child, bench_redis_url, server_env

SEED = 31
PREFIX = "PUSH"
UNITS_PER_SKU = 5000
DEFAULT_REDIS_DB = 12
READY_TIMEOUT_S = 60
QUIET_S = 3.0  # after matching: no new push and no stale row for this long = the worker has finished
BATCH = 1000
PRICE = Decimal("9.90")
# Shopify REST Admin API limits (shopify.dev, "REST Admin API rate limits"): bucket size, leak rate, throttle on;
# then the GraphQL cost bucket (size, points restored per s: API_FACTS.md §1.3, sizes not confirmed).
# "off" is a bucket too large to fill, not throttle=False: the sandbox would then count calls past its bucket and
# report e.g. "900/40" in X-Shopify-Shop-Api-Call-Limit, and the client's own pacing would sleep before every call.
SHOPIFY_BUCKETS = {"standard": (40, 2.0, True, GRAPHQL_BUCKETS["standard"]),
                   "plus": (400, 20.0, True, GRAPHQL_BUCKETS["plus"]),
                   "off": (1_000_000, 1_000_000.0, True, (1e9, 1e9))}
# Per store: share of the available stock and buffer (the channel_quantity settings), as shops set them.
STORE_SETTINGS = {"shopify": (Decimal("0.5"), 10), "taobao": (Decimal("1"), 0), "pdd": (Decimal("1"), 2),
                  "douyin": (Decimal("0.3"), 0)}
# Celery's own format ("[date: INFO/...] Task ...") or the project's structured one ("date level=INFO logger=...").
FLUSH_LINE = re.compile(r"^(?:\[(?P<at>[\d-]+ [\d:,]+): INFO/[^\]]*\]|(?P<stamp>[\d-]+ [\d:,]+) level=INFO logger=\S+)"
                        r" Task connectors\.tasks\.flush_channel_stock_task"
                        r"\[[^\]]+\] succeeded in (?P<took>[\d.]+)s: (?P<result>\{.*\})")


def add_arguments(parser) -> None:
    parser.add_argument("--skus", type=int, default=1000, help="SKUs in stock and mapped in every store (default 1000)")
    parser.add_argument("--hot-orders", type=int, default=1000,
                        help="one-unit orders reserved on one SKU in the second burst (default 1000)")
    parser.add_argument("--shopify-bucket", choices=sorted(SHOPIFY_BUCKETS), default="plus",
                        help="the Shopify sandbox's rate limits: plus = REST 400 / 20 per s, GraphQL 2000 points / "
                             "1000 per s (default); standard = REST 40 / 2 per s, GraphQL 1000 / 100 per s; off = "
                             "no rate limit")
    parser.add_argument("--celery-concurrency", type=int, default=4, help="Celery worker threads (default 4)")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB,
                        help=f"Redis database of the broker and the cache, purged before and after "
                             f"(default {DEFAULT_REDIS_DB})")
    parser.add_argument("--settle-timeout", type=float, default=600.0,
                        help="seconds to wait for every store to hold the hub's quantities (default 600)")
    parser.add_argument("--poll-interval", type=float, default=0.05,
                        help="seconds between two looks at the sandboxes' push records (default 0.05)")
    parser.set_defaults(workers=4)
    for action in parser._actions:
        if action.dest == "workers":
            action.help = "threads changing stock / reserving in the bursts (default 4)"


# --- The four platforms ------------------------------------------------------------------------------

@dataclass
class Channel:
    """One store, its sandbox and how to read the sandbox's push records (which SKU, which quantity)."""

    platform: str
    sandbox: object
    value_key: str
    kind: str
    ids: dict[str, tuple[str, str]]  # SKU code → (platform_sku_id, platform_product_id) for the mapping
    record_key: str  # the field of a push record that names the SKU
    code_by_key: dict[str, str]  # str(that field's value) → SKU code
    store: Store | None = None

    def code_of(self, record: dict) -> str | None:
        return self.code_by_key.get(str(record.get(self.record_key)))


def make_channels(catalogue: list[tuple[str, str]], bucket: str) -> list[Channel]:
    codes = [code for code, _price in catalogue]
    size, leak, throttle, graphql = SHOPIFY_BUCKETS[bucket]
    shopify = ShopifySandbox(port=0, skus=catalogue, seed=SEED, bucket_size=size, leak_rate=leak, throttle=throttle,
                             graphql_bucket=graphql)
    variants = {code: shopify.variant(code) for code in codes}
    taobao = TaobaoSandbox(port=0, skus=catalogue, seed=SEED)
    items = {code: TaobaoSandbox._catalog_entry(code, price) for code, price in catalogue}
    pdd = PddSandbox(port=0, skus=catalogue, seed=SEED)
    goods = {code: PddSandbox._catalog_entry(code, price) for code, price in catalogue}
    douyin = DouyinSandbox(port=0, skus=catalogue, seed=SEED)
    entries = {code: douyin.sku(code) for code in codes}
    channels = [
        Channel("shopify", shopify, "available", "inventory",
                {c: (str(v["variant_id"]), str(v["product_id"])) for c, v in variants.items()},
                "inventory_item_id", {str(v["inventory_item_id"]): c for c, v in variants.items()}),
        Channel("taobao", taobao, "quantity", "stock",
                {c: (str(i["sku_id"]), str(i["num_iid"])) for c, i in items.items()},
                "sku_id", {str(i["sku_id"]): c for c, i in items.items()}),
        Channel("pdd", pdd, "quantity", "stock",
                {c: (str(g["sku_id"]), str(g["goods_id"])) for c, g in goods.items()},
                "sku_id", {str(g["sku_id"]): c for c, g in goods.items()}),
        Channel("douyin", douyin, "stock_num", "stock",
                {c: (str(e["sku_id"]), str(e["product_id"])) for c, e in entries.items()},
                "sku_id", {str(e["sku_id"]): c for c, e in entries.items()}),
    ]
    for channel in channels:
        if len(channel.code_by_key) != len(codes) or len({ids[0] for ids in channel.ids.values()}) != len(codes):
            raise RuntimeError(f"{channel.platform} sandbox: two SKU codes got the same platform id")
    return channels


def create_stores(channels: list[Channel], skus: dict[str, int]) -> None:
    for channel in channels:
        share, buffer = STORE_SETTINGS[channel.platform]
        channel.store = store_create_with_channel(
            platform=channel.platform, code=f"bench-{channel.platform}", name=f"bench {channel.platform}",
            default_currency="USD" if channel.platform == Platform.SHOPIFY else "CNY",
            credentials=channel.sandbox.connector_credentials(), stock_share=share, stock_buffer=buffer)
        PlatformSKUMapping.objects.bulk_create(
            [PlatformSKUMapping(store=channel.store, sku_id=skus[code], platform_sku_id=sku_id,
                                platform_product_id=product_id)
             for code, (sku_id, product_id) in channel.ids.items()], batch_size=BATCH)


def expected_quantities(channels: list[Channel], skus: dict[str, int]) -> dict[str, dict[str, int]]:
    """platform → SKU code → the quantity the hub computes for that store now."""
    available = available_by_sku(skus.values())
    return {channel.platform: {code: stock_push.channel_quantity(channel.store, available[sku_id])
                               for code, sku_id in skus.items()} for channel in channels}


def start_in_sync(channels: list[Channel], skus: dict[str, int]) -> dict[str, dict[str, int]]:
    """Every platform already shows the hub's quantity (a ChannelStock row per store and SKU, nothing stale)."""
    initial = expected_quantities(channels, skus)
    now = timezone.now()
    ChannelStock.objects.bulk_create(
        [ChannelStock(store=channel.store, sku_id=sku_id, last_pushed_quantity=initial[channel.platform][code],
                      last_pushed_at=now) for channel in channels for code, sku_id in skus.items()],
        batch_size=BATCH)
    return initial


def waiting() -> int:
    """(store, SKU) pairs whose change is not pushed yet: the marks left, and rows whose push is under way."""
    return ChannelStockDirty.objects.count() + ChannelStock.objects.filter(change_seq__gt=F("pushed_seq")).count()


def reserve(order_id: int) -> None:
    stock_reserve_for_order(order_id=order_id, reference=f"bench:{order_id}")
    channel_stock_flush_soon()  # what the order pipeline asks for after a reservation


# --- Watching the sandboxes ----------------------------------------------------------------------------

class Watcher:
    """Polls every sandbox's ``pushed`` list: what each store holds per SKU, and when that changed."""

    def __init__(self, channels: list[Channel], initial: dict[str, dict[str, int]], interval: float):
        self.channels = channels
        self.interval = interval
        self.lock = threading.Lock()
        self.seen = {c.platform: 0 for c in channels}
        self.held = {platform: dict(quantities) for platform, quantities in initial.items()}
        # platform → code → [(poll time, push time, value)] each time the held value changed
        self.transitions: dict[str, dict[str, list]] = {c.platform: defaultdict(list) for c in channels}
        self.calls: dict[str, Counter] = {c.platform: Counter() for c in channels}  # pushes per SKU
        self.push_times: dict[str, list[float]] = {c.platform: [] for c in channels}
        self.unknown: Counter = Counter()  # push records naming no SKU of the catalogue
        self.last_push_seen = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        now = time.time()
        for channel in self.channels:
            box = channel.sandbox
            with box.lock:
                new = box.pushed[self.seen[channel.platform]:]
            if not new:
                continue
            values: dict[str, tuple[int, float]] = {}
            with self.lock:
                self.seen[channel.platform] += len(new)
                self.last_push_seen = now
                for record in new:
                    if record.get("kind") != channel.kind:
                        continue
                    code = channel.code_of(record)
                    if code is None:
                        self.unknown[channel.platform] += 1
                        continue
                    pushed_at = datetime.fromisoformat(record["at"]).timestamp()
                    values[code] = (int(record[channel.value_key]), pushed_at)
                    self.calls[channel.platform][code] += 1
                    self.push_times[channel.platform].append(pushed_at)
                held = self.held[channel.platform]
                for code, (value, pushed_at) in values.items():
                    if held.get(code) != value:
                        held[code] = value
                        self.transitions[channel.platform][code].append((now, pushed_at, value))

    def differences(self, expected: dict[str, dict[str, int]], codes=None) -> int:
        with self.lock:
            return sum(1 for platform, quantities in expected.items() for code, quantity in quantities.items()
                       if (codes is None or code in codes) and self.held[platform].get(code) != quantity)

    def total_calls(self) -> dict[str, int]:
        with self.lock:
            return {platform: sum(counts.values()) for platform, counts in self.calls.items()}


def wait_until_settled(report: Report, watcher: Watcher, expected, codes, timeout: float,
                       since: float) -> tuple[bool, float | None]:
    """Until every store holds the expected quantities (→ the time that happened), then until the worker is quiet
    (no (store, SKU) waiting to be pushed and no new push for QUIET_S), so the calls counted afterwards are all of
    them."""
    deadline = since + timeout
    matched_at = None
    last_line = time.time()
    while time.time() < deadline:
        differing = watcher.differences(expected, codes)
        now = time.time()
        if not differing and matched_at is None:
            matched_at = now
        if matched_at is not None:
            stale = waiting()
            if not stale and now - max(watcher.last_push_seen, matched_at) >= QUIET_S:
                return True, matched_at
        if now - last_line >= 15:
            stale = waiting()
            report.write(f"  {now - since:6.1f} s: {differing} (store, SKU) pairs still differ, calls so far "
                         f"{watcher.total_calls()}, (store, SKU) pairs waiting to be pushed {stale}")
            last_line = now
        time.sleep(0.2)
    return False, matched_at


# --- Load ------------------------------------------------------------------------------------------------

@dataclass
class BurstStats:
    committed: dict = field(default_factory=dict)  # item key → time.time() of its commit
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    wall: float = 0.0


def run_burst(items: list, threads: int, call) -> BurstStats:
    """``call(item)`` for every item from ``threads`` threads, each inside an atomic block whose first on-commit
    hook stamps the commit time (it runs before the pipeline's own hooks, e.g. the flush request)."""
    stats = BurstStats()
    lock = threading.Lock()
    chunks = [items[n::threads] for n in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(chunk) -> None:
        try:
            connections["default"].ensure_connection()
            barrier.wait(timeout=READY_TIMEOUT_S)
            for key, *args in chunk:
                try:
                    with transaction.atomic():
                        transaction.on_commit(lambda key=key: stats.committed.__setitem__(key, time.time()))
                        call(*args)
                except Exception as exc:  # counted; the burst goes on
                    with lock:
                        stats.errors[type(exc).__name__] += 1
                        if len(stats.samples) < 5:
                            stats.samples.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            connections.close_all()  # this thread's connections only

    pool = [threading.Thread(target=worker, args=(chunk,), name=f"bench-burst-{n}", daemon=True)
            for n, chunk in enumerate(chunks)]
    for thread in pool:
        thread.start()
    barrier.wait(timeout=READY_TIMEOUT_S)
    begin = time.perf_counter()
    for thread in pool:
        thread.join()
    stats.wall = time.perf_counter() - begin
    return stats


def bulk_orders(store: Store, sku: SKU, n: int) -> list[int]:
    """``n`` one-line, one-unit orders on ``sku`` inserted directly (not timed)."""
    now = timezone.now()
    orders = Order.objects.bulk_create([Order(number=f"BPH{k:08d}", store=store, platform_order_id=f"BPH{k:08d}",
                                              placed_at=now) for k in range(n)], batch_size=BATCH)
    OrderLine.objects.bulk_create([OrderLine(order_id=order.pk, line_no=1, sku_code=sku.code, sku_id=sku.pk,
                                             title=sku.name, quantity=1, unit_price=PRICE) for order in orders],
                                  batch_size=BATCH)
    return [order.pk for order in orders]


# --- Worker and settings -------------------------------------------------------------------------------

@contextmanager
def celery_on(redis_url: str):
    """This process sends its after-commit tasks to ``redis_url`` (not eagerly), and its cache (the flush gate of
    channel_stock_flush_soon) is the worker's: the same Redis database, as in production."""
    from celery import current_app as app

    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}

    def reset_pool() -> None:
        if app._pool is not None:  # a pool made for another broker URL would keep sending there
            app._pool.force_close_all()
            app._pool = None
            app.amqp._producer_pool = None

    conf.task_always_eager = False
    conf.broker_url = redis_url
    conf.broker_transport_options = {"visibility_timeout": 3600}
    reset_pool()
    try:
        with override_settings(CACHES=caches):
            yield app
    finally:
        reset_pool()
        conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved


def start_worker(report: Report, app, db_name: str, redis_url: str, concurrency: int, log_dir: str,
                 stack: ExitStack) -> Child:
    hostname = f"bench-push-{os.getpid()}@{socket.gethostname()}"
    argv = [sys.executable, "-m", "celery", "-A", "oms", "worker", "--pool=threads", f"-c{concurrency}",
            "--loglevel=INFO", "--without-gossip", "--without-mingle", "--hostname", hostname]
    env = server_env(db_name, redis_url)
    env.pop("OMS_BENCH_BARE_WEBHOOK", None)
    env["DJANGO_LOG_LEVEL"] = "INFO"  # the worker logs each task's duration and result (parsed below)
    worker = Child("celery", argv, env, log_dir)
    stack.callback(worker.stop)
    begin = time.perf_counter()
    while time.perf_counter() - begin < READY_TIMEOUT_S:
        if not worker.alive():
            raise RuntimeError(f"the Celery worker exited with {worker.process.returncode}:\n{worker.tail()}")
        if app.control.ping(destination=[hostname], timeout=0.5):
            report.write(f"worker: {' '.join(argv[3:])} (no beat: only the after-commit scheduling makes pushes "
                         f"happen), ready in {time.perf_counter() - begin:.1f} s")
            return worker
    raise RuntimeError(f"the Celery worker did not answer a ping within {READY_TIMEOUT_S} s:\n{worker.tail()}")


def flush_tasks(worker: Child, after_line: int = 0) -> tuple[list[dict], int]:
    """The flush tasks the worker logged as done since line ``after_line``: start, duration, result."""
    try:
        lines = worker.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return [], after_line
    tasks = []
    for line in lines[after_line:]:
        match = FLUSH_LINE.match(line)
        if match:
            ended = datetime.strptime(match["at"] or match["stamp"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            took = float(match["took"])
            result = {key: int(value) for key, value in re.findall(r"'(\w+)': (\d+)", match["result"])}
            tasks.append({"start": ended - took, "took": took, **result})
    return tasks, len(lines)


def max_overlap(tasks: list[dict]) -> int:
    events = sorted([(t["start"], 1) for t in tasks] + [(t["start"] + t["took"], -1) for t in tasks])
    running = peak = 0
    for _at, step in events:
        running += step
        peak = max(peak, running)
    return peak


# --- Phases --------------------------------------------------------------------------------------------

def delays(watcher: Watcher, channels: list[Channel], expected, initial, committed: dict[str, float]):
    """platform → [(poll delay, push delay)] for the (store, SKU) pairs whose quantity had to change, and the
    pairs that never showed the expected quantity."""
    out: dict[str, list[tuple[float, float]]] = {c.platform: [] for c in channels}
    never = 0
    with watcher.lock:
        for channel in channels:
            platform = channel.platform
            for code, quantity in expected[platform].items():
                if quantity == initial[platform][code] or code not in committed:
                    continue
                hit = next(((seen, pushed) for seen, pushed, value in watcher.transitions[platform][code]
                            if value == quantity), None)
                if hit is None:
                    never += 1
                    continue
                out[platform].append((hit[0] - committed[code], hit[1] - committed[code]))
    return out, never


def seconds(values: list[float], pct: float) -> float:
    return round(percentile_ms(values, pct) / 1000, 3)


def phase_burst(report: Report, fx: dict, options: dict, worker: Child) -> None:
    channels, skus, watcher = fx["channels"], fx["skus"], fx["watcher"]
    threads, rng = options["workers"], random.Random(SEED)
    report.write(f"\n[1] burst: one stock_adjust (±4..9 units) on each of {len(skus)} SKUs from {threads} threads")
    deltas = {code: rng.choice([-1, 1]) * rng.randint(4, 9) for code in skus}
    items = [(code, skus[code], deltas[code]) for code in skus]
    rng.shuffle(items)
    warehouse_id = fx["warehouse"].pk
    calls_before, requests_before = watcher.total_calls(), {c.platform: c.sandbox.request_count for c in channels}
    _tasks, log_line = flush_tasks(worker)

    def change(sku_id: int, delta: int) -> None:
        stock_adjust(warehouse_id=warehouse_id, sku_id=sku_id, delta=delta, reason="bench stock push",
                     reference="bench:push")

    began = time.time()
    burst = run_burst(items, threads, change)
    report.write(f"  {len(burst.committed)} changes committed in {burst.wall:.2f} s "
                 f"({len(burst.committed) / burst.wall:.0f}/s), errors {dict(burst.errors)}")
    for sample in burst.samples:
        report.write(f"    exception: {sample}")
    if burst.errors:
        report.fail(f"burst: {sum(burst.errors.values())} stock changes raised")
    expected = expected_quantities(channels, skus)
    initial = fx["initial"]
    to_change = sum(1 for c in channels for code in skus if expected[c.platform][code] != initial[c.platform][code])
    settled, matched_at = wait_until_settled(report, watcher, expected, None, options["settle_timeout"], began)
    last_commit = max(burst.committed.values(), default=began)
    mismatches = watcher.differences(expected)
    report.write(f"  every store holds the hub's quantity {matched_at - last_commit:.1f} s after the last commit"
                 if matched_at else f"  NOT settled within {options['settle_timeout']:.0f} s")
    per_platform, never = delays(watcher, channels, expected, initial, burst.committed)
    every = [d for rows in per_platform.values() for d in rows]
    polled = [d[0] for d in every]
    report.write(f"  delay commit → sandbox holds the new quantity ({len(every)} of {to_change} (store, SKU) pairs "
                 f"whose quantity changed; polled every {options['poll_interval'] * 1000:.0f} ms):")
    report.write(f"    overall: p50 {seconds(polled, 50):.2f} s, p95 {seconds(polled, 95):.2f} s, max "
                 f"{seconds(polled, 100):.2f} s (by the sandbox's own push stamp: p50 "
                 f"{seconds([d[1] for d in every], 50):.2f} s, p95 {seconds([d[1] for d in every], 95):.2f} s)")
    calls = {p: n - calls_before[p] for p, n in watcher.total_calls().items()}
    api_requests = {c.platform: c.sandbox.request_count - requests_before[c.platform] for c in channels}
    figures = {"p95_s_by_platform": {}, "p50_s_by_platform": {}}
    for channel in channels:
        platform = channel.platform
        values = [d[0] for d in per_platform[platform]]
        times = sorted(watcher.push_times[platform])
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        first = (times[0] - began) if times else 0.0
        report.write(f"    {platform:8s} p50 {seconds(values, 50):6.2f} s, p95 {seconds(values, 95):6.2f} s, max "
                     f"{seconds(values, 100):6.2f} s; {calls[platform]} stock calls ({api_requests[platform]} API "
                     f"requests, {api_requests[platform] / max(calls[platform], 1):.1f} per call) for {sum(1 for code in skus if expected[platform][code] != initial[platform][code])}"
                     f" changed quantities; first push {first:.1f} s after the burst began, pushes spread over "
                     f"{span:.1f} s = {len(times) / span if span else 0:.1f} calls/s")
        figures["p95_s_by_platform"][platform] = seconds(values, 95)
        figures["p50_s_by_platform"][platform] = seconds(values, 50)
    total_calls = sum(calls.values())
    with watcher.lock:  # the watcher counted nothing before this phase
        repeated = {p: sum(n - 1 for n in counts.values() if n > 1) for p, counts in watcher.calls.items()}
    report.write(f"  platform calls: {total_calls} (per store {calls}) for {len(burst.committed)} stock changes × "
                 f"{len(channels)} stores = {to_change} quantities to push; {sum(repeated.values())} repeated "
                 f"(a SKU pushed again to the same store: {repeated}); API requests per store {api_requests}")
    tasks, _ = flush_tasks(worker, log_line)
    if tasks:
        took = [t["took"] for t in tasks]
        report.write(f"  flush tasks run by the worker: {len(tasks)}, at most ~{max_overlap(tasks)} at once (worker log); "
                     f"duration p50 {seconds(took, 50):.2f} s, max {max(took):.2f} s; calls per flush max "
                     f"{max(t.get('calls', 0) for t in tasks)}, unchanged {sum(t.get('unchanged', 0) for t in tasks)}"
                     f", errors {sum(t.get('errors', 0) for t in tasks)}")
    errored = ChannelStock.objects.exclude(last_error="").count()
    report.write(f"  after settling: {mismatches} (store, SKU) pairs differ from the hub, {never} never showed the "
                 f"new quantity, {errored} ChannelStock rows with an error, push records naming an unknown SKU "
                 f"{dict(watcher.unknown)}")
    if mismatches:
        report.fail(f"burst: {mismatches} (store, SKU) pairs do not hold the hub's quantity after "
                    f"{options['settle_timeout']:.0f} s")
    figures.update({
        "changes": len(burst.committed), "burst_wall_s": round(burst.wall, 3), "quantities_to_push": to_change,
        "p50_s": seconds(polled, 50), "p95_s": seconds(polled, 95), "max_s": seconds(polled, 100),
        "p95_push_stamp_s": seconds([d[1] for d in every], 95),
        "settled_after_last_commit_s": round(matched_at - last_commit, 3) if matched_at else None,
        # platform_calls counts SKU pushes (one per SKU a platform was told); api_requests the HTTP requests they took.
        "platform_calls": total_calls, "platform_calls_by_platform": calls, "api_requests_by_platform": api_requests,
        "api_requests": sum(api_requests.values()),
        "repeated_calls": sum(repeated.values()), "repeated_calls_by_platform": repeated,
        "mismatches": mismatches, "never_matched": never,
        "settled": settled, "flush_tasks": len(tasks), "flush_max_concurrent": max_overlap(tasks) if tasks else 0,
        "burst_errors": sum(burst.errors.values()), "rows_with_error": errored,
    })
    report.figures.update(figures)


def phase_hot(report: Report, fx: dict, options: dict) -> None:
    channels, skus, watcher = fx["channels"], fx["skus"], fx["watcher"]
    n, threads = options["hot_orders"], options["workers"]
    code = next(iter(skus))
    sku = SKU.objects.get(pk=skus[code])
    report.write(f"\n[2] hot SKU: {n} one-unit orders on {code} reserved through stock_reserve_for_order from "
                 f"{threads} threads")
    order_ids = bulk_orders(fx["manual"], sku, n)
    before = {c.platform: watcher.calls[c.platform][code] for c in channels}
    began = time.time()
    burst = run_burst([(order_id, order_id) for order_id in order_ids], threads,
                      lambda order_id: reserve(order_id))
    report.write(f"  {len(burst.committed)} reservations committed in {burst.wall:.2f} s "
                 f"({len(burst.committed) / burst.wall:.0f}/s), errors {dict(burst.errors)}")
    for sample in burst.samples:
        report.write(f"    exception: {sample}")
    if burst.errors or len(burst.committed) != n:
        report.fail(f"hot: {n - len(burst.committed)} reservations did not commit ({dict(burst.errors)})")
    expected = {platform: {code: quantities[code]} for platform, quantities in
                expected_quantities(channels, {code: skus[code]}).items()}
    settled, matched_at = wait_until_settled(report, watcher, expected, {code}, options["settle_timeout"], began)
    last_commit = max(burst.committed.values(), default=began)
    mismatches = watcher.differences(expected, {code})
    with watcher.lock:
        calls = {c.platform: watcher.calls[c.platform][code] - before[c.platform] for c in channels}
    report.write(f"  platform calls caused by {len(burst.committed)} reservations: {calls} (total "
                 f"{sum(calls.values())}); every store holds the hub's quantity "
                 + (f"{matched_at - last_commit:.1f} s after the last commit" if matched_at else "NOT (timeout)"))
    if mismatches:
        report.fail(f"hot: {mismatches} stores do not hold the hub's quantity of {code}")
    report.figures.update({
        "hot_reservations": len(burst.committed), "hot_wall_s": round(burst.wall, 3), "hot_sku_calls": calls,
        "hot_sku_calls_total": sum(calls.values()), "hot_mismatches": mismatches, "hot_settled": settled,
        "hot_settled_after_last_commit_s": round(matched_at - last_commit, 3) if matched_at else None,
    })
    report.figures["mismatches"] = report.figures.get("mismatches", 0) + mismatches


def check_rows(report: Report, fx: dict) -> None:
    """ChannelStock agrees with what the sandboxes received: nothing stale or waiting, pushes counted once each."""
    stale = waiting()
    pushes = ChannelStock.objects.aggregate(total=Sum("pushes"))["total"] or 0
    received = sum(fx["watcher"].total_calls().values())
    report.write(f"\n[end] ChannelStock: {stale} stale rows or marks; {pushes} pushes recorded by the hub, {received} "
                 "received by the sandboxes")
    if stale:
        report.fail(f"end: {stale} ChannelStock rows or marks still stale")
    if pushes != received:
        report.fail(f"end: the hub recorded {pushes} pushes, the sandboxes received {received}")
    report.figures["stock_mismatches"] = check_stock_consistency(report, "end")


# --- Run ------------------------------------------------------------------------------------------------

def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    report.figures.update({"skus": options["skus"], "workers": options["workers"], "hot_orders": options["hot_orders"],
                           "shopify_bucket": options["shopify_bucket"],
                           "celery_concurrency": options["celery_concurrency"]})
    redis_url = bench_redis_url(options["redis_db"])
    broker = redis.Redis.from_url(redis_url)
    try:
        with ExitStack() as stack:
            stack.enter_context(bench.production_like_settings())
            name = stack.enter_context(bench.scratch_database(options["db_name"], keep=options["keep_db"],
                                                              out=report))
            broker.flushdb()
            stack.callback(broker.flushdb)
            app = stack.enter_context(celery_on(redis_url))
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stock-push-"))
            begin = time.perf_counter()
            catalogue = catalogue_fixture(skus=options["skus"], units=UNITS_PER_SKU, seed=SEED, prefix=PREFIX)
            skus = dict(SKU.objects.filter(code__in=[c for c, _p in catalogue]).values_list("code", "id"))
            skus = {code: skus[code] for code, _price in catalogue}  # catalogue order
            channels = make_channels(catalogue, options["shopify_bucket"])
            for channel in channels:
                channel.sandbox.start()
                stack.callback(channel.sandbox.stop)
            create_stores(channels, skus)
            initial = start_in_sync(channels, skus)
            manual = Store.objects.create(platform=Platform.MANUAL, code="bench-manual", name="bench manual")
            size, leak, _throttle, (points, restore) = SHOPIFY_BUCKETS[options["shopify_bucket"]]
            report.write(f"fixtures: {len(skus)} SKUs × {UNITS_PER_SKU} units in one warehouse, 4 stores each mapping "
                         f"every SKU to its sandbox ({', '.join(c.sandbox.base_url for c in channels)}), all in "
                         f"sync, in {time.perf_counter() - begin:.1f} s; Shopify bucket {options['shopify_bucket']} "
                         + (f"(REST {size} calls, leaking {leak:g}/s; GraphQL {points:g} points, restoring "
                            f"{restore:g}/s)" if options["shopify_bucket"] != "off"
                            else "(no rate limit in practice)")
                         + f"; broker and cache {redis_url} (purged before and after)")
            report.write("stores (share, buffer): " + ", ".join(
                f"{p} ({s}, {b})" for p, (s, b) in STORE_SETTINGS.items()))
            worker = start_worker(report, app, name, redis_url, options["celery_concurrency"], log_dir, stack)
            watcher = Watcher(channels, initial, options["poll_interval"])
            watcher.start()
            stack.callback(watcher.stop)
            fx = {"channels": channels, "skus": skus, "watcher": watcher, "initial": initial, "manual": manual,
                  "warehouse": Warehouse.objects.get(code=f"{PREFIX.lower()}-wh")}
            phase_burst(report, fx, options, worker)
            phase_hot(report, fx, options)
            worker.stop()
            watcher.stop()
            check_rows(report, fx)
            if "Traceback" in worker.tail(400):
                report.write(f"  worker log tail:\n{worker.tail(30)}")
            figures = report.figures
            report.write(f"\nsummary: {figures['changes']} stock changes → {figures['platform_calls']} platform calls; "
                         f"delay p50 {figures['p50_s']:.2f} s, p95 {figures['p95_s']:.2f} s (per platform "
                         f"{figures['p95_s_by_platform']}); {figures['hot_reservations']} reservations on one SKU → "
                         f"{figures['hot_sku_calls']} calls; mismatches {figures['mismatches']}")
    except Exception as exc:
        report.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        report.finish()
    return not report.failures
