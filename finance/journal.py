"""The month's journal for the accounting system: settlement amounts per store, channel and kind, booked to the
seller's chart of accounts (AccountMapping), exported for QuickBooks Online and for Chinese accounting software.

One journal entry per store, channel (the settlement source) and currency, dated the month's last day; in it two
lines (a debit and a credit of the same amount) per kind with an amount, so every entry balances by
construction. The amount of a kind, from the month's imported rows (bank statements are left out: a bank line is
the other side of a platform payout already booked):

- sale: Σ gross of sale rows; refund: −Σ gross of refund rows (money given back, positive);
- commission: Σ fee of commission rows; fee: Σ fee of every other row (fee lines and the fee a provider keeps on
  a sale, as Shopify does);
- shipping_subsidy, adjustment: Σ gross of their rows (money added to the balance);
- payout: −Σ gross of payout rows (money that left the platform balance for the bank).

A mapping says which account is debited and which credited for a positive amount; a negative amount (a fee given
back, an adjustment taken) books the same two accounts the other way round.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from finance.matching import month_bounds
from finance.models import AccountMapping, SettlementFileStatus, SettlementRow
from finance.readers.base import RowKind, SettlementSource
from oms.exceptions import ValidationFailed
from orders.models import Store

ZERO = Decimal("0.00")
_CENT = Decimal("0.01")
# The order lines of an entry follow: the money's way through the month.
KIND_ORDER = [RowKind.SALE, RowKind.REFUND, RowKind.FEE, RowKind.COMMISSION, RowKind.SHIPPING_SUBSIDY,
              RowKind.ADJUSTMENT, RowKind.PAYOUT]

# QuickBooks Online's journal entry import (Settings → Import data → Journal entries): the columns Intuit's help
# names, see docs/finance.md "Journal export". Account Name must be the account's name (account numbers turned
# off in QuickBooks for the import); Name is needed only on A/R or A/P lines, which this journal has none of.
QUICKBOOKS_HEADER = ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name"]
# The column names Chinese accounting software (用友, 金蝶 and the like) map on import; a file format, not UI
# text, so not translated.
PLAIN_HEADER = ["凭证号", "日期", "摘要", "科目编码", "科目名称", "借方", "贷方"]


class AccountMappingMissing(ValidationFailed):
    code = "finance_account_mapping_missing"


@dataclass(frozen=True)
class JournalLine:
    entry_no: str
    date: date
    account_code: str
    account_name: str
    debit: Decimal  # one of debit and credit is zero
    credit: Decimal
    description: str
    store_id: int | None
    store_name: str
    channel: str  # the settlement source
    currency: str
    kind: str


def period_journal(month: date, store: Store | None = None) -> list[JournalLine]:
    """The month's journal lines (of one store, or of every store), balanced per entry.

    Raises AccountMappingMissing naming every kind (and store) with an amount but no account mapping.
    """
    first = month.replace(day=1)
    start, end = month_bounds(first)
    entry_date = end.date() - timedelta(days=1)
    rows = (SettlementRow.objects.filter(file__status=SettlementFileStatus.IMPORTED, occurred_at__gte=start,
                                         occurred_at__lt=end).exclude(source=SettlementSource.BANK))
    if store is not None:
        rows = rows.filter(file__store=store)
    amounts: dict[tuple[int | None, str, str], dict[str, Decimal]] = {}
    for group in (rows.values("file__store", "source", "currency", "kind")
                  .annotate(gross=Sum("gross"), fee=Sum("fee")).order_by()):
        entry = amounts.setdefault((group["file__store"], group["source"], group["currency"]), {})
        for kind, amount in _kind_amounts(group["kind"], group["gross"], group["fee"]):
            entry[kind] = entry.get(kind, ZERO) + amount
    mappings = _mappings()
    names = dict(Store.objects.values_list("pk", "name"))
    missing: list[str] = []
    lines: list[JournalLine] = []
    keys = sorted(amounts, key=lambda key: (names.get(key[0], ""), key[0] or 0, key[1], key[2]))
    for number, key in enumerate(keys, start=1):
        store_id, source, currency = key
        store_name = names.get(store_id, "")
        entry_no = f"{first:%Y%m}-{number:03d}"
        for kind in KIND_ORDER:
            amount = amounts[key].get(kind, ZERO).quantize(_CENT)
            if not amount:
                continue
            mapping = mappings.get((store_id, kind)) or mappings.get((None, kind))
            if mapping is None:
                missing.append(_("%(kind)s (%(store)s)") % {"kind": RowKind(kind).label,
                                                              "store": store_name or _("No store")})
                continue
            debit = (mapping.debit_account_code, mapping.debit_account_name)
            credit = (mapping.credit_account_code, mapping.credit_account_name)
            if amount < 0:
                debit, credit, amount = credit, debit, -amount
            description = " ".join(part for part in (
                f"{first:%Y-%m}", store_name, str(SettlementSource(source).label), str(RowKind(kind).label),
                currency) if part)
            common = {"entry_no": entry_no, "date": entry_date, "description": description, "store_id": store_id,
                      "store_name": store_name, "channel": source, "currency": currency, "kind": kind}
            lines.append(JournalLine(account_code=debit[0], account_name=debit[1], debit=amount, credit=ZERO,
                                     **common))
            lines.append(JournalLine(account_code=credit[0], account_name=credit[1], debit=ZERO, credit=amount,
                                     **common))
    if missing:
        raise AccountMappingMissing(
            _("No account mapping for %(kinds)s; add it in the account mapping before exporting the journal.")
            % {"kinds": ", ".join(sorted(set(missing)))}, data={"missing": sorted(set(missing))})
    return lines


def _kind_amounts(kind: str, gross: Decimal, fee: Decimal) -> list[tuple[str, Decimal]]:
    """What one kind's row sums contribute to the journal's kinds (see the module docstring)."""
    if kind == RowKind.COMMISSION:
        # A commission line's gross is 0 in every reader; were it not, it is money added, as an adjustment.
        return [(RowKind.COMMISSION, fee), (RowKind.ADJUSTMENT, gross)]
    if kind in (RowKind.REFUND, RowKind.PAYOUT):
        return [(kind, -gross), (RowKind.FEE, fee)]
    # sale, fee, shipping subsidy, adjustment: a fee row's gross is 0, so only its fee counts.
    return [(kind, gross), (RowKind.FEE, fee)]


def _mappings() -> dict[tuple[int | None, str], AccountMapping]:
    return {(mapping.store_id, mapping.kind): mapping for mapping in AccountMapping.objects.all()}


def journal_entries_balance(lines: list[JournalLine]) -> dict[str, tuple[Decimal, Decimal]]:
    """Debits and credits per entry number (equal in every entry the journal makes)."""
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for line in lines:
        debit, credit = totals.get(line.entry_no, (ZERO, ZERO))
        totals[line.entry_no] = (debit + line.debit, credit + line.credit)
    return totals


def journal_csv_quickbooks(month: date, store: Store | None = None, *, currency: str | None = None,
                           date_format: str = "%m/%d/%Y") -> bytes:
    """The journal as a QuickBooks Online journal entry import file (UTF-8 CSV, QUICKBOOKS_HEADER).

    A QuickBooks company books in its home currency: a journal with several currencies is refused unless
    ``currency`` picks one. Dates are MM/DD/YYYY (the US company's format; pass ``date_format`` for a company set
    up with another)."""
    lines = _of_currency(period_journal(month, store), currency)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(QUICKBOOKS_HEADER)
    for line in lines:
        writer.writerow([line.entry_no, line.date.strftime(date_format), line.account_name, _amount(line.debit),
                         _amount(line.credit), line.description, ""])
    return buffer.getvalue().encode("utf-8")


def journal_csv_plain(month: date, store: Store | None = None, *, currency: str | None = None) -> bytes:
    """The journal as a plain double-entry CSV (PLAIN_HEADER), UTF-8 with a byte-order mark so Chinese Excel and
    accounting software read it as UTF-8. The currency is in 摘要; ``currency`` keeps one."""
    lines = _of_currency(period_journal(month, store), currency, refuse_mixed=False)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(PLAIN_HEADER)
    for line in lines:
        writer.writerow(_plain_values(line))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def journal_xlsx_plain(month: date, store: Store | None = None, *, currency: str | None = None) -> bytes:
    """journal_csv_plain as an .xlsx workbook, amounts as numbers with two decimals."""
    lines = _of_currency(period_journal(month, store), currency, refuse_mixed=False)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="凭证")
    sheet.append(PLAIN_HEADER)
    for line in lines:
        cells = []
        for value in (line.entry_no, line.date.isoformat(), line.description, line.account_code, line.account_name):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # an account name starting with "=" stays text
            cells.append(cell)
        for amount in (line.debit, line.credit):
            cell = WriteOnlyCell(sheet, value=amount)
            cell.number_format = "#,##0.00"
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _plain_values(line: JournalLine) -> list[str]:
    return [line.entry_no, line.date.isoformat(), line.description, line.account_code, line.account_name,
            format(line.debit, "f"), format(line.credit, "f")]


def _amount(value: Decimal) -> str:
    # QuickBooks reads a line as debit or credit by which column has the amount: the other stays empty.
    return format(value, "f") if value else ""


def _of_currency(lines: list[JournalLine], currency: str | None, *, refuse_mixed: bool = True
                 ) -> list[JournalLine]:
    if currency is not None:
        return [line for line in lines if line.currency == currency]
    currencies = sorted({line.currency for line in lines})
    if refuse_mixed and len(currencies) > 1:
        raise ValidationFailed(
            _("The journal has amounts in %(currencies)s; export one currency at a time.")
            % {"currencies": ", ".join(currencies)}, code="finance_journal_mixed_currencies")
    return lines
