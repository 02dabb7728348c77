"""Webhook benchmark: signed Shopify webhooks against gunicorn, the bare-view floor, then a Celery worker drains them."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
import requests
from django.conf import settings
from django.db import connection
from django.db.models import Count

import bench
from bench.common import (
    BenchShopifySandbox,
    Report,
    catalogue_fixture,
    check_stock_consistency,
    percentile_ms,
    shopify_store,
)
from connectors.models import ChannelSyncState, InboxMessage, InboxStatus
from orders.models import Order, OrderStatus

SEED = 23
UNITS_PER_SKU = 1_000_000
DEFAULT_REDIS_DB = 13
READY_TIMEOUT_S = 60
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def add_arguments(parser) -> None:
    parser.add_argument("--requests", type=int, default=5000, help="webhook deliveries per phase (default 5000)")
    parser.add_argument("--concurrency", type=int, default=16, help="load generator threads (default 16)")
    parser.add_argument("--skus", type=int, default=200, help="SKUs in the catalogue, all in stock (default 200)")
    # 4 × 2 came out a little ahead of 2 × 4 and 2 × 8 on the 2-core bench machine (within the noise of 4 × 4).
    parser.add_argument("--gunicorn-workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--gunicorn-threads", type=int, default=2,
                        help="threads per gunicorn worker (gthread worker class; default 2)")
    parser.add_argument("--celery-concurrency", type=int, default=4, help="Celery worker threads (default 4)")
    parser.add_argument("--no-beat", action="store_true",
                        help="run the worker alone, without `celery beat` (whose inbox sweeper re-enqueues stores "
                             "with overdue pending rows, as in production)")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB,
                        help=f"Redis database of the broker, purged before and after (default {DEFAULT_REDIS_DB})")
    parser.add_argument("--warmup", type=int, default=64, help="untimed deliveries before each phase (default 64)")
    parser.add_argument("--drain-timeout", type=float, default=900.0,
                        help="seconds to wait for the worker to process every delivery (default 900)")
    parser.add_argument("--stall-timeout", type=float, default=120.0,
                        help="stop waiting when nothing was processed for this many seconds (default 120)")


# --- Subprocesses ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_redis_url(db: int) -> str:
    """The configured Redis server (or 127.0.0.1:6379) with the bench's own database number."""
    configured = settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    parts = urlsplit(configured)
    if parts.path.strip("/") == str(db):
        raise ValueError(f"Redis database {db} is the configured one ({configured}); the bench purges it. "
                         "Pass another --redis-db.")
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def scratch_database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}{'@' if auth else ''}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def server_env(db_name: str, redis_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) pointed at the scratch database and the bench's Redis database."""
    return {
        **os.environ, "DATABASE_URL": scratch_database_url(db_name), "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url, "CELERY_TASK_ALWAYS_EAGER": "0", "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0", "OMS_BENCH_BARE_WEBHOOK": "1", "DJANGO_LOG_LEVEL": "WARNING",
    }


class Child:
    """A subprocess in its own process group, stopped (TERM, then KILL) with everything it forked."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: str):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        self.log.close()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd (state) on


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU seconds of each live pid."""
    seconds = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICK
    return seconds


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def backend_pids(db_name: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db_name])
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """CPU seconds spent by this process (the load generator), the server's process group and the PostgreSQL
    backends of the scratch database between start() and stop()."""

    def __init__(self, server_pgid: int, db_name: str):
        self.server_pgid, self.db_name = server_pgid, db_name

    def _sample(self) -> dict[str, dict[int, float]]:
        return {"load generator": cpu_seconds([os.getpid()]), "gunicorn": cpu_seconds(group_pids(self.server_pgid)),
                "postgres backends": cpu_seconds(backend_pids(self.db_name))}

    def start(self) -> None:
        self.before = self._sample()
        self.began = time.perf_counter()

    def stop(self) -> tuple[float, dict[str, float]]:
        after, wall = self._sample(), time.perf_counter() - self.began
        return wall, {name: sum(seconds - self.before[name].get(pid, 0.0) for pid, seconds in after[name].items())
                      for name in after}


# --- Load --------------------------------------------------------------------------------------------

@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


def make_deliveries(sandbox: BenchShopifySandbox, n: int) -> list[Delivery]:
    """``n`` orders/create webhooks, each a new paid order, signed and headed exactly as the sandbox sends them."""
    made: list[Delivery] = []

    def capture(*, body: bytes, headers: dict[str, str], topic: str, order_id: str) -> None:
        made.append(Delivery(body, headers))

    sandbox.post_webhook = capture  # build, sign, keep: nothing is sent
    for _ in range(n):
        with sandbox.lock:
            order = sandbox.generate_order()
        sandbox.deliver_webhook("orders/create", order)
    return made


