"""Shopify order JSON → UnifiedOrder: the SDK sample order, the status table, and refused payloads."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import PermanentError, UnifiedAddress, UnifiedLine, UnifiedParty
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.mapping import map_shopify_order

FIXTURE = Path(__file__).parent / "fixtures" / "shopify_order.json"
SAMPLE_INSTANT = datetime(2008, 1, 10, 16, 0, 0, tzinfo=UTC)  # 2008-01-10T11:00:00-05:00


@pytest.fixture
def payload() -> dict:
    return json.loads(FIXTURE.read_text())


def test_sample_order_maps_exactly(payload):
    order = map_shopify_order(payload)

    assert order.platform_order_id == "450789469"
    assert order.display_number == "#1001"
    assert order.status == "paid"  # partially_refunded, unfulfilled, not cancelled
    assert order.refund_requested is True
    assert order.raw_status == "partially_refunded / unfulfilled"
    assert order.currency == "USD"
    assert order.total == Decimal("598.94")
    assert order.discount == Decimal("10.00")
    assert order.tax == Decimal("11.94")
    assert order.shipping == Decimal("0.00")
    assert order.created_at == SAMPLE_INSTANT
    assert order.updated_at == SAMPLE_INSTANT
    assert order.paid_at == SAMPLE_INSTANT
    for value in (order.created_at, order.updated_at, order.paid_at):
        assert value.tzinfo is UTC
    assert order.lines == [
        UnifiedLine(sku="IPOD2008GREEN", platform_sku_id="39072856", title="IPod Nano - 8gb - green", quantity=1,
                    unit_price=Decimal("199.00"), discount=Decimal("0.00"), platform_line_id="466157049"),
        UnifiedLine(sku="IPOD2008RED", platform_sku_id="49148385", title="IPod Nano - 8gb - red", quantity=1,
                    unit_price=Decimal("199.00"), discount=Decimal("0.00"), platform_line_id="518995019"),
        UnifiedLine(sku="IPOD2008BLACK", platform_sku_id="457924702", title="IPod Nano - 8gb - black", quantity=1,
                    unit_price=Decimal("199.00"), discount=Decimal("0.00"), platform_line_id="703073504"),
    ]
    assert order.buyer == UnifiedParty(name="Bob Norman", phone="+16136120707",
                                       email="bob.norman@mail.example.com", id="207119551")
    assert order.receiver == UnifiedAddress(name="Bob Norman", phone="+1(502)-459-2181", country="US",
                                            province="Kentucky", city="Louisville", address="Chestnut Street 92",
                                            zip="40202")
    assert order.buyer_note == ""
    assert order.seller_note == ""
    # The REST order has no transactions: its refund names the sale it refunded (parent_id).
    assert order.payment_id == "801038806"
    # The parts add up the way the order service computes a total: lines − discounts + shipping + tax.
    goods = sum(line.unit_price * line.quantity - line.discount for line in order.lines)
    assert goods - order.discount + order.shipping + order.tax == order.total


def test_connector_exposes_the_mapping_and_to_json_is_plain(payload):
    order = ShopifyConnector.map_order(payload)
    data = order.to_json()
    assert data["total"] == "598.94"
    assert data["created_at"] == "2008-01-10T16:00:00Z"
    assert data["lines"][0]["unit_price"] == "199.00"
    json.dumps(data)  # nothing left that JSON cannot hold


@pytest.mark.parametrize(("changes", "status"), [
    ({"financial_status": "pending"}, "pending_payment"),
    ({"financial_status": "authorized"}, "pending_payment"),
    ({"financial_status": "partially_paid"}, "pending_payment"),
    ({"financial_status": "paid"}, "paid"),
    ({"financial_status": "partially_refunded"}, "paid"),
    ({"financial_status": "paid", "fulfillment_status": "partial"}, "partially_shipped"),
    ({"financial_status": "paid", "fulfillment_status": "fulfilled"}, "shipped"),
    ({"financial_status": "paid", "fulfillment_status": "fulfilled", "closed_at": "2008-01-20T09:00:00-05:00"},
     "completed"),
    ({"financial_status": "refunded"}, "closed"),
    ({"financial_status": "voided"}, "closed"),
    ({"financial_status": "voided", "cancelled_at": "2008-01-11T10:00:00-05:00", "cancel_reason": "customer"},
     "cancelled"),
    ({"financial_status": "refunded", "cancelled_at": "2008-01-11T10:00:00-05:00",
      "closed_at": "2008-01-11T10:00:00-05:00"}, "cancelled"),
    # Cancellation wins over everything, payment state over fulfilment (API_FACTS.md §6 order).
    ({"financial_status": "paid", "fulfillment_status": "fulfilled", "cancelled_at": "2008-01-11T10:00:00-05:00"},
     "cancelled"),
    ({"financial_status": "pending", "fulfillment_status": "fulfilled"}, "pending_payment"),
])
def test_status_table(payload, changes, status):
    payload.update(changes)
    assert map_shopify_order(payload).status == status


def test_paid_at_only_when_money_was_captured(payload):
    payload["financial_status"] = "pending"
    assert map_shopify_order(payload).paid_at is None
    payload["financial_status"] = "refunded"
    assert map_shopify_order(payload).paid_at == SAMPLE_INSTANT


def test_refund_flag(payload):
    payload.update(financial_status="paid", refunds=[])
    assert map_shopify_order(payload).refund_requested is False
    payload["refunds"] = [{"id": 1}]
    assert map_shopify_order(payload).refund_requested is True


def test_shipping_sums_shipping_lines_or_falls_back_to_the_price_set(payload):
    payload["shipping_lines"] = [{"price": "4.50"}, {"price": "1.25"}]
    assert map_shopify_order(payload).shipping == Decimal("5.75")
    del payload["shipping_lines"]
    payload["total_shipping_price_set"] = {"shop_money": {"amount": "7.10", "currency_code": "USD"}}
    assert map_shopify_order(payload).shipping == Decimal("7.10")


def test_line_level_discounts_are_not_counted_twice(payload):
    payload["line_items"][0]["total_discount"] = "4.00"
    order = map_shopify_order(payload)
    assert order.lines[0].discount == Decimal("4.00")
    assert order.discount == Decimal("6.00")  # total_discounts 10.00 less the 4.00 already on the line


def test_missing_sku_name_customer_and_address(payload):
    item = payload["line_items"][0]
    item["sku"] = None
    del item["name"]
    del payload["customer"]
    del payload["shipping_address"]
    payload["note"] = "  leave at the door "
    order = map_shopify_order(payload)
    assert order.lines[0].sku == ""
    assert order.lines[0].title == "IPod Nano - 8gb"
    assert order.buyer == UnifiedParty(email="bob.norman@mail.example.com", phone="+557734881234")
    assert order.receiver == UnifiedAddress()
    assert order.buyer_note == "leave at the door"


def test_address_lines_join_and_offsets_convert(payload):
    payload["shipping_address"]["address2"] = "Suite 5"
    payload["updated_at"] = "2024-03-10T23:30:00+08:00"
    order = map_shopify_order(payload)
    assert order.receiver.address == "Chestnut Street 92 Suite 5"
    assert order.updated_at == datetime(2024, 3, 10, 15, 30, tzinfo=UTC)


def _set(payload: dict, path: str, value) -> None:
    """Replace (or, with ``KeyError``, delete) the value at a dotted path such as ``line_items.0.price``."""
    *parents, last = path.split(".")
    target = payload
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    key = int(last) if isinstance(target, list) else last
    if value is KeyError:
        del target[key]
    else:
        target[key] = value


@pytest.mark.parametrize(("path", "value", "message"), [
    ("id", KeyError, "no id"),
    ("id", None, "no id"),
    ("updated_at", KeyError, "updated_at"),
    ("updated_at", "yesterday", "not an ISO-8601 time"),
    ("updated_at", "2008-01-10T11:00:00", "no UTC offset"),
    ("created_at", 1200000000, "created_at"),
    ("line_items", [], "no line_items"),
    ("line_items", KeyError, "no line_items"),
    ("line_items.0.quantity", "two", "quantity"),
    ("line_items.0.quantity", 0, "quantity"),
    ("line_items.0.quantity", -1, "quantity"),
    ("line_items.0.quantity", True, "quantity"),
    ("line_items.0.quantity", 1.5, "quantity"),
    ("line_items.0", "IPOD", "not an object"),
    ("line_items.0.price", "abc", "price"),
    ("line_items.0.price", "NaN", "price"),
    ("line_items.0.price", "-1.00", "price"),
    ("line_items.0.price", KeyError, "price"),
    ("total_price", KeyError, "total_price"),
    ("currency", "", "currency"),
    ("financial_status", "expired", "financial_status"),
])
def test_unmappable_payloads_are_refused(payload, path, value, message):
    _set(payload, path, value)
    with pytest.raises(PermanentError, match=message):
        map_shopify_order(payload)


@pytest.mark.parametrize("payload", [None, [], "order", 450789469])
def test_non_objects_are_refused(payload):
    with pytest.raises(PermanentError, match="not an object"):
        map_shopify_order(payload)
