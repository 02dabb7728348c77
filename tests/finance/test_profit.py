"""Per-order profit: paid less settlement fees, the carrier's cost (shared in a merged parcel), refunds paid out and
cost of goods at the unit cost recorded when the parcel shipped; the fallbacks; an unknown cost marks the profit
partial; only finance and managers see it."""

import csv
import hashlib
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from aftersales.models import Refund
from finance.models import SettlementFile, SettlementRow
from finance.profit import (
    CostSource,
    FeeSource,
    ShippingSource,
    order_profit,
    orders_paid_in_month,
    orders_profit_csv,
    orders_profit_rows,
    profit_totals_by_currency,
)
from finance.readers.base import RowKind, SettlementSource
from fulfillment.models import Shipment, ShipmentLine
from fulfillment.services.moves import shipment_lines_record_unit_cost
from orders.models import Order, Platform, Store
from orders.services import BuyerInput, LineInput
from tests.aftersales.helpers import ship_order
from tests.fulfillment.helpers import parcel_of, ship_parcel

pytestmark = pytest.mark.django_db


def settlement(store, rows: list[dict], *, name: str = "bill.csv") -> SettlementFile:
    content = f"{name}{rows!r}".encode()
    file = SettlementFile.objects.create(source=SettlementSource.ALIPAY, store=store, file_name=name,
                                         sha256=hashlib.sha256(content).hexdigest(), content=content,
                                         status="imported", row_count=len(rows))
    SettlementRow.objects.bulk_create([
        SettlementRow(file=file, source=SettlementSource.ALIPAY, external_row_id=f"{name}-{index}",
                      line_no=index + 2, kind=row.get("kind", RowKind.SALE),
                      platform_order_id=row.get("platform_order_id", ""), payment_id=row.get("payment_id", ""),
                      merchant_order_no=row.get("merchant_order_no", ""), gross=row.get("gross", Decimal("0")),
                      fee=row["fee"], net=row.get("gross", Decimal("0")) - row["fee"],
                      currency=row.get("currency", "CNY"), occurred_at=timezone.now())
        for index, row in enumerate(rows)])
    return file


def shipped(order: Order, *, carrier_cost: str | None) -> Order:
    order = ship_order(order)
    Shipment.objects.filter(lines__order=order).update(carrier_cost=carrier_cost)
    return order


@pytest.fixture
def costed(skus):
    skus["TEA-LJ-250G"].unit_cost = Decimal("80.00")
    skus["CUP-CER-350"].unit_cost = Decimal("15.50")
    for sku in skus.values():
        sku.save(update_fields=["unit_cost"])
    return skus


def test_a_shipped_order_with_fees_carrier_cost_refund_and_unit_cost_has_the_right_profit(
        make_order, taobao_store, costed):
    order = shipped(make_order(), carrier_cost="12.00")
    paid = order.paid_amount
    assert paid == Decimal("420.90")
    settlement(taobao_store, [
        {"platform_order_id": order.platform_order_id, "gross": paid, "fee": Decimal("2.53")},
        {"kind": RowKind.COMMISSION, "merchant_order_no": order.number, "fee": Decimal("5.00")},
        # Not fees of this order's sale: a refund row, a row in another currency.
        {"kind": RowKind.REFUND, "platform_order_id": order.platform_order_id, "gross": Decimal("-39.90"),
         "fee": Decimal("-0.24")},
        {"platform_order_id": order.platform_order_id, "gross": paid, "fee": Decimal("9.99"), "currency": "USD"},
    ])
    # The same platform order id in another store's bill is another order.
    other = Store.objects.create(platform=Platform.MANUAL, code="other", name="别的店")
    settlement(other, [{"platform_order_id": order.platform_order_id, "gross": paid, "fee": Decimal("50")}],
               name="other.csv")
    Refund.objects.create(order=order, amount=Decimal("39.90"), currency="CNY", method="platform",
                          status="confirmed", confirmed_at=timezone.now())
    Refund.objects.create(order=order, amount=Decimal("10.00"), currency="CNY", method="platform", status="pending")

    profit = order_profit(order)

    assert (profit.paid, profit.fees, profit.shipping, profit.refunds, profit.cost_of_goods) == (
        Decimal("420.90"), Decimal("7.53"), Decimal("12.00"), Decimal("39.90"), Decimal("175.50"))
    assert profit.profit == Decimal("185.97")  # 420.90 − 7.53 − 12.00 − 39.90 − 175.50
    assert (profit.fees_source, profit.shipping_source, profit.cost_source) == (
        FeeSource.SETTLEMENT, ShippingSource.CARRIER_COST, CostSource.UNIT_COST)
    assert profit.complete and profit.missing == []