@dataclass
class LoadStats:
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    wall: float = 0.0

    @property
    def accepted(self) -> int:
        return self.statuses[200]

    @property
    def rate(self) -> float:
        return self.accepted / self.wall if self.wall else 0.0


def load(url: str, deliveries: list[Delivery], concurrency: int) -> LoadStats:
    """POST every delivery from ``concurrency`` threads, one keep-alive requests.Session each."""
    work: queue.SimpleQueue = queue.SimpleQueue()
    for delivery in deliveries:
        work.put(delivery)
    per_thread = [LoadStats() for _ in range(concurrency)]
    started: list[float] = []
    barrier = threading.Barrier(concurrency + 1, action=lambda: started.append(time.perf_counter()))

    def worker(stats: LoadStats) -> None:
        session = requests.Session()
        clock = time.perf_counter
        try:
            barrier.wait(timeout=READY_TIMEOUT_S)
            while True:
                try:
                    delivery = work.get_nowait()
                except queue.Empty:
                    return
                begin = clock()
                try:
                    response = session.post(url, data=delivery.body, headers=delivery.headers, timeout=60)
                except requests.RequestException as exc:
                    stats.errors[type(exc).__name__] += 1
                    continue
                stats.latencies.append(clock() - begin)
                stats.statuses[response.status_code] += 1
        finally:
            session.close()

    threads = [threading.Thread(target=worker, args=(stats,), name=f"load-{n}", daemon=True)
               for n, stats in enumerate(per_thread)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=READY_TIMEOUT_S)
    for thread in threads:
        thread.join()
    total = LoadStats(wall=time.perf_counter() - started[0])
    for stats in per_thread:
        total.statuses.update(stats.statuses)
        total.errors.update(stats.errors)
        total.latencies.extend(stats.latencies)
    return total


def wait_until_serving(base_url: str, server: Child) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.tail()}")
        try:
            requests.get(f"{base_url}/bench/bare-webhook/none/", timeout=2)  # any answer means it serves
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {READY_TIMEOUT_S} s:\n{server.tail()}")


def run_phase(report: Report, label: str, url: str, deliveries: list[Delivery], concurrency: int,
              meter: CpuMeter) -> LoadStats:
    meter.start()
    stats = load(url, deliveries, concurrency)
    wall, cpu = meter.stop()
    report.write(f"  {stats.accepted} accepted (200) of {len(deliveries)} in {stats.wall:.2f} s = {stats.rate:.0f} "
                 f"requests/s; acknowledgement p50 {percentile_ms(stats.latencies, 50)} ms, p99 "
                 f"{percentile_ms(stats.latencies, 99)} ms, max {percentile_ms(stats.latencies, 100)} ms")
    report.write(f"  statuses {dict(stats.statuses)}, connection errors {dict(stats.errors)}")
    report.write("  CPU seconds over the phase (2 cores = " + f"{2 * wall:.1f} CPU-s available): " + ", ".join(
        f"{name} {seconds:.1f} ({seconds / wall * 100:.0f}% of a core)" for name, seconds in cpu.items()))
    if stats.accepted != len(deliveries):
        report.fail(f"{label}: {len(deliveries) - stats.accepted} deliveries not acknowledged with 200 "
                    f"({dict(stats.statuses)}, {dict(stats.errors)})")
    report.figures.update({f"{label}_cpu_s": {name: round(seconds, 2) for name, seconds in cpu.items()}})
    return stats


# --- Draining ------------------------------------------------------------------------------------------

