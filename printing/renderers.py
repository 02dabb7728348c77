"""ESC/POS renderers: shipping labels, pick lists and test pages as bytes for 58 mm and 80 mm thermal printers.

Pure functions from plain dataclasses to bytes. They build the bytes with python-escpos's ``Dummy``
printer, read no database and import no model, so the same input always gives the same bytes; the
tests compare them byte for byte with golden files (tests/printing/golden/).

Chinese text
    Every job starts with ``ESC @`` (reset) and ``FS &`` (select Chinese character mode), and all
    text is sent as GB18030 bytes with ``Dummy._raw()``, never through ``Escpos.text()``. In
    Chinese mode, the printers sold in China (Epson's Chinese models, Xprinter, GPrinter, HPRT…)
    read a byte >= 0x80 as the first byte of a GB18030 (GBK) character and print it from their
    24×24 font. python-escpos 3.1 cannot do this cleanly: ``text()`` goes through ``MagicEncode``,
    which sends a string holding a Han character (U+4E00–U+9FA5) as raw GB18030 but never selects
    Chinese mode, and sends every other string through single-byte code pages with ``ESC t``
    switches. A line with only "…", "：" or "é" then comes out as a code-page byte, which a
    printer in Chinese mode reads as half of a GB character. There is no GB18030/CP936 code page
    in its printer profiles to force instead.

    Text is cleaned before it is measured: whitespace becomes one space, control and combining
    characters are dropped, and a character the printer's GB font cannot hold (emoji, scripts
    outside GB18030's two-byte range other than CJK ideographs) becomes "?".

Widths
    Font A is 12×24 dots: 48 columns on 80 mm paper (576 dots), 32 on 58 mm (384 dots). In
    Chinese mode every non-ASCII character is printed from the double-byte font and takes two
    columns. That is ``unicodedata.east_asian_width`` W or F, and also A: the ambiguous ones
    ("…", "·", "×", "°") are two-byte GB characters too. Enlarged text uses ``GS !``
    (``set(custom_size=True, ...)``), which scales ASCII and Chinese characters alike; ``ESC !``
    (python-escpos's ``double_height``/``double_width``) scales only ASCII. Lines are wrapped and
    truncated by columns ÷ the width factor.

Commands (bytes in hex; for the virtual printer's decoder, also listed in docs/printing.md)
    ``ESC @`` 1B 40 · ``FS &`` 1C 26 · ``ESC a n`` 1B 61 n (align 0 left, 1 centre) ·
    ``ESC E n`` 1B 45 n (bold) · ``GS ! n`` 1D 21 n (size: high nibble width−1, low nibble
    height−1) · ``GS B n`` 1D 42 n (white on black) · ``LF`` 0A (print the line) ·
    Code128: ``GS h n`` 1D 68 (height in dots), ``GS w n`` 1D 77 (module width), ``GS f 0``
    1D 66 00, ``GS H 0`` 1D 48 00 (no printer-drawn digits; we print the grouped number
    ourselves), then ``GS k 73 n d1…dn`` 1D 6B 49 n data: the data starts with "{B" or "{C"
    (code set); "{C" / "{B" inside switch sets, "{{" is a "{" in set B; in set C each byte
    0–99 is a pair of digits. QR (native, model 2): ``GS ( k`` 1D 28 6B pL pH 31 fn …:
    fn 41 (model 32 00), 43 (module size), 45 (error correction 31 = M), 50 30 + data (store,
    UTF-8, length = pL + 256·pH − 3), 51 30 (print). Cut: ``ESC d 6`` 1B 64 06 (feed six
    lines) then ``GS V 0`` 1D 56 00 (full cut).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext as _
from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from fulfillment.selectors import PickRow as PickListRow
from oms.exceptions import ValidationFailed

COLUMNS = {58: 32, 80: 48}  # Font A characters per line
DOTS = {58: 384, 80: 576}  # printable width
CHINESE_MODE_ON = b"\x1c\x26"  # FS &: bytes >= 0x80 are GB18030 from here on

ITEMS_MAX_LINES = 8


class RenderError(ValidationFailed):
    code = "render_invalid"


@dataclass(frozen=True)
class LabelData:
    carrier_name: str
    carrier_code: str
    service: str  # already translated
    tracking_number: str  # customer-visible waybill number, also the Code128 data
    tracking_display: str  # grouped for reading: "SF 1234 5678 9012 3"
    tracking_url: str  # for the QR code; "" prints no QR
    handover_code: str  # the carrier's sorting code, printed big; may be ""
    sender_name: str
    sender_phone: str
    sender_address: str
    receiver_name: str
    receiver_phone_masked: str
    receiver_address: str
    items: tuple[tuple[str, int], ...]  # (SKU code or short name, quantity)
    order_numbers: str
    parcel_number: str  # our shipment number
    priority_mark: str  # "", "VIP", "急"…: printed white on black
    printed_at: str  # already formatted in Asia/Shanghai, so the bytes are deterministic


@dataclass(frozen=True)
class PickListData:
    wave_number: str
    warehouse_name: str
    description: str
    rows: tuple[PickListRow, ...]  # in walking order
    parcels: int
    printed_at: str


# --- text: cleaning, measuring, wrapping -------------------------------------------------------------


def _printable_char(ch: str) -> str:
    if ch.isspace():
        return " "
    if 0x20 <= ord(ch) < 0x7F:
        return ch
    if ord(ch) < 0xA0:  # other C0/C1 controls: an ESC or GS in an address would be a printer command
        return ""
    category = unicodedata.category(ch)
    if category[0] in "CM":  # controls, format characters (ZWJ), private use, combining marks
        return ""
    if len(ch.encode("gb18030")) == 2:
        return ch
    if unicodedata.name(ch, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
        return ch  # a rare character in a name: GB18030 fonts hold it, and a "?" would lose the name
    return "?"


def clean_text(text: str) -> str:
    """``text`` as it will print: one line, single spaces, only characters the printer's font holds."""
    return " ".join("".join(_printable_char(ch) for ch in text or "").split())


