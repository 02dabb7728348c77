"""Print bridge: the agent on a warehouse PC that pulls print jobs from the OMS and sends them to LAN printers.

The OMS cannot reach printers on a warehouse LAN, so this agent asks it for work over HTTPS. Each loop:
claim a job (POST /api/v1/print-bridge/claim/), open a TCP connection to the job's printer (raw port
9100), send the ESC/POS bytes, close, and acknowledge (POST /api/v1/print-bridge/jobs/<id>/ack/). When
the printer does not answer the agent acknowledges the failure and the OMS puts the job back in its
queue with a backoff, so nothing is lost; when nothing is due it sleeps ``--interval`` seconds.

This file stands alone: it imports neither Django nor anything else of the project.

Install on the warehouse PC (Windows, macOS or Linux) with Python 3.9 or newer:

    pip install requests                 # the only dependency
    python -m printing.bridge --help     # from a checkout of the project, or copy this one file:
    python bridge.py --server https://oms.example.com --token pb_xxxxxxxx

Options:

    --server URL     the OMS address (https://oms.example.com)
    --token T        the bridge token shown once when the bridge was created in the OMS; or set the
                     environment variable PRINT_BRIDGE_TOKEN (keeps it out of the process list)
    --interval S     seconds to wait when no job is due (default 1.0)
    --workers N      claim loops running in parallel, each with its own job (default 1); more than one
                     helps with several printers
    --max-jobs N     stop after handling N jobs (printed or failed)
    --once           stop when nothing is due (drain the queue once, e.g. from a scheduled task)
    --timeout S      HTTP timeout for calls to the OMS (default 10)
    --verbose        also log each empty poll

Run it as a service (systemd unit, NSSM or Task Scheduler on Windows) so it starts with the PC. It
logs one line per job. Ctrl-C or SIGTERM stops it after the current job (a second Ctrl-C stops at
once). If the OMS is unreachable or answers with an error, the agent logs it, waits (doubling up to
60 s) and carries on. If the OMS rejects the token (401/403) it logs why and exits with status 3,
so a wrong or revoked token never hammers the server; after an unexpected error (a bug) it exits
with status 1 for the service manager to restart it. An HTTPS certificate from a private CA is
accepted when REQUESTS_CA_BUNDLE points at the CA file.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

try:
    import requests
except ImportError:  # pragma: no cover - only on a PC where the install step was skipped
    sys.stderr.write("The print bridge needs the 'requests' package: pip install requests\n")
    raise SystemExit(2) from None

__version__ = "1.0"

logger = logging.getLogger("print_bridge")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_TOKEN_REJECTED = 3

PRINTER_TIMEOUT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 60.0
# The OMS lends a claimed job for 180 s. A result that could not be reported is retried for 120 s,
# inside that lease, so the job is not handed to another bridge while its acknowledgement is on its
# way; only an OMS outage longer than the lease can make a label print twice.
ACK_RETRY_SECONDS = 120.0


class TokenRejected(Exception):
    """The OMS answered 401/403: a wrong, revoked or disabled token. Fatal."""


class OmsUnavailable(Exception):
    """Network error, timeout or an unexpected answer from the OMS: try again later."""


class Backoff:
    """Waits that double from ``start`` to ``cap`` with ±20 % jitter, so many bridges do not retry in step."""

    def __init__(self, start: float = 1.0, cap: float = MAX_BACKOFF_SECONDS):
        self.start, self.cap, self.current = start, cap, start

    def next(self) -> float:
        wait = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.current * 2, self.cap)
        return min(wait, self.cap)

    def reset(self) -> None:
        self.current = self.start


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('code', '')}: {body['message']}"
    return str(body)[:200]


class OmsClient:
    """The three calls of the bridge API; one per worker thread (a requests.Session is not shared)."""

    def __init__(self, server: str, token: str, timeout: float = 10.0):
        self.base = server.rstrip("/") + "/api/v1/print-bridge/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"oms-print-bridge/{__version__}",
            }
        )

    def _post(self, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.post(self.base + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise OmsUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise TokenRejected(f"HTTP {response.status_code} {_error_text(response)}")
        return response

    def claim(self) -> dict | None:
        response = self._post("claim/")
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise OmsUnavailable(f"claim: HTTP {response.status_code} {_error_text(response)}")
        try:
            return response.json()["job"]
        except (ValueError, KeyError, TypeError) as exc:
            raise OmsUnavailable(f"claim: unexpected answer {response.text[:200]!r}") from exc

    def ack(self, job_id: int, ok: bool, error: str = "") -> tuple[int, str]:
        """Returns (HTTP status, job status or error text); raises OmsUnavailable for a retryable failure."""
        response = self._post(f"jobs/{int(job_id)}/ack/", json={"ok": ok, "error": error[:1000]})
        if response.status_code == 200:
            try:
                return 200, str(response.json()["status"])
            except (ValueError, KeyError, TypeError):
                return 200, "?"  # acknowledged; the answer is only for the log
        if response.status_code >= 500 or response.status_code == 429:
            raise OmsUnavailable(f"ack: HTTP {response.status_code} {_error_text(response)}")
        return response.status_code, _error_text(response)  # 400/404/409: retrying will not change it

    def close(self) -> None:
        self.session.close()


def send_to_printer(host: str, port: int, data: bytes, timeout: float = PRINTER_TIMEOUT_SECONDS) -> None:
    """Raw TCP (port 9100): connect, send everything, close. Raises OSError when the printer is off-line."""
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        try:
            conn.shutdown(socket.SHUT_WR)  # a clean end of data before close, as printers expect
        except OSError:
            pass


@dataclass
class Outcome:
    """What a run did, for the exit status and for tests."""

    exit_code: int = EXIT_OK
    printed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def handled(self) -> int:
        return len(self.printed) + len(self.failed)


class _Run:
    """State shared by the worker threads of one run."""

    def __init__(self, *, server, token, interval, max_jobs, once, timeout, stop, printer_timeout):
        self.server, self.token, self.interval, self.timeout = server, token, interval, timeout
        self.max_jobs, self.once, self.printer_timeout = max_jobs, once, printer_timeout
        self.stop = stop
        self.outcome = Outcome()
        self._reserved = 0
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        """Take one slot of --max-jobs before claiming, so parallel workers never overshoot it."""
        with self._lock:
            if self.max_jobs is not None and self._reserved >= self.max_jobs:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._reserved -= 1

    def fatal(self, message: str) -> None:
        with self._lock:
            if self.outcome.exit_code == EXIT_OK:
                logger.error(
                    "The OMS refused this bridge's token (%s). Check --token / PRINT_BRIDGE_TOKEN and "
                    "that the bridge is active in the OMS; stopping.",
                    message,
                )
            self.outcome.exit_code = EXIT_TOKEN_REJECTED
        self.stop.set()

    def record(self, job_id: int, printed: bool) -> None:
        with self.outcome.lock:
            (self.outcome.printed if printed else self.outcome.failed).append(job_id)

    # --- one worker ---------------------------------------------------------------------------

    def work(self) -> None:
        client = OmsClient(self.server, self.token, self.timeout)
        finished = False
        try:
            self._loop(client)
            finished = True
        finally:
            client.close()
            if not finished:
                # A bug, not an outage (those are handled in the loop): threading prints the traceback; all
                # workers stop and the exit status is 1, so the service manager restarts the agent.
                self.outcome.exit_code = EXIT_CRASHED
                self.stop.set()

    def _loop(self, client: OmsClient) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            if not self.reserve():
                return
            try:
                job = client.claim()
            except TokenRejected as exc:
                self.release()
                self.fatal(str(exc))
                return
            except OmsUnavailable as exc:
                self.release()
                wait = backoff.next()
                logger.warning("OMS not available (%s); trying again in %.1f s", exc, wait)
                self.stop.wait(wait)
                continue
            backoff.reset()
            if job is None:
                self.release()
                logger.debug("nothing due")
                if self.once:
                    return
                self.stop.wait(self.interval)
                continue
            try:
                self.handle(client, job)
            except TokenRejected as exc:
                self.fatal(str(exc))
                return

    def handle(self, client: OmsClient, job: dict) -> None:
        started = time.monotonic()
        job_id = job.get("id")
        printer = job.get("printer") or {}
        where = f"{printer.get('host')}:{printer.get('port')}"
        try:
            data = base64.b64decode(job["payload_b64"], validate=True)
            send_to_printer(printer["host"], printer["port"], data, timeout=self.printer_timeout)
            ok, error = True, ""
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            data, ok, error = b"", False, f"bad job from the OMS: {type(exc).__name__}: {exc}"
        except OSError as exc:  # refused, timed out, reset, no route: the printer is off-line
            data, ok, error = b"", False, f"{where}: {exc}".replace("\n", " ")
        if job_id is None:
            logger.error("claimed a job without an id (%r); cannot acknowledge it", job)
            return
        code, answer = self._ack(client, job_id, ok, error)
        self.record(job_id, printed=ok and code == 200)
        took = time.monotonic() - started
        name = printer.get("name") or printer.get("code") or where
        if ok:
            logger.info(
                "job %s %s -> %s (%s) %d bytes printed, attempt %s, %.2f s%s",
                job_id,
                job.get("kind"),
                name,
                where,
                len(data),
                job.get("attempts"),
                took,
                "" if code == 200 else f"; the OMS did not take the acknowledgement: {answer}",
            )
        else:
            logger.warning(
                "job %s %s -> %s (%s) NOT printed, attempt %s: %s; %s",
                job_id,
                job.get("kind"),
                name,
                where,
                job.get("attempts"),
                error,
                f"the OMS queued it again ({answer})" if code == 200 else f"ack refused: {answer}",
            )

    def _ack(self, client: OmsClient, job_id: int, ok: bool, error: str) -> tuple[int, str]:
        """Report the result, retrying through OMS outages (the job is printed: the OMS must hear it).
        Deliberately not cut short by a stop request: "stop after the current job" includes its ack."""
        deadline = time.monotonic() + ACK_RETRY_SECONDS
        backoff = Backoff(start=0.5, cap=10.0)
        while True:
            try:
                return client.ack(job_id, ok, error)
            except OmsUnavailable as exc:
                wait = backoff.next()
                if time.monotonic() + wait > deadline:
                    logger.error(
                        "job %s: could not report the result (%s); the OMS will hand the job out "
                        "again when its lease ends",
                        job_id,
                        exc,
                    )
                    return 0, str(exc)
                logger.warning("job %s: acknowledgement failed (%s); retrying in %.1f s", job_id, exc, wait)
                time.sleep(wait)


def run(
    *,
    server: str,
    token: str,
    interval: float = 1.0,
    workers: int = 1,
    max_jobs: int | None = None,
    once: bool = False,
    timeout: float = 10.0,
    stop: threading.Event | None = None,
    printer_timeout: float = PRINTER_TIMEOUT_SECONDS,
) -> Outcome:
    """The main loop: ``workers`` threads claim, print and acknowledge until ``stop`` is set, ``max_jobs``
    jobs were handled, ``once`` found nothing due, or the token was rejected. Returns what was done."""
    state = _Run(
        server=server,
        token=token,
        interval=interval,
        max_jobs=max_jobs,
        once=once,
        timeout=timeout,
        stop=stop or threading.Event(),
        printer_timeout=printer_timeout,
    )
    threads = [
        threading.Thread(target=state.work, name=f"bridge-{n + 1}", daemon=True)
        for n in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # Joined with a timeout so the main thread keeps handling signals.
        while thread.is_alive():
            thread.join(0.5)
    return state.outcome


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m printing.bridge",
        description="Pull print jobs from the OMS and send them to LAN printers.",
    )
    parser.add_argument("--server", required=True, help="OMS address, e.g. https://oms.example.com")
    parser.add_argument(
        "--token",
        default=os.environ.get("PRINT_BRIDGE_TOKEN"),
        help="bridge token (default: $PRINT_BRIDGE_TOKEN)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle (1.0)")
    parser.add_argument("--workers", type=int, default=1, help="parallel claim loops (1)")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after handling this many jobs")
    parser.add_argument("--once", action="store_true", help="stop as soon as nothing is due")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="HTTP timeout towards the OMS in seconds (10)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log empty polls too")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or the PRINT_BRIDGE_TOKEN environment variable")
    if not args.server.startswith(("http://", "https://")):
        parser.error("--server must start with https:// (or http:// on a test LAN)")
    if (
        args.interval <= 0
        or args.timeout <= 0
        or args.workers < 1
        or (args.max_jobs is not None and args.max_jobs < 1)
    ):
        parser.error("--interval and --timeout must be positive, --workers and --max-jobs at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(message)s",
    )
    if not args.verbose:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        logger.info("stopping after the current job (signal %s)", signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    logger.info("print bridge %s polling %s with %d worker(s)", __version__, args.server, args.workers)
    try:
        outcome = run(
            server=args.server,
            token=args.token,
            interval=args.interval,
            workers=args.workers,
            max_jobs=args.max_jobs,
            once=args.once,
            timeout=args.timeout,
            stop=stop,
        )
    except KeyboardInterrupt:
        logger.warning("interrupted")
        return 130
    logger.info("stopped: %d printed, %d not printed", len(outcome.printed), len(outcome.failed))
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