def drain_with_worker(report: Report, options: dict, env: dict[str, str], log_dir: str, stack: ExitStack, store,
                      delivered: int, broker: redis.Redis) -> tuple[int, float]:
    concurrency = options["celery_concurrency"]
    argv = [sys.executable, "-m", "celery", "-A", "oms", "worker", "--pool=threads", f"-c{concurrency}",
            "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--hostname", f"bench-{os.getpid()}@%h"]
    report.write(f"\n[3] drain: a Celery worker ({' '.join(argv[3:])}) processes what the webhooks stored")
    worker = Child("celery", argv, env, log_dir)
    stack.callback(worker.stop)
    beat = None
    if not options["no_beat"]:
        # As deployed (Procfile.dev, docker-compose): beat apart from the worker, with the project's schedule.
        beat_argv = [sys.executable, "-m", "celery", "-A", "oms", "beat", "--loglevel=WARNING",
                     f"--schedule={Path(log_dir) / 'celerybeat-schedule'}"]
        report.write(f"  with {' '.join(beat_argv[3:])} (its sweep-inbox task re-enqueues stores whose pending rows "
                     "are overdue by 30 s, every 30 s)")
        beat = Child("celery-beat", beat_argv, env, log_dir)
        stack.callback(beat.stop)
    inbox = InboxMessage.objects.filter(store=store)
    begin = time.perf_counter()
    deadline = begin + options["drain_timeout"]
    last_report, done, first_done_at = begin, 0, None
    progress_at, seen = begin, 0
    while time.perf_counter() < deadline:
        done = inbox.filter(status=InboxStatus.DONE).count()
        now = time.perf_counter()
        if done and first_done_at is None:
            first_done_at = now
        if done != seen:
            progress_at, seen = now, done
        if done >= delivered or not worker.alive():
            break
        if now - progress_at > options["stall_timeout"]:
            report.write(f"  nothing processed for {options['stall_timeout']:.0f} s: stopped waiting")
            break
        if now - last_report >= 10:
            report.write(f"  {now - begin:6.1f} s: {done}/{delivered} processed, {done / (now - begin):.1f}/s")
            last_report = now
        time.sleep(0.5)
    drain_s = time.perf_counter() - begin
    if not worker.alive():
        report.fail(f"the Celery worker exited with {worker.process.returncode}:\n{worker.tail()}")
    pending = inbox.filter(status=InboxStatus.PENDING).count()
    broker_left = broker.llen("celery")
    report.write(f"  {done}/{delivered} processed in {drain_s:.1f} s = {done / drain_s:.1f} orders/s (worker start "
                 f"included; first order done after {(first_done_at or begin) - begin:.1f} s); still pending "
                 f"{pending}")
    if done < delivered:
        report.write(f"  worker log, last lines:\n{worker.tail()}")
        report.fail(f"drain: {delivered - done} deliveries not processed ({pending} pending, {broker_left} task "
                    "messages left in the broker)")
    worker.stop()
    if beat is not None:
        beat.stop()
    return done, drain_s


def check_results(report: Report, store, delivered: int, processed: int) -> None:
    report.write("\n[4] checks")
    with connection.cursor() as cursor:
        cursor.execute(f"""SELECT COUNT(*) FROM (SELECT platform_order_id FROM {Order._meta.db_table}
                           WHERE store_id = %s GROUP BY platform_order_id HAVING COUNT(*) > 1) AS twice""", [store.pk])
        duplicates = cursor.fetchone()[0]
        cursor.execute(f"""SELECT COUNT(*) FROM (SELECT platform_order_id FROM {InboxMessage._meta.db_table}
                           WHERE store_id = %s GROUP BY platform_order_id HAVING COUNT(*) > 1) AS twice""", [store.pk])
        inbox_duplicates = cursor.fetchone()[0]
    counted = ChannelSyncState.objects.get(store=store).duplicates
    rows = InboxMessage.objects.filter(store=store).count()
    statuses = Counter(dict(Order.objects.filter(store=store).values_list("status").annotate(n=Count("id"))
                            .order_by()))
    report.write(f"  delivered {delivered}, inbox rows {rows}, processed {processed}; orders by status "
                 f"{dict(statuses)}")
    report.write(f"  duplicates: platform orders imported twice {duplicates}; platform orders with more than one inbox "
                 f"row {inbox_duplicates}; repeat deliveries counted by the store {counted}")
    if rows != delivered or processed != delivered:
        report.fail(f"{delivered} delivered, {rows} inbox rows, {processed} processed")
    if duplicates or inbox_duplicates or counted:
        report.fail(f"duplicates: {duplicates} orders, {inbox_duplicates} inbox, {counted} counted")
    if statuses.get(OrderStatus.READY, 0) != processed:
        report.fail(f"orders by status {dict(statuses)}: expected {processed} ready")
    mismatches = check_stock_consistency(report, "webhook")
    report.figures.update({"delivered": delivered, "processed": processed, "duplicates": duplicates,
                           "inbox_duplicates": inbox_duplicates, "repeat_deliveries": counted,
                           "ready": statuses.get(OrderStatus.READY, 0), "stock_mismatches": mismatches})


# --- Run ---------------------------------------------------------------------------------------------

