"""The virtual thermal printer over real TCP, the ESC/POS decoder and the PNG preview.

Jobs are made with python-escpos' Dummy right here (not with our renderers), so the decoder is checked
against the library's own bytes.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from escpos.printer import Dummy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from printing.escpos_decode import QR, Barcode, Cut, Decoded, Feed, Image, Text, Unknown, decode
from printing.preview import render_png
from printing.virtual_printer import VirtualPrinter

ROOT = Path(__file__).resolve().parents[2]
TRACKING_URL = "https://t.example/SF1234567890123"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample_job() -> bytes:
    """A small label: aligned bold text, Chinese in Chinese mode, Code128 with {B, native QR, cut."""
    p = Dummy()
    p.hw("INIT")
    p.set(align="center", bold=True)
    p.textln("ORDER HUB")
    p.set(align="left", bold=False)
    p.textln("Item x2")
    p._raw(b"\x1c&")  # FS &: Chinese mode on, then GB18030 bytes as the renderers send them
    p._raw("收件人 王小贝".encode("gb18030") + b"\n")
    p.barcode("{BSF1234567890123", "CODE128", function_type="B")
    p.qr(TRACKING_URL, native=True, size=6)
    p.cut()
    return p.output


def send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)


@pytest.fixture
def device():
    printer = VirtualPrinter(host="127.0.0.1", port=0)
    printer.start()
    yield printer
    printer.stop()


# ----- over TCP -----


def test_job_over_tcp_is_decoded(device):
    data = sample_job()
    send(device.port, data)

    [job] = device.wait_for_jobs(1, timeout=5)

    assert job.data == data
    assert job.number == 1
    assert job.peer.startswith("127.0.0.1:")
    elements = job.decoded.elements
    assert elements[:3] == [
        Text("ORDER HUB", align="center", bold=True),
        Text("Item x2"),
        Text("收件人 王小贝", chinese=True),
    ]
    [barcode] = job.decoded.of_type(Barcode)
    assert (barcode.symbology, barcode.data, barcode.raw) == (
        "CODE128",
        "SF1234567890123",
        b"{BSF1234567890123",
    )
    assert (barcode.align, barcode.height, barcode.module_width, barcode.hri) == ("center", 64, 3, "below")
    assert job.decoded.of_type(QR) == [
        QR(TRACKING_URL, size=6, error_correction="L", model=2, align="center")
    ]
    assert elements[-2:] == [Feed(6), Cut(partial=False)]
    assert job.decoded.of_type(Unknown) == []
    assert job.text == (
        "ORDER HUB\n"
        "Item x2\n"
        "收件人 王小贝\n"
        "[BARCODE CODE128: SF1234567890123]\n"
        f"[QR: {TRACKING_URL}]\n"
        "\n\n"
        "----- cut -----\n"
    )


def test_png_preview_has_the_paper_width_and_is_deterministic(device):
    send(device.port, sample_job())
    [job] = device.wait_for_jobs(1)

    png_80 = job.png()
    png_58 = job.png(paper_width=58)

    assert png_80.startswith(PNG_SIGNATURE)
    image = PILImage.open(io.BytesIO(png_80))
    image.verify()
    assert PILImage.open(io.BytesIO(png_80)).size[0] == 576
    assert PILImage.open(io.BytesIO(png_58)).size[0] == 384
    assert render_png(decode(job.data)) == png_80
    with pytest.raises(ValueError):
        render_png(job.decoded, paper_width=76)


def test_png_draws_the_barcode_and_the_qr_in_black():
    png = render_png(decode(sample_job()))
    image = PILImage.open(io.BytesIO(png)).convert("L")
    histogram = image.histogram()
    black, white = histogram[0], histogram[255]
    assert black + white == image.width * image.height  # a thermal printer has no grey
    assert black > 10_000  # the 200-module Code128 at 64 dots and the QR alone are more than this


def test_refuse_makes_connect_fail_and_accepts_again_on_the_same_port(device):
    port = device.port
    device.refuse(True)

    assert device.refusing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with pytest.raises(ConnectionRefusedError):
        send(port, sample_job())
    assert device.jobs == []

    device.refuse(False)

    assert device.port == port
    send(port, b"\x1b@back online\n")
    [job] = device.wait_for_jobs(1)
    assert job.decoded.lines == ["back online"]


def test_two_clients_at_once_are_two_jobs(device):
    first = b"\x1b@" + b"first client line\n" * 50
    second = b"\x1b@" + b"second client line\n" * 50
    a = socket.create_connection(("127.0.0.1", device.port), timeout=5)
    b = socket.create_connection(("127.0.0.1", device.port), timeout=5)
    try:
        a.sendall(first[:100])
        b.sendall(second[:100])
        a.sendall(first[100:])
        b.sendall(second[100:])
    finally:
        a.close()
        b.close()

    jobs = device.wait_for_jobs(2)

    assert sorted(job.data for job in jobs) == sorted([first, second])
    assert sorted(job.number for job in jobs) == [1, 2]
    for job in jobs:
        assert len(set(job.decoded.lines)) == 1
        assert len(job.decoded.lines) == 50


def test_a_silent_client_ends_its_job_after_the_idle_timeout():
    printer = VirtualPrinter(idle_timeout=0.3).start()
    try:
        conn = socket.create_connection(("127.0.0.1", printer.port), timeout=5)
        conn.sendall(b"\x1b@kept open\n")
        [job] = printer.wait_for_jobs(1, timeout=3)  # while the client still holds the connection
        assert job.decoded.lines == ["kept open"]
        conn.close()
    finally:
        printer.stop()


def test_wait_for_jobs_times_out(device):
    with pytest.raises(TimeoutError, match="got 0 of 1 jobs"):
        device.wait_for_jobs(1, timeout=0.2)


def test_status_request_is_answered_and_is_no_job(device):
    with socket.create_connection(("127.0.0.1", device.port), timeout=5) as conn:
        conn.sendall(b"\x10\x04\x01")  # DLE EOT 1, as python-escpos is_online() sends it
        assert conn.recv(1) == b"\x12"  # online, no error
    send(device.port, b"\x1b@after status\n")

    [job] = device.wait_for_jobs(1)

    assert job.decoded.lines == ["after status"]


def test_stop_keeps_what_an_open_connection_sent():
    printer = VirtualPrinter(idle_timeout=30).start()
    conn = socket.create_connection(("127.0.0.1", printer.port), timeout=5)
    try:
        conn.sendall(b"\x1b@half a job\n")
        threading.Event().wait(0.2)
        printer.stop()
    finally:
        conn.close()
    assert [job.decoded.lines for job in printer.jobs] == [["half a job"]]


def test_directory_mode_writes_bin_txt_and_png(tmp_path):
    data = sample_job()
    with VirtualPrinter(directory=tmp_path / "SH") as printer:
        send(printer.port, data)
        [job] = printer.wait_for_jobs(1)

    folder = tmp_path / "SH"
    assert sorted(p.name for p in folder.iterdir()) == ["job-1.bin", "job-1.png", "job-1.txt"]
    assert (folder / "job-1.bin").read_bytes() == data
    assert (folder / "job-1.txt").read_text(encoding="utf-8") == job.text
    png = (folder / "job-1.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert PILImage.open(io.BytesIO(png)).size[0] == 576

    # A new run in the same folder goes on numbering instead of overwriting.
    with VirtualPrinter(directory=folder) as printer:
        send(printer.port, b"\x1b@second run\n")
        [job] = printer.wait_for_jobs(1)
    assert job.number == 2
    assert (folder / "job-2.txt").read_text(encoding="utf-8") == "second run\n"
    assert (folder / "job-1.bin").read_bytes() == data


def test_the_bounded_list_keeps_the_latest_jobs():
    with VirtualPrinter(max_jobs=2) as printer:
        for n in range(3):
            send(printer.port, f"job {n}\n".encode())
            printer.wait_for_jobs(n + 1)
        assert [job.decoded.lines for job in printer.jobs] == [["job 1"], ["job 2"]]
        printer.clear()
        assert printer.jobs == []


CLI_JOB = b"\x1b@\x1ba\x01hello from the cli\nsecond line\n"
CLI_SUMMARY = rf"job 1: {len(CLI_JOB)} bytes from 127\.0\.0\.1:\d+: hello from the cli \| second line"


def run_until_first_job(command: list[str]) -> str:
    """Start a server command on a free port, print one job, stop it with Ctrl-C; return its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        port = int(re.search(r":(\d+)", first).group(1))
        send(port, CLI_JOB)
        summary = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return first + summary + rest


def test_module_cli_prints_one_line_per_job(tmp_path):
    output = run_until_first_job(
        [
            sys.executable,
            "-m",
            "printing.virtual_printer",
            "--port",
            "0",
            "--dir",
            str(tmp_path),
            "--idle-timeout",
            "1",
        ]
    )

    assert "listening on 127.0.0.1:" in output
    assert re.search(CLI_SUMMARY, output)
    assert (tmp_path / "job-1.png").exists()


def test_management_command_prints_one_line_per_job():
    output = run_until_first_job([sys.executable, "manage.py", "virtual_printer", "--port", "0"])

    assert "Virtual printer listening on 127.0.0.1:" in output
    assert re.search(CLI_SUMMARY, output)


# ----- decoder details -----


def test_renderer_style_code128_with_code_set_c_digit_pairs():
    # {BSF1 then {C and digit pairs as bytes: 23 45 67 89 01 23 (0x0A may occur: the length prefix rules).
    payload = b"{BSF1{C" + bytes([23, 45, 67, 89, 1, 23]) + b"{B{{X"
    data = b"\x1dkI" + bytes([len(payload)]) + payload + b"\x1dkI\x05{C\x0a\x1b\x00"

    barcodes = decode(data).of_type(Barcode)

    assert [b.data for b in barcodes] == ["SF1234567890123{X", "102700"]


def test_code128_type_a_form_and_other_symbologies():
    p = Dummy()
    p.barcode("4006381333931", "EAN13", function_type="A")
    p.barcode("CODE39", "CODE39", function_type="B")

    barcodes = decode(p.output).of_type(Barcode)

    assert [(b.symbology, b.data) for b in barcodes] == [("EAN13", "4006381333931"), ("CODE39", "CODE39")]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (b"\x1dV\x00", Cut(partial=False)),
        (b"\x1dV\x01", Cut(partial=True)),
        (b"\x1dV0", Cut(partial=False)),
        (b"\x1dV1", Cut(partial=True)),
        (b"\x1dVA\x10", Cut(partial=False)),
        (b"\x1dVB\x00", Cut(partial=True)),  # python-escpos cut(feed=False)
        (b"\x1bi", Cut(partial=True)),
    ],
)
def test_cut_variants(command, expected):
    assert decode(command).elements == [expected]


