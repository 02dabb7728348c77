"""What every settlement reader returns: normalised rows, row-level errors, and the kinds a row can be."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class SettlementSource(models.TextChoices):
    SHOPIFY_PAYOUTS = "shopify_payouts", _("Shopify payouts")
    ALIPAY = "alipay", _("Alipay statement")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay bill")
    DOUYIN = "douyin", _("Douyin shop bill")
    PDD = "pdd", _("Pinduoduo bill")
    BANK = "bank", _("Bank statement")


class RowKind(models.TextChoices):
    SALE = "sale", _("Sale")
    REFUND = "refund", _("Refund")
    FEE = "fee", _("Fee")
    COMMISSION = "commission", _("Commission")
    SHIPPING_SUBSIDY = "shipping_subsidy", _("Shipping subsidy")
    ADJUSTMENT = "adjustment", _("Adjustment")
    PAYOUT = "payout", _("Payout")


@dataclass(slots=True)
class ParsedRow:
    """One row of a settlement file or bank statement, in the hub's terms.

    Amounts are in currency units (yuan, dollars), never fen, and signed from the seller's side: ``gross`` is
    money in (+) or out (−: a refund, a payout leaving the platform balance is + on the bank statement);
    ``fee`` is what the provider kept (+) or gave back (−); ``net`` = gross − fee. ``occurred_at`` is aware
    (files in Beijing time are read as Asia/Shanghai). ``external_row_id`` is the provider's own id of the row,
    unique within the source, so an overlapping re-download is not counted twice; where a format has none the
    reader derives a stable one from the row's content (and says so in its docstring).
    """

    line_no: int  # 1-based line (or spreadsheet row) in the file, for error reports
    external_row_id: str
    kind: str  # a RowKind value
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str
    occurred_at: datetime
    payment_id: str = ""  # Alipay trade no, WeChat Pay transaction_id, Shopify charge/transaction id…
    platform_order_id: str = ""
    merchant_order_no: str = ""  # the seller's own order number (ours, when the platform echoes it)
    description: str = ""
    raw: list[str] = field(default_factory=list)  # the cells as read, named by ReadResult.columns


@dataclass(frozen=True)
class RowError:
    """Why one row could not be read: shown to the finance user as row number, column, what is wrong."""

    line_no: int
    column: str
    message: str


@dataclass
class ReadResult:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # What the file says about itself (account, period) when it has a header block; free text per key.
    meta: dict[str, str] = field(default_factory=dict)
    # The header row as written: the names of each row's raw cells.
    columns: list[str] = field(default_factory=list)

    def raw_dict(self, row: ParsedRow) -> dict[str, str]:
        """One row's raw cells by column name (an unnamed column, from a trailing comma, left out)."""
        return {name: value for name, value in zip(self.columns, row.raw, strict=False) if name}


@dataclass(frozen=True)
class BankColumnMapping:
    """How one bank's statement export is laid out (saved per bank by the finance user)."""

    date_column: str
    description_column: str
    reference_column: str = ""  # the bank's transaction reference (the row id); else derived from the row
    amount_column: str = ""  # one signed amount column…
    credit_column: str = ""  # …or money in and money out in two columns
    debit_column: str = ""
    counterparty_column: str = ""
    date_format: str = "%Y-%m-%d"  # strptime format; a time part is optional when the format has none
    currency: str = "CNY"
    header_row: int = 1  # 1-based row holding the column names (banks put a title block above it)


class ReaderFailure(Exception):
    """The file as a whole cannot be read (wrong format, not a table at all): nothing is imported."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