def char_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F", "A") else 1


def text_width(text: str) -> int:
    """Columns taken by (cleaned) ``text`` in Font A, Chinese mode."""
    return sum(char_width(ch) for ch in text)


def truncate(text: str, width: int) -> str:
    text = clean_text(text)
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        if used + char_width(ch) > width - 2:  # room for "…" (two columns in Chinese mode)
            break
        out.append(ch)
        used += char_width(ch)
    return "".join(out).rstrip() + "…"


# ASCII words stay together when they fit a line; any other character may start a new line.
_TOKENS = re.compile(r"[\x21-\x7e]+| |.")


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` columns; breaks between CJK characters or at spaces."""
    lines: list[str] = []
    line, used = "", 0
    for token in _TOKENS.findall(clean_text(text)):
        size = text_width(token)
        if token == " ":
            if used + 1 <= width:
                line, used = line + " ", used + 1
            else:
                lines.append(line.rstrip())
                line, used = "", 0
            continue
        if used + size <= width:
            line, used = line + token, used + size
            continue
        if size <= width and len(token) > 1:  # a word that fits a line of its own moves down whole
            if line.strip():
                lines.append(line.rstrip())
            line, used = token, size
            continue
        for ch in token:
            if used + char_width(ch) > width and line:
                lines.append(line.rstrip())
                line, used = "", 0
            line, used = line + ch, used + char_width(ch)
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - text_width(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - text_width(text)) + text


# --- Code128 ------------------------------------------------------------------------------------------


def _digit_run(value: str, start: int) -> int:
    end = start
    while end < len(value) and value[end].isdigit():
        end += 1
    return end - start


def code128_data(value: str) -> tuple[str, int]:
    """(the ``GS k 73`` data for ``value``, its number of symbols including start and check).

    Code set B for letters and set C (two digits per symbol) for runs of digits, as carriers' own
    labels do: "SF1234567890123" takes 12 symbols instead of 18, so it fits 58 mm paper with
    two-dot modules. Only printable ASCII can be encoded.
    """
    if not value or any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
        raise RenderError(
            _(
                "Tracking number %(number)r cannot be printed as a barcode: only ASCII letters, digits and symbols can."
            )
            % {"number": value},
            code="barcode_invalid",
        )
    first_run = _digit_run(value, 0)
    mode = "C" if first_run >= 4 or first_run == len(value) == 2 else "B"
    out, symbols, i = ["{" + mode], 1, 0
    while i < len(value):
        run = _digit_run(value, i)
        if mode == "C":
            if run >= 2:
                out.append(chr(int(value[i : i + 2])))
                i += 2
            else:
                mode = "B"
                out.append("{B")
            symbols += 1
            continue
        if run >= 6 or (run >= 4 and i + run == len(value)):
            if run % 2:  # an odd run: its first digit stays in set B
                out.append(value[i])
                i += 1
                symbols += 1
            mode = "C"
            out.append("{C")
            symbols += 1
            continue
        out.append("{{" if value[i] == "{" else value[i])
        i += 1
        symbols += 1
    data = "".join(out)
    if len(data) > 255:
        raise RenderError(
            _("Tracking number %(number)r is too long for a barcode.") % {"number": value},
            code="barcode_invalid",
        )
    return data, symbols + 1  # + the check symbol


# --- the page -----------------------------------------------------------------------------------------


class _Page:
    """A python-escpos ``Dummy`` with the current style tracked, so a command is sent only on change."""

    def __init__(self, paper_width: int) -> None:
        if paper_width not in COLUMNS:
            raise RenderError(
                _("Paper width %(width)s mm is not supported (58 or 80).") % {"width": paper_width},
                code="paper_width",
            )
        self.paper_width = paper_width
        self.cols = COLUMNS[paper_width]
        self.dots = DOTS[paper_width]
        self.printer = Dummy()
        self.printer.hw("INIT")
        self.printer._raw(CHINESE_MODE_ON)
        self._align, self._bold, self._size = "left", False, (1, 1)

    def style(self, *, align: str = "left", bold: bool = False, size: tuple[int, int] = (1, 1)) -> None:
        if align != self._align:
            self.printer.set(align=align)
            self._align = align
        if bold != self._bold:
            self.printer.set(bold=bold)
            self._bold = bold
        if size != self._size:
            self.printer.set(custom_size=True, width=size[0], height=size[1])
            self._size = size

    def write(self, text: str) -> None:
        self.printer._raw("".join(_printable_char(ch) for ch in text).encode("gb18030"))

    def line(
        self,
        text: str = "",
        *,
        align: str = "left",
        bold: bool = False,
        size: tuple[int, int] = (1, 1),
        mark: str = "",
    ) -> None:
        """One printed line; ``mark`` goes first, white on black. Too long a line is cut, never overflows."""
        self.style(align=align, bold=bold, size=size)
        room = self.cols // size[0]
        if mark:
            mark = " " + truncate(mark, room - 3) + " "
            self.printer.set(invert=True)
            self.write(mark)
            self.printer.set(invert=False)
            room -= text_width(mark)
            if text:
                text = " " + text
        shown = "".join(_printable_char(ch) for ch in text)
        self.write(truncate(shown, room) if text_width(shown) > room else shown)
        self.printer._raw(b"\n")

    def lines(self, text: str, **style) -> None:
        size = style.get("size", (1, 1))
        for part in wrap(text, self.cols // size[0]):
            self.line(part, **style)

    def rule(self, char: str = "-") -> None:
        self.line(char * self.cols)

    def barcode(self, value: str, *, height: int) -> None:
        data, symbols = code128_data(value)
        modules = symbols * 11 + 2 + 20  # 11 per symbol, the stop's 2 extra, 10-module quiet zones
        module_width = next((w for w in (3, 2) if modules * w <= self.dots), 2)
        self.style(align="center")
        # _hw_barcode is what the public barcode() calls once it has picked the printer's own encoder;
        # called directly it skips that guess and the print() to stdout barcode() makes every time.
        self.printer._hw_barcode(
            data,
            "CODE128",
            height=height,
            width=module_width,
            pos="OFF",
            font="A",
            align_ct=False,
            function_type="B",
            check=True,
        )

    def qr(self, content: str) -> None:
        self.style(align="center")
        self.printer.qr(content, ec=QR_ECLEVEL_M, size=6 if self.paper_width == 80 else 5, native=True)

    def output(self) -> bytes:
        self.printer.cut()  # ESC d 6 (feed past the cutter) + GS V 0
        return self.printer.output


def _big(text: str, cols: int, *, most: int = 3) -> tuple[int, int]:
    """The largest square size (up to ``most``) at which ``text`` fits on one line."""
    width = text_width(clean_text(text))
    factor = next((f for f in range(most, 0, -1) if width * f <= cols), 1)
    return factor, factor


# --- label --------------------------------------------------------------------------------------------
# The fixed words from here on are Chinese whatever language the person printing uses: couriers, packers
# and pickers read them (printing/labels.py passes its texts translated to zh-hans for the same reason),
# and the golden bytes do not depend on the active language.


def _item_lines(items: tuple[tuple[str, int], ...], width: int) -> tuple[list[str], int]:
    """Items packed into at most ITEMS_MAX_LINES lines, an item never split across the limit; and how
    many items did not fit."""
    lines: list[str] = []
    for index, (name, quantity) in enumerate(items):
        entry = f"{clean_text(name)} x{quantity}"
        if lines and text_width(lines[-1]) + 2 + text_width(entry) <= width:
            lines[-1] += "  " + entry
            continue
        wrapped = wrap(entry, width)
        if len(lines) + len(wrapped) > ITEMS_MAX_LINES:
            return lines, len(items) - index
        lines.extend(wrapped)
    return lines, 0


def render_label(data: LabelData, *, paper_width: int = 80) -> bytes:
    """A shipping label: carrier, sorting code, waybill barcode, receiver, sender, items, QR."""
    page = _Page(paper_width)
    cols = page.cols

    code = clean_text(data.carrier_code)
    head = clean_text(f"{data.carrier_name} {data.service}")
    mark_width = text_width(clean_text(data.priority_mark)) + 3 if data.priority_mark.strip() else 0
    if code:  # the carrier code at the right edge
        room = cols - mark_width - text_width(code) - 1
        head = _pad(truncate(head, room), room) + " " + code
    page.line(head, bold=True, size=(1, 2), mark=clean_text(data.priority_mark))
    page.rule("=")

    if clean_text(data.handover_code):
        page.line(data.handover_code, align="center", bold=True, size=_big(data.handover_code, cols))
        page.rule()

    page.barcode(data.tracking_number, height=96 if paper_width == 80 else 80)
    display = clean_text(data.tracking_display) or clean_text(data.tracking_number)
    page.line(display, align="center", bold=True, size=(_big(display, cols, most=2)[0], 2))
    page.rule()

    page.lines(f"收 {data.receiver_name} {data.receiver_phone_masked}", bold=True, size=(1, 2))
    page.lines(data.receiver_address, size=(1, 2))
    page.lines(f"寄 {data.sender_name} {data.sender_phone}")
    page.lines(data.sender_address)
    page.rule()

    page.line(f"物品 共 {sum(quantity for _name, quantity in data.items)} 件", bold=True)
    lines, more = _item_lines(data.items, cols)
    for line in lines:
        page.line(line)
    if more:
        page.line(f"…还有 {more} 项")
    page.rule()

    page.lines(f"订单 {data.order_numbers}")
    page.lines(f"包裹 {data.parcel_number}")

    if data.tracking_url:
        page.qr(data.tracking_url)
    page.line(f"打印 {data.printed_at}", align="center")
    return page.output()


# --- pick list ----------------------------------------------------------------------------------------

_QTY, _BOX = 5, "[ ]"


def render_pick_list(data: PickListData, *, paper_width: int = 80) -> bytes:
    """A wave's pick list: one block per row in walking order (location, SKU, quantity, a box to tick)."""
    page = _Page(paper_width)
    cols = page.cols
    rest = cols - _QTY - len(_BOX) - 3  # three one-space gaps
    loc_width = max(10, rest * 2 // 5)
    sku_width = rest - loc_width

    page.line("拣货单", align="center", bold=True, size=(2, 2))
    page.lines(f"波次 {data.wave_number}", bold=True, size=(1, 2))
    page.lines(f"仓库 {data.warehouse_name}")
    if clean_text(data.description):
        page.lines(f"说明 {data.description}")
    page.line(f"包裹 {data.parcels}")
    page.line(f"打印 {data.printed_at}")
    page.rule("=")
    page.line(
        f"{_pad('库位', loc_width)} {_pad('SKU', sku_width)} {_rjust('数量', _QTY)} {_rjust('√', len(_BOX))}"
    )
    page.rule()

    for row in data.rows:
        location, sku = clean_text(row.location), clean_text(row.sku_code)
        page.line(
            f"{_pad(truncate(location, loc_width), loc_width)} {_pad(truncate(sku, sku_width), sku_width)} "
            f"{_rjust(str(row.quantity), _QTY)} {_BOX}",
            bold=True,
        )
        # Never let a picker guess a cut-off location or SKU code: print it in full below.
        for full, room in ((location, loc_width), (sku, sku_width)):
            if text_width(full) > room:
                for part in wrap(full, cols - 2):
                    page.line("  " + part)
        name = "  " + truncate(row.sku_name, cols - 8)
        shipments = f"{row.shipments}单" if row.shipments else ""  # how many parcels the units go into
        page.line(_pad(name, cols - text_width(shipments)) + shipments if shipments else name)

    page.rule("=")
    units = sum(row.quantity for row in data.rows)
    page.lines(f"合计 {units} 件 / {len(data.rows)} 种", bold=True, size=(1, 2))
    return page.output()


# --- test page ----------------------------------------------------------------------------------------


def render_test_page(*, printer_name: str, paper_width: int = 80, printed_at: str) -> bytes:
    """A page that shows whether a printer is set up right: width, Chinese text, sizes, barcode and QR."""
    page = _Page(paper_width)
    cols = page.cols
    page.line("打印测试页", align="center", bold=True, size=(2, 2))
    page.line("PRINTER TEST PAGE", align="center")
    page.rule("=")
    page.lines(f"打印机 {printer_name}")
    page.line(f"纸宽 {paper_width} mm  每行 {cols} 字符")
    # Both rulers must end exactly at the right edge; a wrapped or short ruler means a wrong width setting.
    page.line(("1234567890" * 5)[:cols])
    page.line("中文" * (cols // 4))
    page.lines("中文 GB18030：顺丰速运 上海市浦东新区张江路 88 号 “引号”…·×")
    page.lines("ASCII ABCXYZ abcxyz 0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    page.line("粗体 BOLD", bold=True)
    page.line("倍高 DOUBLE HEIGHT", size=(1, 2))
    page.line("倍宽高 2X", size=(2, 2))
    page.line("白底黑字反白", mark="反白 INVERT")
    page.rule()
    page.barcode("TEST1234567890", height=64)
    page.line("TEST 1234 5678 90", align="center")
    page.qr("ORDER HUB TEST PAGE")
    page.line(f"打印 {printed_at}", align="center")
    return page.output()
