"""`make soak`: the `make run` stack under load with its Celery worker killed twice; prints JSON figures, fails on loss."""

# It starts supervisord.conf exactly as `make run` does, but on free ports of its own and with its own var folder
# (var/soak-<pid>: a fresh SQLite database and file-system broker), so it never touches a running trial or the
# tests. Load: signed-in page and API reads as the demo manager, and new Shopify sandbox orders that reach the hub
# as webhooks and become orders only through the worker (inbox -> process_inbox_task). The worker is killed with
# SIGKILL twice; supervisord must start it again, and every sandbox order must still become an order (a task
# message the killed worker held is re-sent by the inbox sweeper from its pending row). Standard library and
# requests only; everything it reaches is on 127.0.0.1.

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SUPERVISORD = str(ROOT / ".venv" / "bin" / "supervisord")
SUPERVISORCTL = str(ROOT / ".venv" / "bin" / "supervisorctl")
PORT_VARS = ["OMS_PORT", "OMS_SHOPIFY_SANDBOX_PORT", "OMS_TAOBAO_SANDBOX_PORT", "OMS_PDD_SANDBOX_PORT",
             "OMS_DOUYIN_SANDBOX_PORT", "OMS_SF_SANDBOX_PORT", "OMS_WECHAT_SANDBOX_PORT",
             "OMS_VPRINTER_SH_PORT", "OMS_VPRINTER_GZ_PORT",
             "OMS_VPRINTER_US_NJ_PORT"]
PAGES = ["/orders/", "/api/v1/orders/", "/fulfillment/kanban/SH/", "/inventory/", "/healthz"]
# The health page answers 503 while the worker's heartbeat row is stale (the worker just killed and starting
# again): an answer, counted apart from errors.
HEALTH = "/healthz"
HTTP_TIMEOUT_S = 15
START_TIMEOUT_S = 120
RESTART_TIMEOUT_S = 60
# A task message the killed worker held comes back through the inbox sweeper: pending for 30 s, swept every 30 s.
DRAIN_TIMEOUT_S = 90


