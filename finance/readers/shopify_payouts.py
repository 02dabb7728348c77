"""Shopify Payments transactions export (Finance → Payouts → Export transactions): UTF-8 CSV, one balance
transaction a row.

Header as the admin writes it (newer exports add VAT and business-entity columns at the end)::

    Transaction Date,Type,Order,Card Brand,Card Source,Payout Status,Payout Date,Payout ID,Available On,
    Amount,Fee,Net,Checkout,Payment Method Name,Presentment Amount,Presentment Currency,Currency

Transaction Date carries its UTC offset ("2026-09-03 10:15:00 -0400"; a time without one is read as UTC).
Amount is signed from the balance's side (charge +, refund −, payout −), Fee is what Shopify kept, Net = Amount −
Fee (checked). Order is the order *name* ("#1001"), kept as ``platform_order_id``.

The export has no transaction id. When a column "ID"/"Transaction ID" is present (API-based exports) it is used;
otherwise ``external_row_id`` is "shopify:" + sha1 of the columns that do not change after the fact (date, type,
order, card brand, amount, fee, net, currency, checkout), so a row re-downloaded after its payout moved from
pending to paid keeps its id; the n-th identical row of a file gets "#n".
"""

from __future__ import annotations

from datetime import UTC

from django.utils.translation import gettext as _

from finance.readers.base import ParsedRow, ReadResult
from finance.readers.tabular import (
    ADJUSTMENT,
    PAYOUT,
    REFUND,
    SALE,
    CellProblem,
    derived_row_id,
    file_rows,
    find_table,
    parse_amount,
    parse_time,
    raw_row,
    read_body,
    required_value,
)

COLUMNS = {
    "occurred_at": ("Transaction Date",),
    "type": ("Type",),
    "order": ("Order",),
    "card_brand": ("Card Brand",),
    "payout_status": ("Payout Status",),
    "payout_date": ("Payout Date",),
    "payout_id": ("Payout ID",),
    "amount": ("Amount",),
    "fee": ("Fee",),
    "net": ("Net",),
    "checkout": ("Checkout",),
    "currency": ("Currency",),
    "transaction_id": ("ID", "Transaction ID", "Transaction: ID"),
}
REQUIRED = ("occurred_at", "type", "amount", "fee", "net", "currency")
STABLE_KEYS = ("occurred_at", "type", "order", "card_brand", "amount", "fee", "net", "currency", "checkout")

# Every other type (dispute, reserve, chargeback…) is an adjustment, its Shopify type kept as the description.
TYPE_KINDS = {"charge": SALE, "refund": REFUND, "payout": PAYOUT, "adjustment": ADJUSTMENT}


def read_shopify_payouts(data: bytes, result: ReadResult | None = None) -> ReadResult:
    result = ReadResult() if result is None else result
    rows = file_rows(data)
    columns = find_table(rows, COLUMNS, REQUIRED, format_name=_("Shopify payouts export"))
    at = {key: columns.index(key) for key in COLUMNS}
    label = {key: columns.label(key) for key in COLUMNS}
    has_id = columns.has("transaction_id")
    stable_positions = [at[key] for key in STABLE_KEYS]
    seen_rows: dict[str, int] = {}

    def build(line_no: int, cells: list[str]) -> ParsedRow:
        gross = parse_amount(cells[at["amount"]], label["amount"])
        fee = parse_amount(cells[at["fee"]], label["fee"], required=False)
        net = parse_amount(cells[at["net"]], label["net"])
        if gross - fee != net:
            raise CellProblem(
                label["net"],
                _("Net %(net)s is not Amount − Fee (%(expected)s).") % {"net": net, "expected": gross - fee},
            )
        occurred_at = parse_time(cells[at["occurred_at"]], label["occurred_at"], default_zone=UTC)
        currency = cells[at["currency"]].strip().upper()
        if len(currency) != 3:
            raise CellProblem(
                label["currency"], _("“%(value)s” is not a currency code.") % {"value": currency[:10]}
            )
        shopify_type = required_value(cells, at["type"], label["type"]).lower()
        if has_id:
            row_id = required_value(cells, at["transaction_id"], label["transaction_id"])
        else:
            row_id = derived_row_id("shopify", [cells[position] for position in stable_positions], seen_rows)
        return ParsedRow(
            line_no,
            row_id,
            TYPE_KINDS.get(shopify_type, ADJUSTMENT),
            gross,
            fee,
            net,
            currency,
            occurred_at,
            row_id if has_id else "",
            cells[at["order"]].strip(),
            "",
            shopify_type,
            raw_row(columns, cells),
        )

    read_body(rows, columns, build, result, check_nul=b"\x00" in data)
    return result
