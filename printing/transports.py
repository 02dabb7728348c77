"""Transports: put ESC/POS bytes on a network thermal printer (raw TCP, port 9100) with a timeout."""

from __future__ import annotations

from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Network

# Connecting and writing a label takes milliseconds on a LAN; a printer that does not answer in
# this time is treated as off-line and the job goes back to the queue.
SEND_TIMEOUT_SECONDS = 5


class PrinterUnreachable(Exception):
    """The printer refused the connection, timed out or dropped it: try again later."""


def send_to_printer(*, host: str, port: int, payload: bytes, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
    """Send the bytes and close; raw port 9100 has no acknowledgement beyond a clean TCP close."""
    printer = Network(host=host, port=port, timeout=timeout)
    try:
        printer.open()
        printer._raw(payload)  # python-escpos' documented way to send pre-rendered bytes
    except (DeviceNotFoundError, OSError) as exc:
        raise PrinterUnreachable(f"{host}:{port}: {exc}".replace("\n", " ")) from exc
    finally:
        printer.close()
