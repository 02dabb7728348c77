"""PNG preview of a decoded ESC/POS job, drawn at printer resolution (8 dots/mm, one pixel a dot).

Pure Python on Pillow, no Django. Text is laid out in the printer's character cells (font A 12×24, font B
9×17, Chinese characters twice as wide), so columns padded with spaces line up as on paper. Code128 is
encoded here, other 1D symbologies with python-barcode and QR with qrcode (both come with python-escpos).
Chinese glyphs need a CJK font: OMS_PREVIEW_FONT (a font file path, optionally "path#index" for a .ttc),
else the first of the usual Noto CJK / WenQuanYi paths that exists (Debian: fonts-noto-cjk or
fonts-wqy-microhei), else Pillow's default font, which draws boxes for Chinese characters. ASCII is
drawn with DejaVu Sans Mono (or Liberation Mono) when installed, else with the same font.
"""

from __future__ import annotations

import io
import logging
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import barcode
import barcode.errors
import qrcode
import qrcode.exceptions
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from printing.escpos_decode import QR, Barcode, Cut, Decoded, Feed, Image, Text, code128_parse

__all__ = ["FONT_ENV", "PAPER_DOTS", "PreviewFonts", "preview_fonts", "render_png"]

logger = logging.getLogger(__name__)

FONT_ENV = "OMS_PREVIEW_FONT"
PAPER_DOTS = {80: 576, 58: 384}  # printable width in dots at 203 dpi
LINE_PITCH = 30  # default line spacing (ESC 2) in dots
MARGIN = 8
MAX_HEIGHT = 20000  # a runaway job (garbage, feeds of 255 lines) must not produce a gigantic PNG
CELLS = {"a": (12, 24), "b": (9, 17), "c": (9, 17)}  # character cell (width, height) in dots per font

# Chinese fonts in the order tried; .ttc collections are searched for their Simplified Chinese face.
CJK_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)
MONO_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
)

QR_EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}

# Code 128 bar/space widths for symbol values 0–106 (106 is the stop pattern, 13 modules).
CODE128_PATTERNS = (
    "212222 222122 222221 121223 121322 131222 122213 122312 132212 221213 221312 231212 112232 122132 "
    "122231 113222 123122 123221 223211 221132 221231 213212 223112 312131 311222 321122 321221 312212 "
    "322112 322211 212123 212321 232121 111323 131123 131321 112313 132113 132311 211313 231113 231311 "
    "112133 112331 132131 113123 113321 133121 313121 211331 231131 213113 213311 213131 311123 311321 "
    "331121 312113 312311 332111 314111 221411 431111 111224 111422 121124 121421 141122 141221 112214 "
    "112412 122114 122411 142112 142211 241211 221114 413111 241112 134111 111242 121142 121241 114212 "
    "124112 124211 411212 421112 421211 212141 214121 412121 111143 111341 131141 114113 114311 411113 "
    "411311 113141 114131 311141 411131 211412 211214 211232 2331112"
).split()

# Other symbologies drawn with python-barcode: name → (class name, data → constructor arguments).
OTHER_BARCODES: dict[str, tuple[str, Callable[[str], dict]]] = {
    "EAN13": ("ean13", lambda data: {"ean": data[:12]}),
    "EAN8": ("ean8", lambda data: {"ean": data[:7]}),
    "UPC-A": ("upca", lambda data: {"upc": data[:11]}),
    "CODE39": ("code39", lambda data: {"code": data.strip("*"), "add_checksum": False}),
    "ITF": ("itf", lambda data: {"code": data, "narrow": 1, "wide": 3}),
    "CODABAR": ("codabar", lambda data: {"code": data, "narrow": 1, "wide": 3}),
}


@dataclass(frozen=True)
class PreviewFonts:
    cjk: str  # path (and #index) of the font used for wide characters, or "Pillow default"
    latin: str  # the same for narrow characters


def preview_fonts() -> PreviewFonts:
    """Which fonts the preview uses here (for logs and the docs)."""
    cjk, latin = _font_sources()
    return PreviewFonts(cjk=_describe(cjk), latin=_describe(latin))


