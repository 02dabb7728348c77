"""Demo finance: the WeChat store's fee rate, a default chart of accounts, and this month's WeChat Pay bill with a
few planted differences of every kind, imported and matched so /finance/differences/ has them at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from aftersales.models import Refund, RefundStatus
from finance.imports import SettlementImportError, settlement_file_import
from finance.matching import SHANGHAI, month_bounds, period_match
from finance.models import AccountMapping, Difference, DifferenceStatus, SettlementFile
from finance.readers.base import RowKind, SettlementSource
from orders.models import Order, Store

STORE = "wechat-demo"
SOURCE = SettlementSource.WECHAT_PAY
# WeChat Pay's standard rate for physical goods; the bill carries each payment's fee on its own row, so the rate
# can be checked against it (an Alipay statement books fees on lines of their own: its store keeps no rate).
WECHAT_FEE_RATE = Decimal("0.0060")
FILE_PREFIX = "wechat_pay_bill_demo_"
CENT = Decimal("0.01")
# What a US-dollar row of the planted currency difference converts at (the demo's fixed rate, as demo.orders).
CNY_PER_USD = Decimal("7.2")

# (kind, debit code, debit name, credit code, credit name): which accounts a positive amount of each kind books
# (企业会计准则 codes, as most Chinese accounting software ships them).
ACCOUNTS = [
    (RowKind.SALE, "1122", "应收账款", "6001", "主营业务收入"),
    (RowKind.REFUND, "6001", "主营业务收入", "1122", "应收账款"),
    (RowKind.FEE, "6601", "销售费用", "1122", "应收账款"),
    (RowKind.COMMISSION, "6601", "销售费用", "1122", "应收账款"),
    (RowKind.SHIPPING_SUBSIDY, "1122", "应收账款", "6051", "其他业务收入"),
    (RowKind.ADJUSTMENT, "1122", "应收账款", "6301", "营业外收入"),
    (RowKind.PAYOUT, "1002", "银行存款", "1122", "应收账款"),
]

# The trade bill's header (bill_type ALL), as finance.readers.wechat_pay reads it.
HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
          "手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
APP_ID = "wx8888888888888888"
MCH_ID = "1900000109"


@dataclass
class _BillRow:
    at: datetime
    transaction_id: str
    out_trade_no: str
    status: str  # SUCCESS or REFUND
    amount: Decimal  # 应结订单金额 for a payment, 退款金额 for a refund
    fee: Decimal  # positive; a refund row gives it back
    currency: str = "CNY"
    refund_id: str = ""
    out_refund_no: str = ""


def finance_load(stores: dict[str, Store], *, now: datetime | None = None) -> str:
    """Fee rate, account mapping and the demo bill; a rerun finds the bill and only says what it holds."""
    store = stores[STORE]
    # Only when empty: a rate someone set since (their contract's) is theirs.
    Store.objects.filter(pk=store.pk, fee_rate__isnull=True).update(fee_rate=WECHAT_FEE_RATE)
    mappings_created = 0
    for kind, debit_code, debit_name, credit_code, credit_name in ACCOUNTS:
        _mapping, created = AccountMapping.objects.get_or_create(store=None, kind=kind, defaults={
            "debit_account_code": debit_code, "debit_account_name": debit_name,
            "credit_account_code": credit_code, "credit_account_name": credit_name})
        mappings_created += created
    settlement_file = SettlementFile.objects.defer("content").filter(
        store=store, source=SOURCE, file_name__startswith=FILE_PREFIX).order_by("pk").first()
    if settlement_file is None:
        month = timezone.localtime(now or timezone.now(), SHANGHAI).date().replace(day=1)
        data = bill_bytes(store, month)
        try:
            settlement_file = settlement_file_import(source=SOURCE, data=data, store=store,
                                                     file_name=f"{FILE_PREFIX}{month:%Y-%m}.csv")
        except SettlementImportError as error:  # the month was closed by hand before a rerun
            return f"Finance: account mapping {mappings_created} new; demo bill not imported ({error})."
        # Lag 0: the demo's bill is the month so far, so every payment and refund up to now is expected in it.
        period_match(store_id=store.pk, source=SOURCE, month=month, lag_days=0)
    by_reason = Counter(Difference.objects.filter(store=store, source=SOURCE, status=DifferenceStatus.OPEN)
                        .values_list("reason", flat=True))
    return (f"Finance: {STORE} fee rate {Store.objects.get(pk=store.pk).fee_rate}, account mapping "
            f"{len(ACCOUNTS)} kinds ({mappings_created} new); {settlement_file.file_name}: "
            f"{settlement_file.row_count} rows, open differences "
            + (", ".join(f"{reason} {count}" for reason, count in sorted(by_reason.items())) or "none")
            + " (/finance/differences/).")


def _fee(amount: Decimal) -> Decimal:
    return (amount * WECHAT_FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def _transaction_id(at: datetime, serial: int) -> str:
    return f"4200000{timezone.localtime(at, SHANGHAI):%Y%m%d}{serial:013d}"


def bill_rows(store: Store, month: date) -> list[_BillRow]:
    """The month's bill from the store's real paid orders and refunds, with one planted difference of each kind.

    The orders paid in the month, oldest first, take the planted roles in turn: left out of the bill (missing in
    the settlement), settled for 10.00 less (amount differs), settled in US dollars (currency differs), charged
    a fee 1.00 too high (fee differs), settled twice; the rest settle exactly. With fewer orders (the first hours
    of a month hold only the scarce-stock orders) the fee and the second settlement fall on rows already
    planted. The last refund of the month is left out (refund not settled), and a payment of an order the hub
    never saw is added (missing in hub).
    """
    start, end = month_bounds(month)
    orders = list(Order.objects.filter(store=store, paid_at__gte=start, paid_at__lt=end,
                                       payment_snapshots__event="payment").distinct().order_by("paid_at", "pk"))
    refunds = list(Refund.objects.filter(order__store=store, status=RefundStatus.CONFIRMED,
                                         confirmed_at__gte=start, confirmed_at__lt=end)
                   .select_related("order").order_by("confirmed_at", "pk"))
    rows: list[_BillRow] = []

    def payment(at: datetime, out_trade_no: str, amount: Decimal, *, currency: str = "CNY") -> _BillRow:
        row = _BillRow(at, _transaction_id(at, len(rows) + 1), out_trade_no, "SUCCESS", amount, _fee(amount),
                       currency)
        rows.append(row)
        return row

    # orders[0] is the one missing in the settlement: no row names it.
    for position, order in enumerate(orders[1:], start=1):
        paid = order.payment_snapshots.filter(event="payment").order_by("-pk")[0].paid_amount
        if position == 1:
            payment(order.paid_at, order.number, paid - Decimal("10.00"))
        elif position == 2:
            payment(order.paid_at, order.number, (paid / CNY_PER_USD).quantize(CENT), currency="USD")
        else:
            payment(order.paid_at, order.number, paid)
    if rows:
        fee_row = rows[2] if len(rows) > 2 else rows[0]
        fee_row.fee += Decimal("1.00")
        first = rows[3] if len(rows) > 3 else rows[-1]
        # The same payment again under another transaction id, as a provider's double booking shows.
        again = payment(first.at, first.out_trade_no, first.amount, currency=first.currency)
        again.fee = first.fee
    for index, refund in enumerate(refunds[:-1], start=1):
        local_day = timezone.localtime(refund.confirmed_at, SHANGHAI)
        rows.append(_BillRow(refund.confirmed_at, _transaction_id(refund.order.paid_at or refund.confirmed_at,
                                                                  len(rows) + 1),
                             refund.order.number, "REFUND", refund.amount, _fee(refund.amount),
                             refund_id=f"50300{local_day:%Y%m%d}{len(rows) + 1:013d}",
                             out_refund_no=f"{refund.order.number}-R{index}"))
    payment(max([row.at for row in rows], default=start), f"SO9{month:%y%m}00001", Decimal("88.00"))
    return sorted(rows, key=lambda row: (row.at, row.transaction_id))


def bill_bytes(store: Store, month: date) -> bytes:
    """The bill as WeChat Pay writes it: every value behind a backtick, a summary block at the end."""
    rows = bill_rows(store, month)

    def cell(value) -> str:
        return f"`{value}"

    lines = [HEADER]
    for number, row in enumerate(rows, start=1):
        is_refund = row.status == "REFUND"
        fee = -row.fee if is_refund else row.fee
        lines.append(",".join(cell(value) for value in (
            timezone.localtime(row.at, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"), APP_ID, MCH_ID, "0", "",
            row.transaction_id, row.out_trade_no, f"oDemo{number:06d}", "JSAPI", row.status, "OTHERS",
            row.currency, "0.00" if is_refund else f"{row.amount:.2f}", "0.00",
            row.refund_id or "0", row.out_refund_no or "0", f"{row.amount:.2f}" if is_refund else "0.00", "0.00",
            "ORIGINAL" if is_refund else "", "SUCCESS" if is_refund else "", "演示商品", "",
            f"{fee:.5f}", "0.60%", "0.00" if is_refund else f"{row.amount:.2f}",
            f"{row.amount:.2f}" if is_refund else "0.00", "")))
    sales = [row for row in rows if row.status == "SUCCESS"]
    refunded = [row for row in rows if row.status == "REFUND"]
    lines.append(SUMMARY_HEADER)
    lines.append(",".join(cell(value) for value in (
        len(rows), f"{sum((r.amount for r in sales), Decimal(0)):.2f}", f"{sum((r.amount for r in refunded), Decimal(0)):.2f}",
        "0.00", f"{sum((r.fee for r in sales), Decimal(0)) - sum((r.fee for r in refunded), Decimal(0)):.5f}",
        f"{sum((r.amount for r in sales), Decimal(0)):.2f}", f"{sum((r.amount for r in refunded), Decimal(0)):.2f}")))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")

