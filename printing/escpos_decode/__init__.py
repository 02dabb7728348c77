"""Decode ESC/POS bytes (as python-escpos 3.1 writes them) into typed elements and readable text.

Pure Python, no Django: the virtual printer, the preview and the tests use it. It never raises on
bad input; whatever it does not understand becomes an ``Unknown`` element and decoding goes on.
"""

from printing.escpos_decode.decoder import code128_parse, decode
from printing.escpos_decode.elements import QR, Barcode, Cut, Decoded, Element, Feed, Image, Text, Unknown

__all__ = [
    "QR",
    "Barcode",
    "Cut",
    "Decoded",
    "Element",
    "Feed",
    "Image",
    "Text",
    "Unknown",
    "code128_parse",
    "decode",
]
