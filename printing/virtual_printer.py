"""A virtual network thermal printer (raw TCP, like port 9100) that records, decodes and renders each job.

Standalone (stdlib and Pillow, no Django) so the demo, the tests and a developer's shell can run it:

    python -m printing.virtual_printer --port 9101 --dir var/virtual_printer/SH

One job is what a connection sends until the client closes it or stays silent for ``idle_timeout``
seconds. ``refuse(True)`` stops listening on the port, so a client's connect() fails with
ConnectionRefusedError exactly as with a printer that is switched off; ``refuse(False)`` listens on the
same port again.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from printing.escpos_decode import Decoded, Unknown, decode

__all__ = ["Job", "VirtualPrinter", "job_summary", "main"]

logger = logging.getLogger(__name__)

MAX_JOB_BYTES = 16 * 1024 * 1024  # a runaway client is cut into jobs of this size, not kept whole in memory
STATUS_REQUEST = re.compile(rb"\x10\x04[\x01-\x04]\Z")  # DLE EOT n at the end of what arrived so far
STATUS_READY = b"\x12"  # online, no error, paper present (the fixed bits only)


@dataclass(frozen=True)
class Job:
    received_at: datetime
    data: bytes
    decoded: Decoded
    number: int = 0
    peer: str = ""

    @property
    def text(self) -> str:
        return self.decoded.text

    def png(self, *, paper_width: int = 80) -> bytes:
        from printing.preview import render_png  # Pillow is only needed for previews

        return render_png(self.decoded, paper_width=paper_width)


def job_summary(job: Job, *, lines: int = 3) -> str:
    """One line for a console: number, size, sender and the first printed lines."""
    first = [" ".join(line.split()) for line in job.decoded.text.splitlines() if line.strip()][:lines]
    return f"job {job.number}: {len(job.data)} bytes from {job.peer}: " + " | ".join(first)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # re-listen on the same port at once after refuse(False) or a restart
    daemon_threads = True

    def __init__(self, address: tuple[str, int], printer: VirtualPrinter) -> None:
        self.printer = printer
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        host, port = self.client_address[:2]
        self.server.printer._serve_connection(self.request, f"{host}:{port}")


class VirtualPrinter:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: str | os.PathLike | None = None,
        *,
        idle_timeout: float = 3.0,
        max_jobs: int = 200,
        paper_width: int = 80,
        chinese: bool = False,
        on_job: Callable[[Job], None] | None = None,
    ) -> None:
        """``port=0`` picks a free port (read ``.port`` after ``start()``); ``directory`` receives
        job-<n>.bin/.txt/.png; ``chinese`` starts in Chinese mode as printers sold in China do."""
        self.host = host
        self.port = port
        self.directory = Path(directory) if directory is not None else None
        self.idle_timeout = idle_timeout
        self.paper_width = paper_width
        self.chinese = chinese
        self.on_job = on_job
        self._jobs: deque[Job] = deque(maxlen=max_jobs)
        self._received = 0  # jobs since start or clear(), including those the bounded list let go
        self._number = 0
        self._changed = threading.Condition()
        self._control = threading.Lock()
        self._server: _Server | None = None
        self._connections: set[socket.socket] = set()

    # ----- control -----

    def start(self) -> VirtualPrinter:
        """Listen; returns once connections are accepted. ``.port`` then holds the real port."""
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._number = max(self._number, _last_job_number(self.directory))
        self._listen()
        return self

    def stop(self) -> None:
        """Stop listening and close open connections (what they sent so far is kept as a job)."""
        self._unlisten()
        with self._changed:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        with self._changed:
            self._changed.wait_for(lambda: not self._connections, timeout=5)

    def refuse(self, refuse: bool = True) -> None:
        """Simulate a printer off-line (True: connect() is refused) and back on-line on the same port."""
        if refuse:
            self._unlisten()
        else:
            self._listen()

    @property
    def refusing(self) -> bool:
        return self._server is None

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _listen(self) -> None:
        with self._control:
            if self._server is not None:
                return
            server = _Server((self.host, self.port), self)
            self.port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"virtual-printer-{self.port}",
                daemon=True,
            )
            thread.start()
            self._server = server

    def _unlisten(self) -> None:
        with self._control:
            server, self._server = self._server, None
            if server is not None:
                server.shutdown()
                server.server_close()

    # ----- jobs -----

    @property
    def jobs(self) -> list[Job]:
        with self._changed:
            return list(self._jobs)

    def clear(self) -> None:
        with self._changed:
            self._jobs.clear()
            self._received = 0

    def wait_for_jobs(self, n: int, timeout: float = 5.0) -> list[Job]:
        """Block until ``n`` jobs have arrived (since start or clear()); raises TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._received >= n, timeout=timeout):
                raise TimeoutError(f"virtual printer got {self._received} of {n} jobs within {timeout} s")
            return list(self._jobs)

    def _serve_connection(self, conn: socket.socket, peer: str) -> None:
        with self._changed:
            self._connections.add(conn)
        buffer = bytearray()
        try:
            conn.settimeout(self.idle_timeout)
            while True:
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    if not buffer:
                        break  # silent with nothing pending: hang up
                    self._record(bytes(buffer), peer)
                    buffer.clear()
                    continue
                except OSError:
                    break  # reset by the client, or closed by stop()
                if not chunk:
                    break
                buffer += chunk
                if STATUS_REQUEST.search(buffer):
                    # The client waits for a real-time status answer (python-escpos is_online()/paper_status()).
                    conn.sendall(STATUS_READY)
                if len(buffer) >= MAX_JOB_BYTES:
                    self._record(bytes(buffer), peer)
                    buffer.clear()
        except OSError:
            pass  # the client went away while we answered
        finally:
            if buffer:
                self._record(bytes(buffer), peer)
            conn.close()
            with self._changed:
                self._connections.discard(conn)
                self._changed.notify_all()

    def _record(self, data: bytes, peer: str) -> None:
        decoded = decode(data, chinese=self.chinese)
        if all(isinstance(e, Unknown) and e.data.startswith(b"\x10\x04") for e in decoded.elements):
            return  # only status requests: a printer prints nothing
        with self._changed:
            self._number += 1
            job = Job(
                received_at=datetime.now(UTC), data=data, decoded=decoded, number=self._number, peer=peer
            )
        if self.directory is not None:
            self._write_files(job)
        with self._changed:
            self._jobs.append(job)
            self._received += 1
            self._changed.notify_all()
        if self.on_job is not None:
            self.on_job(job)

    def _write_files(self, job: Job) -> None:
        stem = Path(self.directory or ".") / f"job-{job.number}"
        try:
            _write_atomic(stem.with_suffix(".bin"), job.data)
            _write_atomic(stem.with_suffix(".txt"), job.text.encode("utf-8"))
            _write_atomic(stem.with_suffix(".png"), job.png(paper_width=self.paper_width))
        except OSError:
            logger.exception("virtual printer could not write %s.*", stem)


