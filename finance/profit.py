"""Per-order profit: paid less platform fees, shipping, refunds and cost of goods, in the order's own currency.

Each part says where it came from:

- fees: the order's settlement rows when the store's imported bills have any (the sale rows' fee plus the fee and
  commission rows, found by payment id, platform order id or our order number like reconciliation does), else
  the fee the platform reported with the order, else the store's fee rate × paid; with none of these the fee is
  unknown;
- shipping: the carrier's cost of the order's shipped parcels; a parcel merged from several orders is shared by
  each order's part of its units;
- refunds: the order's refunds paid out (confirmed), in the order's currency;
- cost of goods: Σ unit cost × units over the shipped lines, the unit cost being the SKU's as it was when the
  parcel shipped (ShipmentLine.unit_cost, recorded by fulfillment when it ships), so changing a SKU's cost later
  does not change the profit of orders already shipped. A shipped line without a recorded cost (shipped before
  costs were recorded, or the SKU had no cost then) falls back to the SKU's cost today and the source says so;
  with neither the cost is unknown.

A part that is not known counts as nothing and makes the profit partial: the page and the export say so rather
than show a made-up figure. Amounts are never converted: totals are per currency (profit_totals_by_currency).

The parts are annotations of one query over the orders (subqueries per part), so an export of many orders costs
one query, not one per order; order_profit is the same query for one order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import IO

from django.db.models import (
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextChoices,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from finance.matching import month_bounds
from finance.models import SettlementFileStatus, SettlementRow
from finance.readers.base import RowKind
from fulfillment.models import ShipmentLine, ShipmentStatus
from orders.models import Order, Store

ZERO = Decimal("0")
CENT = Decimal("0.01")
MONEY = DecimalField(max_digits=14, decimal_places=2)
# A parcel's share before rounding: carrier cost × units ÷ the parcel's units.
SHARE = DecimalField(max_digits=20, decimal_places=6)
# aftersales.models.RefundStatus.CONFIRMED: finance sits on the same layer as aftersales and does not import it
# (tests/test_architecture.py), so refunds are read through the order's reverse relation.
REFUND_CONFIRMED = "confirmed"
# The settlement rows that carry what the provider kept of a sale.
FEE_ROW_KINDS = (RowKind.SALE.value, RowKind.FEE.value, RowKind.COMMISSION.value)


class FeeSource(TextChoices):
    SETTLEMENT = "settlement", gettext_lazy("From the settlement")
    ORDER = "order", gettext_lazy("Reported by the platform with the order")
    FEE_RATE = "fee_rate", gettext_lazy("The store's fee rate × paid")
    UNKNOWN = "unknown", gettext_lazy("Not known")


class ShippingSource(TextChoices):
    CARRIER_COST = "carrier_cost", gettext_lazy("The carrier's cost of the shipped parcels")
    NOT_SHIPPED = "not_shipped", gettext_lazy("No parcel shipped yet")
    UNKNOWN = "unknown", gettext_lazy("A shipped parcel has no carrier cost")


class CostSource(TextChoices):
    UNIT_COST = "unit_cost", gettext_lazy("Unit cost when shipped × units shipped")
    # Some shipped line has no cost recorded but its SKU has one now: that part is today's cost.
    UNIT_COST_TODAY = "unit_cost_today", gettext_lazy(
        "Unit cost today, for parcels shipped before costs were recorded")
    NOT_SHIPPED = "not_shipped", gettext_lazy("No goods shipped yet")
    UNKNOWN = "unknown", gettext_lazy("A shipped SKU has no unit cost")


@dataclass(frozen=True)
class OrderProfit:
    """One order's profit and its parts, in ``currency``. A part that is not known is counted as zero in
    ``profit`` and listed in ``missing``; ``complete`` is False then."""

    order_id: int
    number: str
    store_name: str
    currency: str
    paid: Decimal
    fees: Decimal
    fees_source: FeeSource
    shipping: Decimal
    shipping_source: ShippingSource
    refunds: Decimal
    cost_of_goods: Decimal
    cost_source: CostSource
    profit: Decimal

    @property
    def missing(self) -> list[str]:
        """The parts that are not known, in words."""
        parts = []
        if self.fees_source == FeeSource.UNKNOWN:
            parts.append(_("platform fees"))
        if self.shipping_source == ShippingSource.UNKNOWN:
            parts.append(_("shipping cost"))
        if self.cost_source == CostSource.UNKNOWN:
            parts.append(_("cost of goods"))
        return parts

    @property
    def missing_text(self) -> str:
        return pgettext("list separator", ", ").join(self.missing)

    @property
    def complete(self) -> bool:
        return not self.missing


def _settlement_fee() -> Subquery:
    """The provider's fees on the order in its store's imported bills: the sale rows' fee and the fee and
    commission rows, in the order's currency; NULL when the bills have no row of the order."""
    rows = (SettlementRow.objects
            .filter(file__store_id=OuterRef("store_id"), file__status=SettlementFileStatus.IMPORTED,
                    currency=OuterRef("currency"), kind__in=FEE_ROW_KINDS)
            # An empty id on both sides is no match; our order number is never empty.
            .filter((Q(payment_id=OuterRef("payment_id")) & ~Q(payment_id=""))
                    | (Q(platform_order_id=OuterRef("platform_order_id")) & ~Q(platform_order_id=""))
                    | Q(merchant_order_no=OuterRef("number"))))
    return Subquery(rows.order_by().values("file__store_id").annotate(total=Sum("fee")).values("total")[:1],
                    output_field=MONEY)