def free_ports(count: int) -> list[int]:
    """Ports the kernel has just handed out as free (closed again at once; the stack binds them a moment later)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Stack:
    """supervisord with the trial programs, in its own process group, with its own environment."""

    def __init__(self, var_dir: Path, *, demo_orders: int = 300):
        self.var_dir = var_dir
        self.demo_orders = demo_orders
        ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True))
        self.env = {key: value for key, value in os.environ.items()
                    if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
        self.env.update({key: str(port) for key, port in ports.items()})
        self.env.update({"OMS_HOST": "127.0.0.1", "OMS_VAR_DIR": str(var_dir), "OMS_SANDBOX_RATE": "4",
                         # A load test, not a throttle test: the staff API limit would answer 429 to the readers.
                         "OMS_API_RATE_STAFF": "1000000/min"})
        self.base = f"http://127.0.0.1:{ports['OMS_PORT']}"
        self.shopify = f"http://127.0.0.1:{ports['OMS_SHOPIFY_SANDBOX_PORT']}"
        self.process: subprocess.Popen | None = None
        self.log_path = var_dir / "stack.log"

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)

    def start(self) -> None:
        (self.var_dir / "log").mkdir(parents=True, exist_ok=True)
        for command in (["migrate", "--noinput"], ["roles_sync"], ["demo_data", "--orders", str(self.demo_orders)]):
            self.manage(*command)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([SUPERVISORD, "-c", str(ROOT / "supervisord.conf")], cwd=ROOT,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def worker_pid(self) -> int:
        """The worker's pid as supervisord reports it; 0 while it is not running."""
        out = subprocess.run([SUPERVISORCTL, "-c", str(ROOT / "supervisord.conf"), "pid", "worker"], cwd=ROOT,
                             env=self.env, capture_output=True, text=True, timeout=30).stdout.strip()
        return int(out) if out.isdigit() else 0

    def stop(self) -> None:
        """supervisord stops its programs (as groups); whatever is left of our session is killed after that."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # our own session only (start_new_session above)
        except ProcessLookupError:
            pass
        self.process.wait()


class Load:
    """Reader threads and one order feeder, each a bounded loop until ``stop`` is set."""

    def __init__(self, stack: Stack, session: requests.Session):
        self.stack, self.session = stack, session
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.order_ids: list[str] = []
        self.health_degraded = 0

    def _record(self, started: float, error: str | None) -> None:
        with self.lock:
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            if error:
                self.errors[error] = self.errors.get(error, 0) + 1

    def read(self, offset: int) -> None:
        cookies = self.session.cookies.copy()
        index = offset
        while not self.stop.is_set():
            path = PAGES[index % len(PAGES)]
            index += 1
            started = time.perf_counter()
            try:
                response = requests.get(self.stack.base + path, cookies=cookies, timeout=HTTP_TIMEOUT_S,
                                        allow_redirects=False)
                if path == HEALTH and response.status_code == 503:
                    with self.lock:
                        self.health_degraded += 1
                    error = None
                else:
                    error = None if response.status_code == 200 else f"{path} {response.status_code}"
            except requests.RequestException as exc:
                error = f"{path} {exc.__class__.__name__}"
            self._record(started, error)
            self.stop.wait(0.05)

    def feed(self, every_s: float, per_batch: int) -> None:
        while not self.stop.wait(every_s):
            try:
                response = requests.post(f"{self.stack.shopify}/_sandbox/orders", json={"generate": per_batch},
                                         timeout=HTTP_TIMEOUT_S)
                response.raise_for_status()
                with self.lock:
                    self.order_ids.extend(str(i) for i in response.json()["ids"])
            except requests.RequestException as exc:
                with self.lock:
                    key = f"sandbox {exc.__class__.__name__}"
                    self.errors[key] = self.errors.get(key, 0) + 1


def wait_for_web(stack: Stack) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(f"supervisord exited with {stack.process.returncode}")
        try:
            if requests.get(stack.base + "/accounts/login/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the web did not answer within {START_TIMEOUT_S} s")


def log_in(stack: Stack) -> requests.Session:
    session = requests.Session()
    session.get(stack.base + "/accounts/login/", timeout=HTTP_TIMEOUT_S)
    response = session.post(stack.base + "/accounts/login/", timeout=HTTP_TIMEOUT_S, allow_redirects=False,
                            data={"username": "manager", "password": "demo-manager-2026",
                                  "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                            headers={"Referer": stack.base + "/accounts/login/"})
    if response.status_code != 302:
        raise RuntimeError(f"the demo manager could not log in ({response.status_code})")
    return session


def kill_worker(stack: Stack) -> bool:
    """SIGKILL the worker, then wait for supervisord to start a new one; True when it did."""
    pid = stack.worker_pid()
    if not pid:
        return False
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(1)
        new = stack.worker_pid()
        if new and new != pid:
            return True
    return False


def orders_arrived(stack: Stack, order_ids: list[str]) -> tuple[int, dict[str, int]]:
    """How many of the sandbox orders are orders in the hub, and the inbox rows by status."""
    db = sqlite3.connect(f"file:{stack.var_dir / 'oms.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        found: set[str] = set()
        for start in range(0, len(order_ids), 500):
            chunk = order_ids[start:start + 500]
            rows = db.execute(f"SELECT platform_order_id FROM orders_order WHERE platform_order_id IN "
                              f"({','.join('?' * len(chunk))})", chunk)
            found.update(row[0] for row in rows)
        inbox = dict(db.execute("SELECT status, count(*) FROM connectors_inboxmessage GROUP BY status").fetchall())
        return len(found), inbox
    finally:
        db.close()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def soak(*, duration: int, kills: int, readers: int, keep: bool, demo_orders: int = 300) -> dict:
    var_dir = ROOT / "var" / f"soak-{os.getpid()}"
    stack = Stack(var_dir, demo_orders=demo_orders)
    began = time.monotonic()
    figures: dict = {"duration_s": duration}
    try:
        stack.start()
        wait_for_web(stack)
        figures["startup_s"] = round(time.monotonic() - began, 1)
        load = Load(stack, log_in(stack))
        threads = [threading.Thread(target=load.read, args=(i,), daemon=True) for i in range(readers)]
        threads.append(threading.Thread(target=load.feed, args=(2.0, 2), daemon=True))
        for thread in threads:
            thread.start()
        load_began = time.monotonic()
        restarts = 0
        for n in range(1, kills + 1):
            # Kills spread over the run, the last well before its end so its lost messages are swept in time.
            time.sleep(max(0.0, load_began + duration * n / (kills + 1) - time.monotonic()))
            restarts += kill_worker(stack)
        time.sleep(max(0.0, load_began + duration - time.monotonic()))
        load.stop.set()
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT_S + 5)
        drain_began = time.monotonic()
        processed, inbox = orders_arrived(stack, load.order_ids)
        while processed < len(load.order_ids) and time.monotonic() - drain_began < DRAIN_TIMEOUT_S:
            time.sleep(2)
            processed, inbox = orders_arrived(stack, load.order_ids)
        # After the kills the restarted worker must have written its heartbeat again (beat runs it every 30 s).
        health = 0
        health_deadline = time.monotonic() + 45
        while health != 200 and time.monotonic() < health_deadline:
            try:
                health = requests.get(stack.base + HEALTH, timeout=HTTP_TIMEOUT_S).status_code
            except requests.RequestException:
                health = 0
            if health != 200:
                time.sleep(2)
        log = stack.log_path.read_text(errors="replace")
        figures.update({
            "requests": len(load.latencies_ms), "errors": sum(load.errors.values()), "error_kinds": load.errors,
            "health_degraded_answers": load.health_degraded,
            "p50_ms": round(statistics.median(load.latencies_ms), 1) if load.latencies_ms else 0.0,
            "p95_ms": percentile(load.latencies_ms, 0.95), "max_ms": percentile(load.latencies_ms, 1.0),
            "orders_created": len(load.order_ids), "orders_processed": processed,
            "orders_lost": len(load.order_ids) - processed, "drain_s": round(time.monotonic() - drain_began, 1),
            "inbox": inbox, "health_at_end": health, "worker_kills": kills, "worker_restarts": restarts,
            "worker_exits_seen": len(re.findall(r"exited: worker \(terminated by SIGKILL", log)),
            "unrecoverable_errors": log.count("Unrecoverable error"),
            "other_exits_seen": len(re.findall(r"exited: (?!worker \(terminated by SIGKILL)", log)),
            "total_s": round(time.monotonic() - began, 1), "log": str(stack.log_path),
        })
    finally:
        stack.stop()
    figures["ok"] = (figures.get("orders_created", 0) > 0 and figures.get("orders_lost") == 0
                     and figures.get("errors") == 0 and figures.get("health_at_end") == 200 and figures.get("worker_restarts") == kills
                     and figures.get("unrecoverable_errors") == 0 and figures.get("other_exits_seen") == 0)
    if figures["ok"] and not keep:
        shutil.rmtree(var_dir, ignore_errors=True)
        figures["log"] = None
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=120, help="seconds of load (default 120; about 3 minutes in all)")
    parser.add_argument("--kills", type=int, default=2, help="times the worker is killed with SIGKILL")
    parser.add_argument("--readers", type=int, default=2, help="threads reading pages and the API")
    parser.add_argument("--demo-orders", type=int, default=300,
                        help="demo orders loaded before the load starts (default 300, as make run; the load's own "
                             "orders are what is checked)")
    parser.add_argument("--keep", action="store_true", help="keep var/soak-<pid> (always kept on failure)")
    args = parser.parse_args()
    if args.duration < 10 or not 0 <= args.kills <= 10 or not 1 <= args.readers <= 16 or args.demo_orders < 0:
        parser.error("--duration must be at least 10, --kills 0..10, --readers 1..16, --demo-orders 0 or more")
    try:
        figures = soak(duration=args.duration, kills=args.kills, readers=args.readers, keep=args.keep,
                       demo_orders=args.demo_orders)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(json.dumps({"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}))
        return 1
    print(json.dumps(figures, ensure_ascii=False))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
