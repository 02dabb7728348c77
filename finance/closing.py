"""Month-end close: the period report (per store and currency, as data and as Excel), closing and reopening a month."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from io import BytesIO

from django.db import transaction
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Abs, Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from finance.matching import month_bounds
from finance.models import (
    Difference,
    DifferenceStatus,
    FinancePeriod,
    FinancePeriodStatus,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import RowKind, SettlementSource
from oms.exceptions import ConflictError, ValidationFailed
from orders.models import Store

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
_CENT = Decimal("0.01")
_MONEY_FORMAT = "#,##0.00"
# Kinds that are neither a sale, a refund nor a payout: money the platform added or took besides the orders.
_OTHER_KINDS = (RowKind.SHIPPING_SUBSIDY, RowKind.ADJUSTMENT)


@dataclass
class ReportLine:
    """One store's month in one currency. Signs from the seller's side: refunds and fees reduce net; payouts
    are what left the platform balance for the seller's bank, shown positive."""

    store_id: int | None
    store_name: str
    currency: str
    sales: Decimal = ZERO
    refunds: Decimal = ZERO  # negative: money given back
    fees: Decimal = ZERO  # what the provider kept (fees and commissions), positive
    other: Decimal = ZERO  # shipping subsidies and adjustments
    net: Decimal = ZERO  # sales + refunds − fees + other
    payouts: Decimal = ZERO
    open_differences: int = 0
    open_difference_amount: Decimal = ZERO  # Σ |actual − expected|, a missing side counting as 0


@dataclass
class PeriodReport:
    month: date
    store: Store | None
    lines: list[ReportLine] = field(default_factory=list)
    # What the bank statements show arriving in the month, per currency (all-stores report only: a statement
    # belongs to no store).
    bank_receipts: dict[str, Decimal] = field(default_factory=dict)
    open_differences: list[Difference] = field(default_factory=list)


def month_first(month: date) -> date:
    return month.replace(day=1)


def period_report(store: Store | None, month: date) -> PeriodReport:
    """The month's figures per store and currency from the imported settlement rows (never summed across
    currencies), with the open differences. ``store`` None: every store."""
    first = month_first(month)
    start, end = month_bounds(first)
    rows = SettlementRow.objects.filter(file__status=SettlementFileStatus.IMPORTED, occurred_at__gte=start,
                                        occurred_at__lt=end)
    differences = Difference.objects.filter(month=first, status=DifferenceStatus.OPEN)
    if store is not None:
        rows = rows.filter(file__store=store)
        differences = differences.filter(store=store)
    lines: dict[tuple[int | None, str], ReportLine] = {}
    names = dict(Store.objects.values_list("pk", "name"))

    def line_of(store_id: int | None, currency: str) -> ReportLine:
        key = (store_id, currency)
        if key not in lines:
            lines[key] = ReportLine(store_id=store_id, store_name=names.get(store_id, _("No store")),
                                    currency=currency)
        return lines[key]

    report = PeriodReport(month=first, store=store)
    groups = (rows.values("file__store", "source", "currency", "kind")
              .annotate(gross=Sum("gross"), fee=Sum("fee"), net=Sum("net")).order_by())
    for group in groups:
        if group["source"] == SettlementSource.BANK:
            # A bank line is the other side of a platform payout already counted: shown apart, never added.
            if group["kind"] == RowKind.PAYOUT:
                report.bank_receipts[group["currency"]] = (report.bank_receipts.get(group["currency"], ZERO)
                                                           + group["net"])
            continue
        line = line_of(group["file__store"], group["currency"])
        kind = group["kind"]
        if kind == RowKind.PAYOUT:
            line.payouts -= group["net"]
            continue
        if kind == RowKind.SALE:
            line.sales += group["gross"]
        elif kind == RowKind.REFUND:
            line.refunds += group["gross"]
        elif kind in _OTHER_KINDS:
            line.other += group["gross"]
        line.fees += group["fee"]
        line.net += group["net"]
    money = DecimalField(max_digits=14, decimal_places=2)
    gap = Abs(Coalesce("actual_amount", Value(ZERO), output_field=money)
              - Coalesce("expected_amount", Value(ZERO), output_field=money))
    for group in (differences.values("store", "currency")
                  .annotate(count=Count("id"), amount=Sum(gap, output_field=money)).order_by()):
        line = line_of(group["store"], group["currency"])
        line.open_differences = group["count"]
        line.open_difference_amount = group["amount"] or ZERO
    report.lines = sorted(lines.values(), key=lambda line: (line.store_id is None, line.store_name, line.currency))
    for line in report.lines:
        for name in ("sales", "refunds", "fees", "other", "net", "payouts", "open_difference_amount"):
            setattr(line, name, Decimal(getattr(line, name)).quantize(_CENT))
    report.bank_receipts = {currency: amount.quantize(_CENT) for currency, amount in sorted(report.bank_receipts.items())}
    report.open_differences = list(differences.select_related("store", "order").order_by("store_id", "reason", "id"))
    return report