def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    n, concurrency = options["requests"], options["concurrency"]
    workers, threads = options["gunicorn_workers"], options["gunicorn_threads"]
    report.figures.update({"requests": n, "concurrency": concurrency, "gunicorn_workers": workers,
                           "gunicorn_threads": threads})
    redis_url = bench_redis_url(options["redis_db"])
    broker = redis.Redis.from_url(redis_url)
    with ExitStack() as stack:
        stack.enter_context(bench.production_like_settings())
        name = stack.enter_context(bench.scratch_database(options["db_name"], keep=options["keep_db"], out=report))
        broker.flushdb()
        stack.callback(broker.flushdb)
        log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-webhook-"))
        sandbox = BenchShopifySandbox(skus=catalogue_fixture(skus=options["skus"], units=UNITS_PER_SKU), seed=SEED)
        credentials = sandbox.connector_credentials()  # only api_secret matters: nothing polls these stores
        store = shopify_store(code="bench-webhook", credentials=credentials, polling=False)
        bare = shopify_store(code="bench-bare", credentials=credentials, polling=False)
        warm = shopify_store(code="bench-warm", credentials=credentials, polling=False)
        begin = time.perf_counter()
        deliveries = make_deliveries(sandbox, n)
        warmups = make_deliveries(sandbox, options["warmup"])
        report.write(f"fixtures: {options['skus']} SKUs in stock, {n} signed orders/create webhooks (paid orders of "
                     f"1-5 lines, unique X-Shopify-Event-Id) made by a ShopifySandbox that does not serve, in "
                     f"{time.perf_counter() - begin:.1f} s; broker {redis_url} (purged before and after)")

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "gunicorn", "oms.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
                "--keep-alive", "30", "--backlog", "2048", "--log-level", "warning"]
        env = server_env(name, redis_url)
        server = Child("gunicorn", argv, env, log_dir)
        stack.callback(server.stop)
        wait_until_serving(base_url, server)
        meter = CpuMeter(server.pid, name)
        report.write(f"server: {' '.join(argv[3:])}; DJANGO_DEBUG=0 (production settings, no SSL redirect), "
                     f"DATABASE_URL → scratch database {name}, REDIS_URL → {redis_url}; the load generator runs in "
                     f"this process: {concurrency} threads, one keep-alive requests.Session each")

        real_url, bare_url = f"{base_url}/webhooks/shopify/{store.code}/", f"{base_url}/bench/bare-webhook/{bare.code}/"
        load(f"{base_url}/webhooks/shopify/{warm.code}/", warmups, concurrency)
        report.write(f"\n[1] real webhook endpoint: POST {real_url} (verify, one insert into the inbox, wake the "
                     f"drain: at most two task messages per store and second; {options['warmup']} untimed warm-up "
                     "deliveries to another store first)")
        real = run_phase(report, "real", real_url, deliveries, concurrency, meter)

        load(bare_url, warmups, concurrency)
        warm_rows = InboxMessage.objects.filter(store=bare).count()
        report.write(f"\n[2] bare view: POST {bare_url} (verify the HMAC, insert one inbox row, nothing else)")
        floor = run_phase(report, "bare", bare_url, deliveries, concurrency, meter)
        bare_rows = InboxMessage.objects.filter(store=bare).count() - warm_rows
        if bare_rows != floor.accepted:
            report.fail(f"bare: {floor.accepted} accepted but {bare_rows} rows stored")
        # Nothing is to process these: removed, so a sweeper never turns them into orders.
        InboxMessage.objects.filter(store__in=[bare, warm]).delete()
        ratio = real.rate / floor.rate if floor.rate else 0.0
        report.write(f"\n  real/bare = {real.rate:.0f}/{floor.rate:.0f} = {ratio:.3f}")
        report.figures.update({
            "requests_per_s": round(real.rate, 1), "p50_ms": percentile_ms(real.latencies, 50),
            "p99_ms": percentile_ms(real.latencies, 99), "max_ms": percentile_ms(real.latencies, 100),
            "bare_requests_per_s": round(floor.rate, 1), "bare_p50_ms": percentile_ms(floor.latencies, 50),
            "bare_p99_ms": percentile_ms(floor.latencies, 99), "ratio": round(ratio, 3),
            "enqueued_messages": broker.llen("celery"),
        })
        report.write(f"  broker: {report.figures['enqueued_messages']} task messages waiting in the 'celery' list")
        server.stop()  # the worker gets the machine to itself

        processed, drain_s = drain_with_worker(report, options, env, log_dir, stack, store, real.accepted,
                                                     broker)
        report.figures.update({"drain_s": round(drain_s, 2), "drain_orders_per_s": round(processed / drain_s, 1)})
        check_results(report, store, real.accepted, processed)
        report.write(f"\nsummary: {real.rate:.0f} webhooks/s acknowledged (p50 {report.figures['p50_ms']} ms, p99 "
                     f"{report.figures['p99_ms']} ms) vs {floor.rate:.0f}/s for the bare view: ratio {ratio:.2f}; "
                     f"{processed}/{real.accepted} processed by the worker in {drain_s:.0f} s")
    report.finish()
    return not report.failures
