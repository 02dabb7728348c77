"""Settlement readers: each sample file (made up, never real data) reads to exactly the rows expected, bad rows are
reported by line and column while the others still read, and files of the wrong format fail as a whole."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.utils import translation

from finance.readers import BankColumnMapping, ReaderFailure, RowError, read

SAMPLES = Path(__file__).parent / "samples"
BEIJING = ZoneInfo("Asia/Shanghai")
D = Decimal


@pytest.fixture(autouse=True)
def english_messages():
    # The messages are compared as written in the code; the zh-hans catalogue would give them in Chinese.
    with translation.override("en"):
        yield


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def beijing(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BEIJING)


def summary(rows):
    """What the tests compare: line, id, kind, gross, fee, net, currency, time, payment, order, merchant order."""
    return [
        (
            r.line_no,
            r.external_row_id,
            r.kind,
            r.gross,
            r.fee,
            r.net,
            r.currency,
            r.occurred_at,
            r.payment_id,
            r.platform_order_id,
            r.merchant_order_no,
        )
        for r in rows
    ]


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


BANK_MAPPING = BankColumnMapping(
    date_column="交易日期",
    description_column="摘要",
    reference_column="流水号",
    credit_column="收入",
    debit_column="支出",
    counterparty_column="对方户名",
    header_row=3,
)


# --- each reader reads its sample to the exact rows ----------------------------------------------------------


def test_shopify_payouts_utf8_bom_with_offsets_and_thousands_separators():
    result = read("shopify_payouts", sample("shopify_payouts_bom.csv"))

    assert result.errors == []
    minus4 = timezone(timedelta(hours=-4))
    rows = summary(result.rows)
    assert [row[2:8] for row in rows] == [
        ("sale", D("56.29"), D("1.93"), D("54.36"), "USD", datetime(2026, 9, 3, 10, 15, tzinfo=minus4)),
        ("refund", D("-10.00"), D("0.00"), D("-10.00"), "USD", datetime(2026, 9, 4, 9, 0, tzinfo=minus4)),
        ("sale", D("1250.00"), D("36.55"), D("1213.45"), "USD", datetime(2026, 9, 4, 12, 30, tzinfo=minus4)),
        ("payout", D("-1257.81"), D("0.00"), D("-1257.81"), "USD", datetime(2026, 9, 5, tzinfo=UTC)),
    ]
    assert [r.line_no for r in result.rows] == [2, 3, 4, 5]
    assert [r.platform_order_id for r in result.rows] == ["#1001", "#1001", "#1002", ""]
    # No transaction id in this export: derived, distinct, and the same when the file is read again.
    ids = [r.external_row_id for r in result.rows]
    assert all(row_id.startswith("shopify:") for row_id in ids) and len(set(ids)) == 4
    assert ids == [r.external_row_id for r in read("shopify_payouts", sample("shopify_payouts_bom.csv")).rows]
    assert result.raw_dict(result.rows[0])["Payout ID"] == "90001"


def test_shopify_derived_id_survives_the_payout_status_changing():
    pending = sample("shopify_payouts_bom.csv").replace(b",paid,", b",pending,")
    assert [r.external_row_id for r in read("shopify_payouts", pending).rows] == [
        r.external_row_id for r in read("shopify_payouts", sample("shopify_payouts_bom.csv")).rows
    ]


def test_alipay_gbk_statement_with_comment_lines_around_the_table():
    result = read("alipay", sample("alipay_statement_gbk.csv"))

    assert result.errors == []
    assert summary(result.rows) == [
        (
            6,
            "20260901000001",
            "sale",
            D("199.00"),
            D(0),
            D("199.00"),
            "CNY",
            beijing(2026, 9, 1, 10),
            "2026090122001400000001",
            "3100000000001",
            "T200P3100000000001",
        ),
        (
            7,
            "20260902000002",
            "refund",
            D("-50.00"),
            D(0),
            D("-50.00"),
            "CNY",
            beijing(2026, 9, 2, 11, 30),
            "2026090222001400000002",
            "3100000000002",
            "T200P3100000000002",
        ),
        (
            8,
            "20260902000003",
            "fee",
            D(0),
            D("1.19"),
            D("-1.19"),
            "CNY",
            beijing(2026, 9, 2, 23, 59, 59),
            "2026090222001400000003",
            "",
            "",
        ),
        (
            9,
            "20260903000004",
            "payout",
            D("-1000.00"),
            D(0),
            D("-1000.00"),
            "CNY",
            beijing(2026, 9, 3, 9),
            "",
            "",
            "",
        ),
    ]
    assert result.meta["account"] == "20880000000000000156"
    assert result.meta["period"] == "2026年09月01日 00:00:00 – 2026年10月01日 00:00:00"
    assert result.meta["收入合计"] == "1笔，共199.00元"


def test_wechat_pay_bill_backticks_and_summary_block():
    result = read("wechat_pay", sample("wechat_pay_all.csv"))

    assert result.errors == []
    assert summary(result.rows) == [
        (
            2,
            "4200000001202609010000000001",
            "sale",
            D("100.00"),
            D("0.6"),
            D("99.4"),
            "CNY",
            beijing(2026, 9, 1, 10),
            "4200000001202609010000000001",
            "",
            "HUB-1001",
        ),
        (
            3,
            "50000000012026090200000001",
            "refund",
            D("-20.00"),
            D("-0.12"),
            D("-19.88"),
            "CNY",
            beijing(2026, 9, 2, 15, 20),
            "4200000001202609010000000001",
            "",
            "HUB-1001",
        ),
        (
            4,
            "4200000001202609020000000002",
            "sale",
            D("2500.00"),
            D("15"),
            D("2485"),
            "CNY",
            beijing(2026, 9, 2, 18),
            "4200000001202609020000000002",
            "",
            "HUB-1002",
        ),
    ]
    assert result.meta["总交易单数"] == "3"
    assert result.meta["手续费总金额"] == "15.48000"
    assert result.raw_dict(result.rows[0])["交易类型"] == "JSAPI"  # no backtick left in the raw row either


def test_douyin_amounts_in_fen():
    result = read("douyin", sample("douyin_fund_flow_fen.csv"))

    assert result.errors == []
    assert [
        (r.line_no, r.external_row_id, r.kind, r.gross, r.fee, r.net, r.occurred_at, r.platform_order_id)
        for r in result.rows
    ] == [
        (2, "DY0001", "sale", D("129.90"), D(0), D("129.90"), beijing(2026, 9, 1, 8), "6900000000000000001"),
        (
            3,
            "DY0002",
            "commission",
            D(0),
            D("6.50"),
            D("-6.50"),
            beijing(2026, 9, 1, 8),
            "6900000000000000001",
        ),
        (
            4,
            "DY0003",
            "shipping_subsidy",
            D("8.00"),
            D(0),
            D("8.00"),
            beijing(2026, 9, 2, 9),
            "6900000000000000003",
        ),
        (5, "DY0004", "payout", D("-3000.00"), D(0), D("-3000.00"), beijing(2026, 9, 3, 9), ""),
    ]


def test_douyin_excel_export_in_yuan():
    data = xlsx_bytes(
        [
            ["动账时间", "动账流水号", "动账方向", "动账金额（元）", "动账账户", "动账摘要", "订单号"],
            [
                datetime(2026, 9, 1, 8, 0),
                "DY1001",
                "入账",
                129.9,
                "聚合账户",
                "订单结算",
                "6900000000000000001",
            ],
            [
                datetime(2026, 9, 1, 8, 0),
                "DY1002",
                "出账",
                0.3,
                "聚合账户",
                "平台服务费",
                "6900000000000000001",
            ],
        ]
    )
    result = read("douyin", data)

    assert result.errors == []
    assert [(r.line_no, r.kind, r.gross, r.fee, r.net, r.occurred_at) for r in result.rows] == [
        (2, "sale", D("129.9"), D(0), D("129.9"), beijing(2026, 9, 1, 8)),
        (3, "fee", D(0), D("0.3"), D("-0.3"), beijing(2026, 9, 1, 8)),
    ]


def test_pdd_fund_detail_with_thousands_separator_and_derived_ids():
    result = read("pdd", sample("pdd_fund_detail.csv"))

    assert result.errors == []
    assert [
        (r.line_no, r.kind, r.gross, r.fee, r.net, r.occurred_at, r.platform_order_id) for r in result.rows
    ] == [
        (2, "sale", D("1234.50"), D(0), D("1234.50"), beijing(2026, 9, 1, 12), "260901-100000000000001"),
        (3, "fee", D(0), D("7.41"), D("-7.41"), beijing(2026, 9, 1, 12, 0, 1), "260901-100000000000001"),
        (4, "refund", D("-88.00"), D(0), D("-88.00"), beijing(2026, 9, 2, 13), "260902-100000000000002"),
        (5, "payout", D("-500.00"), D(0), D("-500.00"), beijing(2026, 9, 3, 10), ""),
    ]
    ids = [r.external_row_id for r in result.rows]
    assert all(row_id.startswith("pdd:") for row_id in ids) and len(set(ids)) == 4


def test_pdd_identical_rows_get_distinct_stable_ids():
    line = "260901-1,2026-09-01 12:00:01,0.00,-1.00,技术服务费,,技术服务费\n"
    data = ("商户订单号,发生时间,收入金额（元）,支出金额（元）,账务类型,备注,业务描述\n" + line * 2).encode()
    first, second = (r.external_row_id for r in read("pdd", data).rows)

    assert second == f"{first}#2"
    assert [r.external_row_id for r in read("pdd", data).rows] == [first, second]


def test_pdd_excel_export():
    data = xlsx_bytes(
        [
            ["商户订单号", "发生时间", "收入金额（元）", "支出金额（元）", "账务类型", "备注", "业务描述"],
            ["260901-100000000000001", datetime(2026, 9, 1, 12), 1234.5, 0, "交易收入", None, "订单收入"],
            [
                "260901-100000000000001",
                datetime(2026, 9, 1, 12, 0, 1),
                0,
                -7.41,
                "技术服务费",
                None,
                "技术服务费",
            ],
        ]
    )
    result = read("pdd", data)

    assert result.errors == []
    assert [(r.line_no, r.kind, r.gross, r.fee, r.net, r.occurred_at) for r in result.rows] == [
        (2, "sale", D("1234.5"), D(0), D("1234.5"), beijing(2026, 9, 1, 12)),
        (3, "fee", D(0), D("7.41"), D("-7.41"), beijing(2026, 9, 1, 12, 0, 1)),
    ]


def test_bank_statement_csv_with_title_block_credit_debit_and_totals_line():
    result = read("bank", sample("bank_statement.csv"), mapping=BANK_MAPPING)

    assert result.errors == []
    assert [
        (r.line_no, r.external_row_id, r.kind, r.gross, r.fee, r.net, r.currency, r.occurred_at)
        for r in result.rows
    ] == [
        (4, "B0001", "payout", D("1000.00"), D(0), D("1000.00"), "CNY", beijing(2026, 9, 5)),
        (5, "B0002", "payout", D("3000.00"), D(0), D("3000.00"), "CNY", beijing(2026, 9, 6)),
        (6, "B0003", "adjustment", D("-200.00"), D(0), D("-200.00"), "CNY", beijing(2026, 9, 7)),
    ]
    assert result.meta["title"].startswith("示例银行")


def test_bank_statement_excel_with_signed_amount_and_no_reference():
    mapping = BankColumnMapping(
        date_column="Date",
        description_column="Details",
        amount_column="Amount",
        date_format="%d/%m/%Y",
        currency="USD",
        header_row=2,
    )
    data = xlsx_bytes(
        [
            ["Example Bank statement"],
            ["Date", "Details", "Amount", "Balance"],
            ["05/09/2026", "SHOPIFY PAYOUT 90001", 1257.81, 5257.81],
            [datetime(2026, 9, 6), "Card fee", -3.5, 5254.31],
        ]
    )
    result = read("bank", data, mapping=mapping)

    assert result.errors == []
    assert [(r.line_no, r.kind, r.gross, r.currency, r.occurred_at) for r in result.rows] == [
        (3, "payout", D("1257.81"), "USD", beijing(2026, 9, 5)),
        (4, "adjustment", D("-3.5"), "USD", beijing(2026, 9, 6)),
    ]
    assert all(r.external_row_id.startswith("bank:") for r in result.rows)


# --- bad rows are reported with line and column; the other rows still read ---------------------------------------


def test_bad_rows_are_reported_and_the_rest_read():
    text = sample("wechat_pay_all.csv").decode()
    lines = text.split("\r\n")
    lines[1] = lines[1].replace("`100.00,`0.00,`0,", "`abc,`0.00,`0,", 1)  # non-number amount
    lines[2] = lines[2].replace("`50000000012026090200000001", "`", 1)  # refund without its id
    lines[3] = lines[3].replace("`2026-09-02 18:00:00", "`2026-13-45 99:00", 1)  # no such date
    good = (
        lines[3].replace("`2026-13-45 99:00", "`2026-09-03 09:00:00").replace("0000000002,", "0000000003,", 1)
    )
    lines.insert(4, good)

    result = read("wechat_pay", "\r\n".join(lines).encode())

    assert result.errors == [
        RowError(line_no=2, column="应结订单金额", message="“abc” is not a number."),
        RowError(line_no=3, column="微信退款单号", message="The value is missing."),
        RowError(line_no=4, column="交易时间", message="“2026-13-45 99:00” is not a date and time."),
    ]
    assert [(r.line_no, r.external_row_id) for r in result.rows] == [(5, "4200000001202609020000000003")]


def test_bad_row_in_gbk_alipay_statement_keeps_its_line_number():
    text = sample("alipay_statement_gbk.csv").decode("gbk").replace("2026-09-02 11:30:00", "昨天")
    result = read("alipay", text.encode("gbk"))

    assert result.errors == [RowError(line_no=7, column="发生时间", message="“昨天” is not a date and time.")]
    assert [r.line_no for r in result.rows] == [6, 8, 9]


def test_missing_row_id_is_reported_for_douyin():
    data = sample("douyin_fund_flow_fen.csv").replace(b",DY0002,", b",,")
    result = read("douyin", data)

    assert result.errors == [RowError(line_no=3, column="动账流水号", message="The value is missing.")]
    assert len(result.rows) == 3


def test_bank_unparsable_date_reported_with_the_mapped_column():
    data = sample("bank_statement.csv").replace(b"2026-09-06", b"06.09.2026")
    result = read("bank", data, mapping=BANK_MAPPING)

    assert result.errors == [
        RowError(line_no=5, column="交易日期", message="“06.09.2026” is not a date in the format %Y-%m-%d.")
    ]
    assert [r.external_row_id for r in result.rows] == ["B0001", "B0003"]


def test_shopify_net_that_does_not_add_up_is_an_error():
    data = sample("shopify_payouts_bom.csv").replace(b",56.29,1.93,54.36,", b",56.29,1.93,55.36,")
    result = read("shopify_payouts", data)

    assert [(e.line_no, e.column) for e in result.errors] == [(2, "Net")]
    assert len(result.rows) == 3


# --- hostile input gives errors, not exceptions -----------------------------------------------------------------


@pytest.mark.parametrize("amount", ["99999999999999999999", "1e400", "NaN", "Infinity"])
def test_huge_or_non_finite_amounts_are_row_errors(amount):
    data = sample("pdd_fund_detail.csv").replace(b'"1,234.50"', amount.encode())
    result = read("pdd", data)

    assert [(e.line_no, e.column) for e in result.errors] == [(2, "收入金额（元）")]
    assert len(result.rows) == 3


def test_nul_byte_in_a_row_is_a_row_error():
    data = sample("douyin_fund_flow_fen.csv").replace(b"DY0003", b"DY\x000003")
    result = read("douyin", data)

    assert [(e.line_no, e.column) for e in result.errors] == [(4, "")]
    assert "NUL" in result.errors[0].message
    assert [r.external_row_id for r in result.rows] == ["DY0001", "DY0002", "DY0004"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n", b"\x00\x00\x00"])
@pytest.mark.parametrize("source", ["shopify_payouts", "alipay", "wechat_pay", "douyin", "pdd"])
def test_empty_file_is_one_error(source, data):
    result = read(source, data)

    assert result.rows == []
    assert result.errors == [RowError(line_no=0, column="", message="The file is empty.")]


def test_fen_amount_with_decimals_is_an_error():
    data = sample("douyin_fund_flow_fen.csv").replace(b",12990,", b",129.90,")
    result = read("douyin", data)

    assert [(e.line_no, e.column) for e in result.errors] == [(2, "动账金额（分）")]


# --- a file of the wrong format fails as a whole ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "other_sample"),
    [
        ("shopify_payouts", "alipay_statement_gbk.csv"),
        ("alipay", "wechat_pay_all.csv"),
        ("wechat_pay", "alipay_statement_gbk.csv"),
        ("douyin", "pdd_fund_detail.csv"),
        ("pdd", "shopify_payouts_bom.csv"),
    ],
)
def test_wrong_format_raises_reader_failure(source, other_sample):
    with pytest.raises(ReaderFailure):
        read(source, sample(other_sample))


@pytest.mark.parametrize(
    "data", [b"PK\x03\x04 not really a workbook", bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n"]
)
def test_binary_garbage_raises_reader_failure(data):
    with pytest.raises(ReaderFailure):
        read("pdd", data)


def test_bank_statement_needs_a_mapping_that_fits():
    with pytest.raises(ReaderFailure):
        read("bank", sample("bank_statement.csv"))
    wrong_bank = BankColumnMapping(
        date_column="Booking date", description_column="Text", amount_column="Amount"
    )
    with pytest.raises(ReaderFailure):
        read("bank", sample("bank_statement.csv"), mapping=wrong_bank)


def test_unknown_source_raises_reader_failure():
    with pytest.raises(ReaderFailure):
        read("paypal", sample("pdd_fund_detail.csv"))