def test_a_merged_parcels_carrier_cost_is_shared_by_each_orders_units(make_order, costed):
    first, second = make_order(), make_order(
        lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("188.00"))])
    parcel = Shipment.objects.filter(lines__order=first).distinct().get()
    assert Shipment.objects.filter(lines__order=second).distinct().get() == parcel
    ship_order(first)
    Shipment.objects.filter(pk=parcel.pk).update(carrier_cost=Decimal("10.00"))

    rows = {row.order_id: row for row in orders_profit_rows(Order.objects.filter(pk__in=[first.pk, second.pk]))}

    # 3 of the parcel's 4 units are the first order's.
    assert rows[first.pk].shipping == Decimal("7.50") and rows[second.pk].shipping == Decimal("2.50")
    assert rows[second.pk].cost_of_goods == Decimal("80.00")


def test_the_fee_falls_back_to_the_order_then_the_store_rate_else_it_is_unknown(make_order, taobao_store, costed):
    order = make_order()
    assert order_profit(order).fees_source == FeeSource.UNKNOWN
    assert not order_profit(order).complete and order_profit(order).profit == order.paid_amount

    taobao_store.fee_rate = Decimal("0.0060")
    taobao_store.save(update_fields=["fee_rate"])
    profit = order_profit(order)
    assert (profit.fees_source, profit.fees) == (FeeSource.FEE_RATE, Decimal("2.53"))  # 420.90 × 0.6%

    Order.objects.filter(pk=order.pk).update(platform_fee=Decimal("3.00"))
    profit = order_profit(order)
    assert (profit.fees_source, profit.fees) == (FeeSource.ORDER, Decimal("3.00"))
    # Nothing shipped yet: no shipping cost and no cost of goods, and that is complete.
    assert (profit.shipping_source, profit.cost_source, profit.complete) == (
        ShippingSource.NOT_SHIPPED, CostSource.NOT_SHIPPED, True)


def test_an_unknown_unit_cost_or_carrier_cost_marks_the_profit_partial(make_order, taobao_store, skus):
    taobao_store.fee_rate = Decimal("0.0060")
    taobao_store.save(update_fields=["fee_rate"])
    skus["TEA-LJ-250G"].unit_cost = Decimal("80.00")
    skus["TEA-LJ-250G"].save(update_fields=["unit_cost"])
    order = shipped(make_order(), carrier_cost=None)

    profit = order_profit(order)

    assert (profit.cost_source, profit.shipping_source) == (CostSource.UNKNOWN, ShippingSource.UNKNOWN)
    assert not profit.complete and len(profit.missing) == 2
    # The known part is still counted: the tea, not the cup.
    assert profit.cost_of_goods == Decimal("160.00") and profit.shipping == Decimal("0.00")


def test_the_export_is_one_query_and_totals_stay_per_currency(make_order, taobao_store, costed):
    taobao_store.fee_rate = Decimal("0.0060")
    taobao_store.save(update_fields=["fee_rate"])
    orders = [make_order(buyer=BuyerInput(id=f"buyer-{n}", name="买家")) for n in range(3)]
    Order.objects.filter(pk=orders[2].pk).update(currency="USD")

    out = io.StringIO()
    with CaptureQueriesContext(connection) as queries:
        count = orders_profit_csv(Order.objects.filter(pk__in=[o.pk for o in orders]).order_by("pk"), out)

    assert count == 3 and len(queries) == 1
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert len(lines) == 4 and [line[0] for line in lines[1:]] == [o.number for o in orders]
    assert [line[2] for line in lines[1:]] == ["CNY", "CNY", "USD"]
    totals = profit_totals_by_currency(orders_profit_rows(Order.objects.filter(pk__in=[o.pk for o in orders])))
    assert set(totals) == {"CNY", "USD"}
    assert totals["CNY"]["orders"] == 2 and totals["CNY"]["paid"] == 2 * orders[0].paid_amount
    assert totals["USD"]["paid"] == orders[2].paid_amount