def test_text_styles():
    p = Dummy()
    p.set(custom_size=True, width=3, height=2)
    p.set(invert=True, underline=2)
    p._raw(b"big")
    p.set(custom_size=True, width=1, height=1)
    p.set(invert=False, underline=0)
    p._raw(b" small\n")
    p.set(double_width=True)
    p._raw(b"wide\n")
    p._raw(b"\x1b!\x00\x1bG\x01strike\x1bG\x00\n\x1b-\x01under\n\x1b-\x00")
    p.set(font="b", align="right")
    p._raw(b"font b\n")

    assert decode(p.output).elements == [
        Text("big", width_mult=3, height_mult=2, invert=True, underline=2, line_end=False),
        Text(" small"),
        Text("wide", width_mult=2),
        Text("strike", bold=True),
        Text("under", underline=1),
        Text("font b", align="right", font="b"),
    ]


def test_code_pages_and_chinese_mode():
    p = Dummy()
    p.text("café\n")  # python-escpos: ESC t 0 and CP437 bytes
    p._raw(b"\x1bt\x10caf\xe9\n")  # CP1252
    # Without FS &, a printer that is not in Chinese mode prints the GB18030 bytes as CP437 signs.
    p._raw(b"\x1bt\x00" + "王小贝\n".encode("gb18030"))
    p._raw(b"\x1c&" + "王小贝 ¥12\n".encode("gb18030") + b"\x1c.")

    assert decode(p.output).lines == ["café", "café", "═⌡╨í▒┤", "王小贝 ¥12"]
    assert decode("王小贝\n".encode("gb18030"), chinese=True).lines == ["王小贝"]


