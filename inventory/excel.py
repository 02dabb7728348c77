"""Excel for stock: the stock level export and the count-sheet import (read, validate, then apply all or nothing)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO

from django.utils.translation import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.exceptions import InvalidFileException

from inventory.models import SKU, BundleComponent, StockLevel, Warehouse
from inventory.services import MAX_QUANTITY, Count, stock_take_many
from oms.exceptions import DomainError, ValidationFailed
from oms.xlsx_guard import XlsxLimits, XlsxRefused, xlsx_guard_check

MAX_ROWS = 20_000
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Checked before openpyxl opens the file: it would otherwise inflate the whole shared-strings table.
# A count sheet needs three columns; the export's seven (re-imported after editing) fit easily.
COUNT_SHEET_LIMITS = XlsxLimits(max_rows=MAX_ROWS + 1, max_cells=200_000)

# Header cell (trimmed, lower-cased) → column. English and Chinese headers are both accepted so a
# sheet made by hand in either language, or an edited export, is read the same way.
HEADER_ALIASES = {
    "warehouse": {"warehouse", "warehouse code", "仓库", "仓库编码"},
    "sku": {"sku", "sku code", "商品编码", "sku编码"},
    "counted": {"counted", "counted quantity", "盘点数量"},
}

# What openpyxl raises for a file that is not a readable workbook (SyntaxError covers the XML
# parsers' errors, which are raised lazily while rows are read in read-only mode).
_READ_ERRORS = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError, EOFError,
                SyntaxError)

_WHOLE_NUMBER = re.compile(r"[+-]?\d+")


class CountSheetUnreadable(ValidationFailed):
    """The upload as a whole cannot be used (not xlsx, no header, too many rows)."""

    code = "count_sheet_unreadable"


# --- Export ------------------------------------------------------------------------------------

def stock_levels_headers() -> list[str]:
    return [_("Warehouse code"), _("SKU code"), _("SKU name"), _("On hand"), _("Reserved"), _("Safety stock"),
            _("Available")]


def stock_levels_xlsx(levels: Iterable[StockLevel]) -> bytes:
    """The stock levels as an .xlsx workbook (one sheet, a header row, one row per stock level)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_("Stock levels")[:31])
    sheet.append(stock_levels_headers())
    for level in levels:
        sheet.append([_text_cell(sheet, level.warehouse.code), _text_cell(sheet, level.sku.code),
                      _text_cell(sheet, level.sku.name), level.on_hand, level.reserved, level.safety_stock,
                      level.available])
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet, value: str) -> WriteOnlyCell:
    # Always a string: a name starting with "=" must not become a formula in the user's Excel.
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


# --- Import ------------------------------------------------------------------------------------

@dataclass
class CountRow:
    """One data row of a count sheet: what the cells said, what they resolve to, and what is wrong."""

    row_number: int  # as Excel numbers it (the header is row 1)
    warehouse: str
    sku: str
    counted: str  # the cell as text, shown back in the report
    quantity: int | None = None
    warehouse_id: int | None = None
    sku_id: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return "; ".join(self.errors)


@dataclass
class CountSheetReport:
    rows: list[CountRow]
    applied: int = 0
    # The SKUs whose on hand the applied sheet raised (orders waiting for them may now be served).
    raised_sku_ids: set[int] = field(default_factory=set)

    @property
    def invalid(self) -> list[CountRow]:
        return [row for row in self.rows if row.errors]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.invalid


def count_sheet_read(file, *, max_rows: int = MAX_ROWS) -> list[CountRow]:
    """Read the warehouse / sku / counted columns of the first sheet; blank rows are skipped.

    Raises CountSheetUnreadable when the file is not an .xlsx workbook, unpacks too large (the shared
    guard in oms/xlsx_guard.py), lacks a column or has too many rows. Cells are not checked here
    (see ``count_sheet_validate``).
    """
    size = getattr(file, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise CountSheetUnreadable(_("The file is larger than 5 MB."))
    try:
        xlsx_guard_check(file, limits=COUNT_SHEET_LIMITS)
    except XlsxRefused as exc:
        raise CountSheetUnreadable(exc.message, code=exc.code) from exc
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except _READ_ERRORS as exc:
        raise CountSheetUnreadable(_("The file is not a readable Excel .xlsx workbook.")) from exc
    try:
        return _read_rows(workbook.worksheets[0] if workbook.worksheets else None, max_rows)
    except _READ_ERRORS as exc:
        raise CountSheetUnreadable(_("The file is not a readable Excel .xlsx workbook.")) from exc
    finally:
        workbook.close()


def _read_rows(sheet, max_rows: int) -> list[CountRow]:
    if sheet is None:
        raise CountSheetUnreadable(_("The workbook has no sheet."))
    header = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), None) or ()
    columns: dict[str, int] = {}
    for index, value in enumerate(header):
        name = _text(value).lower()
        for column, aliases in HEADER_ALIASES.items():
            if name in aliases and column not in columns:
                columns[column] = index
    missing = [column for column in HEADER_ALIASES if column not in columns]
    if missing:
        raise CountSheetUnreadable(
            _("The first row must name the columns warehouse, sku and counted (or 仓库, 商品编码, 盘点数量); "
              "missing: %(columns)s.") % {"columns": ", ".join(missing)})
    # Only read as far right as the needed columns: a row with thousands of filled cells costs nothing.
    width = max(columns.values()) + 1
    rows = []
    for row_number, cells in enumerate(sheet.iter_rows(min_row=2, max_col=width, values_only=True), start=2):
        cells = tuple(cells) + (None,) * (width - len(cells))
        warehouse, sku, counted = (cells[columns[name]] for name in ("warehouse", "sku", "counted"))
        if not (_text(warehouse) or _text(sku) or _text(counted)):
            continue
        if len(rows) == max_rows:
            raise CountSheetUnreadable(_("The sheet has more than %(max)s rows; split it into smaller files.")
                                       % {"max": f"{max_rows:,}"})
        rows.append(CountRow(row_number=row_number, warehouse=_text(warehouse), sku=_text(sku),
                             counted=_text(counted), quantity=_whole_number(counted)))
    if not rows:
        raise CountSheetUnreadable(_("The sheet has no data rows under the header."))
    return rows


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric code typed into Excel comes back as 10001.0
    return str(value).strip()


