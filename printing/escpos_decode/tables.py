"""The ESC/POS command bytes and lookup tables the decoder knows."""

from __future__ import annotations

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT, NUL = 0x0A, 0x0D, 0x09, 0x00

ALIGNS = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
HRI_POSITIONS = {0: "none", 1: "above", 2: "below", 3: "both", 48: "none", 49: "above", 50: "below", 51: "both"}  # fmt: skip
QR_EC_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}

# ESC t n → Python codec, after the "Default" profile of python-escpos (escpos-printer-db).
CODE_PAGES = {
    0: "cp437", 1: "cp932", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 13: "cp857", 14: "cp737",
    15: "iso8859_7", 16: "cp1252", 17: "cp866", 18: "cp852", 19: "cp858", 21: "cp874", 32: "cp720",
    33: "cp775", 34: "cp855", 35: "cp861", 36: "cp862", 37: "cp864", 38: "cp869", 39: "iso8859_2",
    40: "iso8859_15", 44: "cp1125", 45: "cp1250", 46: "cp1251", 47: "cp1253", 48: "cp1254", 49: "cp1255",
    50: "cp1256", 51: "cp1257", 52: "cp1258", 53: "kz1048",
}  # fmt: skip
DEFAULT_CODE_PAGE = "cp437"

# GS k m: NUL-terminated form (m 0..6) and length-prefixed form (m 65..78).
BARCODE_TYPES = {
    0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
    65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
    72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1 DATABAR OMNIDIRECTIONAL",
    76: "GS1 DATABAR TRUNCATED", 77: "GS1 DATABAR LIMITED", 78: "GS1 DATABAR EXPANDED",
}  # fmt: skip

# Commands that are understood but change nothing we report or draw: byte → number of parameter bytes.
_ESC_SILENT = {
    0x20: 1,  # ESC SP n     right-side character spacing
    0x25: 1,  # ESC % n      user-defined character set on/off
    0x3C: 0,  # ESC <        return home
    0x3D: 1,  # ESC = n      peripheral device select
    0x3F: 1,  # ESC ? n      cancel user-defined character
    0x4C: 0,  # ESC L        page mode
    0x53: 0,  # ESC S        standard mode
    0x54: 1,  # ESC T n      print direction in page mode
    0x57: 8,  # ESC W ...    print area in page mode
    0x52: 1,  # ESC R n      international character set
    0x55: 1,  # ESC U n      unidirectional printing
    0x56: 1,  # ESC V n      90° rotation
    0x72: 1,  # ESC r n      print colour
    0x7B: 1,  # ESC { n      upside-down printing
    0x24: 2,  # ESC $ nL nH  absolute print position
    0x5C: 2,  # ESC \ nL nH  relative print position
    0x0C: 0,  # ESC FF       print data in page mode
}
# Commands reported as Unknown (status requests, buzzer, drawer, reverse feed): byte → parameter bytes.
_ESC_REPORTED = {
    0x70: 3,  # ESC p m t1 t2  cash drawer pulse
    0x42: 2,  # ESC B n t      buzzer (Chinese printers)
    0x65: 1,  # ESC e n        reverse feed n lines
    0x4B: 1,  # ESC K n        reverse feed n dots
    0x75: 1,  # ESC u n        peripheral status
    0x76: 0,  # ESC v          paper sensor status
    0x63: 2,  # ESC c x n      paper sensors, panel buttons (python-escpos: ESC c 5 n)
    0x66: 2,  # ESC f t1 t2    slip wait time
}
_GS_SILENT = {
    0x62: 1,  # GS b n       smoothing
    0x7C: 1,  # GS | n       print density
    0x4C: 2,  # GS L nL nH   left margin
    0x57: 2,  # GS W nL nH   print area width
    0x50: 2,  # GS P x y     motion units
    0x24: 2,  # GS $ nL nH   absolute vertical position in page mode
    0x5C: 2,  # GS \ nL nH   relative vertical position in page mode
    0x54: 1,  # GS T n       set print position to the beginning of the line
    0x3A: 0,  # GS :         start/end macro definition
    0x5E: 3,  # GS ^ r t m   execute macro
}
_GS_REPORTED = {
    0x61: 1,  # GS a n   automatic status back
    0x72: 1,  # GS r n   transmit status
    0x49: 1,  # GS I n   transmit printer id
    0x2F: 1,  # GS / m   print downloaded bit image
    0x45: 1,  # GS E n   head control (some printers)
    0x67: 2,  # GS g ... maintenance counters (shortest form)
}
_FS_SILENT = {
    0x21: 1,  # FS ! n      Kanji print mode (sizes of Chinese characters; not drawn separately)
    0x2D: 1,  # FS - n      Kanji underline
    0x53: 2,  # FS S n1 n2  Kanji spacing
    0x57: 1,  # FS W n      Kanji quadruple size
    0x43: 1,  # FS C n      Kanji code system
    0x3F: 2,  # FS ? c1 c2  cancel user-defined Kanji
}
