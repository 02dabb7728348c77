"""What decoding yields: typed elements (text runs, barcodes, QR codes, cuts…) and the Decoded result."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    """A run of text in one style; ``line_end`` is False when the line goes on in another style."""

    text: str
    align: str = "left"
    bold: bool = False  # emphasised (ESC E, ESC ! bit 3) or double-strike (ESC G)
    width_mult: int = 1
    height_mult: int = 1
    invert: bool = False
    underline: int = 0  # 0, 1 or 2 dots
    font: str = "a"
    chinese: bool = False  # decoded as GB18030 in Chinese mode: every non-ASCII character is double width
    line_end: bool = True


@dataclass(frozen=True)
class Barcode:
    symbology: str  # "CODE128", "EAN13", … (names as python-escpos uses them)
    data: str  # what the barcode encodes; for CODE128 without the {A/{B/{C code-set selectors
    align: str = "left"
    height: int = 162  # dots (GS h)
    module_width: int = 3  # dots (GS w)
    hri: str = "none"  # human-readable text: none, above, below, both (GS H)
    hri_font: str = "a"
    raw: bytes = b""  # the payload exactly as sent


@dataclass(frozen=True)
class QR:
    data: str
    size: int = 3  # module size in dots (GS ( k function 167)
    error_correction: str = "L"
    model: int = 2
    align: str = "left"


@dataclass(frozen=True)
class Cut:
    partial: bool = False


@dataclass(frozen=True)
class Feed:
    lines: int


@dataclass(frozen=True)
class Image:
    """A bit image; ``raster`` is row-major, MSB first, ceil(width/8) bytes a row, 1 = black."""

    width: int
    height: int
    align: str = "left"
    raster: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Unknown:
    data: bytes


Element = Text | Barcode | QR | Cut | Feed | Image | Unknown


@dataclass
class Decoded:
    elements: list = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """The printed text lines (runs of one line joined), without barcodes, feeds and cuts."""
        lines, current = [], []
        for element in self.elements:
            if isinstance(element, Text):
                current.append(element.text)
                if element.line_end:
                    lines.append("".join(current))
                    current = []
        if current:
            lines.append("".join(current))
        return lines

    def of_type(self, kind: type) -> list:
        return [element for element in self.elements if isinstance(element, kind)]

    @property
    def text(self) -> str:
        """Readable plain text: text lines, [BARCODE …], [QR: …], [IMAGE w×h], blank lines, cut marks."""
        out, current = [], []
        for element in self.elements:
            if isinstance(element, Text):
                current.append(element.text)
                if element.line_end:
                    out.append("".join(current))
                    current = []
                continue
            if current:
                out.append("".join(current))
                current = []
            if isinstance(element, Barcode):
                out.append(f"[BARCODE {element.symbology}: {element.data}]")
            elif isinstance(element, QR):
                out.append(f"[QR: {element.data}]")
            elif isinstance(element, Image):
                out.append(f"[IMAGE {element.width}x{element.height}]")
            elif isinstance(element, Feed):
                # A cut is preceded by a six-line feed; more than two blank lines only hide content.
                out.extend([""] * min(element.lines, 2))
            elif isinstance(element, Cut):
                out.append("----- cut -----")
        if current:
            out.append("".join(current))
        return "\n".join(out) + ("\n" if out else "")