@pytest.mark.parametrize("role, sees", [("finance", True), ("manager", True), ("admin", True),
                                        ("warehouse", False), ("customer_service", False)])
def test_only_finance_and_managers_see_the_profit_card(role_users, make_order, role, sees):
    order = make_order()
    client = Client()
    client.force_login(role_users[role])

    page = client.get(f"/orders/{order.pk}/")

    assert page.status_code == 200
    assert ('data-section="profit"' in page.content.decode()) is sees


def test_the_card_says_partial_in_chinese(role_users, make_order):
    order = make_order()
    client = Client()
    client.force_login(role_users["finance"])

    page = client.get(f"/orders/{order.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert 'data-field="profit-partial"' in page and 'data-part="fees"' in page


# --- Cost of goods at the unit cost recorded when the parcel shipped -------------------------------------------

def set_cost(sku, cost: str | None) -> None:
    sku.unit_cost = None if cost is None else Decimal(cost)
    sku.save(update_fields=["unit_cost"])


def test_shipping_records_each_lines_unit_cost_in_one_update(make_order, costed):
    parcel = parcel_of(make_order())
    assert set(parcel.lines.values_list("unit_cost", flat=True)) == {None}  # nothing recorded before it ships

    with CaptureQueriesContext(connection) as queries:
        ship_parcel(parcel)

    costs = {line.sku.code: line.unit_cost for line in parcel.lines.select_related("sku")}
    assert costs == {"TEA-LJ-250G": Decimal("80.00"), "CUP-CER-350": Decimal("15.50")}
    # The ship path writes the costs set-based: one UPDATE of the parcel's lines, not one per line.
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].startswith('UPDATE "fulfillment_shipmentline"') and '"unit_cost"' in q["sql"]]
    assert len(writes) == 1 and "inventory_sku" in writes[0]


def test_changing_the_sku_cost_after_shipping_does_not_change_the_shipped_orders_profit(make_order, taobao_store,
                                                                                        costed):
    taobao_store.fee_rate = Decimal("0.0060")
    taobao_store.save(update_fields=["fee_rate"])
    order = shipped(make_order(), carrier_cost="12.00")
    before = order_profit(order)
    assert (before.cost_of_goods, before.cost_source) == (Decimal("175.50"), CostSource.UNIT_COST)  # 2×80 + 15.50

    set_cost(costed["TEA-LJ-250G"], "95.00")
    set_cost(costed["CUP-CER-350"], None)  # even a cost removed later: it was known when the parcel left

    after = order_profit(order)
    assert after == before and after.complete and after.profit == Decimal("230.87")  # 420.90 − 2.53 − 12 − 175.50
    # An order shipped after the change costs the new price.
    later = shipped(make_order(buyer=BuyerInput(id="buyer-later", name="买家")), carrier_cost="12.00")
    assert (order_profit(later).cost_of_goods, order_profit(later).cost_source) == (
        Decimal("190.00"), CostSource.UNKNOWN)  # 2×95; the cup has no cost now


