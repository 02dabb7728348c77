"""Month-end close and the journal: the report per store and currency (and as Excel), close refuses imports
until a reopen with a reason, and the journal balances and exports in QuickBooks' and a plain layout."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from openpyxl import load_workbook

from finance.closing import period_close, period_reopen, period_report, period_report_xlsx
from finance.imports import settlement_file_import, settlement_file_upload
from finance.journal import (
    PLAIN_HEADER,
    QUICKBOOKS_HEADER,
    AccountMappingMissing,
    journal_csv_plain,
    journal_csv_quickbooks,
    journal_entries_balance,
    journal_xlsx_plain,
    period_journal,
)
from finance.models import (
    AccountMapping,
    Difference,
    DifferenceReason,
    FinancePeriod,
    FinancePeriodStatus,
    SettlementFile,
    SettlementRow,
)
from finance.readers.base import RowKind, SettlementSource
from oms.exceptions import DomainError
from orders.models import Platform, Store

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).parent / "samples"
SEPTEMBER = date(2026, 9, 1)
NOVEMBER = date(2026, 11, 1)
NOV_3 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="finance-close", password="x")


@pytest.fixture
def taobao(db) -> Store:
    return Store.objects.create(platform=Platform.TAOBAO, code="tb-close", name="淘宝店")


@pytest.fixture
def shopify(db) -> Store:
    return Store.objects.create(platform=Platform.SHOPIFY, code="sh-close", name="Shopify Store",
                                default_currency="USD")


def settlement(store, rows: list[dict], *, source: str = SettlementSource.ALIPAY) -> SettlementFile:
    """An imported file with these rows (kind, gross, fee, currency); net = gross − fee."""
    content = repr((store.pk if store else None, source, rows)).encode()
    file = SettlementFile.objects.create(source=source, store=store, file_name="bill.csv",
                                         sha256=hashlib.sha256(content).hexdigest(), content=content,
                                         status="imported", row_count=len(rows))
    SettlementRow.objects.bulk_create([
        SettlementRow(file=file, source=source, external_row_id=f"{file.pk}-{index}", line_no=index + 2,
                      kind=row.get("kind", RowKind.SALE), gross=Decimal(row.get("gross", "0")),
                      fee=Decimal(row.get("fee", "0")),
                      net=Decimal(row.get("gross", "0")) - Decimal(row.get("fee", "0")),
                      currency=row.get("currency", "CNY"), occurred_at=row.get("at", NOV_3))
        for index, row in enumerate(rows)])
    return file


@pytest.fixture
def november(taobao, shopify):
    """Taobao in CNY and USD (a cross-border order), Shopify in USD; one bank line; an October row left out."""
    settlement(taobao, [
        {"gross": "100.00", "fee": "0.60"},
        {"gross": "200.00", "fee": "1.20"},
        {"kind": RowKind.REFUND, "gross": "-50.00"},
        {"kind": RowKind.COMMISSION, "fee": "10.00"},
        {"kind": RowKind.SHIPPING_SUBSIDY, "gross": "5.00"},
        {"kind": RowKind.PAYOUT, "gross": "-200.00"},
        {"gross": "30.00", "fee": "0.18", "currency": "USD"},
        {"gross": "999.00", "at": datetime(2026, 10, 31, 15, 0, tzinfo=UTC)},  # 10-31 23:00 Beijing: October
    ])
    settlement(shopify, [
        {"gross": "59.00", "fee": "2.01", "currency": "USD"},
        {"kind": RowKind.ADJUSTMENT, "gross": "-3.00", "currency": "USD"},
    ], source=SettlementSource.SHOPIFY_PAYOUTS)
    settlement(None, [{"kind": RowKind.PAYOUT, "gross": "200.00"}], source=SettlementSource.BANK)
    Difference.objects.create(month=NOVEMBER, source=SettlementSource.ALIPAY, store=taobao,
                              reason=DifferenceReason.AMOUNT_DIFFERS, expected_amount=Decimal("100.00"),
                              actual_amount=Decimal("98.50"), currency="CNY")
    Difference.objects.create(month=NOVEMBER, source=SettlementSource.ALIPAY, store=taobao,
                              reason=DifferenceReason.MISSING_IN_SETTLEMENT, expected_amount=Decimal("20.00"),
                              currency="CNY")


def line_of(report, store, currency):
    return next(line for line in report.lines if line.store_id == store.pk and line.currency == currency)


# --- Report ---------------------------------------------------------------------------------------------------


def test_the_report_sums_per_store_and_currency_never_across(november, taobao, shopify):
    report = period_report(None, NOVEMBER)

    cny = line_of(report, taobao, "CNY")
    assert (cny.sales, cny.refunds, cny.fees, cny.other, cny.payouts) == (
        Decimal("300.00"), Decimal("-50.00"), Decimal("11.80"), Decimal("5.00"), Decimal("200.00"))
    assert cny.net == cny.sales + cny.refunds - cny.fees + cny.other == Decimal("243.20")
    assert (cny.open_differences, cny.open_difference_amount) == (2, Decimal("21.50"))
    taobao_usd = line_of(report, taobao, "USD")
    assert (taobao_usd.sales, taobao_usd.fees, taobao_usd.net) == (Decimal("30.00"), Decimal("0.18"),
                                                                   Decimal("29.82"))
    shopify_usd = line_of(report, shopify, "USD")
    assert (shopify_usd.sales, shopify_usd.other, shopify_usd.net) == (Decimal("59.00"), Decimal("-3.00"),
                                                                       Decimal("53.99"))
    assert len(report.lines) == 3
    # The bank line is the other side of the payout: shown apart, not added to any store.
    assert report.bank_receipts == {"CNY": Decimal("200.00")}

    only_shopify = period_report(shopify, NOVEMBER)
    assert [(line.store_id, line.currency) for line in only_shopify.lines] == [(shopify.pk, "USD")]
    assert only_shopify.bank_receipts == {}


def test_the_report_workbook_opens_and_holds_the_figures(november, taobao):
    workbook = load_workbook(io.BytesIO(period_report_xlsx(None, NOVEMBER)))

    assert len(workbook.sheetnames) == 3
    summary = workbook[workbook.sheetnames[0]]
    rows = list(summary.iter_rows(values_only=True))
    cny = next(row for row in rows[1:] if row[0] == "淘宝店" and row[1] == "CNY")
    assert cny[2:] == (300, -50, pytest.approx(11.8), 5, pytest.approx(243.2), 200, 2, pytest.approx(21.5))
    assert isinstance(cny[6], float)  # a number Excel can sum, not text
    assert summary.cell(row=2, column=3).number_format == "#,##0.00"
    bank = list(workbook[workbook.sheetnames[1]].iter_rows(values_only=True))
    assert bank[1] == ("CNY", 200)
    differences = list(workbook[workbook.sheetnames[2]].iter_rows(values_only=True))
    assert len(differences) == 3
    assert sorted(row[4] for row in differences[1:]) == [20, 100]


def test_a_store_name_starting_with_equals_stays_text(user):
    store = Store.objects.create(platform=Platform.TAOBAO, code="tb-eq", name="=HYPERLINK(\"x\")")
    settlement(store, [{"gross": "1.00"}])

    workbook = load_workbook(io.BytesIO(period_report_xlsx(store, NOVEMBER)))

    cell = workbook[workbook.sheetnames[0]].cell(row=2, column=1)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"x\")"


# --- Close and reopen ---------------------------------------------------------------------------------------


def test_a_closed_month_refuses_an_import_until_reopened_with_a_reason(user, shopify):
    data = (SAMPLES / "shopify_payouts_bom.csv").read_bytes()
    period = period_close(shopify, SEPTEMBER, user)
    assert (period.status, period.closed_by) == (FinancePeriodStatus.CLOSED, user)

    with pytest.raises(DomainError) as refused:
        settlement_file_import(source=SettlementSource.SHOPIFY_PAYOUTS, data=data, file_name="payouts.csv",
                               user=user, store=shopify)
    assert refused.value.code == "finance_period_closed"
    assert not SettlementRow.objects.exists()

    with pytest.raises(DomainError) as no_reason:
        period_reopen(shopify, SEPTEMBER, user, "   ")
    assert no_reason.value.code == "finance_reopen_reason_required"
    assert FinancePeriod.objects.get(pk=period.pk).status == FinancePeriodStatus.CLOSED

    reopened = period_reopen(shopify, SEPTEMBER, user, "Shopify sent a corrected payout file")
    assert reopened.status == FinancePeriodStatus.OPEN
    [entry] = FinancePeriod.objects.get(pk=period.pk).reopen_history
    assert (entry["reason"], entry["by"], entry["username"], entry["closed_by"]) == (
        "Shopify sent a corrected payout file", user.pk, "finance-close", user.pk)

    imported = settlement_file_import(source=SettlementSource.SHOPIFY_PAYOUTS, data=data, file_name="payouts.csv",
                                      user=user, store=shopify)
    assert imported.status == "imported" and imported.row_count == 4

    # Closed and reopened again: the history keeps both reasons, oldest first.
    period_close(shopify, SEPTEMBER, user)
    period_reopen(shopify, SEPTEMBER, user, "second look")
    assert [entry["reason"] for entry in FinancePeriod.objects.get(pk=period.pk).reopen_history] == [
        "Shopify sent a corrected payout file", "second look"]


def test_close_is_refused_while_a_file_waits_and_with_open_differences_unless_forced(user, november, taobao):
    waiting = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"not yet read", file_name="late.csv",
                                     user=user, store=taobao)
    with pytest.raises(DomainError) as busy:
        period_close(taobao, NOVEMBER, user, force=True)
    assert busy.value.code == "finance_period_importing"
    assert "late.csv" in busy.value.message

    SettlementFile.objects.filter(pk=waiting.pk).update(status="failed")
    with pytest.raises(DomainError) as open_differences:
        period_close(taobao, NOVEMBER, user)
    assert open_differences.value.code == "finance_period_open_differences"
    assert open_differences.value.data == {"open_differences": 2}
    assert not FinancePeriod.objects.filter(status=FinancePeriodStatus.CLOSED).exists()

    assert period_close(taobao, NOVEMBER, user, force=True).status == FinancePeriodStatus.CLOSED
    with pytest.raises(DomainError) as again:
        period_close(taobao, NOVEMBER, user, force=True)
    assert again.value.code == "finance_period_already_closed"


def test_a_file_of_another_month_does_not_hold_up_the_close(user, taobao):
    upload = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"december", file_name="dec.csv",
                                    user=user, store=taobao)
    SettlementFile.objects.filter(pk=upload.pk).update(status="importing", period_start=date(2026, 12, 1),
                                                       period_end=date(2026, 12, 31))

    assert period_close(taobao, NOVEMBER, user).status == FinancePeriodStatus.CLOSED


def test_reopening_an_open_month_is_refused(user, taobao):
    with pytest.raises(DomainError) as refused:
        period_reopen(taobao, NOVEMBER, user, "why not")
    assert refused.value.code == "finance_period_not_closed"


# --- Journal --------------------------------------------------------------------------------------------------


def mapping(kind, debit, credit, store=None):
    return AccountMapping.objects.create(store=store, kind=kind, debit_account_code=debit[0],
                                         debit_account_name=debit[1], credit_account_code=credit[0],
                                         credit_account_name=credit[1])


BALANCE = ("1122", "应收账款-平台余额")
BANK = ("1002", "银行存款")
REVENUE = ("6001", "主营业务收入")
FEES = ("6601.01", "销售费用-平台手续费")


@pytest.fixture
def chart(db):
    mapping(RowKind.SALE, BALANCE, REVENUE)
    mapping(RowKind.REFUND, REVENUE, BALANCE)
    mapping(RowKind.FEE, FEES, BALANCE)
    mapping(RowKind.COMMISSION, ("6601.02", "销售费用-佣金"), BALANCE)
    mapping(RowKind.SHIPPING_SUBSIDY, BALANCE, ("6601.03", "销售费用-运费"))
    mapping(RowKind.ADJUSTMENT, BALANCE, ("6301", "营业外收入"))
    mapping(RowKind.PAYOUT, BANK, BALANCE)


def test_the_journal_balances_per_entry_and_books_each_kind(november, chart, taobao, shopify):
    lines = period_journal(NOVEMBER)

    balances = journal_entries_balance(lines)
    assert len(balances) == 3  # Taobao CNY, Taobao USD, Shopify USD
    for debit, credit in balances.values():
        assert debit == credit > 0
    assert all((line.debit == 0) != (line.credit == 0) for line in lines)
    assert all(line.date == date(2026, 11, 30) for line in lines)

    taobao_cny = [line for line in lines if line.store_id == taobao.pk and line.currency == "CNY"]
    booked = {(line.kind, line.account_code, line.debit, line.credit) for line in taobao_cny}
    assert booked == {
        ("sale", "1122", Decimal("300.00"), 0), ("sale", "6001", 0, Decimal("300.00")),
        ("refund", "6001", Decimal("50.00"), 0), ("refund", "1122", 0, Decimal("50.00")),
        ("fee", "6601.01", Decimal("1.80"), 0), ("fee", "1122", 0, Decimal("1.80")),
        ("commission", "6601.02", Decimal("10.00"), 0), ("commission", "1122", 0, Decimal("10.00")),
        ("shipping_subsidy", "1122", Decimal("5.00"), 0), ("shipping_subsidy", "6601.03", 0, Decimal("5.00")),
        ("payout", "1002", Decimal("200.00"), 0), ("payout", "1122", 0, Decimal("200.00")),
    }
    assert {line.channel for line in taobao_cny} == {SettlementSource.ALIPAY}
    # A negative adjustment books its two accounts the other way round.
    adjustment = {(line.account_code, line.debit, line.credit) for line in lines
                  if line.store_id == shopify.pk and line.kind == RowKind.ADJUSTMENT}
    assert adjustment == {("6301", Decimal("3.00"), 0), ("1122", 0, Decimal("3.00"))}


def test_a_store_mapping_wins_over_the_default(november, chart, shopify):
    mapping(RowKind.SALE, ("1122.09", "应收账款-Shopify"), ("6001.09", "主营业务收入-跨境"), store=shopify)

    lines = period_journal(NOVEMBER, shopify)

    assert {line.account_code for line in lines if line.kind == RowKind.SALE} == {"1122.09", "6001.09"}


def test_a_kind_without_a_mapping_is_named(november, chart):
    AccountMapping.objects.filter(kind=RowKind.COMMISSION).delete()

    with pytest.raises(AccountMappingMissing) as missing:
        period_journal(NOVEMBER)

    assert missing.value.code == "finance_account_mapping_missing"
    assert "淘宝店" in missing.value.message
    assert len(missing.value.data["missing"]) == 1


def test_the_quickbooks_file_has_the_import_columns_and_balances(november, chart, shopify):
    with pytest.raises(DomainError) as mixed:
        journal_csv_quickbooks(NOVEMBER)  # CNY and USD: a QuickBooks company books one home currency
    assert mixed.value.code == "finance_journal_mixed_currencies"

    rows = list(csv.reader(io.StringIO(journal_csv_quickbooks(NOVEMBER, currency="USD").decode("utf-8"))))

    assert rows[0] == QUICKBOOKS_HEADER == ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits",
                                            "Description", "Name"]
    assert {row[1] for row in rows[1:]} == {"11/30/2026"}
    for row in rows[1:]:
        assert (row[3] == "") != (row[4] == "")  # a line is a debit or a credit
    per_entry: dict[str, Decimal] = {}
    for row in rows[1:]:
        per_entry[row[0]] = per_entry.get(row[0], Decimal(0)) + Decimal(row[3] or 0) - Decimal(row[4] or 0)
    assert len(per_entry) == 2 and set(per_entry.values()) == {Decimal(0)}
    assert any(row[5].startswith("2026-11 Shopify Store ") and row[5].endswith(" USD") for row in rows[1:])


def test_the_plain_journal_for_chinese_software(november, chart):
    data = journal_csv_plain(NOVEMBER)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == PLAIN_HEADER == ["凭证号", "日期", "摘要", "科目编码", "科目名称", "借方", "贷方"]
    assert sum(Decimal(row[5]) for row in rows[1:]) == sum(Decimal(row[6]) for row in rows[1:])
    assert {row[1] for row in rows[1:]} == {"2026-11-30"}

    sheet = load_workbook(io.BytesIO(journal_xlsx_plain(NOVEMBER))).active
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == PLAIN_HEADER and len(values) == len(rows)
    assert sum(row[5] for row in values[1:]) == pytest.approx(sum(row[6] for row in values[1:]))
