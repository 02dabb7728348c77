"""Settlement file import: a file once per source, all-or-nothing with a row report, overlaps skipped, closed
periods refused, progress that ends at the total."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from finance import imports
from finance.imports import (
    settlement_file_claim,
    settlement_file_import,
    settlement_file_load,
    settlement_file_upload,
    settlement_files_due,
)
from finance.models import (
    BankMapping,
    FinancePeriod,
    FinancePeriodStatus,
    ImportFailure,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import ParsedRow, ReadResult, RowError, RowKind, SettlementSource
from finance.tasks import run_settlement_import_task
from oms.exceptions import DomainError
from orders.models import Platform, Store

# 2026-11-03 10:00 in Beijing.
NOV_3 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)

SHOPIFY_CSV = (
    b"Transaction Date,Type,Order,Card Brand,Card Source,Payout Status,Payout Date,Payout ID,Available On,"
    b"Amount,Fee,Net,Checkout,Payment Method Name,Presentment Amount,Presentment Currency,Currency\n"
    b"2026-11-03 10:15:00 -0400,charge,#1001,visa,online,paid,2026-11-05,901,2026-11-05,"
    b"59.00,2.01,56.99,1111,card,59.00,USD,USD\n"
    b"2026-11-04 09:00:00 -0400,refund,#1001,visa,online,paid,2026-11-05,901,2026-11-05,"
    b"-10.00,0.00,-10.00,1111,card,-10.00,USD,USD\n"
)


def parsed(n: int, *, kind: str = RowKind.SALE, gross: str = "100.00", fee: str = "0.60",
           occurred_at: datetime = NOV_3, currency: str = "CNY") -> ParsedRow:
    return ParsedRow(line_no=n + 1, external_row_id=f"T{n:04d}", kind=kind, gross=Decimal(gross), fee=Decimal(fee),
                     net=Decimal(gross) - Decimal(fee), currency=currency, occurred_at=occurred_at,
                     payment_id=f"2026110322001{n:06d}", platform_order_id=f"TB-{n:06d}",
                     description="交易付款", raw=[f"T{n:04d}"])


@pytest.fixture
def finance_user(db):
    return get_user_model().objects.create_user(username="finance1", password="x")


@pytest.fixture
def store(db) -> Store:
    return Store.objects.create(platform=Platform.TAOBAO, code="tb-fin", name="淘宝店")


def claimed(data: bytes, *, user, store=None, source: str = SettlementSource.ALIPAY) -> SettlementFile:
    uploaded = settlement_file_upload(source=source, data=data, file_name="statement.csv", user=user, store=store)
    return settlement_file_claim(file_id=uploaded.pk)


def test_the_same_file_twice_is_refused(finance_user, store):
    first = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"same bytes", file_name="a.csv",
                                   user=finance_user, store=store)

    with pytest.raises(DomainError) as refused:
        settlement_file_upload(source=SettlementSource.ALIPAY, data=b"same bytes", file_name="copy of a.csv",
                               user=finance_user, store=store)

    assert refused.value.code == "settlement_file_duplicate"
    assert refused.value.data == {"file_id": first.pk}
    assert "a.csv" in refused.value.message
    assert SettlementFile.objects.count() == 1
    # Another source's file may hold the same bytes.
    settlement_file_upload(source=SettlementSource.WECHAT_PAY, data=b"same bytes", file_name="b.csv",
                           user=finance_user, store=store)
    assert SettlementFile.objects.count() == 2


def test_a_failed_file_may_be_uploaded_again(finance_user, store):
    failed = claimed(b"bad file", user=finance_user, store=store)
    settlement_file_load(settlement_file=failed, result=ReadResult(errors=[RowError(0, "", "Not a statement")]))
    assert failed.status == SettlementFileStatus.FAILED
    assert failed.failure == ImportFailure.UNREADABLE

    again = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"bad file", file_name="statement.csv",
                                   user=finance_user, store=store)

    assert again.status == SettlementFileStatus.PENDING


def test_one_bad_row_imports_nothing_and_is_reported(finance_user, store):
    settlement_file = claimed(b"alipay statement", user=finance_user, store=store)
    result = ReadResult(rows=[parsed(1), parsed(3)],
                        errors=[RowError(line_no=3, column="收入金额（+元）", message="“12,3x” is not an amount.")])

    settlement_file_load(settlement_file=settlement_file, result=result)

    settlement_file.refresh_from_db()
    assert settlement_file.status == SettlementFileStatus.FAILED
    assert settlement_file.failure == ImportFailure.ROW_ERRORS
    assert settlement_file.error_report == [
        {"line_no": 3, "column": "收入金额（+元）", "message": "“12,3x” is not an amount."}]
    assert settlement_file.row_count == 3
    assert settlement_file.progress_done == 0
    assert not SettlementRow.objects.exists()


def test_a_row_the_database_would_refuse_is_reported_before_anything_is_written(finance_user, store):
    settlement_file = claimed(b"alipay statement", user=finance_user, store=store)
    result = ReadResult(rows=[parsed(1), parsed(2, gross="1.005"), parsed(3, currency="rmb")])

    settlement_file_load(settlement_file=settlement_file, result=result)

    assert settlement_file.status == SettlementFileStatus.FAILED
    assert [(entry["line_no"], entry["column"]) for entry in settlement_file.error_report] == [
        (3, "gross"), (3, "net"), (4, "currency")]
    assert not SettlementRow.objects.exists()


def test_rows_are_stored_with_their_ids_and_amounts(finance_user, store):
    settlement_file = claimed(b"alipay statement", user=finance_user, store=store)
    refund = parsed(2, kind=RowKind.REFUND, gross="-30.00", fee="-0.18")

    settlement_file_load(settlement_file=settlement_file,
                         result=ReadResult(rows=[parsed(1), refund], columns=["业务流水号"]))

    assert settlement_file.status == SettlementFileStatus.IMPORTED
    assert (settlement_file.period_start, settlement_file.period_end) == (date(2026, 11, 3), date(2026, 11, 3))
    row = SettlementRow.objects.get(external_row_id="T0002")
    assert (row.file_id, row.source, row.kind, row.line_no) == (
        settlement_file.pk, SettlementSource.ALIPAY, RowKind.REFUND, 3)
    assert (row.gross, row.fee, row.net, row.currency) == (Decimal("-30.00"), Decimal("-0.18"), Decimal("-29.82"),
                                                           "CNY")
    assert (row.payment_id, row.platform_order_id, row.merchant_order_no) == ("2026110322001000002", "TB-000002", "")
    assert row.occurred_at == NOV_3
    assert (row.description, row.raw) == ("交易付款", ["T0002"])
    assert row.raw_by_column == {"业务流水号": "T0002"}  # the file keeps the header once


def test_awkward_text_survives_the_copy_exactly_or_cleaned_of_control_characters(finance_user, store):
    settlement_file = claimed(b"awkward", user=finance_user, store=store)
    awkward = dataclasses.replace(
        parsed(1), external_row_id="T\x1f0001", description='退款\t"说明"\n第二行 C:\\路径\r',
        raw=['a\\b', 'tab\there', "nul\x00gone", 'quote "q"', "unit\x1fsep", "换行\n"])
    plain = parsed(2)

    settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[awkward, plain]))

    assert settlement_file.status == SettlementFileStatus.IMPORTED
    stored = SettlementRow.objects.get(line_no=2)
    # Control characters the database or a spreadsheet cannot hold are dropped; tab, line breaks, backslash
    # and quotes are kept as they were.
    assert stored.external_row_id == "T0001"
    assert stored.description == '退款\t"说明"\n第二行 C:\\路径\r'
    assert stored.raw == ['a\\b', 'tab\there', "nulgone", 'quote "q"', "unitsep", "换行\n"]
    assert SettlementRow.objects.get(line_no=3).raw == ["T0002"]


def test_rows_of_an_overlapping_download_are_skipped_and_counted(finance_user, store):
    october = claimed(b"statement 1-3", user=finance_user, store=store)
    settlement_file_load(settlement_file=october, result=ReadResult(rows=[parsed(n) for n in (1, 2, 3)]))
    overlapping = claimed(b"statement 2-5", user=finance_user, store=store)

    settlement_file_load(settlement_file=overlapping, result=ReadResult(rows=[parsed(n) for n in (2, 3, 4, 5)]),
                         chunk=3)

    assert overlapping.status == SettlementFileStatus.IMPORTED
    assert (overlapping.row_count, overlapping.skipped_count) == (4, 2)
    assert SettlementRow.objects.count() == 5
    assert sorted(SettlementRow.objects.filter(file=overlapping).values_list("external_row_id", flat=True)) == [
        "T0004", "T0005"]
    assert SettlementRow.objects.filter(file=october).count() == 3


def test_a_row_twice_in_one_file_is_stored_once(finance_user, store):
    settlement_file = claimed(b"statement", user=finance_user, store=store)

    settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[parsed(1), parsed(1), parsed(2)]))

    assert (settlement_file.row_count, settlement_file.skipped_count) == (3, 1)
    assert SettlementRow.objects.count() == 2


def test_a_closed_period_refuses_the_import(finance_user, store):
    FinancePeriod.objects.create(store=store, month=date(2026, 11, 1), status=FinancePeriodStatus.CLOSED)
    settlement_file = claimed(b"statement", user=finance_user, store=store)
    october_row = parsed(1, occurred_at=datetime(2026, 10, 31, 15, 0, tzinfo=UTC))  # 1 November, Beijing time

    settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[october_row, parsed(2)]))

    assert settlement_file.status == SettlementFileStatus.FAILED
    assert settlement_file.failure == ImportFailure.PERIOD_CLOSED
    assert [entry["line_no"] for entry in settlement_file.error_report] == [0]
    assert "2026-11" in settlement_file.error_report[0]["message"]
    assert not SettlementRow.objects.exists()


def test_only_the_files_store_or_all_stores_close_its_period(finance_user, store):
    other = Store.objects.create(platform=Platform.TAOBAO, code="tb-other", name="另一家店")
    FinancePeriod.objects.create(store=other, month=date(2026, 11, 1), status=FinancePeriodStatus.CLOSED)
    FinancePeriod.objects.create(store=store, month=date(2026, 11, 1))  # open
    settlement_file = claimed(b"statement", user=finance_user, store=store)

    settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[parsed(1)]))
    assert settlement_file.status == SettlementFileStatus.IMPORTED

    # A bank statement belongs to no store: any store's closed month refuses it.
    mapping = BankMapping.objects.create(name="招商银行", date_column="交易日期", description_column="摘要",
                                         amount_column="金额")
    bank = settlement_file_upload(source=SettlementSource.BANK, data=b"bank", file_name="cmb.csv",
                                  user=finance_user, bank_mapping=mapping)
    bank = settlement_file_claim(file_id=bank.pk)
    settlement_file_load(settlement_file=bank, result=ReadResult(rows=[parsed(9, kind=RowKind.PAYOUT)]))
    assert bank.failure == ImportFailure.PERIOD_CLOSED


def test_import_refuses_a_closed_period_with_a_domain_error(finance_user, store):
    FinancePeriod.objects.create(month=date(2026, 11, 1), status=FinancePeriodStatus.CLOSED)

    with pytest.raises(DomainError) as refused:
        settlement_file_import(source=SettlementSource.SHOPIFY_PAYOUTS, data=SHOPIFY_CSV, file_name="payouts.csv",
                               user=finance_user, store=store)

    assert refused.value.code == "finance_period_closed"
    assert SettlementFile.objects.get().failure == ImportFailure.PERIOD_CLOSED
    assert not SettlementRow.objects.exists()


def test_progress_ends_at_the_total(finance_user, store):
    settlement_file = claimed(b"statement", user=finance_user, store=store)

    settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[parsed(n) for n in range(7)]),
                         chunk=2)

    settlement_file.refresh_from_db()
    assert (settlement_file.progress_done, settlement_file.progress_total, settlement_file.row_count) == (7, 7, 7)
    assert settlement_file.lease_until is None
    assert settlement_file.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_polling_page_sees_progress_while_the_rows_wait_uncommitted(finance_user, store, monkeypatch):
    settlement_file = claimed(b"statement", user=finance_user, store=store)
    observer = connection.copy()  # the polling page's connection
    seen: list[tuple[int, int, int]] = []
    write = imports._ProgressWriter.write

    def write_and_look(progress, done):
        write(progress, done)
        with observer.cursor() as cursor:
            cursor.execute("SELECT progress_done, progress_total FROM finance_settlementfile WHERE id = %s",
                           [settlement_file.pk])
            done_seen, total_seen = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM finance_settlementrow")
            seen.append((done_seen, total_seen, cursor.fetchone()[0]))

    monkeypatch.setattr(imports._ProgressWriter, "write", write_and_look)
    try:
        settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[parsed(n) for n in range(5)]),
                             chunk=2)
        with observer.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM finance_settlementrow")
            stored = cursor.fetchone()[0]
    finally:
        observer.close()

    # After each chunk the page sees the progress, and none of the rows yet: they commit all at once.
    assert seen == [(2, 5, 0), (4, 5, 0), (5, 5, 0)]
    assert stored == 5
    settlement_file.refresh_from_db()
    assert (settlement_file.status, settlement_file.progress_done) == (SettlementFileStatus.IMPORTED, 5)


def test_the_task_imports_an_uploaded_file_once(finance_user, store):
    uploaded = settlement_file_upload(source=SettlementSource.SHOPIFY_PAYOUTS, data=SHOPIFY_CSV,
                                      file_name="payouts.csv", user=finance_user, store=store)

    assert run_settlement_import_task(file_id=uploaded.pk) == SettlementFileStatus.IMPORTED
    assert run_settlement_import_task(file_id=uploaded.pk) == "skipped"

    uploaded.refresh_from_db()
    assert (uploaded.row_count, uploaded.skipped_count, uploaded.progress_done) == (2, 0, 2)
    assert sorted(SettlementRow.objects.values_list("kind", "gross", "currency")) == [
        (RowKind.REFUND, Decimal("-10.00"), "USD"), (RowKind.SALE, Decimal("59.00"), "USD")]


def test_the_sweeper_finds_lost_and_abandoned_imports(finance_user, store):
    lost = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"lost", file_name="a.csv",
                                  user=finance_user, store=store)
    fresh = settlement_file_upload(source=SettlementSource.ALIPAY, data=b"fresh", file_name="b.csv",
                                   user=finance_user, store=store)
    abandoned = claimed(b"abandoned", user=finance_user, store=store)
    running = claimed(b"running", user=finance_user, store=store)
    SettlementFile.objects.filter(pk=lost.pk).update(uploaded_at=lost.uploaded_at - timedelta(minutes=5))
    SettlementFile.objects.filter(pk=abandoned.pk).update(lease_until=abandoned.lease_until - timedelta(hours=1))

    assert settlement_files_due() == [lost.pk, abandoned.pk]
    assert fresh.pk not in settlement_files_due() and running.pk not in settlement_files_due()
    # The abandoned file is taken over by a new run; the running one is not.
    assert settlement_file_claim(file_id=abandoned.pk) is not None
    assert settlement_file_claim(file_id=running.pk) is None


def test_a_bank_statement_needs_its_mapping(finance_user):
    with pytest.raises(DomainError) as refused:
        settlement_file_upload(source=SettlementSource.BANK, data=b"bank", file_name="cmb.csv", user=finance_user)

    assert refused.value.code == "settlement_bank_mapping_required"


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_imports_at_once_both_land_and_store_each_row_once(finance_user, store, monkeypatch):
    first = claimed(b"rows 1-3", user=finance_user, store=store)
    second = claimed(b"rows 2-4", user=finance_user, store=store)
    second_checked = threading.Event()
    not_stored, file_imported = imports._rows_not_stored, imports._file_imported

    checks = []
    both_checking = threading.Barrier(2, timeout=10)

    def check_then_tell(settlement_file, rows):
        fresh = not_stored(settlement_file, rows)
        if len(checks) < 2:
            both_checking.wait()  # each found the other's rows not stored: they must collide
        checks.append(settlement_file.pk)
        if settlement_file.pk == second.pk:
            second_checked.set()
        return fresh

    def first_commits_after_the_second_checked(settlement_file, *args, **kwargs):
        if settlement_file.pk == first.pk:
            # The second import found none of its rows stored, so its COPY waits on ours and then collides.
            assert second_checked.wait(timeout=10)
        file_imported(settlement_file, *args, **kwargs)

    monkeypatch.setattr(imports, "_rows_not_stored", check_then_tell)
    monkeypatch.setattr(imports, "_file_imported", first_commits_after_the_second_checked)
    failures = []

    def load(settlement_file, numbers):
        try:
            settlement_file_load(settlement_file=settlement_file, result=ReadResult(rows=[parsed(n) for n in numbers]))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=load, args=(first, (1, 2, 3))),
               threading.Thread(target=load, args=(second, (2, 3, 4)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (SettlementFileStatus.IMPORTED, SettlementFileStatus.IMPORTED)
    assert sorted(SettlementRow.objects.values_list("external_row_id", flat=True)) == [
        "T0001", "T0002", "T0003", "T0004"]
    # Whichever stored second collided once, read again, and skipped the two rows the other had stored.
    assert len(checks) == 3
    assert sorted((first.skipped_count, second.skipped_count)) == [0, 2]


def test_the_file_is_kept_compressed_and_given_back_as_uploaded(finance_user, store):
    data = "账务流水号,业务流水号\n".encode("gbk") * 2000
    uploaded = settlement_file_upload(source=SettlementSource.ALIPAY, data=data, file_name="big.csv",
                                      user=finance_user, store=store)

    stored = SettlementFile.objects.get(pk=uploaded.pk)
    assert stored.content_compressed and len(bytes(stored.content)) < len(data) / 10
    assert stored.original_bytes() == data
    assert stored.size == len(data)
