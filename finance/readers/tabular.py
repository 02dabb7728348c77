"""Shared pieces of the settlement readers: decoding, finding the table in a file, reading amounts and times."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from finance.readers.base import ParsedRow, ReaderFailure, ReadResult, RowError, RowKind

BEIJING = ZoneInfo("Asia/Shanghai")
ZERO = Decimal(0)
SALE, REFUND, FEE, COMMISSION = (
    RowKind.SALE.value,
    RowKind.REFUND.value,
    RowKind.FEE.value,
    RowKind.COMMISSION.value,
)
SHIPPING_SUBSIDY, ADJUSTMENT, PAYOUT = (
    RowKind.SHIPPING_SUBSIDY.value,
    RowKind.ADJUSTMENT.value,
    RowKind.PAYOUT.value,
)
FEE_KINDS = frozenset({FEE, COMMISSION})

# Settlement amounts are stored with 2 decimals in 14 digits; anything this large is a broken cell, not money.
AMOUNT_LIMIT = Decimal(10) ** 12

# How far into a file the header may sit (banks and platforms put title blocks above it).
HEADER_SEARCH_ROWS = 60

_FULLWIDTH = str.maketrans({"（": "(", "）": ")", "：": ":", "，": ",", "\u3000": " "})
_AMOUNT_NOISE = str.maketrans(
    {
        ",": None,
        " ": None,
        "\t": None,
        "`": None,
        "¥": None,
        "￥": None,
        "$": None,
        "€": None,
        "£": None,
        "元": None,
    }
)
_DATE_FALLBACK_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日",
)


class CellProblem(Exception):
    """One cell of a row cannot be read; the reader turns it into a RowError and goes on with the next row."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