def period_report_xlsx(store: Store | None, month: date) -> bytes:
    """The period report as an .xlsx workbook: a sheet per section (summary, bank receipts, open differences);
    amounts are numbers with two decimals, so the user's Excel can sum them."""
    report = period_report(store, month)
    workbook = Workbook(write_only=True)

    summary = workbook.create_sheet(title=_("Summary")[:31])
    summary.append([_("Store"), _("Currency"), _("Sales"), _("Refund amount"), _("Fees"), _("Subsidies and adjustments"),
                    _("Net"), _("Payouts"), _("Open differences"), _("Open difference amount")])
    for line in report.lines:
        summary.append([_text_cell(summary, line.store_name), _text_cell(summary, line.currency),
                        *(_money_cell(summary, amount) for amount in (
                            line.sales, line.refunds, line.fees, line.other, line.net, line.payouts)),
                        line.open_differences, _money_cell(summary, line.open_difference_amount)])

    bank = workbook.create_sheet(title=_("Bank receipts")[:31])
    bank.append([_("Currency"), _("Received")])
    for currency, amount in report.bank_receipts.items():
        bank.append([_text_cell(bank, currency), _money_cell(bank, amount)])

    open_sheet = workbook.create_sheet(title=_("Open differences")[:31])
    open_sheet.append([_("Store"), _("Source"), _("Reason"), _("Order"), _("Expected amount"), _("Actual amount"),
                       _("Currency"), _("Found at")])
    for difference in report.open_differences:
        open_sheet.append([
            _text_cell(open_sheet, difference.store.name if difference.store else _("No store")),
            _text_cell(open_sheet, difference.get_source_display()),
            _text_cell(open_sheet, difference.get_reason_display()),
            _text_cell(open_sheet, difference.order.number if difference.order else ""),
            _money_cell(open_sheet, difference.expected_amount), _money_cell(open_sheet, difference.actual_amount),
            _text_cell(open_sheet, difference.currency),
            _text_cell(open_sheet, timezone.localtime(difference.created_at).strftime("%Y-%m-%d %H:%M")),
        ])
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(sheet, value: str) -> WriteOnlyCell:
    # Always a string: a store name starting with "=" must not become a formula in the user's Excel.
    cell = WriteOnlyCell(sheet, value=str(value))
    cell.data_type = "s"
    return cell


def _money_cell(sheet, amount: Decimal | None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=None if amount is None else amount.quantize(_CENT))
    cell.number_format = _MONEY_FORMAT
    return cell


def period_close(store: Store | None, month: date, user, *, force: bool = False) -> FinancePeriod:
    """Close a month of one store (or of all stores, store None): imports into it are refused from now on.

    Refused while a file that may fall in the month is still waiting or importing (a pending file's period is
    unknown until it is read, so any pending file of the store counts), and while the month has open
    differences, unless ``force``: a seller may close the books with a difference he knows of and explains
    later; the forced close is logged and the report keeps listing the difference.
    """
    first = month_first(month)
    following = month_bounds(first)[1].date()  # the next month's first day
    with transaction.atomic():
        period, _created = FinancePeriod.objects.select_for_update().get_or_create(store=store, month=first)
        if period.status == FinancePeriodStatus.CLOSED:
            raise ConflictError(_("%(month)s is already closed.") % {"month": f"{first:%Y-%m}"},
                                code="finance_period_already_closed")
        busy = SettlementFile.objects.filter(
            status__in=[SettlementFileStatus.PENDING, SettlementFileStatus.IMPORTING]).filter(
            Q(period_start__isnull=True) | Q(period_start__lt=following, period_end__gte=first))
        if store is not None:
            # A bank statement (no store) may carry this store's payouts.
            busy = busy.filter(Q(store=store) | Q(store__isnull=True))
        busy_names = list(busy.order_by("pk").values_list("file_name", flat=True)[:5])
        if busy_names:
            raise ConflictError(
                _("Files are still being imported (%(files)s); close the month when they are done.")
                % {"files": ", ".join(busy_names)}, code="finance_period_importing")
        open_differences = Difference.objects.filter(month=first, status=DifferenceStatus.OPEN)
        if store is not None:
            open_differences = open_differences.filter(store=store)
        open_count = open_differences.count()
        if open_count and not force:
            raise ConflictError(
                _("%(count)d differences of %(month)s are still open; resolve them or close anyway.")
                % {"count": open_count, "month": f"{first:%Y-%m}"},
                code="finance_period_open_differences", data={"open_differences": open_count})
        period.close()
        period.closed_by = user
        period.closed_at = timezone.now()
        period.save(update_fields=["status", "closed_by", "closed_at"])
    if open_count:
        logger.warning("finance period %s store %s closed by %s with %d open differences", f"{first:%Y-%m}",
                       store.pk if store else "all", getattr(user, "pk", None), open_count)
    return period


def period_reopen(store: Store | None, month: date, user, reason: str) -> FinancePeriod:
    """Reopen a closed month so files can be imported into it again; the reason is required and kept, with
    who closed it before, in the period's reopen history."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the period is reopened."), code="finance_reopen_reason_required")
    first = month_first(month)
    with transaction.atomic():
        period = FinancePeriod.objects.select_for_update().filter(store=store, month=first).first()
        if period is None or period.status != FinancePeriodStatus.CLOSED:
            raise ConflictError(_("%(month)s is not closed.") % {"month": f"{first:%Y-%m}"},
                                code="finance_period_not_closed")
        period.reopen()
        period.reopen_history = [*period.reopen_history, {
            "at": timezone.now().isoformat(), "by": getattr(user, "pk", None),
            "username": getattr(user, "username", ""), "reason": reason[:1000],
            "closed_at": period.closed_at.isoformat() if period.closed_at else None,
            "closed_by": period.closed_by_id,
        }]
        period.closed_by, period.closed_at = None, None
        period.save(update_fields=["status", "reopen_history", "closed_by", "closed_at"])
    return period