def render_png(decoded: Decoded, *, paper_width: int = 80) -> bytes:
    """A PNG of the receipt: 576 px wide for 80 mm paper, 384 px for 58 mm. Same input and fonts, same bytes."""
    if paper_width not in PAPER_DOTS:
        raise ValueError(f"paper_width must be one of {sorted(PAPER_DOTS)} (mm), not {paper_width}")
    width = PAPER_DOTS[paper_width]
    painter = _Painter(width)
    blocks: list[PILImage.Image] = []
    total = 0
    pending_line: list[Text] = []
    for element in decoded.elements:
        if total > MAX_HEIGHT:
            blocks.append(painter.note("… preview cut short: the job is too long"))
            break
        new: list[PILImage.Image] = []
        if isinstance(element, Text):
            pending_line.append(element)
            if element.line_end:
                new = painter.text_line(pending_line)
                pending_line = []
        else:
            if pending_line:
                new = painter.text_line(pending_line)
                pending_line = []
            new += painter.element(element)
        blocks.extend(new)
        total += sum(block.height for block in new)
    if pending_line:
        blocks.extend(painter.text_line(pending_line))

    height = min(MARGIN * 2 + sum(block.height for block in blocks), MAX_HEIGHT + 200)
    page = PILImage.new("L", (width, height), 255)
    y = MARGIN
    for block in blocks:
        if y >= height:
            break
        page.paste(block, (0, y))
        y += block.height
    out = io.BytesIO()
    page.point(lambda v: 255 if v >= 128 else 0, mode="1").save(out, format="PNG", optimize=False)
    return out.getvalue()


# ----- fonts -----

FontSource = tuple[str, int] | None  # (path, index in a collection); None = Pillow's default font


def _describe(source: FontSource) -> str:
    if source is None:
        return "Pillow default"
    path, index = source
    return f"{path}#{index}" if index else path


def _font_sources() -> tuple[FontSource, FontSource]:
    """(font for double-width characters, font for ASCII and other narrow ones)."""
    mono = next(((path, 0) for path in MONO_FONT_PATHS if _load((path, 0), 24) is not None), None)
    configured = os.environ.get(FONT_ENV, "").strip()
    if configured:
        path, _, index = configured.partition("#")
        source = (path, int(index) if index.isdigit() else 0)
        if _load(source, 24) is not None:
            return source, mono or source
        logger.warning("%s=%s cannot be loaded; using the fonts found on the system", FONT_ENV, configured)
    cjk = next((source for path in CJK_FONT_PATHS if (source := _cjk_face(path)) is not None), None)
    return cjk, mono or cjk


@lru_cache(maxsize=32)
def _cjk_face(path: str) -> FontSource:
    """The Simplified Chinese face of a font file (collections hold JP, KR, SC, TC… faces), or None."""
    if not os.path.isfile(path):
        return None
    first = None
    for index in range(8):
        font = _load((path, index), 24)
        if font is None:
            break
        first = first or (path, index)
        family = font.getname()[0] or ""
        if family.endswith(" SC") or "GB" in family or "Hei" in family or "WenQuanYi" in family:
            return path, index
    return first