def _shipped_lines() -> QuerySet[ShipmentLine]:
    """The order's units in parcels that left the warehouse (a parcel cancelled after all does not count)."""
    return (ShipmentLine.objects.filter(order_id=OuterRef("pk"), shipment__shipped_at__isnull=False)
            .exclude(shipment__status=ShipmentStatus.CANCELLED))


def _shipping_share() -> Subquery:
    """The carrier's cost of the order's shipped parcels, each shared by the order's part of its units (a merged
    parcel carries several orders)."""
    parcel_units = Subquery(ShipmentLine.objects.filter(shipment_id=OuterRef("shipment_id")).order_by()
                            .values("shipment_id").annotate(units=Sum("quantity")).values("units")[:1])
    lines = (_shipped_lines().filter(shipment__carrier_cost__isnull=False)
             .annotate(parcel_units=parcel_units)
             .annotate(share=ExpressionWrapper(F("shipment__carrier_cost") * F("quantity") / F("parcel_units"),
                                               output_field=SHARE)))
    return Subquery(lines.order_by().values("order_id").annotate(total=Sum("share")).values("total")[:1],
                    output_field=SHARE)


def _cost_of_goods() -> Subquery:
    """The unit cost recorded when each line shipped (else today's SKU cost) × the units, over the lines whose
    cost is known either way."""
    lines = (_shipped_lines().filter(Q(unit_cost__isnull=False) | Q(sku__unit_cost__isnull=False))
             .annotate(cost=ExpressionWrapper(Coalesce("unit_cost", "sku__unit_cost") * F("quantity"),
                                              output_field=MONEY)))
    return Subquery(lines.order_by().values("order_id").annotate(total=Sum("cost")).values("total")[:1],
                    output_field=MONEY)


def _refunds_paid_out() -> Subquery:
    """The order's confirmed refunds in its own currency (a refund in another currency is not subtracted)."""
    orders = (Order.objects.filter(pk=OuterRef("pk")).order_by()
              .annotate(total=Sum("refunds__amount", filter=Q(refunds__status=REFUND_CONFIRMED,
                                                              refunds__currency=F("currency"))))
              .values("total")[:1])
    return Subquery(orders, output_field=MONEY)


def _profit_queryset(queryset: QuerySet[Order]) -> QuerySet:
    return queryset.annotate(
        settlement_fee=_settlement_fee(),
        shipping_share=_shipping_share(),
        shipping_unknown=Exists(_shipped_lines().filter(shipment__carrier_cost__isnull=True)),
        shipped=Exists(_shipped_lines()),
        goods_cost=_cost_of_goods(),
        cost_unknown=Exists(_shipped_lines().filter(unit_cost__isnull=True, sku__unit_cost__isnull=True)),
        cost_today=Exists(_shipped_lines().filter(unit_cost__isnull=True, sku__unit_cost__isnull=False)),
        refunds_total=_refunds_paid_out(),
    ).values("pk", "number", "store__name", "currency", "paid_amount", "platform_fee", "store__fee_rate",
             "settlement_fee", "shipping_share", "shipping_unknown", "shipped", "goods_cost", "cost_unknown",
             "cost_today", "refunds_total")


