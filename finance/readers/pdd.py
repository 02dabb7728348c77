"""Pinduoduo merchant fund export (拼多多 账户资金 → 货款明细): CSV or Excel, one balance movement a row.

Columns as the merchant backend exports them; NOT CONFIRMED against Pinduoduo's own documentation (only through
ERP vendors' bill APIs, see docs/finance.md)::

    商户订单号,发生时间,收入金额（元）,支出金额（元）,账务类型,备注,业务描述

商户订单号 is the Pinduoduo order number (e.g. 260901-123456789012345), empty for withdrawals. Amounts are yuan
unless a header says "（分）"; times are Beijing time. The export has no row id, so ``external_row_id`` is
"pdd:" + sha1 of the row's cells (joined with U+001F after trimming), with "#n" added to the n-th identical row
of a file: stable across re-downloads of the same period.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from finance.readers.base import ParsedRow, ReadResult
from finance.readers.tabular import (
    ADJUSTMENT,
    COMMISSION,
    FEE,
    PAYOUT,
    REFUND,
    SALE,
    SHIPPING_SUBSIDY,
    CellProblem,
    derived_row_id,
    file_rows,
    find_table,
    joined,
    keyword_kind,
    parse_amount,
    parse_time,
    raw_row,
    read_body,
    signed_row,
)

COLUMNS = {
    "order_id": ("商户订单号", "订单号", "订单编号"),
    "occurred_at": ("发生时间",),
    "income": ("收入金额", "收入"),
    "expense": ("支出金额", "支出"),
    "account_type": ("账务类型", "财务类型"),
    "remark": ("备注",),
    "description": ("业务描述",),
}
REQUIRED = ("occurred_at", "income", "expense", "account_type")

# 账务类型 | 业务描述 → kind; first match wins.
KIND_RULES = (
    ("佣金", COMMISSION),
    ("多多进宝", COMMISSION),
    ("服务费", FEE),
    ("手续费", FEE),
    ("提现", PAYOUT),
    ("运费", SHIPPING_SUBSIDY),
    ("退款", REFUND),
    ("交易收入", SALE),
    ("订单收入", SALE),
    ("货款", SALE),
)


def read_pdd(data: bytes, result: ReadResult | None = None) -> ReadResult:
    result = ReadResult() if result is None else result
    rows = file_rows(data)
    columns = find_table(rows, COLUMNS, REQUIRED, format_name=_("Pinduoduo bill"))
    at = {key: columns.index(key) for key in COLUMNS}
    label = {key: columns.label(key) for key in COLUMNS}
    income_in_fen, expense_in_fen = columns.in_fen("income"), columns.in_fen("expense")
    width = len(columns.names)
    kinds: dict[str, str] = {}
    seen_rows: dict[str, int] = {}

    def build(line_no: int, cells: list[str]) -> ParsedRow:
        income = parse_amount(cells[at["income"]], label["income"], fen=income_in_fen, required=False)
        expense = parse_amount(cells[at["expense"]], label["expense"], fen=expense_in_fen, required=False)
        if income and expense:
            raise CellProblem(label["income"], _("A row has both an income and an expense amount."))
        occurred_at = parse_time(cells[at["occurred_at"]], label["occurred_at"])
        account_type = cells[at["account_type"]].strip()
        description = cells[at["description"]].strip()
        return signed_row(
            line_no=line_no,
            external_row_id=derived_row_id("pdd", cells[:width], seen_rows),
            kind=keyword_kind(f"{account_type}|{description}", KIND_RULES, ADJUSTMENT, kinds),
            amount=income - abs(expense),
            currency="CNY",
            occurred_at=occurred_at,
            raw=raw_row(columns, cells),
            platform_order_id=cells[at["order_id"]].strip(),
            description=joined(account_type, description or cells[at["remark"]].strip()),
        )

    read_body(rows, columns, build, result, check_nul=b"\x00" in data)
    return result
