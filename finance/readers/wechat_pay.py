"""WeChat Pay trade bill (微信支付交易账单, bill_type ALL/SUCCESS/REFUND): CSV, every value prefixed with a backtick.

Layout (pay.weixin.qq.com, 交易账单文件格式说明)::

    交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,
        应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,
        手续费,费率,订单金额,申请退款金额,费率备注
    `2026-09-01 10:00:00,`wx…,`1900000109,`0,`,`4200000001…,`HUB-1001,…,`SUCCESS,…,`CNY,`100.00,…
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    `2,`100.00,`20.00,`0.00,`0.48000,`100.00,`20.00

Amounts are yuan, times Beijing time. A payment row (交易状态 SUCCESS) becomes a sale: gross 应结订单金额, fee 手续费,
id 微信订单号. A refund row (REFUND) becomes a refund: gross −退款金额, fee −|手续费| (the fee WeChat Pay gives back),
id 微信退款单号. A payment revoked after success (REVOKED) keeps its 微信订单号, so its id is "<微信订单号>:REVOKED".
Merchants on the pre-2018 format have 总金额 instead of 应结订单金额; both are read. The summary block goes to meta.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from finance.readers.base import ParsedRow, ReadResult
from finance.readers.tabular import (
    REFUND,
    SALE,
    CellProblem,
    clean_cell,
    file_rows,
    find_table,
    parse_amount,
    parse_time,
    raw_row,
    read_body,
    required_value,
)

COLUMNS = {
    "occurred_at": ("交易时间",),
    "transaction_id": ("微信订单号",),
    "out_trade_no": ("商户订单号",),
    "status": ("交易状态",),
    "currency": ("货币种类",),
    "settlement_amount": ("应结订单金额", "总金额"),
    "refund_id": ("微信退款单号",),
    "out_refund_no": ("商户退款单号",),
    "refund_amount": ("退款金额",),
    "goods": ("商品名称",),
    "fee": ("手续费",),
    "rate": ("费率",),
}
REQUIRED = ("occurred_at", "transaction_id", "status", "settlement_amount", "fee")
SUMMARY_FIRST_HEADER = "总交易单数"


def read_wechat_pay(data: bytes, result: ReadResult | None = None) -> ReadResult:
    result = ReadResult() if result is None else result
    rows = file_rows(data)
    columns = find_table(rows, COLUMNS, REQUIRED, format_name=_("WeChat Pay bill"))
    at = {key: columns.index(key) for key in COLUMNS}
    label = {key: columns.label(key) for key in COLUMNS}
    has_refund_columns = columns.has("refund_id") and columns.has("refund_amount")

    def build(line_no: int, cells: list[str]) -> ParsedRow:
        transaction_id = required_value(cells, at["transaction_id"], label["transaction_id"])
        status = cells[at["status"]].strip().upper()
        occurred_at = parse_time(cells[at["occurred_at"]], label["occurred_at"])
        fee = parse_amount(cells[at["fee"]], label["fee"], required=False)
        if status == "SUCCESS":
            kind = SALE
            row_id = transaction_id
            gross = parse_amount(cells[at["settlement_amount"]], label["settlement_amount"])
        elif status == "REFUND":
            if not has_refund_columns:
                raise CellProblem(label["status"], _("A refund row in a bill without the refund columns."))
            kind = REFUND
            row_id = required_value(cells, at["refund_id"], label["refund_id"])
            gross = -abs(parse_amount(cells[at["refund_amount"]], label["refund_amount"]))
            fee = -abs(fee)
        elif status == "REVOKED":
            kind = REFUND
            row_id = f"{transaction_id}:REVOKED"
            gross = -abs(parse_amount(cells[at["settlement_amount"]], label["settlement_amount"]))
            fee = -abs(fee)
        else:
            raise CellProblem(
                label["status"], _("Unknown trade status “%(status)s”.") % {"status": status[:20]}
            )
        return ParsedRow(
            line_no,
            row_id,
            kind,
            gross,
            fee,
            gross - fee,
            cells[at["currency"]].strip() or "CNY",
            occurred_at,
            transaction_id,
            "",
            cells[at["out_trade_no"]].strip(),
            cells[at["goods"]].strip(),
            raw_row(columns, cells),
        )

    summary_header: list[str] = []

    def is_summary(cells: list[str]) -> bool:
        if cells[0] != SUMMARY_FIRST_HEADER:
            return False
        summary_header.extend(cells)
        return True

    read_body(rows, columns, build, result, check_nul=b"\x00" in data, is_end=is_summary)
    if summary_header:
        for _line_no, cells in rows:  # the line after the summary header holds its values
            if "".join(cells).strip():
                result.meta.update(zip(summary_header, (clean_cell(value) for value in cells), strict=False))
                break
    return result
