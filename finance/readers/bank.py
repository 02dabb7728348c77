"""Bank statement (CSV or Excel) read through the column mapping the finance user saved for that bank.

Banks differ in everything, so nothing is assumed but what ``BankColumnMapping`` says: the header row (banks put
a title block above it), the date column and its strptime format, one signed amount column or credit (money in)
and debit (money out) columns, the description, and optionally the bank's reference and the counterparty.

Kind: money *in* whose counterparty or description names a platform or payment provider (``PROVIDER_WORDS``:
Alipay, WeChat Pay/Tenpay, Douyin/ByteDance, Pinduoduo and its operator 寻梦, Shopify…) is a ``payout`` — the
platform paying the seller out; everything else is an ``adjustment``. gross = net = the signed amount, fee 0.

``external_row_id`` is the bank's reference when mapped; otherwise "bank:" + sha1 of the mapped cells (date,
description, amounts, counterparty), "#n" added to the n-th identical row of a file. Lines whose date is empty and
that say 合计/总计/小计/Total (or that say it in the date column) are the bank's totals and are skipped.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from finance.readers.base import BankColumnMapping, ParsedRow, ReaderFailure, ReadResult
from finance.readers.tabular import (
    ADJUSTMENT,
    BEIJING,
    PAYOUT,
    CellProblem,
    Columns,
    clean_cell,
    derived_row_id,
    file_rows,
    header_key,
    joined,
    parse_amount,
    raw_row,
    read_body,
    required_value,
    signed_row,
)

PROVIDER_WORDS = (
    "支付宝",
    "alipay",
    "财付通",
    "tenpay",
    "微信",
    "wechat",
    "抖音",
    "抖店",
    "字节跳动",
    "bytedance",
    "douyin",
    "拼多多",
    "寻梦",
    "pinduoduo",
    "shopify",
    "淘宝",
    "天猫",
    "京东",
)
TOTAL_WORDS = ("合计", "总计", "小计", "total")


def _is_totals_line(date_text: str, cells: list[str]) -> bool:
    """The bank's own totals line: 合计/Total where the date is, or an empty date and 合计 further on."""
    lowered = date_text.lower()
    if lowered:
        return lowered.startswith(TOTAL_WORDS)
    return any(text.strip().lower().startswith(TOTAL_WORDS) for text in cells)


def parse_bank_date(text: str, column: str, date_format: str) -> datetime:
    """A statement date in the mapping's format; a time part is read when present even if the format has none."""
    text = text.strip()
    if not text:
        raise CellProblem(column, _("The date is empty."))
    for pattern in (date_format, f"{date_format} %H:%M:%S", f"{date_format} %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    try:
        # Excel date cells arrive as ISO text whatever the bank's display format is.
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CellProblem(
            column,
            _("“%(value)s” is not a date in the format %(format)s.")
            % {"value": text[:40], "format": date_format},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def read_bank(data: bytes, mapping: BankColumnMapping | None, result: ReadResult | None = None) -> ReadResult:
    if mapping is None:
        raise ReaderFailure(_("A bank statement needs the bank's column mapping."))
    if not mapping.amount_column and not (mapping.credit_column or mapping.debit_column):
        raise ReaderFailure(_("The column mapping names neither an amount column nor credit/debit columns."))
    result = ReadResult() if result is None else result
    rows = file_rows(data)
    header: list[str] | None = None
    preamble: list[str] = []
    for line_no, cells in rows:
        if line_no == mapping.header_row:
            header = cells
            break
        if "".join(cells).strip():
            preamble.append(" ".join(clean_cell(value) for value in cells if value.strip()))
    if header is None:
        if not preamble:
            raise ReaderFailure(_("The file is empty."))
        raise ReaderFailure(_("The file has no row %(row)s for the header.") % {"row": mapping.header_row})
    if preamble:
        result.meta["title"] = "\n".join(preamble)

    keys = [header_key(name) for name in header]
    wanted = {
        "date": mapping.date_column,
        "description": mapping.description_column,
        "reference": mapping.reference_column,
        "amount": mapping.amount_column,
        "credit": mapping.credit_column,
        "debit": mapping.debit_column,
        "counterparty": mapping.counterparty_column,
    }
    positions: dict[str, int] = {}
    missing: list[str] = []
    for key, name in wanted.items():
        if not name:
            continue
        if header_key(name) in keys:
            positions[key] = keys.index(header_key(name))
        else:
            missing.append(name)
    if missing:
        raise ReaderFailure(
            _("The header row has no column %(columns)s; is this the bank the mapping is for?")
            % {"columns": ", ".join(f"“{name}”" for name in missing)}
        )
    columns = Columns(names=[clean_cell(name) for name in header], positions=positions)
    stable_keys = [
        key
        for key in ("date", "description", "amount", "credit", "debit", "counterparty")
        if key in positions
    ]
    labels = {key: columns.label(key) for key in positions}
    seen_rows: dict[str, int] = {}

    at = {key: positions.get(key, -1) for key in wanted}
    stable_positions = [at[key] for key in stable_keys]
    has_amount_column, has_reference = "amount" in positions, "reference" in positions

    def build(line_no: int, cells: list[str]) -> ParsedRow | None:
        date_text = cells[at["date"]].strip()
        if _is_totals_line(date_text, cells):
            return None
        occurred_at = parse_bank_date(date_text, labels["date"], mapping.date_format)
        if has_amount_column:
            amount = parse_amount(cells[at["amount"]], labels["amount"])
        else:
            credit_text, debit_text = cells[at["credit"]].strip(), cells[at["debit"]].strip()
            if not credit_text and not debit_text:
                raise CellProblem(labels.get("credit") or labels["debit"], _("The amount is empty."))
            credit = parse_amount(credit_text, labels.get("credit", ""), required=False)
            debit = parse_amount(debit_text, labels.get("debit", ""), required=False)
            amount = credit - abs(debit)
        if has_reference:
            row_id = required_value(cells, at["reference"], labels["reference"])
        else:
            row_id = derived_row_id("bank", [cells[position] for position in stable_positions], seen_rows)
        description, counterparty = cells[at["description"]].strip(), cells[at["counterparty"]].strip()
        searched = f"{counterparty} {description}".lower()
        is_payout = amount > 0 and any(word in searched for word in PROVIDER_WORDS)
        return signed_row(
            line_no=line_no,
            external_row_id=row_id,
            kind=PAYOUT if is_payout else ADJUSTMENT,
            amount=amount,
            currency=mapping.currency,
            occurred_at=occurred_at,
            raw=raw_row(columns, cells),
            payment_id=row_id if has_reference else "",
            description=joined(counterparty, description),
        )

    read_body(rows, columns, build, result, check_nul=b"\x00" in data)
    return result