def _cents(amount: Decimal | None) -> Decimal:
    return (amount or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def _profit_of(row: dict) -> OrderProfit:
    paid = _cents(row["paid_amount"])
    if row["settlement_fee"] is not None:
        fees, fees_source = _cents(row["settlement_fee"]), FeeSource.SETTLEMENT
    elif row["platform_fee"] is not None:
        fees, fees_source = _cents(row["platform_fee"]), FeeSource.ORDER
    elif row["store__fee_rate"] is not None:
        fees, fees_source = _cents(paid * row["store__fee_rate"]), FeeSource.FEE_RATE
    else:
        fees, fees_source = ZERO, FeeSource.UNKNOWN
    if not row["shipped"]:
        shipping_source, cost_source = ShippingSource.NOT_SHIPPED, CostSource.NOT_SHIPPED
    else:
        shipping_source = ShippingSource.UNKNOWN if row["shipping_unknown"] else ShippingSource.CARRIER_COST
        if row["cost_unknown"]:
            cost_source = CostSource.UNKNOWN
        elif row["cost_today"]:
            cost_source = CostSource.UNIT_COST_TODAY
        else:
            cost_source = CostSource.UNIT_COST
    shipping = _cents(row["shipping_share"])
    refunds = _cents(row["refunds_total"])
    cost_of_goods = _cents(row["goods_cost"])
    return OrderProfit(
        order_id=row["pk"], number=row["number"], store_name=row["store__name"], currency=row["currency"],
        paid=paid, fees=fees, fees_source=fees_source, shipping=shipping, shipping_source=shipping_source,
        refunds=refunds, cost_of_goods=cost_of_goods, cost_source=cost_source,
        profit=paid - fees - shipping - refunds - cost_of_goods)


def orders_profit_rows(queryset: QuerySet[Order]) -> Iterator[OrderProfit]:
    """The profit of each order of ``queryset``, in its order, from one query (streamed in chunks)."""
    for row in _profit_queryset(queryset).iterator(chunk_size=2000):
        yield _profit_of(row)


def orders_paid_in_month(*, month: date, store: Store | None = None) -> QuerySet[Order]:
    """The orders paid in the month (Beijing time, as matching counts it), of one store or all, in the order they
    were paid: the month's profit export."""
    start, end = month_bounds(month)
    orders = Order.objects.filter(paid_at__gte=start, paid_at__lt=end).order_by("paid_at", "id")
    if store is not None:
        orders = orders.filter(store=store)
    return orders


def order_profit(order: Order) -> OrderProfit:
    """One order's profit: the export's query for that order alone, so the page and the export agree."""
    return next(orders_profit_rows(Order.objects.filter(pk=order.pk)))


def profit_totals_by_currency(profits: Iterable[OrderProfit]) -> dict[str, dict[str, Decimal | int]]:
    """Sums of the parts per currency, never across currencies; ``partial`` counts the orders with a part
    missing."""
    totals: dict[str, dict[str, Decimal | int]] = {}
    for item in profits:
        line = totals.setdefault(item.currency, {"orders": 0, "partial": 0, "paid": ZERO, "fees": ZERO,
                                                 "shipping": ZERO, "refunds": ZERO, "cost_of_goods": ZERO,
                                                 "profit": ZERO})
        line["orders"] += 1
        line["partial"] += 0 if item.complete else 1
        for name in ("paid", "fees", "shipping", "refunds", "cost_of_goods", "profit"):
            line[name] += getattr(item, name)
    return totals


def profit_csv_header() -> list[str]:
    return [_("Order number"), _("Store"), _("Currency"), pgettext("profit", "Paid"), _("Platform fees"),
            _("Shipping cost"), pgettext("profit", "Refunds"), _("Cost of goods"), _("Profit"), _("Fees from"),
            pgettext("profit", "Complete")]


def profit_csv_row(item: OrderProfit) -> list[str]:
    return [item.number, item.store_name, item.currency, str(item.paid), str(item.fees), str(item.shipping),
            str(item.refunds), str(item.cost_of_goods), str(item.profit), str(item.fees_source.label),
            _("yes") if item.complete else _("partial: %(parts)s") % {"parts": item.missing_text}]


def orders_profit_csv(queryset: QuerySet[Order], out: IO[str]) -> int:
    """Write the orders' profit as CSV to ``out`` (a header, then one line per order); the number of orders."""
    writer = csv.writer(out)
    writer.writerow(profit_csv_header())
    count = 0
    for item in orders_profit_rows(queryset):
        writer.writerow(profit_csv_row(item))
        count += 1
    return count
