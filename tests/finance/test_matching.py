"""Reconciliation of a month on PostgreSQL: one planted difference of every kind is found with its reason, nothing
else is flagged, a re-run finds the same, and a resolved difference is not raised again."""

import hashlib
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.models import Refund
from finance.matching import month_bounds, payouts_match, period_match
from finance.models import Difference, DifferenceReason, DifferenceStatus, SettlementFile, SettlementRow
from finance.readers.base import RowKind, SettlementSource

pytestmark = pytest.mark.django_db
RATE = Decimal("0.006")


def settlement(store, rows: list[dict]) -> SettlementFile:
    content = repr(rows).encode()
    file = SettlementFile.objects.create(source=SettlementSource.ALIPAY, store=store, file_name="bill.csv",
                                         sha256=hashlib.sha256(content).hexdigest(), content=content,
                                         status="imported", row_count=len(rows))
    now = timezone.now()
    SettlementRow.objects.bulk_create([
        SettlementRow(file=file, source=SettlementSource.ALIPAY, external_row_id=f"R{index}", line_no=index + 2,
                      kind=row.get("kind", RowKind.SALE), platform_order_id=row.get("platform_order_id", ""),
                      payment_id=row.get("payment_id", ""), merchant_order_no=row.get("merchant_order_no", ""),
                      gross=row["gross"], fee=row.get("fee", (row["gross"] * RATE).quantize(Decimal("0.01"))),
                      net=row["gross"], currency=row.get("currency", "CNY"), occurred_at=row.get("at", now))
        for index, row in enumerate(rows)])
    return file


def test_every_planted_difference_is_found_and_nothing_else(make_order, taobao_store):
    orders = {name: make_order(platform_order_id=f"TB-{name}") for name in "ABCDEFGH"}
    paid = {name: order.paid_amount for name, order in orders.items()}
    settlement(taobao_store, [
        {"platform_order_id": "TB-A", "gross": paid["A"]},  # fine
        {"merchant_order_no": orders["H"].number, "gross": paid["H"]},  # fine, by our own order number
        {"platform_order_id": "TB-B", "gross": paid["B"] - Decimal("5.00")},  # amount differs
        {"platform_order_id": "TB-C", "gross": paid["C"], "fee": Decimal("9.99")},  # fee differs
        {"platform_order_id": "TB-NOPE", "gross": Decimal("12.00")},  # missing in the hub
        {"platform_order_id": "TB-F", "gross": paid["F"]},
        {"platform_order_id": "TB-F", "gross": paid["F"]},  # settled twice (another provider row id)
        {"platform_order_id": "TB-G", "gross": paid["G"], "currency": "USD"},  # currency differs
        {"platform_order_id": "TB-E", "gross": paid["E"]},
        # D: no row at all: missing in the settlement.
    ])
    Refund.objects.create(order=orders["E"], amount=Decimal("20.00"), currency="CNY", method="platform",
                          status="confirmed", confirmed_at=timezone.now())  # refund not settled
    month = timezone.localdate().replace(day=1)
    summary = period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY, month=month, fee_rate=RATE,
                           lag_days=0)
    found = sorted((d.reason, d.order.platform_order_id if d.order else d.settlement_row.platform_order_id)
                   for d in Difference.objects.select_related("order", "settlement_row"))
    assert found == sorted([
        (DifferenceReason.AMOUNT_DIFFERS, "TB-B"), (DifferenceReason.FEE_DIFFERS, "TB-C"),
        (DifferenceReason.MISSING_IN_HUB, "TB-NOPE"), (DifferenceReason.SETTLED_TWICE, "TB-F"),
        (DifferenceReason.CURRENCY_DIFFERS, "TB-G"), (DifferenceReason.MISSING_IN_SETTLEMENT, "TB-D"),
        (DifferenceReason.REFUND_NOT_SETTLED, "TB-E"),
    ])
    amount = Difference.objects.get(reason=DifferenceReason.AMOUNT_DIFFERS)
    assert (amount.expected_amount, amount.actual_amount) == (paid["B"], paid["B"] - Decimal("5.00"))
    assert summary.rows == 9 and summary.matched == 8 and summary.differences == 7

    # A re-check finds the same; a resolved difference is not raised again.
    again = period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY, month=month, fee_rate=RATE,
                         lag_days=0)
    assert again.differences_by_reason == summary.differences_by_reason
    resolved = Difference.objects.get(reason=DifferenceReason.MISSING_IN_HUB)
    resolved.resolve()
    resolved.resolution_note = "another store's order"
    resolved.save()
    third = period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY, month=month, fee_rate=RATE,
                         lag_days=0)
    assert DifferenceReason.MISSING_IN_HUB not in third.differences_by_reason
    assert Difference.objects.filter(status=DifferenceStatus.RESOLVED).count() == 1
    assert Difference.objects.count() == 7


