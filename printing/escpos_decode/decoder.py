"""The decoder: a byte-by-byte walk over ESC/POS commands that never raises on bad input."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from printing.escpos_decode.elements import QR, Barcode, Cut, Decoded, Feed, Image, Text, Unknown
from printing.escpos_decode.tables import (
    _ESC_REPORTED,
    _ESC_SILENT,
    _FS_SILENT,
    _GS_REPORTED,
    _GS_SILENT,
    ALIGNS,
    BARCODE_TYPES,
    CODE_PAGES,
    CR,
    DEFAULT_CODE_PAGE,
    DLE,
    ESC,
    FS,
    GS,
    HRI_POSITIONS,
    HT,
    LF,
    QR_EC_LEVELS,
)


def decode(data: bytes, *, chinese: bool = False) -> Decoded:
    """Decode ESC/POS bytes; ``chinese`` is the Chinese (FS &) mode at power-on and after ESC @.

    Printers sold in China start in Chinese mode, Epson's international models do not; the default
    (off) makes a job that forgets FS & show up garbled, as it would on the stricter printer.
    """
    return _Decoder(bytes(data), chinese=chinese).run()


def code128_parse(payload: bytes) -> tuple[str, list[int]]:
    """The text a GS k CODE128 payload encodes and its symbol values (start code first, no check digit).

    The payload starts with a code-set selector ({A, {B or {C); "{{" is a literal "{", {1…{4 are FNC1…4,
    {S is SHIFT. In code set C each byte is a value 0–99 standing for two digits (as on Epson printers).
    """
    text: list[str] = []
    values: list[int] = []
    codeset = ""
    i = 0
    while i < len(payload):
        byte = payload[i]
        nxt = payload[i + 1] if i + 1 < len(payload) else -1
        if byte == 0x7B and nxt != -1 and nxt in b"ABC":
            new_set = chr(nxt)
            if not codeset:
                values.append({"A": 103, "B": 104, "C": 105}[new_set])
            elif new_set != codeset:
                values.append({"A": 101, "B": 100, "C": 99}[new_set])
            codeset = new_set
            i += 2
            continue
        if not codeset:  # no selector: Epson refuses, we assume code set B
            codeset = "B"
            values.append(104)
        if byte == 0x7B and nxt != -1 and nxt in b"S1234{":
            i += 2
            if nxt == 0x7B:
                byte = 0x7B  # literal "{", encoded below
            else:
                special = {"S": 98, "1": 102, "2": 97, "3": 96, "4": {"A": 101, "B": 100}.get(codeset)}
                value = special[chr(nxt)]
                if value is not None:
                    values.append(value)
                continue
        else:
            i += 1
        if codeset == "C":
            if byte < 100:
                text.append(f"{byte:02d}")
                values.append(byte)
            else:
                text.append("\ufffd")
        elif codeset == "A" and byte < 96:
            text.append(chr(byte))
            values.append(byte + 64 if byte < 32 else byte - 32)
        elif codeset == "B" and 32 <= byte < 128:
            text.append(chr(byte))
            values.append(byte - 32)
        else:
            text.append("\ufffd")
    return "".join(text), values


def _clean(text: str) -> str:
    # Control characters that a code page maps bytes to would garble the text output.
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text)


class _Decoder:
    def __init__(self, data: bytes, *, chinese: bool) -> None:
        self.data = data
        self.pos = 0
        self.power_on_chinese = chinese
        self.elements: list = []
        self.line_runs: list[Text] = []
        self.run_text: list[str] = []
        self.run_style: tuple | None = None
        self.line_align = "left"
        # ESC * images come as 24-dot stripes, each followed by LF: join them and do not count the LF as a feed.
        self.stripe_index = -1  # element index of the last stripe, until its LF
        self.joinable_index = -1  # element index of the last stripe, once its LF came
        self.pending_graphics: Image | None = None
        self.reset()

    # ----- state -----

    def reset(self) -> None:
        self.align = "left"
        self.emphasized = False
        self.double_strike = False
        self.width_mult = 1
        self.height_mult = 1
        self.underline = 0
        self.invert = False
        self.font = "a"
        self.codec = DEFAULT_CODE_PAGE
        self.chinese = self.power_on_chinese
        self.line_spacing = 30
        self.barcode_height = 162
        self.barcode_width = 3
        self.hri = "none"
        self.hri_font = "a"
        self.qr_model = 2
        self.qr_size = 3
        self.qr_ec = "L"
        self.qr_data: bytes | None = None

    def style(self) -> tuple:
        return (
            self.emphasized or self.double_strike,
            self.width_mult,
            self.height_mult,
            self.invert,
            self.underline,
            self.font,
            self.chinese,
        )

    # ----- output -----

    def emit(self, element) -> None:
        last = self.elements[-1] if self.elements else None
        if isinstance(element, Feed) and isinstance(last, Feed):
            self.elements[-1] = Feed(last.lines + element.lines)
            return
        self.elements.append(element)

    def unknown(self, length: int) -> None:
        end = min(self.pos + max(length, 1), len(self.data))
        self.elements.append(Unknown(self.data[self.pos : end]))
        self.pos = end

    def add_text(self, text: str) -> None:
        if not text:
            return
        if not self.line_runs and not self.run_text:
            self.line_align = self.align
        style = self.style()
        if self.run_text and style != self.run_style:
            self.push_run()
        self.run_style = style
        self.run_text.append(text)

    def push_run(self) -> None:
        if not self.run_text or self.run_style is None:
            return
        bold, width, height, invert, underline, font, chinese = self.run_style
        self.line_runs.append(
            Text(
                text="".join(self.run_text),
                align=self.line_align,
                bold=bold,
                width_mult=width,
                height_mult=height,
                invert=invert,
                underline=underline,
                font=font,
                chinese=chinese,
                line_end=False,
            )
        )
        self.run_text = []

    def end_line(self) -> bool:
        """Print the line buffer; False when it was empty."""
        self.push_run()
        if not self.line_runs:
            return False
        self.line_runs[-1] = replace(self.line_runs[-1], line_end=True)
        self.elements.extend(self.line_runs)
        self.line_runs = []
        return True

    def feed(self, lines: int) -> None:
        """Print the line buffer and feed; the printed line itself counts as the first line fed."""
        if self.end_line():
            lines -= 1
        if lines > 0:
            self.emit(Feed(lines))

    # ----- main loop -----

    def run(self) -> Decoded:
        data, n = self.data, len(self.data)
        while self.pos < n:
            byte = data[self.pos]
            if byte >= 0x20:
                end = self.pos
                while end < n and data[end] >= 0x20:
                    end += 1
                codec = "gb18030" if self.chinese else self.codec
                self.add_text(_clean(data[self.pos : end].decode(codec, errors="replace")))
                self.pos = end
            elif byte == LF:
                self.pos += 1
                if 0 <= self.stripe_index == len(self.elements) - 1 and not (self.line_runs or self.run_text):
                    self.joinable_index, self.stripe_index = self.stripe_index, -1
                    continue
                self.feed(1)
            elif byte == CR:
                self.pos += 1  # carriage return does nothing on a roll printer with LF-terminated lines
            elif byte == HT:
                self.pos += 1
                column = sum(len(run.text) for run in self.line_runs) + len("".join(self.run_text))
                self.add_text(" " * (8 - column % 8))
            elif byte == ESC:
                self.esc()
            elif byte == GS:
                self.gs()
            elif byte == FS:
                self.fs()
            elif byte == DLE:
                self.dle()
            else:
                self.unknown(1)
        self.end_line()
        return Decoded(elements=self.elements)

    def arg(self, offset: int) -> int | None:
        index = self.pos + offset
        return self.data[index] if index < len(self.data) else None

    def has(self, length: int) -> bool:
        return self.pos + length <= len(self.data)

    def flush_for_block(self) -> None:
        """Barcodes, 2D codes and images print on their own lines."""
        self.end_line()

    # ----- ESC -----

    def esc(self) -> None:
        cmd = self.arg(1)
        if cmd is None:
            self.unknown(1)
            return
        n = self.arg(2)
        if cmd == 0x40:  # ESC @
            self.end_line()
            self.reset()
            self.pos += 2
        elif cmd == 0x32:  # ESC 2
            self.line_spacing = 30
            self.pos += 2
        elif cmd in _ESC_SILENT:
            length = 2 + _ESC_SILENT[cmd]
            if not self.has(length):
                self.unknown(length)
                return
            self.pos += length
        elif cmd in _ESC_REPORTED:
            self.unknown(2 + _ESC_REPORTED[cmd])
        elif cmd in (0x69, 0x6D):  # ESC i / ESC m: partial cut (older command)
            self.end_line()
            self.pos += 2
            self.emit(Cut(partial=True))
        elif cmd == 0x44:  # ESC D n1 … NUL: tab positions
            end = self.data.find(b"\x00", self.pos + 2, self.pos + 2 + 33)
            if end == -1:
                self.unknown(2)
                return
            self.pos = end + 1
        elif cmd == 0x2A:  # ESC * m nL nH d…: column bit image
            self.esc_bit_image()
        elif cmd == 0x26:  # ESC & y c1 c2 […]: define user characters
            self.esc_user_chars()
        elif cmd == 0x28:  # ESC ( fn pL pH … (beeper and friends on some printers)
            self.skip_sized(header=3)
        elif cmd == 0x5A:  # ESC Z m n k dL dH d…: 2D code on some Chinese printers
            if not self.has(7):
                self.unknown(7)
                return
            self.unknown(7 + self.data[self.pos + 5] + 256 * self.data[self.pos + 6])
        elif n is None:
            self.unknown(2)
        elif cmd == 0x45:  # ESC E n
            self.emphasized = bool(n & 1)
            self.pos += 3
        elif cmd == 0x47:  # ESC G n
            self.double_strike = bool(n & 1)
            self.pos += 3
        elif cmd == 0x2D:  # ESC - n
            self.underline = {1: 1, 2: 2, 49: 1, 50: 2}.get(n, 0)
            self.pos += 3
        elif cmd == 0x21:  # ESC ! n
            self.font = "b" if n & 0x01 else "a"
            self.emphasized = bool(n & 0x08)
            self.height_mult = 2 if n & 0x10 else 1
            self.width_mult = 2 if n & 0x20 else 1
            self.underline = 1 if n & 0x80 else 0
            self.pos += 3
        elif cmd == 0x61:  # ESC a n
            self.align = ALIGNS.get(n, self.align)
            self.pos += 3
        elif cmd == 0x4D:  # ESC M n
            self.font = {1: "b", 49: "b", 2: "c", 50: "c"}.get(n, "a")
            self.pos += 3
        elif cmd == 0x74:  # ESC t n
            self.codec = CODE_PAGES.get(n, DEFAULT_CODE_PAGE)
            self.pos += 3
        elif cmd == 0x33:  # ESC 3 n (n/180 inch; the preview keeps its own line pitch)
            self.line_spacing = n
            self.pos += 3
        elif cmd in (0x41, 0x2B):  # ESC A n, ESC + n: line spacing in n/60, n/360 inch
            self.pos += 3
        elif cmd == 0x64:  # ESC d n
            self.pos += 3
            self.feed(n)
        elif cmd == 0x4A:  # ESC J n: print and feed n dots
            self.pos += 3
            self.feed(round(n / 30))
        else:
            self.unknown(2)

    def esc_bit_image(self) -> None:
        if not self.has(5):
            self.unknown(5)
            return
        mode = self.data[self.pos + 2]
        columns = self.data[self.pos + 3] + 256 * self.data[self.pos + 4]
        if mode not in (0, 1, 32, 33):
            self.unknown(5)
            return
        column_bytes = 1 if mode in (0, 1) else 3
        length = 5 + columns * column_bytes
        if not self.has(length) or columns == 0:
            self.unknown(length)
            return
        payload = self.data[self.pos + 5 : self.pos + length]
        self.pos += length
        rows = 8 * column_bytes
        row_bytes = (columns + 7) // 8
        raster = bytearray(row_bytes * rows)
        for x in range(columns):
            for j in range(column_bytes):
                byte = payload[x * column_bytes + j]
                if not byte:
                    continue
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        y = j * 8 + bit
                        raster[y * row_bytes + x // 8] |= 0x80 >> (x % 8)
        self.end_line()
        last = self.elements[-1] if self.elements else None
        if (
            self.joinable_index == len(self.elements) - 1
            and isinstance(last, Image)
            and last.width == columns
        ):
            self.elements[-1] = replace(last, height=last.height + rows, raster=last.raster + bytes(raster))
        else:
            self.emit(Image(width=columns, height=rows, align=self.align, raster=bytes(raster)))
        self.stripe_index, self.joinable_index = len(self.elements) - 1, -1

    def esc_user_chars(self) -> None:
        if not self.has(5):
            self.unknown(5)
            return
        height_bytes = self.data[self.pos + 2]
        first, last = self.data[self.pos + 3], self.data[self.pos + 4]
        offset = 5
        for _ in range(max(0, last - first + 1)):
            width = self.arg(offset)
            if width is None:
                self.unknown(offset)
                return
            offset += 1 + width * height_bytes
        if not self.has(offset):
            self.unknown(offset)
            return
        self.pos += offset

    # ----- GS -----

    def gs(self) -> None:
        cmd = self.arg(1)
        if cmd is None:
            self.unknown(1)
            return
        n = self.arg(2)
        if cmd in _GS_SILENT:
            length = 2 + _GS_SILENT[cmd]
            if not self.has(length):
                self.unknown(length)
                return
            self.pos += length
        elif cmd in _GS_REPORTED:
            self.unknown(2 + _GS_REPORTED[cmd])
        elif cmd == 0x28:  # GS ( x pL pH …
            self.gs_paren()
        elif cmd == 0x38:  # GS 8 x p1 p2 p3 p4 …
            self.gs_eight()
        elif cmd == 0x6B:  # GS k
            self.gs_barcode()
        elif cmd == 0x76:  # GS v 0 m xL xH yL yH d…
            self.gs_raster()
        elif cmd == 0x2A:  # GS * x y d…: define downloaded bit image
            if not self.has(4):
                self.unknown(4)
                return
            self.unknown(4 + self.data[self.pos + 2] * self.data[self.pos + 3] * 8)
        elif cmd == 0x56:  # GS V m [n]
            self.gs_cut()
        elif n is None:
            self.unknown(2)
        elif cmd == 0x21:  # GS ! n
            self.width_mult = ((n >> 4) & 0x07) + 1
            self.height_mult = (n & 0x07) + 1
            self.pos += 3
        elif cmd == 0x42:  # GS B n
            self.invert = bool(n & 1)
            self.pos += 3
        elif cmd == 0x68:  # GS h n
            self.barcode_height = n
            self.pos += 3
        elif cmd == 0x77:  # GS w n
            self.barcode_width = n
            self.pos += 3
        elif cmd == 0x48:  # GS H n
            self.hri = HRI_POSITIONS.get(n, self.hri)
            self.pos += 3
        elif cmd == 0x66:  # GS f n
            self.hri_font = "b" if n in (1, 49) else "a"
            self.pos += 3
        else:
            self.unknown(2)

    def gs_cut(self) -> None:
        mode = self.arg(2)
        if mode is None:
            self.unknown(2)
            return
        if mode in (0, 48, 1, 49):
            length = 3
        elif mode in (65, 66, 97, 98, 103, 104):  # functions B, C, D carry a feed amount n
            length = 4
        else:
            self.unknown(3)
            return
        if not self.has(length):
            self.unknown(length)
            return
        self.end_line()
        self.pos += length
        self.emit(Cut(partial=mode in (1, 49, 66, 98, 104)))

    def gs_barcode(self) -> None:
        kind = self.arg(2)
        if kind is None or kind not in BARCODE_TYPES:
            self.unknown(3)
            return
        if kind <= 6:
            end = self.data.find(b"\x00", self.pos + 3, self.pos + 3 + 256)
            if end == -1:
                self.unknown(3)
                return
            payload = self.data[self.pos + 3 : end]
            self.pos = end + 1
        else:
            length = self.arg(3)
            if length is None or not self.has(4 + length):
                self.unknown(4 if length is None else 4 + length)
                return
            payload = self.data[self.pos + 4 : self.pos + 4 + length]
            self.pos += 4 + length
        symbology = BARCODE_TYPES[kind]
        if symbology in ("CODE128", "GS1-128"):
            text, _values = code128_parse(payload)
        else:
            text = _clean(payload.decode("ascii", errors="replace"))
        self.flush_for_block()
        self.emit(
            Barcode(
                symbology=symbology,
                data=text,
                align=self.align,
                height=self.barcode_height,
                module_width=self.barcode_width,
                hri=self.hri,
                hri_font=self.hri_font,
                raw=payload,
            )
        )

    def gs_raster(self) -> None:
        if not self.has(8) or self.data[self.pos + 2] not in (0x30, 0x00):
            self.unknown(2)
            return
        row_bytes = self.data[self.pos + 4] + 256 * self.data[self.pos + 5]
        height = self.data[self.pos + 6] + 256 * self.data[self.pos + 7]
        length = 8 + row_bytes * height
        if not self.has(length):
            self.unknown(length)
            return
        raster = self.data[self.pos + 8 : self.pos + length]
        self.pos += length
        self.flush_for_block()
        self.emit(Image(width=row_bytes * 8, height=height, align=self.align, raster=raster))

    def sized_body(self, *, header: int, size_bytes: int = 2) -> bytes | None:
        """The body of a command whose length follows its ``header`` bytes (pL pH, or p1…p4).

        Does not move on; when the command is cut short it is reported as Unknown and None returned.
        """
        if not self.has(header + size_bytes):
            self.unknown(header + size_bytes)
            return None
        size = int.from_bytes(self.data[self.pos + header : self.pos + header + size_bytes], "little")
        length = header + size_bytes + size
        if not self.has(length):
            self.unknown(length)
            return None
        return self.data[self.pos + header + size_bytes : self.pos + length]

    def skip_sized(self, *, header: int, size_bytes: int = 2, report: bool = True) -> None:
        body = self.sized_body(header=header, size_bytes=size_bytes)
        if body is None:
            return
        length = header + size_bytes + len(body)
        if report:
            self.unknown(length)
        else:
            self.pos += length

    def gs_paren(self) -> None:
        function = self.arg(2)
        if function not in (0x6B, 0x4C):  # only GS ( k (2D codes) and GS ( L (graphics) are decoded
            self.skip_sized(header=3)
            return
        body = self.sized_body(header=3)
        if body is None:
            return
        if function == 0x6B:
            self.gs_2d_code(body)
        else:
            self.graphics(body, header_length=5)

    def gs_eight(self) -> None:
        if self.arg(2) != 0x4C:  # only GS 8 L (graphics with a 4-byte length) is decoded
            self.skip_sized(header=3, size_bytes=4)
            return
        body = self.sized_body(header=3, size_bytes=4)
        if body is None:
            return
        self.graphics(body, header_length=7)

    def graphics(self, body: bytes, *, header_length: int) -> None:
        """GS ( L / GS 8 L: store raster graphics (fn 112) and print it (fn 2 / 50)."""
        start = self.pos
        self.pos += header_length + len(body)
        if len(body) < 2:
            self.elements.append(Unknown(self.data[start : self.pos]))
            return
        function = body[1]
        if function == 112 and len(body) >= 10:  # m fn a bx by c xL xH yL yH d…
            width = body[6] + 256 * body[7]
            height = body[8] + 256 * body[9]
            row_bytes = (width + 7) // 8
            raster = body[10 : 10 + row_bytes * height]
            if len(raster) == row_bytes * height and width and height:
                self.pending_graphics = Image(width=width, height=height, raster=raster)
                return
        elif function in (2, 50):
            if self.pending_graphics is not None:
                self.flush_for_block()
                self.emit(replace(self.pending_graphics, align=self.align))
                self.pending_graphics = None
                return
        elif function in (0, 1, 48, 49, 65, 66, 67, 69):  # settings and queries we do not act on
            pass
        self.elements.append(Unknown(self.data[start : self.pos]))

    def gs_2d_code(self, body: bytes) -> None:
        """GS ( k cn fn …; QR (cn 49): 165 model, 167 size, 169 error correction, 180 store, 181 print."""
        start = self.pos
        self.pos += 5 + len(body)
        if len(body) >= 3 and body[0] == 49:
            function, value = body[1], body[2]
            if function == 65:
                self.qr_model = {49: 1, 50: 2, 51: 3}.get(value, 2)
                return
            if function == 67:
                self.qr_size = value
                return
            if function == 69:
                self.qr_ec = QR_EC_LEVELS.get(value, self.qr_ec)
                return
            if function == 80:
                self.qr_data = body[3:]
                return
            if function == 81 and self.qr_data is not None:
                self.flush_for_block()
                self.emit(
                    QR(
                        data=_clean(self.qr_data.decode("utf-8", errors="replace")),
                        size=self.qr_size,
                        error_correction=self.qr_ec,
                        model=self.qr_model,
                        align=self.align,
                    )
                )
                return
        self.elements.append(Unknown(self.data[start : self.pos]))

    # ----- FS and DLE -----

    def fs(self) -> None:
        cmd = self.arg(1)
        if cmd == 0x26:  # FS &: Chinese mode on
            self.chinese = True
            self.pos += 2
        elif cmd == 0x2E:  # FS .: Chinese mode off
            self.chinese = False
            self.pos += 2
        elif cmd in _FS_SILENT:
            length = 2 + _FS_SILENT[cmd]
            if not self.has(length):
                self.unknown(length)
                return
            self.pos += length
        elif cmd == 0x32:  # FS 2 c1 c2 d1…d72: define a user Kanji
            if not self.has(76):
                self.unknown(76)
                return
            self.pos += 76
        elif cmd == 0x70:  # FS p n m: print NV bit image
            self.unknown(4)
        elif cmd == 0x28:  # FS ( x pL pH …
            self.skip_sized(header=3, report=False)
        else:
            self.unknown(2 if cmd is not None else 1)

    def dle(self) -> None:
        cmd = self.arg(1)
        if cmd in (0x04, 0x05):  # DLE EOT n (status), DLE ENQ n (real-time request)
            self.unknown(3)
        elif cmd == 0x14:  # DLE DC4 fn …
            self.unknown({1: 5, 2: 5, 7: 4, 8: 10}.get(self.arg(2), 3))
        else:
            self.unknown(2 if cmd is not None else 1)