def _write_atomic(path: Path, content: bytes) -> None:
    # Readers (the preview page, a watching developer) never see half a file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def _last_job_number(directory: Path) -> int:
    """Continue after the jobs a previous run left in the directory instead of overwriting them."""
    numbers = [
        int(m.group(1)) for p in directory.glob("job-*.bin") if (m := re.fullmatch(r"job-(\d+)\.bin", p.name))
    ]
    return max(numbers, default=0)


def add_arguments(parser: argparse.ArgumentParser, *, default_port: int = 9100) -> None:
    """The command-line options, shared with ``manage.py virtual_printer``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help=f"TCP port (default {default_port})")
    parser.add_argument("--dir", default=None, help="write job-<n>.bin, .txt and .png here")
    parser.add_argument("--idle-timeout", type=float, default=3.0, help="seconds of silence that end a job")
    parser.add_argument(
        "--paper", type=int, choices=(58, 80), default=80, help="paper width in mm for the PNG"
    )
    parser.add_argument(
        "--chinese", action="store_true", help="start in Chinese mode (as printers sold in China)"
    )


def from_options(options: dict, on_job: Callable[[Job], None] | None = None) -> VirtualPrinter:
    return VirtualPrinter(
        host=options["host"],
        port=options["port"],
        directory=options["dir"],
        idle_timeout=options["idle_timeout"],
        paper_width=options["paper"],
        chinese=options["chinese"],
        on_job=on_job,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m printing.virtual_printer", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    printer = from_options(options, on_job=lambda job: print(job_summary(job), flush=True))
    printer.start()
    where = f" writing to {printer.directory}" if printer.directory else ""
    print(f"virtual printer listening on {printer.host}:{printer.port}{where}; Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        printer.stop()


if __name__ == "__main__":
    main()