def decode_text(data: bytes) -> str:
    """Text of a CSV as the providers write it: UTF-8 (with or without BOM), UTF-16 with BOM, or GBK/GB18030."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312, which is what "ANSI" means on a Chinese Windows export.
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ReaderFailure(_("The file is neither UTF-8 nor GBK text.")) from exc


def is_xlsx(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a CSV export of it would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        # Excel stores money as binary floats; 15 significant digits is what was typed, without 12.300000000000001.
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    return str(value)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    import openpyxl  # only Excel uploads pay for the import
    from openpyxl.utils.exceptions import InvalidFileException

    # What a damaged workbook raises from zipfile, the XML parser (ParseError is a SyntaxError) and openpyxl.
    broken = (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, OSError, SyntaxError)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            for row_no, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield row_no, [cell_text(value) for value in values]
        finally:
            workbook.close()
    except broken as exc:
        raise ReaderFailure(_("The Excel file cannot be opened: %(error)s") % {"error": exc}) from exc


def _unpad(text: str) -> str:
    """Drop the padding providers put around values, on the whole text at once (per cell it costs a third of
    the read): WeChat's backtick before each value, Alipay's tab after each value."""
    if "`" in text:
        text = text.replace(",`", ",").replace("\n`", "\n")
        if text.startswith("`"):
            text = text[1:]
    if "\t" in text:
        text = text.replace("\t,", ",").replace("\t\r\n", "\r\n").replace("\t\n", "\n")
    return text


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(_unpad(text), newline=""))
    try:
        for cells in reader:
            # line_num counts physical lines read so far: the record's last line, exact for one-line records.
            yield reader.line_num, cells
    except csv.Error as exc:
        raise ReaderFailure(
            _("Line %(line)s cannot be read as CSV: %(error)s") % {"line": reader.line_num, "error": exc}
        ) from exc


def file_rows(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """(1-based line or spreadsheet row, cells) for a CSV or an .xlsx file."""
    if is_xlsx(data):
        return _xlsx_rows(data)
    return _csv_rows(decode_text(data))


def header_key(name: str) -> str:
    """A header reduced to what identifies it: no backtick, spaces or unit in brackets, ASCII brackets, lower case.

    "收入金额（+元）", "收入金额(+元)" and "收入金额" all give "收入金额"."""
    name = name.translate(_FULLWIDTH).replace("`", "").replace("\t", "").strip().lower()
    bracket = name.find("(")
    if bracket > 0:
        name = name[:bracket]
    return name.replace(" ", "")


def header_in_fen(name: str) -> bool:
    """Whether a header says its amounts are in fen (分) rather than yuan."""
    name = name.translate(_FULLWIDTH)
    return "(分)" in name or "（分）" in name or "单位:分" in name


@dataclass
class Columns:
    """Where a reader's columns are in one file: position and header as written, by the reader's own key."""

    names: list[str]  # the header row as written in the file, cleaned of backticks and padding
    positions: dict[str, int]

    def has(self, key: str) -> bool:
        return key in self.positions

    def index(self, key: str) -> int:
        """Position of a column in the rows read_body hands over; -1 (always "") when the file lacks it."""
        return self.positions.get(key, -1)

    def label(self, key: str) -> str:
        position = self.positions.get(key)
        return self.names[position] if position is not None else key

    def in_fen(self, key: str) -> bool:
        position = self.positions.get(key)
        return position is not None and header_in_fen(self.names[position])


def match_header(cells: Sequence[str], wanted: dict[str, Sequence[str]]) -> Columns:
    """Columns for a header row; ``wanted`` maps a reader key to the header names it may have (compared as
    header_key gives them; the first is the name an error message shows)."""
    keys = [header_key(cell) for cell in cells]
    positions: dict[str, int] = {}
    for reader_key, aliases in wanted.items():
        for alias in aliases:
            alias_key = header_key(alias)
            if alias_key in keys:
                positions[reader_key] = keys.index(alias_key)
                break
    names = [clean_cell(cell) for cell in cells]
    return Columns(names=names, positions=positions)


def find_table(
    rows: Iterator[tuple[int, list[str]]],
    wanted: dict[str, Sequence[str]],
    required: Sequence[str],
    *,
    format_name: str,
    on_preamble: Callable[[list[str]], None] | None = None,
) -> Columns:
    """Advance ``rows`` past the title block to the header holding every required column, and describe it.

    Lines before the header go to ``on_preamble`` (Alipay and banks put account and period there)."""
    seen_any = False
    for index, (_line_no, cells) in enumerate(rows):
        if index >= HEADER_SEARCH_ROWS:
            break
        if not any(cell.strip() for cell in cells):
            continue
        seen_any = True
        columns = match_header(cells, wanted)
        if all(key in columns.positions for key in required):
            return columns
        if on_preamble is not None:
            on_preamble(cells)
    if not seen_any:
        raise ReaderFailure(_("The file is empty."))
    expected = ", ".join(wanted[key][0] for key in required)
    raise ReaderFailure(
        _("This is not a %(format)s file: no header row with the columns %(columns)s was found.")
        % {"format": format_name, "columns": expected}
    )


# What the providers pad values with: WeChat's leading backtick, Alipay's trailing tab, spaces.
_PADDING = " \t\r\n`\u3000"


def clean_cell(value: str) -> str:
    """A value without the padding the providers add."""
    return value.strip(_PADDING)


def _parse_decorated_amount(text: str, column: str, required: bool) -> Decimal | None:
    """An amount written with separators or signs ("1,234.50", "¥12", "(3.00)"); None for an allowed empty cell."""
    cleaned = text.translate(_AMOUNT_NOISE)
    if cleaned.startswith("(") and cleaned.endswith(")"):  # accounting style (12.00) for a negative amount
        cleaned = "-" + cleaned[1:-1]
    if not cleaned or cleaned in {"-", "--", "/"}:
        if required:
            raise CellProblem(column, _("The amount is empty."))
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise CellProblem(column, _("“%(value)s” is not a number.") % {"value": text[:40]}) from None


def parse_amount(text: str, column: str, *, fen: bool = False, required: bool = True) -> Decimal:
    """A money cell as Decimal in currency units: thousands separators and currency signs dropped, fen divided."""
    try:
        amount = Decimal(text)  # the common case, a plain number; Decimal itself ignores surrounding spaces
    except InvalidOperation:
        amount = _parse_decorated_amount(text, column, required)
        if amount is None:
            return ZERO
    if not amount.is_finite():
        raise CellProblem(column, _("“%(value)s” is not a number.") % {"value": text[:40]})
    if fen:
        if amount != amount.to_integral_value():
            raise CellProblem(
                column, _("An amount in fen must be a whole number, not “%(value)s”.") % {"value": text[:40]}
            )
        amount = amount.scaleb(-2)
    if abs(amount) >= AMOUNT_LIMIT:
        raise CellProblem(column, _("The amount “%(value)s” is too large.") % {"value": text[:40]})
    return amount


def parse_time(text: str, column: str, *, default_zone: ZoneInfo = BEIJING) -> datetime:
    """An aware datetime; a time without offset is local time in ``default_zone`` (Beijing for the Chinese files)."""
    text = text.strip()
    if not text:
        raise CellProblem(column, _("The date is empty."))
    normalised = text.replace("/", "-")
    try:
        moment = datetime.fromisoformat(normalised)  # C-fast, and takes "2026-09-03 10:15:00 -0400" too
    except ValueError:
        moment = None
        for pattern in _DATE_FALLBACK_FORMATS:  # "2026-9-3 8:05", "20260903", "2026年09月03日 08:05:00"
            try:
                moment = datetime.strptime(normalised, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        raise CellProblem(column, _("“%(value)s” is not a date and time.") % {"value": text[:40]})
    if moment.tzinfo is None:
        return moment.replace(tzinfo=default_zone)
    return moment


def derived_row_id(prefix: str, cells: Sequence[str], seen: dict[str, int]) -> str:
    """A stable id for a row of a format that has none: sha1 of the row's normalised cells.

    Two identical rows in one file (two equal fees on one order at the same second) are both real, so the
    n-th copy gets ``#n`` appended; a re-download of the same rows gives the same ids in the same order."""
    digest = hashlib.sha1("\x1f".join(cells).encode("utf-8")).hexdigest()
    count = seen.get(digest, 0) + 1
    seen[digest] = count
    return f"{prefix}:{digest}" if count == 1 else f"{prefix}:{digest}#{count}"


