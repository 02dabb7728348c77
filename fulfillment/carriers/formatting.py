"""Tracking numbers for customers: grouped for reading, with the carrier's public tracking URL."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

# For carriers whose own tracking page takes no number in its URL (or whose pattern we cannot vouch
# for): kuaidi100 recognises the carrier from the number.
KUAIDI100 = "https://www.kuaidi100.com/chaxun?nu={number}"

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212"  # what a keyboard or an IME may type for "-"
_UPU_S10 = re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}")  # international postal items: EA123456789CN
_UPS_1Z = re.compile(r"1Z[0-9A-Z]{16}")
_PREFIX_DIGITS_SUFFIX = re.compile(r"([A-Z]*)(\d+)([A-Z]*)")


@dataclass(frozen=True)
class CarrierFormat:
    url: str  # with {number}
    postal: bool = False  # a post (EMS, USPS): UPU S10 numbers are grouped 2-3-3-3-2 as printed


FORMATS: dict[str, CarrierFormat] = {
    "SF": CarrierFormat("https://www.sf-express.com/chn/sc/waybill/waybill-detail/{number}"),
    "EMS": CarrierFormat(KUAIDI100, postal=True),
    "YTO": CarrierFormat(KUAIDI100),
    "ZTO": CarrierFormat(KUAIDI100),
    "STO": CarrierFormat(KUAIDI100),
    "YUNDA": CarrierFormat(KUAIDI100),
    "JD": CarrierFormat(KUAIDI100),
    "USPS": CarrierFormat("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}", postal=True),
    "UPS": CarrierFormat("https://www.ups.com/track?tracknum={number}"),
    "FEDEX": CarrierFormat("https://www.fedex.com/fedextrack/?trknbr={number}"),
    "DHL": CarrierFormat(
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={number}"
    ),
}


def normalize_tracking_number(value: str) -> str:
    """A scanned or typed number as stored: full-width forms folded, spaces and dashes removed, upper case."""
    # NFKC folds what a Chinese IME types (ＳＦ１２３, the ideographic space, －) to ASCII.
    folded = unicodedata.normalize("NFKC", value or "")
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _DASHES).upper()


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def group_tracking_number(number: str, *, postal: bool = False) -> str:
    """``number`` (normalised) in groups a customer can read back over the phone."""
    if postal and _UPU_S10.fullmatch(number):
        return " ".join((number[:2], number[2:5], number[5:8], number[8:11], number[11:]))
    if _UPS_1Z.fullmatch(number):  # as UPS prints it: 1Z 999 AA1 01 2345 6784
        return " ".join((number[:2], number[2:5], number[5:8], number[8:10], number[10:14], number[14:]))
    match = _PREFIX_DIGITS_SUFFIX.fullmatch(number)
    if match:  # letters kept together, digits in fours: SF 1234 5678 9012 3
        prefix, digits, suffix = match.groups()
        return " ".join(part for part in (prefix, *_chunks(digits, 4), suffix) if part)
    return " ".join(_chunks(number, 4))


def customer_tracking(carrier_code: str, tracking_number: str) -> tuple[str, str]:
    """(the number grouped for reading, the public tracking URL) for a carrier code such as "SF".

    An unknown carrier gives the number unchanged and no URL.
    """
    fmt = FORMATS.get((carrier_code or "").strip().upper())
    if fmt is None:
        return tracking_number, ""
    number = normalize_tracking_number(tracking_number)
    if not number:
        return "", ""
    return group_tracking_number(number, postal=fmt.postal), fmt.url.format(number=quote(number, safe=""))
