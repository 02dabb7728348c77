"""The shared guard every Excel import runs before openpyxl opens an uploaded .xlsx (sizes, members, rows, cells)."""

from __future__ import annotations

import re
import struct
import zipfile
from dataclasses import dataclass

from django.utils.translation import gettext as _

from oms.exceptions import ValidationFailed

MB = 1024 * 1024
# The end-of-central-directory record: signature, then the entry count at offset 10 (2 bytes).
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the record plus the longest zip comment
_CHUNK = 64 * 1024
# Elements of a worksheet, with or without a namespace prefix (<row …>, <x:c …>, <c/>).
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s/>]")
_TAG_TAIL = 32  # bytes kept between chunks so a tag split across two reads is still counted once


@dataclass(frozen=True)
class XlsxLimits:
    """What an import accepts. The defaults fit a 20,000-row sheet with a few dozen columns."""

    max_members: int = 100
    max_shared_strings_bytes: int = 10 * MB
    max_sheet_bytes: int = 50 * MB
    max_other_member_bytes: int = 10 * MB  # styles, workbook.xml, relationships …
    max_total_bytes: int = 100 * MB
    # Deflate reaches ~1000:1 on repeated bytes; real sheets stay far below 100:1. Only members
    # above the floor are judged, so a tiny, very regular file does not trip it.
    max_ratio: int = 200
    ratio_floor_bytes: int = 1 * MB
    max_rows: int = 20_001  # header + 20,000 data rows
    max_cells: int = 200_000


DEFAULT_LIMITS = XlsxLimits()


class XlsxRefused(ValidationFailed):
    """The upload is not a workbook an import may open (not a zip, too big unpacked, too many rows)."""

    code = "xlsx_refused"


def xlsx_guard_check(file, *, limits: XlsxLimits = DEFAULT_LIMITS) -> None:
    """Refuse a file openpyxl must not open; reads only the zip directory and streams the sheets.

    Memory stays bounded by the chunk size whatever the file claims, because nothing is inflated
    in full: sizes come from the zip directory (zipfile stops at the declared size and fails the
    CRC if a member lies), and rows and cells are counted by scanning 64 KB at a time.
    The file is rewound afterwards so the caller can hand it to openpyxl.
    """
    file.seek(0)
    try:
        _check_member_count(file, limits)
        file.seek(0)
        with zipfile.ZipFile(file) as archive:
            sheets = _check_sizes(archive.infolist(), limits)
            _check_rows_and_cells(archive, sheets, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
        # NotImplementedError: an unknown compression; RuntimeError: an encrypted member.
        raise XlsxRefused(_("The file is not a readable Excel .xlsx workbook."), code="xlsx_not_zip") from exc
    finally:
        file.seek(0)


def _check_member_count(file, limits: XlsxLimits) -> None:
    # Counted from the end record before zipfile builds one object per entry of the directory.
    file.seek(0, 2)
    size = file.tell()
    file.seek(max(0, size - _EOCD_SEARCH))
    tail = file.read()
    at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(tail) < at + 22:
        raise XlsxRefused(_("The file is not a readable Excel .xlsx workbook."), code="xlsx_not_zip")
    (entries,) = struct.unpack("<H", tail[at + 10:at + 12])
    # 0xFFFF means "see the zip64 record": a 5 MB workbook never needs that many entries.
    if entries > limits.max_members:
        raise XlsxRefused(_("The workbook holds too many parts (more than %(max)s); save it again from Excel.")
                          % {"max": limits.max_members}, code="xlsx_too_many_members")


def _check_sizes(members: list[zipfile.ZipInfo], limits: XlsxLimits) -> list[zipfile.ZipInfo]:
    if len(members) > limits.max_members:
        raise XlsxRefused(_("The workbook holds too many parts (more than %(max)s); save it again from Excel.")
                          % {"max": limits.max_members}, code="xlsx_too_many_members")
    total = 0
    sheets = []
    for member in members:
        name = member.filename.lower()
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            limit = limits.max_sheet_bytes
            sheets.append(member)
        elif name.endswith("sharedstrings.xml"):
            limit = limits.max_shared_strings_bytes
        else:
            limit = limits.max_other_member_bytes
        if member.file_size > limit:
            raise XlsxRefused(
                _("The workbook unpacks to more than %(max)s MB in %(part)s; split it into smaller files.")
                % {"max": limit // MB, "part": member.filename}, code="xlsx_member_too_large")
        total += member.file_size
        if total > limits.max_total_bytes:
            raise XlsxRefused(_("The workbook unpacks to more than %(max)s MB; split it into smaller files.")
                              % {"max": limits.max_total_bytes // MB}, code="xlsx_too_large")
        if member.file_size > limits.ratio_floor_bytes and \
                member.file_size > limits.max_ratio * max(member.compress_size, 1):
            raise XlsxRefused(_("The workbook is packed unusually tightly (%(part)s) and looks like a zip bomb; "
                                "save it again from Excel.") % {"part": member.filename}, code="xlsx_zip_bomb")
    return sheets


def _check_rows_and_cells(archive: zipfile.ZipFile, sheets: list[zipfile.ZipInfo], limits: XlsxLimits) -> None:
    rows = cells = 0
    for sheet in sheets:
        tail = b""
        with archive.open(sheet) as stream:
            while chunk := stream.read(_CHUNK):
                data = tail + chunk
                # Count only tags that start before the kept tail, so none is counted twice.
                cut = max(len(data) - _TAG_TAIL, 0)
                rows += sum(1 for m in _ROW_TAG.finditer(data) if m.start() < cut)
                cells += sum(1 for m in _CELL_TAG.finditer(data) if m.start() < cut)
                tail = data[cut:]
                _check_counts(rows, cells, limits)
            rows += len(_ROW_TAG.findall(tail))
            cells += len(_CELL_TAG.findall(tail))
            _check_counts(rows, cells, limits)


def _check_counts(rows: int, cells: int, limits: XlsxLimits) -> None:
    if rows > limits.max_rows:
        raise XlsxRefused(_("The workbook has more than %(max)s rows (header included); split it into smaller files.")
                          % {"max": f"{limits.max_rows:,}"}, code="xlsx_too_many_rows")
    if cells > limits.max_cells:
        raise XlsxRefused(_("The workbook has more than %(max)s cells; split it into smaller files.")
                          % {"max": f"{limits.max_cells:,}"}, code="xlsx_too_many_cells")