def test_rows_outside_the_month_and_payments_in_the_lag_are_left_for_later(make_order, taobao_store):
    order = make_order(platform_order_id="TB-LATE")
    month = timezone.localdate().replace(day=1)
    start, _end = month_bounds(month)
    settlement(taobao_store, [{"platform_order_id": "TB-OLD", "gross": Decimal("9.00"),
                               "at": start - timezone.timedelta(seconds=1)}])
    summary = period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY, month=month, fee_rate=RATE,
                           lag_days=40)
    assert summary.rows == 0 and summary.differences == 0
    assert order.paid_at is not None


def test_payouts_pair_with_bank_lines_by_amount_within_the_window(taobao_store):
    month = timezone.localdate().replace(day=1)
    start, _end = month_bounds(month)
    day = timezone.timedelta(days=1)

    def rows(file, items):
        SettlementRow.objects.bulk_create([
            SettlementRow(file=file, source=file.source, external_row_id=f"{file.source}-{index}", line_no=index + 2,
                          kind=RowKind.PAYOUT, gross=amount, fee=Decimal("0"), net=amount, currency="CNY",
                          occurred_at=start + offset * day)
            for index, (amount, offset) in enumerate(items)])

    platform = settlement(taobao_store, [])
    rows(platform, [(Decimal("-1000.00"), 2), (Decimal("-500.00"), 9), (Decimal("-777.00"), 19)])
    content = b"bank statement"
    bank = SettlementFile.objects.create(source=SettlementSource.BANK, store=None, file_name="bank.csv",
                                         sha256=hashlib.sha256(content).hexdigest(), content=content,
                                         status="imported")
    rows(bank, [(Decimal("1000.00"), 3), (Decimal("500.00"), 24), (Decimal("333.00"), 11)])
    summary = payouts_match(month=month)
    assert (summary.payouts, summary.bank_lines, summary.matched) == (3, 3, 1)
    found = sorted((d.reason, d.settlement_row.source, abs(d.settlement_row.gross))
                   for d in Difference.objects.filter(source=SettlementSource.BANK).select_related("settlement_row"))
    assert found == sorted([
        (DifferenceReason.MISSING_IN_SETTLEMENT, SettlementSource.ALIPAY, Decimal("500.00")),
        (DifferenceReason.MISSING_IN_SETTLEMENT, SettlementSource.ALIPAY, Decimal("777.00")),
        (DifferenceReason.MISSING_IN_HUB, SettlementSource.BANK, Decimal("500.00")),
        (DifferenceReason.MISSING_IN_HUB, SettlementSource.BANK, Decimal("333.00")),
    ])
    assert payouts_match(month=month).differences_by_reason == summary.differences_by_reason


def test_a_currency_difference_states_no_amount_in_another_currency(make_order, taobao_store):
    make_order(platform_order_id="TB-USD")
    settlement(taobao_store, [{"platform_order_id": "TB-USD", "gross": Decimal("12.00"), "currency": "USD"}])
    period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY, month=timezone.localdate().replace(day=1),
                 fee_rate=None, lag_days=0)
    difference = Difference.objects.get(reason=DifferenceReason.CURRENCY_DIFFERS)
    assert (difference.expected_amount, difference.actual_amount, difference.currency) == (None, Decimal("12.00"),
                                                                                          "USD")


def test_alipay_fee_lines_that_name_the_order_count_towards_its_fee(make_order, taobao_store):
    """Alipay keeps its fees on 收费 lines of their own: the sale line carries no fee, the order's fee lines do."""
    right, wrong = make_order(platform_order_id="TB-FEE1"), make_order(platform_order_id="TB-FEE2")
    rate_fee = {order.pk: (order.paid_amount * RATE).quantize(Decimal("0.01")) for order in (right, wrong)}
    settlement(taobao_store, [
        {"platform_order_id": "TB-FEE1", "gross": right.paid_amount, "fee": Decimal("0")},
        {"platform_order_id": "TB-FEE1", "kind": RowKind.FEE, "gross": Decimal("0"), "fee": rate_fee[right.pk]},
        {"platform_order_id": "TB-FEE2", "gross": wrong.paid_amount, "fee": Decimal("0")},
        {"platform_order_id": "TB-FEE2", "kind": RowKind.COMMISSION, "gross": Decimal("0"),
         "fee": rate_fee[wrong.pk] + Decimal("1.00")},
        # A monthly service charge names no order: not "missing in the hub".
        {"kind": RowKind.FEE, "gross": Decimal("0"), "fee": Decimal("30.00")},
    ])

    summary = period_match(store_id=taobao_store.pk, source=SettlementSource.ALIPAY,
                           month=timezone.localdate().replace(day=1), fee_rate=RATE, lag_days=0)

    differences = list(Difference.objects.values_list("reason", "order_id", "expected_amount", "actual_amount"))
    assert differences == [(DifferenceReason.FEE_DIFFERS, wrong.pk, rate_fee[wrong.pk],
                            rate_fee[wrong.pk] + Decimal("1.00"))]
    assert (summary.rows, summary.matched) == (2, 2)