def row_has_nul(cells: Sequence[str]) -> bool:
    return any("\x00" in cell for cell in cells)


def nul_error(line_no: int) -> RowError:
    return RowError(
        line_no=line_no, column="", message=_("The row contains a NUL byte; the file is damaged here.")
    )


def required_value(cells: Sequence[str], index: int, label: str) -> str:
    value = cells[index].strip()
    if not value:
        raise CellProblem(label, _("The value is missing."))
    return value


def joined(first: str, second: str) -> str:
    """Two descriptive cells as one description, without a stray space when either is empty."""
    if first and second:
        return f"{first} {second}"
    return first or second


def raw_row(columns: Columns, cells: Sequence[str]) -> list[str]:
    """The row's cells as the file has them, one per header column (ReadResult.columns names them): a list, not
    a dict per row, so 200,000 rows do not each carry the header's names (half the stored bytes, a fifth of the
    import's time)."""
    return cells[: len(columns.names)]


def read_body(
    rows: Iterator[tuple[int, list[str]]],
    columns: Columns,
    build: Callable[[int, list[str]], ParsedRow | None],
    result: ReadResult,
    *,
    check_nul: bool,
    on_comment: Callable[[list[str]], None] | None = None,
    is_end: Callable[[list[str]], bool] | None = None,
) -> None:
    """Read the rows under the header into ``result``: a row that cannot be read becomes a RowError, the rest go on.

    ``build`` gets the cells (file_rows dropped the providers' padding; readers strip what they use), at least as
    many as the header has columns, plus a trailing "" that Columns.index gives for a column the file lacks.

    Lines starting with "#" are the providers' comment and total lines (``on_comment`` may keep them as meta);
    ``is_end`` stops at a summary block, leaving ``rows`` positioned after that line for the caller."""
    append_row = result.rows.append
    append_error = result.errors.append
    width = len(columns.names)
    result.columns = list(columns.names)
    for line_no, cells in rows:
        if not cells:
            continue
        if cells[0].startswith("#"):
            if on_comment is not None:
                on_comment(cells)
            continue
        if (
            not cells[0].strip() and not "".join(cells).strip()
        ):  # a blank line (the join only when it may be one)
            continue
        if is_end is not None and is_end(cells):
            return
        if check_nul and row_has_nul(cells):
            append_error(nul_error(line_no))
            continue
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        cells.append("")  # what Columns.index -1 reads for a column the file does not have
        try:
            row = build(line_no, cells)
        except CellProblem as problem:
            append_error(RowError(line_no=line_no, column=problem.column, message=problem.message))
            continue
        if row is not None:  # None: a line the reader recognised as not being a transaction (a totals line)
            append_row(row)


def keyword_kind(text: str, rules: Sequence[tuple[str, str]], default: str, cache: dict[str, str]) -> str:
    """The kind for a provider's type text: the first rule whose keyword it contains (types repeat, so cached)."""
    kind = cache.get(text)
    if kind is None:
        kind = next((rule_kind for keyword, rule_kind in rules if keyword in text), default)
        cache[text] = kind
    return kind


def signed_row(
    *,
    line_no: int,
    external_row_id: str,
    kind: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime,
    raw: list[str],
    payment_id: str = "",
    platform_order_id: str = "",
    merchant_order_no: str = "",
    description: str = "",
) -> ParsedRow:
    """A row of a ledger-style file (one signed amount per line) in the hub's terms.

    A fee or commission line is what the provider kept: gross 0, fee = −amount (a fee charged is −10 on the
    ledger, so fee +10; a fee given back is +10, so fee −10), net = amount. Every other line is gross = net."""
    if kind in FEE_KINDS:
        return ParsedRow(
            line_no,
            external_row_id,
            kind,
            ZERO,
            -amount,
            amount,
            currency,
            occurred_at,
            payment_id,
            platform_order_id,
            merchant_order_no,
            description,
            raw,
        )
    return ParsedRow(
        line_no,
        external_row_id,
        kind,
        amount,
        ZERO,
        amount,
        currency,
        occurred_at,
        payment_id,
        platform_order_id,
        merchant_order_no,
        description,
        raw,
    )