def test_line_spacing_feeds_code_table_buzzer_and_drawer():
    assert decode(b"\n\n").elements == [Feed(2)]
    p = Dummy()
    p.line_spacing(40)
    p.line_spacing()
    p.print_and_feed(3)
    p._raw(b"\n\n")
    p.buzzer()
    p.cashdraw(2)

    assert decode(p.output).elements == [
        Feed(5),
        Unknown(b"\x1bB\x02\x04"),
        Unknown(b"\x1bp\x002\x32"),
    ]


def test_raster_images_are_reported_with_their_size():
    p = Dummy()
    p.image(PILImage.new("1", (40, 30), 0), impl="bitImageRaster")
    p.image(PILImage.new("1", (40, 30), 0), impl="graphics")
    p.image(PILImage.new("1", (40, 30), 0), impl="bitImageColumn")
    p.qr("not native")  # python-escpos' default: the QR is sent as a raster image

    images = decode(p.output).of_type(Image)

    assert [(i.width, i.height) for i in images[:3]] == [(40, 30), (40, 30), (40, 48)]
    assert images[0].raster == b"\xff" * 5 * 30  # black everywhere
    assert len(images) == 4
    assert render_png(decode(p.output)).startswith(PNG_SIGNATURE)


def test_native_qr_error_correction_and_model():
    p = Dummy()
    p.qr("HELLO", native=True, size=4, ec=3, model=1)

    assert decode(p.output).elements == [QR("HELLO", size=4, error_correction="H", model=1)]


# ----- garbage never crashes -----

FRAGMENTS = [
    b"\x1b",
    b"\x1d",
    b"\x1c",
    b"\x10",
    b"\n",
    b"\x1b@",
    b"\x1b*",
    b"\x1b&",
    b"\x1bD",
    b"\x1d(k",
    b"\x1d(L",
    b"\x1d8L",
    b"\x1dk",
    b"\x1dkI",
    b"\x1dv0",
    b"\x1dV",
    b"\x1c&",
    b"\x1d!",
    b"\x1b!",
    b"{",
    b"{B",
    b"{C",
]
escpos_like = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)), max_size=40).map(
    b"".join
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=512), escpos_like))
@example(b"\x1dkI\x03{B{")  # a Code128 payload ending in a lone "{"
def test_decode_never_raises(data):
    decoded = decode(data)

    assert isinstance(decoded, Decoded)
    assert isinstance(decoded.text, str)
    assert decode(data, chinese=True).elements is not None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=256), escpos_like))
def test_render_never_raises(data):
    assert render_png(decode(data), paper_width=58).startswith(PNG_SIGNATURE)
