"""The streamed import (PostgreSQL, its own transaction): rows stored while the file is still being read, and any
file that is not clean handed to the careful path, with nothing of the streamed pass left behind."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model

from finance import imports
from finance.imports import settlement_file_import
from finance.models import FinancePeriod, FinancePeriodStatus, ImportFailure, SettlementFile, SettlementRow
from finance.readers.base import SettlementSource
from oms.exceptions import DomainError
from orders.models import Platform, Store

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注"


def statement(row_ids, *, bad_amount_at: int | None = None, note: str = "") -> bytes:
    """A GBK Alipay statement with one sale line per row id (the amount of one line made unreadable if asked)."""
    lines = ["#支付宝账务明细查询", f"#账号：[20880000000000000156]{note}", HEADER]
    for index, row_id in enumerate(row_ids):
        amount = "十元" if index == bad_amount_at else f"{10 + index}.00"
        lines.append(f"2026090100{row_id:04d}\t,20260901220014{row_id:08d}\t,T200P31{row_id:08d}\t,商品\t,"
                     f"2026-09-01 10:{index % 60:02d}:00,买家\t,{amount},0.00,100.00,支付宝,在线支付,")
    lines.append("#导出时间：[2026年10月02日 09:00:00]")
    return ("\n".join(lines) + "\n").encode("gbk")


@pytest.fixture
def store(db) -> Store:
    return Store.objects.create(platform=Platform.TAOBAO, code="tb-stream", name="淘宝店")


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="finance-stream", password="x")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(imports, "STREAM_CHUNK", 2)  # several chunks stored before the file ends


@pytest.fixture
def careful_path_calls(monkeypatch):
    calls = []
    load = imports.settlement_file_load

    def counted(**kwargs):
        calls.append(kwargs["settlement_file"].pk)
        return load(**kwargs)

    monkeypatch.setattr(imports, "settlement_file_load", counted)
    return calls


def stored_ids() -> list[str]:
    return sorted(SettlementRow.objects.values_list("external_row_id", flat=True))


def test_a_clean_file_is_stored_in_one_streamed_pass(store, user, small_chunks, careful_path_calls):
    imported = settlement_file_import(source=SettlementSource.ALIPAY, data=statement(range(1, 8)),
                                      file_name="alipay.csv", user=user, store=store)

    assert careful_path_calls == []
    assert (imported.status, imported.row_count, imported.skipped_count) == ("imported", 7, 0)
    assert (imported.progress_done, imported.progress_total) == (7, 7)
    assert (imported.period_start, imported.period_end) == (date(2026, 9, 1), date(2026, 9, 1))
    assert imported.raw_columns[0] == "账务流水号"
    assert stored_ids() == [f"2026090100{n:04d}" for n in range(1, 8)]


def test_rows_already_stored_and_repeated_in_the_file_are_skipped(store, user, small_chunks, careful_path_calls):
    settlement_file_import(source=SettlementSource.ALIPAY, data=statement([1, 2, 3]), file_name="a.csv",
                           user=user, store=store)

    # An overlapping re-download: 2 and 3 stored before; 5 twice in the file, in two different chunks.
    second = settlement_file_import(source=SettlementSource.ALIPAY, data=statement([2, 3, 4, 5, 6, 5]),
                                    file_name="b.csv", user=user, store=store)

    assert careful_path_calls == []
    assert (second.status, second.row_count, second.skipped_count) == ("imported", 6, 3)
    assert stored_ids() == [f"2026090100{n:04d}" for n in range(1, 7)]


def test_a_bad_row_after_stored_chunks_leaves_nothing_and_reports_the_row(store, user, small_chunks,
                                                                           careful_path_calls):
    failed = settlement_file_import(source=SettlementSource.ALIPAY, data=statement(range(1, 8), bad_amount_at=5),
                                    file_name="bad.csv", user=user, store=store)

    assert careful_path_calls == [failed.pk]  # the careful path wrote the report
    assert (failed.status, failed.failure) == ("failed", ImportFailure.ROW_ERRORS)
    assert [entry["line_no"] for entry in failed.error_report] == [9]
    assert stored_ids() == []  # the two chunks the streamed pass stored went with its rollback


def test_a_closed_month_is_refused_and_nothing_is_stored(store, user, small_chunks, careful_path_calls):
    FinancePeriod.objects.create(month=date(2026, 9, 1), status=FinancePeriodStatus.CLOSED)

    with pytest.raises(DomainError) as refused:
        settlement_file_import(source=SettlementSource.ALIPAY, data=statement(range(1, 6)), file_name="closed.csv",
                               user=user, store=store)

    assert refused.value.code == "finance_period_closed"
    assert SettlementFile.objects.get().failure == ImportFailure.PERIOD_CLOSED
    assert stored_ids() == []


def test_a_failure_while_storing_gives_up_the_pass_and_the_careful_path_imports_the_file(
        store, user, small_chunks, careful_path_calls, monkeypatch):
    store_chunk = imports._Copier._store
    calls = []

    def fail_on_the_second_chunk(copier, cursor, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        store_chunk(copier, cursor, rows)

    monkeypatch.setattr(imports._Copier, "_store", fail_on_the_second_chunk)

    imported = settlement_file_import(source=SettlementSource.ALIPAY, data=statement(range(1, 8)),
                                      file_name="alipay.csv", user=user, store=store)

    assert careful_path_calls == [imported.pk]  # the streamed pass was not trusted…
    assert (imported.status, imported.row_count, imported.skipped_count) == ("imported", 7, 0)  # …nor left rows
    assert stored_ids() == [f"2026090100{n:04d}" for n in range(1, 8)]
