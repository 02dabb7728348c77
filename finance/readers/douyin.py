"""Douyin shop (抖店) fund flow export (资金流水明细): CSV or Excel, one balance movement a row.

Columns as the shop backend (资金 → 资金流水明细) exports them; the names are NOT CONFIRMED against Douyin's own
documentation (only through ERP vendors and seller guides, see docs/finance.md)::

    动账时间,动账流水号,动账方向,动账金额,动账账户,动账摘要,订单号,子订单号,商品ID,备注

动账方向 is 入账 (money in) or 出账 (money out) and 动账金额 is unsigned. Amounts are yuan unless the header says
"（分）", then fen. Times are Beijing time. ``external_row_id`` is 动账流水号, which Douyin documents as unique.
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
    file_rows,
    find_table,
    keyword_kind,
    parse_amount,
    parse_time,
    raw_row,
    read_body,
    required_value,
    signed_row,
)

COLUMNS = {
    "occurred_at": ("动账时间", "结算时间"),
    "row_id": ("动账流水号",),
    "direction": ("动账方向",),
    "amount": ("动账金额",),
    "account": ("动账账户",),
    "summary": ("动账摘要",),
    "order_id": ("订单号", "订单编号"),
    "sub_order_id": ("子订单号",),
    "product_id": ("商品ID",),
    "remark": ("备注",),
}
REQUIRED = ("occurred_at", "row_id", "direction", "amount", "summary")

# 动账摘要 → kind; first match wins ("达人佣金退款" is a commission given back, not a refund to a buyer).
KIND_RULES = (
    ("佣金", COMMISSION),
    ("服务费", FEE),
    ("手续费", FEE),
    ("提现", PAYOUT),
    ("运费补偿", SHIPPING_SUBSIDY),
    ("运费险", SHIPPING_SUBSIDY),
    ("退款", REFUND),
    ("结算", SALE),
)
MONEY_IN = "入账"
MONEY_OUT = "出账"


def read_douyin(data: bytes, result: ReadResult | None = None) -> ReadResult:
    result = ReadResult() if result is None else result
    rows = file_rows(data)
    columns = find_table(rows, COLUMNS, REQUIRED, format_name=_("Douyin shop bill"))
    at = {key: columns.index(key) for key in COLUMNS}
    label = {key: columns.label(key) for key in COLUMNS}
    amount_in_fen = columns.in_fen("amount")
    kinds: dict[str, str] = {}

    def build(line_no: int, cells: list[str]) -> ParsedRow:
        row_id = required_value(cells, at["row_id"], label["row_id"])
        amount = abs(parse_amount(cells[at["amount"]], label["amount"], fen=amount_in_fen))
        direction = cells[at["direction"]].strip()
        if direction == MONEY_OUT:
            amount = -amount
        elif direction != MONEY_IN:
            raise CellProblem(
                label["direction"], _("“%(value)s” is neither 入账 nor 出账.") % {"value": direction[:20]}
            )
        occurred_at = parse_time(cells[at["occurred_at"]], label["occurred_at"])
        summary = cells[at["summary"]].strip()
        return signed_row(
            line_no=line_no,
            external_row_id=row_id,
            kind=keyword_kind(summary, KIND_RULES, ADJUSTMENT, kinds),
            amount=amount,
            currency="CNY",
            occurred_at=occurred_at,
            raw=raw_row(columns, cells),
            platform_order_id=cells[at["order_id"]].strip(),
            description=summary,
        )

    read_body(rows, columns, build, result, check_nul=b"\x00" in data)
    return result
