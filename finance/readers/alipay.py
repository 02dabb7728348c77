"""Alipay account statement (支付宝账务明细): GBK CSV with "#" lines around the table, one balance movement a row.

The layout, as the merchant portal and the bill API (bill_type=signcustomer) export it::

    #支付宝账务明细查询
    #账号：[20880000000000000156]
    #起始日期：[2026年09月01日 00:00:00]   终止日期：[2026年10月01日 00:00:00]
    #-----------------------------------------账务明细列表----------------------------------------
    账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注
    2026090100001\t,2026090122001400001\t,T200P1001\t,…
    #-----------------------------------------账务明细列表结束------------------------------------
    #支出合计：1笔，共10.00元
    #收入合计：2笔，共300.00元
    #导出时间：[2026年10月02日 09:00:00]

Values carry a trailing tab (so Excel keeps long numbers as text); amounts are yuan; times are Beijing time.
``external_row_id`` is 账务流水号 (unique per balance movement). Newer exports add 业务描述 and 业务基础订单号.
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
    CellProblem,
    file_rows,
    find_table,
    joined,
    keyword_kind,
    parse_amount,
    parse_time,
    raw_row,
    read_body,
    required_value,
    signed_row,
)

COLUMNS = {
    "row_id": ("账务流水号",),
    "business_no": ("业务流水号",),
    "merchant_order_no": ("商户订单号",),
    "goods": ("商品名称",),
    "occurred_at": ("发生时间",),
    "counterparty": ("对方账号",),
    "income": ("收入金额", "收入"),
    "expense": ("支出金额", "支出"),
    "channel": ("交易渠道",),
    "business_type": ("业务类型",),
    "memo": ("备注",),
    "business_description": ("业务描述",),
    "base_order_no": ("业务基础订单号",),
}
REQUIRED = ("row_id", "occurred_at", "income", "expense")

# 业务类型 / 业务描述 text → kind; first match wins, so the narrower words come first.
KIND_RULES = (
    ("佣金", COMMISSION),
    ("服务费", FEE),
    ("手续费", FEE),
    ("收费", FEE),
    ("退款", REFUND),
    ("提现", PAYOUT),
    ("交易付款", SALE),
    ("在线支付", SALE),
    ("交易收款", SALE),
)

# Taobao's orders reach Alipay with merchant order no "T200P" + the Taobao order id.
TAOBAO_MERCHANT_PREFIX = "T200P"


def read_alipay(data: bytes, result: ReadResult | None = None) -> ReadResult:
    result = ReadResult() if result is None else result
    rows = file_rows(data)

    def keep_meta(cells: list[str]) -> None:
        line = ",".join(cells).strip(" ,#\t")
        if line.startswith("账号"):
            result.meta["account"] = line.split("[", 1)[-1].split("]", 1)[0]
        elif line.startswith("起始日期"):
            bounds = [part.split("]", 1)[0] for part in line.split("[")[1:]]
            result.meta["period"] = " – ".join(bounds) if bounds else line
        elif "合计" in line or line.startswith("导出时间"):
            key, _sep, value = line.partition("：")
            result.meta[key.strip()] = value.strip(" ,")

    columns = find_table(rows, COLUMNS, REQUIRED, format_name=_("Alipay statement"), on_preamble=keep_meta)
    at = {key: columns.index(key) for key in COLUMNS}
    label = {key: columns.label(key) for key in COLUMNS}
    income_in_fen, expense_in_fen = columns.in_fen("income"), columns.in_fen("expense")
    kinds: dict[str, str] = {}

    def build(line_no: int, cells: list[str]) -> ParsedRow:
        row_id = required_value(cells, at["row_id"], label["row_id"])
        income = parse_amount(cells[at["income"]], label["income"], fen=income_in_fen, required=False)
        expense = parse_amount(cells[at["expense"]], label["expense"], fen=expense_in_fen, required=False)
        if income and expense:
            raise CellProblem(label["income"], _("A row has both an income and an expense amount."))
        amount = income - abs(expense)
        occurred_at = parse_time(cells[at["occurred_at"]], label["occurred_at"])
        business_type = cells[at["business_type"]].strip()
        description = cells[at["business_description"]].strip() or cells[at["memo"]].strip()
        kind = keyword_kind(f"{business_type}|{description}", KIND_RULES, ADJUSTMENT, kinds)
        if (kind == SALE and amount < 0) or (kind == REFUND and amount > 0):
            kind = ADJUSTMENT  # a "payment" going out or a "refund" coming in is not a sale or refund of ours
        merchant_order_no = cells[at["merchant_order_no"]].strip()
        platform_order_id = cells[at["base_order_no"]].strip()
        if not platform_order_id and merchant_order_no.startswith(TAOBAO_MERCHANT_PREFIX):
            platform_order_id = merchant_order_no[len(TAOBAO_MERCHANT_PREFIX) :]
        return signed_row(
            line_no=line_no,
            external_row_id=row_id,
            kind=kind,
            amount=amount,
            currency="CNY",
            occurred_at=occurred_at,
            raw=raw_row(columns, cells),
            payment_id=cells[at["business_no"]].strip(),
            platform_order_id=platform_order_id,
            merchant_order_no=merchant_order_no,
            description=joined(business_type, description or cells[at["goods"]].strip()),
        )

    read_body(rows, columns, build, result, check_nul=b"\x00" in data, on_comment=keep_meta)
    return result