def _whole_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def count_sheet_validate(rows: list[CountRow]) -> CountSheetReport:
    """Check every row against the master data and the current stock, with a fixed number of queries."""
    warehouses = {w.code: w for w in Warehouse.objects.filter(code__in={row.warehouse for row in rows})}
    skus = {s.code: s for s in SKU.objects.filter(code__in={row.sku for row in rows})}
    bundles = set(BundleComponent.objects.filter(bundle__in=skus.values()).values_list("bundle_id", flat=True))
    reserved = {
        (warehouse_id, sku_id): held for warehouse_id, sku_id, held in StockLevel.objects.filter(
            warehouse__in=warehouses.values(), sku__in=skus.values()).values_list("warehouse_id", "sku_id", "reserved")
    }
    seen: dict[tuple[int, int], int] = {}
    for row in rows:
        warehouse = warehouses.get(row.warehouse)
        if not row.warehouse:
            row.errors.append(_("The warehouse is missing."))
        elif warehouse is None:
            row.errors.append(_("Unknown warehouse %(code)s.") % {"code": row.warehouse})
        elif not warehouse.active:
            row.errors.append(_("Warehouse %(code)s is not active.") % {"code": row.warehouse})
        else:
            row.warehouse_id = warehouse.pk

        sku = skus.get(row.sku)
        if not row.sku:
            row.errors.append(_("The SKU code is missing."))
        elif sku is None:
            row.errors.append(_("Unknown SKU %(code)s.") % {"code": row.sku})
        elif sku.pk in bundles:
            row.errors.append(_("%(code)s is a bundle; count its components instead.") % {"code": row.sku})
        else:
            row.sku_id = sku.pk

        if not row.counted:
            row.errors.append(_("The counted quantity is missing."))
        elif row.quantity is None:
            row.errors.append(_("The counted quantity %(value)s is not a whole number.") % {"value": row.counted})
        elif row.quantity < 0:
            row.errors.append(_("The counted quantity must be 0 or more."))
        elif row.quantity > MAX_QUANTITY:
            row.errors.append(_("The counted quantity is larger than %(max)s.") % {"max": f"{MAX_QUANTITY:,}"})

        if row.warehouse_id and row.sku_id:
            key = (row.warehouse_id, row.sku_id)
            if key in seen:
                row.errors.append(_("This SKU and warehouse were already counted in row %(row)s.") % {"row": seen[key]})
            else:
                seen[key] = row.row_number
            held = reserved.get(key, 0)
            if row.quantity is not None and 0 <= row.quantity < held:
                row.errors.append(_("Counted %(counted)s, but %(reserved)s are reserved for orders.") % {
                    "counted": row.quantity, "reserved": held})
    return CountSheetReport(rows=rows)


def count_sheet_apply(*, report: CountSheetReport, reference: str = "", actor=None) -> CountSheetReport:
    """Apply every row with ``stock_take`` in one transaction: all rows or none.

    Only a report without errors is applied, through ``stock_take_many`` (one transaction, the
    stock services' lock order, one ledger insert). A refusal at this point (stock reserved since the
    check) rolls everything back and is reported on its row.
    """
    if not report.ok:
        return report
    counts = [Count(warehouse_id=row.warehouse_id, sku_id=row.sku_id, counted=row.quantity) for row in report.rows]
    try:
        report.raised_sku_ids = stock_take_many(counts=counts, reference=reference, actor=actor)
    except DomainError as exc:
        index = exc.data.get("index") if isinstance(exc.data, dict) else None
        target = report.rows[index] if isinstance(index, int) else report.rows[0]
        target.errors.append(exc.message)
        report.applied = 0
        return report
    report.applied = len(counts)
    return report


def count_sheet_import(*, file, reference: str = "", actor=None) -> CountSheetReport:
    """Read, validate and, when every row is valid, apply a count sheet. Raises CountSheetUnreadable."""
    report = count_sheet_validate(count_sheet_read(file))
    return count_sheet_apply(report=report, reference=reference, actor=actor)