def test_a_line_shipped_before_costs_were_recorded_falls_back_to_todays_cost_and_says_so(make_order, taobao_store,
                                                                                          costed):
    taobao_store.fee_rate = Decimal("0.0060")
    taobao_store.save(update_fields=["fee_rate"])
    order = shipped(make_order(), carrier_cost="12.00")
    # As a parcel shipped before the column existed: no cost on its lines.
    assert ShipmentLine.objects.filter(order=order, sku__code="CUP-CER-350").update(unit_cost=None) == 1
    set_cost(costed["CUP-CER-350"], "20.00")
    set_cost(costed["TEA-LJ-250G"], "99.00")  # recorded at 80: stays 80

    profit = order_profit(order)

    assert profit.cost_of_goods == Decimal("180.00")  # 2 × 80 recorded + 1 × 20 today
    assert profit.cost_source == CostSource.UNIT_COST_TODAY and profit.complete
    with translation.override("en"):
        assert str(profit.cost_source.label) == "Unit cost today, for parcels shipped before costs were recorded"

    # Neither a recorded cost nor one today: unknown, the profit partial, the known part still counted.
    set_cost(costed["CUP-CER-350"], None)
    profit = order_profit(order)
    assert (profit.cost_of_goods, profit.cost_source, profit.complete) == (
        Decimal("160.00"), CostSource.UNKNOWN, False)


def test_recording_costs_for_a_batch_of_parcels_is_one_query_and_keeps_costs_already_recorded(make_order, costed):
    orders = [make_order(buyer=BuyerInput(id=f"batch-{n}", name="买家"),
                         lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal("188.00")),
                                LineInput(sku_code="CUP-CER-350", quantity=2, unit_price=Decimal("39.90")),
                                LineInput(sku_code="GIFT-BAG", quantity=1, unit_price=Decimal("0.00"))])
              for n in range(5)]
    parcel_ids = sorted(set(ShipmentLine.objects.filter(order__in=orders).values_list("shipment_id", flat=True)))
    lines = ShipmentLine.objects.filter(shipment_id__in=parcel_ids)
    assert len(parcel_ids) == 5 and lines.count() == 15
    # One line already has its cost (recorded when it shipped): it is never overwritten.
    kept = lines.get(shipment_id=parcel_ids[0], sku__code="TEA-LJ-250G")
    ShipmentLine.objects.filter(pk=kept.pk).update(unit_cost=Decimal("70.00"))
    set_cost(costed["GIFT-BAG"], "1.20")

    with CaptureQueriesContext(connection) as one_parcel:
        assert shipment_lines_record_unit_cost(shipment_ids=parcel_ids[-1:]) == 3
    with CaptureQueriesContext(connection) as batch:
        assert shipment_lines_record_unit_cost(shipment_ids=parcel_ids) == 11  # 15 − 3 done − 1 kept

    assert len(one_parcel) == len(batch) == 1
    by_sku: dict[str, set] = {}
    for code, cost in lines.values_list("sku__code", "unit_cost"):
        by_sku.setdefault(code, set()).add(cost)
    assert by_sku == {"TEA-LJ-250G": {Decimal("70.00"), Decimal("80.00")}, "CUP-CER-350": {Decimal("15.50")},
                      "GIFT-BAG": {Decimal("1.20")}}
    assert ShipmentLine.objects.get(pk=kept.pk).unit_cost == Decimal("70.00")
    assert shipment_lines_record_unit_cost(shipment_ids=parcel_ids) == 0  # all recorded: nothing rewritten


def test_the_months_export_takes_the_orders_paid_in_that_beijing_month(make_order, taobao_store, costed):
    other = Store.objects.create(platform=Platform.MANUAL, code="other", name="别的店")
    shanghai = ZoneInfo("Asia/Shanghai")
    inside, edge, before, elsewhere = (make_order(buyer=BuyerInput(id=f"m-{n}", name="买家")) for n in range(4))
    paid = {inside: datetime(2026, 11, 15, 12, tzinfo=shanghai),
            edge: datetime(2026, 11, 30, 23, 59, tzinfo=shanghai),  # still November in Beijing, not in UTC
            before: datetime(2026, 10, 31, 23, 59, tzinfo=shanghai),
            elsewhere: datetime(2026, 11, 10, tzinfo=shanghai)}
    for order, at in paid.items():
        Order.objects.filter(pk=order.pk).update(paid_at=at)
    Order.objects.filter(pk=elsewhere.pk).update(store=other)

    november = date(2026, 11, 1)
    assert [o.pk for o in orders_paid_in_month(month=november, store=taobao_store)] == [inside.pk, edge.pk]
    assert [o.pk for o in orders_paid_in_month(month=november)] == [elsewhere.pk, inside.pk, edge.pk]