@lru_cache(maxsize=64)
def _load(source: FontSource, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont | None:
    if source is None:
        return ImageFont.load_default(size=size)
    path, index = source
    try:
        return ImageFont.truetype(path, size=size, index=index)
    except OSError:
        return None


# ----- drawing -----


class _Painter:
    def __init__(self, width: int) -> None:
        self.width = width
        cjk, latin = _font_sources()
        self.sources = {True: cjk, False: latin}
        self.glyphs: dict[tuple, PILImage.Image] = {}

    def blank(self, height: int) -> PILImage.Image:
        return PILImage.new("L", (self.width, max(height, 1)), 255)

    def x_for(self, align: str, content_width: int) -> int:
        if align == "center":
            return max((self.width - content_width) // 2, 0)
        if align == "right":
            return max(self.width - content_width, 0)
        return 0

    def glyph(self, char: str, font: str, wide: bool, bold: bool) -> PILImage.Image:
        """The character's mask in its 1× cell: 255 where a dot prints."""
        key = (char, font, wide, bold)
        if key in self.glyphs:
            return self.glyphs[key]
        cell_w, cell_h = CELLS.get(font, CELLS["a"])
        cell_w *= 2 if wide else 1
        size = cell_h - 2 if wide else cell_h - 4
        face = _load(self.sources[wide], size) or _load(None, size)
        mask = PILImage.new("L", (cell_w, cell_h), 0)
        draw = ImageDraw.Draw(mask)
        for dx in (0, 1) if bold else (0,):  # bold is printed as a second pass one dot to the right
            if isinstance(face, ImageFont.FreeTypeFont):
                draw.text((cell_w // 2 + dx, cell_h * 4 // 5), char, fill=255, font=face, anchor="ms")
            else:
                draw.text((dx, 0), char, fill=255, font=face)
        mask = mask.point(lambda v: 255 if v >= 128 else 0)
        self.glyphs[key] = mask
        return mask

    def text_line(self, runs: list[Text]) -> list[PILImage.Image]:
        """One printed line (runs of different styles), wrapped at the paper width like a printer does."""
        cells: list[tuple[str, Text, bool, int, int]] = []  # char, run, wide, width, height
        for run in runs:
            cell_w, cell_h = CELLS.get(run.font, CELLS["a"])
            for char in run.text:
                if unicodedata.combining(char):
                    continue
                # In Chinese mode every multi-byte character comes from the printer's double-width GB font.
                wide = (run.chinese and ord(char) >= 0x80) or unicodedata.east_asian_width(char) in ("W", "F")
                width = cell_w * (2 if wide else 1) * run.width_mult
                cells.append((char, run, wide, min(width, self.width), cell_h * run.height_mult))
        rows: list[list] = [[]]
        used = 0
        for cell in cells:
            if used + cell[3] > self.width and rows[-1]:
                rows.append([])
                used = 0
            rows[-1].append(cell)
            used += cell[3]
        blocks = []
        align = runs[0].align if runs else "left"
        for row in rows:
            text_height = max((cell[4] for cell in row), default=CELLS["a"][1])
            block = self.blank(max(LINE_PITCH, text_height + 6))
            x = self.x_for(align, sum(cell[3] for cell in row))
            for char, run, wide, width, height in row:
                top = text_height - height  # characters of one line share their baseline
                box = (x, top, x + width, top + height)
                if run.invert:
                    ImageDraw.Draw(block).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=0)
                mask = self.glyph(char, run.font, wide, run.bold)
                if run.width_mult != 1 or run.height_mult != 1 or mask.width != width:
                    mask = mask.resize((width, height), PILImage.Resampling.NEAREST)
                block.paste(255 if run.invert else 0, box, mask)
                if run.underline:
                    ImageDraw.Draw(block).rectangle(
                        (x, top + height - run.underline, x + width - 1, top + height - 1),
                        fill=255 if run.invert else 0,
                    )
                x += width
            blocks.append(block)
        return blocks

    def hri(self, text: str, font: str, centre_x: int) -> PILImage.Image:
        cell_w, cell_h = CELLS.get(font, CELLS["a"])
        block = self.blank(cell_h + 4)
        x = centre_x - len(text) * cell_w // 2
        for char in text[: self.width // cell_w]:
            if 0 <= x <= self.width - cell_w:
                block.paste(0, (x, 2, x + cell_w, 2 + cell_h), self.glyph(char, font, False, False))
            x += cell_w
        return block

    def note(self, message: str) -> PILImage.Image:
        """A remark of the preview itself (not printed by a real printer), in font B."""
        return self.text_line([Text(message, font="b")])[0]

    def element(self, element) -> list[PILImage.Image]:
        if isinstance(element, Feed):
            return [self.blank(min(element.lines, 255) * LINE_PITCH)]
        if isinstance(element, Cut):
            block = self.blank(24)
            draw = ImageDraw.Draw(block)
            dash, gap = (6, 6) if element.partial else (12, 6)
            for x in range(0, self.width, dash + gap):
                draw.rectangle((x, 11, min(x + dash, self.width) - 1, 12), fill=0)
            return [block]
        if isinstance(element, Barcode):
            return self.barcode(element)
        if isinstance(element, QR):
            return self.qr(element)
        if isinstance(element, Image):
            return self.image(element)
        return []  # Unknown: nothing printed

    def barcode(self, element: Barcode) -> list[PILImage.Image]:
        modules = _barcode_modules(element)
        if modules is None:
            return self.labelled_box(f"{element.symbology}: {element.data}", 48)
        module = max(1, min(element.module_width, 6))
        notes = []
        if len(modules) * module > self.width:
            notes.append(self.note(f"! barcode {len(modules) * module} dots wide > paper {self.width} dots"))
            module = max(1, self.width // len(modules))
        bars_width = min(len(modules) * module, self.width)
        height = max(1, min(element.height, 255))
        bars = self.blank(height)
        x0 = self.x_for(element.align, bars_width)
        draw = ImageDraw.Draw(bars)
        for i, bit in enumerate(modules):
            left = x0 + i * module
            if bit == "1" and left < self.width:
                draw.rectangle((left, 0, min(left + module, self.width) - 1, height - 1), fill=0)
        centre = x0 + bars_width // 2
        blocks = list(notes)
        if element.hri in ("above", "both"):
            blocks.append(self.hri(element.data, element.hri_font, centre))
        blocks.append(bars)
        if element.hri in ("below", "both"):
            blocks.append(self.hri(element.data, element.hri_font, centre))
        return blocks

    def qr(self, element: QR) -> list[PILImage.Image]:
        if not element.data:
            return self.labelled_box("QR (no data)", 48)
        code = qrcode.QRCode(box_size=1, border=0, error_correction=QR_EC.get(element.error_correction, 1))
        try:
            code.add_data(element.data)
            code.make(fit=True)
        except (qrcode.exceptions.DataOverflowError, ValueError):
            return self.labelled_box(f"QR too long: {element.data[:40]}", 96)
        matrix = code.get_matrix()
        module = max(1, min(element.size, 16))
        side = len(matrix) * module
        if side > self.width:
            module = max(1, self.width // len(matrix))
            side = len(matrix) * module
        block = self.blank(side + 8)
        x0 = self.x_for(element.align, side)
        draw = ImageDraw.Draw(block)
        for y, row in enumerate(matrix):
            for x, dark in enumerate(row):
                if dark:
                    left, top = x0 + x * module, 4 + y * module
                    draw.rectangle((left, top, left + module - 1, top + module - 1), fill=0)
        return [block]

    def image(self, element: Image) -> list[PILImage.Image]:
        row_bytes = (element.width + 7) // 8
        if not element.width or not element.height or len(element.raster) < row_bytes * element.height:
            return self.labelled_box(f"image {element.width}x{element.height}", 48)
        bitmap = PILImage.frombytes(
            "1", (element.width, element.height), element.raster, "raw", "1;I", row_bytes
        )
        bitmap = bitmap.convert("L")
        if bitmap.width > self.width:
            bitmap = bitmap.crop((0, 0, self.width, bitmap.height))
        block = self.blank(bitmap.height)
        block.paste(bitmap, (self.x_for(element.align, bitmap.width), 0))
        return [block]

    def labelled_box(self, label: str, height: int) -> list[PILImage.Image]:
        """What cannot be drawn (an unsupported symbology, a QR too long): a box with its content."""
        block = self.blank(height)
        ImageDraw.Draw(block).rectangle((0, 0, self.width - 1, height - 1), outline=0, width=2)
        text = self.text_line([Text(f"[{label}]", align="center", font="b")])[0]
        block.paste(text.crop((0, 0, self.width, min(text.height, height - 4))), (0, 2))
        return [block]


def _barcode_modules(element: Barcode) -> str | None:
    """The barcode as a string of modules ("1" = bar), or None when it cannot be drawn."""
    if element.symbology in ("CODE128", "GS1-128"):
        _text, values = code128_parse(element.raw or b"{B" + element.data.encode("ascii", "replace"))
        if len(values) < 2:
            return None
        checksum = (values[0] + sum(weight * value for weight, value in enumerate(values[1:], start=1))) % 103
        modules = []
        for value in [*values, checksum, 106]:
            for i, width in enumerate(CODE128_PATTERNS[value]):
                modules.append(("1" if i % 2 == 0 else "0") * int(width))
        return "".join(modules)
    if element.symbology not in OTHER_BARCODES:
        return None
    name, arguments = OTHER_BARCODES[element.symbology]
    try:
        return "".join(barcode.get_barcode_class(name)(**arguments(element.data)).build())
    except (barcode.errors.BarcodeError, ValueError, KeyError, IndexError):
        return None
