"""What every sandbox (platforms, carriers) shares: the HTTP server, its order store, faults, pushes and records.

A sandbox is a real HTTP server on 127.0.0.1 that keeps its own orders (generated at a rate, or set
by tests through the control API), answers the platform's documented endpoints, delivers
webhooks to the hub with correct signatures, and records what the hub pushed back to it.

Control API (JSON, no auth, under /_sandbox/): GET state, POST faults, POST orders (add or
replace raw platform orders, or {"generate": n}), GET pushed (the recorded push-back calls),
POST reset. Fault switches: latency_ms, rate_limit (answer the next n requests as rate limited),
server_errors (the next n requests get a 5xx), malformed (the next n responses are broken),
down (every request 503 until switched off), duplicate_webhooks, out_of_order_webhooks.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

logger = logging.getLogger(__name__)


@dataclass
class Faults:
    latency_ms: int = 0
    rate_limit: int = 0  # next n API requests are answered as rate limited
    server_errors: int = 0  # next n API requests get a 5xx
    malformed: int = 0  # next n API responses are cut off / not JSON
    down: bool = False
    duplicate_webhooks: bool = False  # every webhook is delivered twice
    out_of_order_webhooks: bool = False  # deliveries are held back and sent newest first


@dataclass
class Response:
    status: int
    body: bytes | str | dict | list
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def json(self):
        return json.loads(self.body or b"null")


class Sandbox:
    """Base class: subclasses implement ``handle_api``, ``generate_order`` and ``deliver_webhook``."""

    platform = ""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, seed: int = 1, rate_per_minute: float = 0,
                 webhook_url: str = "", credentials: dict | None = None):
        self.host, self.port = host, port
        self.rng = random.Random(seed)
        self.rate_per_minute = rate_per_minute
        self.webhook_url = webhook_url
        self.credentials = dict(credentials or {})
        self.faults = Faults()
        self.lock = threading.RLock()
        self.orders: dict[str, dict] = {}  # platform order id → the platform's order JSON
        self.pushed: list[dict] = []  # what the hub sent back (shipments, stock, …)
        self.webhook_log: list[dict] = []  # what the sandbox delivered and the hub's answer
        self.request_count = 0
        self._clock: datetime | None = None  # see set_clock
        self._held_webhooks: list[tuple[str, dict]] = []
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- To implement per platform ---------------------------------------------------------------

    def handle_api(self, request: Request) -> Response:
        raise NotImplementedError

    def generate_order(self) -> dict:
        """A new realistic order in the platform's JSON shape (not yet stored)."""
        raise NotImplementedError

    def order_id(self, order: dict) -> str:
        raise NotImplementedError

    def deliver_webhook(self, topic: str, order: dict) -> None:
        """POST one push for ``order`` to ``self.webhook_url`` with the platform's signature."""

    def rate_limited_response(self) -> Response:
        return Response(429, {"errors": "rate limited"}, {"Retry-After": "1"})

    def server_error_response(self) -> Response:
        return Response(503, {"errors": "service unavailable"})

    def down_response(self) -> Response:
        """The whole platform is unreachable (the `down` fault): a plain 503 from the edge."""
        return Response(503, b"<html><body>503 Service Unavailable</body></html>", {"Content-Type": "text/html"})

    def reset(self) -> None:
        """Forget orders, records and faults (subclasses extend it with their own records)."""
        with self.lock:
            self.orders.clear()
            self.pushed.clear()
            self.webhook_log.clear()
            self.faults = Faults()
            self.request_count = 0
            self._held_webhooks = []

    # --- Clock ------------------------------------------------------------------------------------

    def set_clock(self, value: datetime | None) -> None:
        """Freeze the sandbox's "now" (the time new orders and updates carry), or None to follow the real clock."""
        if value is not None and value.tzinfo is None:
            raise ValueError("set_clock needs an aware datetime")
        with self.lock:
            self._clock = value.astimezone(UTC) if value is not None else None

    def now(self) -> datetime:
        # Whole seconds: the platforms' order times have no fractions.
        return (self._clock or datetime.now(UTC)).replace(microsecond=0)

    # --- Orders ------------------------------------------------------------------------------------

    def put_order(self, order: dict, *, topic: str = "orders/updated", push: bool = True) -> dict:
        """Store (or replace) one order and, when a webhook URL is set, push it."""
        with self.lock:
            self.orders[self.order_id(order)] = order
        if push and self.webhook_url:
            self.push(topic, order)
        return order

    def generate(self, count: int = 1, *, push: bool = True) -> list[dict]:
        created = []
        for _ in range(count):
            with self.lock:
                order = self.generate_order()
            created.append(self.put_order(order, topic="orders/create", push=push))
        return created

    # --- Webhooks ----------------------------------------------------------------------------------

    def push(self, topic: str, order: dict) -> None:
        with self.lock:
            out_of_order = self.faults.out_of_order_webhooks
            if out_of_order:
                self._held_webhooks.append((topic, json.loads(json.dumps(order))))
                return
        self._send(topic, order)

    def flush_held_webhooks(self) -> int:
        """Deliver held-back webhooks newest first (the out-of-order fault)."""
        with self.lock:
            held, self._held_webhooks = self._held_webhooks, []
        for topic, order in reversed(held):
            self._send(topic, order)
        return len(held)

    def _send(self, topic: str, order: dict) -> None:
        times = 2 if self.faults.duplicate_webhooks else 1
        for _ in range(times):
            try:
                self.deliver_webhook(topic, order)
            except requests.RequestException as exc:
                self.webhook_log.append({"topic": topic, "order": self.order_id(order), "error": str(exc)})

    def post_webhook(self, *, body: bytes, headers: dict[str, str], topic: str, order_id: str) -> None:
        response = requests.post(self.webhook_url, data=body, headers=headers, timeout=10)
        self.webhook_log.append({"topic": topic, "order": order_id, "status": response.status_code,
                                 "at": datetime.now(UTC).isoformat()})

    # --- Records of pushes back from the hub -------------------------------------------------------

    def record_push(self, kind: str, **data) -> None:
        with self.lock:
            self.pushed.append({"kind": kind, "at": datetime.now(UTC).isoformat(), **data})

    # --- Control API -----------------------------------------------------------------------------

    def handle_control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").strip("/")
        if action == "state" and request.method == "GET":
            with self.lock:
                return Response(200, {"platform": self.platform, "orders": len(self.orders),
                                      "faults": asdict(self.faults), "pushed": len(self.pushed),
                                      "webhooks": len(self.webhook_log), "requests": self.request_count})
        if action == "faults" and request.method == "POST":
            data = request.json() or {}
            with self.lock:
                for key, value in data.items():
                    if not hasattr(self.faults, key):
                        return Response(400, {"error": f"unknown fault {key}"})
                    setattr(self.faults, key, type(getattr(self.faults, key))(value))
            if not self.faults.out_of_order_webhooks:
                self.flush_held_webhooks()
            return Response(200, asdict(self.faults))
        if action == "orders" and request.method == "POST":
            data = request.json() or {}
            if "generate" in data:
                made = self.generate(int(data["generate"]), push=bool(data.get("push", True)))
                return Response(200, {"ids": [self.order_id(o) for o in made]})
            stored = [self.put_order(o, push=bool(data.get("push", True))) for o in data.get("orders", [])]
            return Response(200, {"ids": [self.order_id(o) for o in stored]})
        if action == "orders" and request.method == "GET":
            with self.lock:
                return Response(200, {"orders": list(self.orders.values())})
        if action == "pushed" and request.method == "GET":
            with self.lock:
                return Response(200, {"pushed": list(self.pushed)})
        if action == "flush" and request.method == "POST":
            return Response(200, {"delivered": self.flush_held_webhooks()})
        if action == "reset" and request.method == "POST":
            self.reset()
            return Response(200, {"ok": True})
        return Response(404, {"error": "unknown control action"})

    # --- Serving -----------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self.handle_control(request)
        with self.lock:
            self.request_count += 1
            faults = self.faults
            latency = faults.latency_ms
            if faults.down:
                response = self.down_response()
            elif faults.rate_limit > 0:
                faults.rate_limit -= 1
                response = self.rate_limited_response()
            elif faults.server_errors > 0:
                faults.server_errors -= 1
                response = self.server_error_response()
            else:
                response = None
            malformed = faults.malformed > 0 and response is None
            if malformed:
                faults.malformed -= 1
        if latency:
            time.sleep(latency / 1000)
        if response is None:
            response = self.handle_api(request)
            if malformed:
                response = Response(200, response.encoded()[: max(len(response.encoded()) // 2, 1)] + b"<html>",
                                    response.headers)
        return response

    def start(self) -> str:
        """Serve in background threads; returns the base URL (http://127.0.0.1:PORT)."""
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this every keep-alive request waits for
            # the client's delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def _serve(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(method=self.command, path=parts.path,
                                  query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                                  headers={k.lower(): v for k, v in self.headers.items()}, body=body)
                try:
                    response = sandbox.dispatch(request)
                except Exception as exc:  # a sandbox bug must show up as a 500, not hang the client
                    logger.exception("sandbox error")
                    response = Response(500, {"errors": f"sandbox error: {exc}"})
                payload = response.encoded()
                self.send_response(response.status)
                content_type = response.headers.pop("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Type", content_type)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, fmt, *args):
                logger.debug("%s %s", sandbox.platform, fmt % args)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        serving = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                   name=f"{self.platform}-sandbox", daemon=True)
        serving.start()
        self._threads.append(serving)
        if self.rate_per_minute > 0:
            generator = threading.Thread(target=self._generate_loop, name=f"{self.platform}-generator", daemon=True)
            generator.start()
            self._threads.append(generator)
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _generate_loop(self) -> None:
        while not self._stop.wait(60.0 / self.rate_per_minute):
            try:
                self.generate(1)
            except Exception:  # keep generating; the error is logged for the operator
                logger.exception("%s sandbox: generating an order failed", self.platform)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def serve_forever(self) -> None:
        if self._server is None:
            self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
