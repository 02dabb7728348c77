"""Taobao trade → UnifiedOrder: the documented sample, every status, the refund overlay and bad input."""

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import PermanentError, UnifiedAddress, UnifiedLine, UnifiedOrder, UnifiedParty
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.taobao.client import unwrap_lists
from connectors.taobao.mapping import STATUS_MAP, map_taobao_trade

FIXTURE = Path(__file__).parent / "fixtures" / "taobao_trade.json"


@pytest.fixture
def trade() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["trade_fullinfo_get_response"]["trade"]


def test_documented_sample_maps_exactly(trade):
    sample_time = datetime(2017, 7, 28, 6, 18, 32, tzinfo=UTC)  # 2017-07-28 14:18:32 in Beijing
    assert map_taobao_trade(trade) == UnifiedOrder(
        platform_order_id="500001084", status="paid", raw_status="WAIT_SELLER_SEND_GOODS", currency="CNY",
        total=Decimal("323.58"), shipping=Decimal("0.00"), discount=Decimal("10.42"), tax=Decimal("0"),
        created_at=sample_time, updated_at=sample_time, paid_at=sample_time,
        lines=[UnifiedLine(sku="B-C352-F301-356M", platform_sku_id="5000000017", title="正常001", quantity=1,
                           unit_price=Decimal("100.00"), discount=Decimal("0"), platform_line_id="500001083")],
        buyer=UnifiedParty(name="采购004", id=""),
        receiver=UnifiedAddress(name="王小贝10048", phone="13312343069", country="CN", province="陕西省",
                                city="西安市", district="新城区", address="陕西省西安市新城区解放路100",
                                zip="710000"),
        buyer_note="周末配送", seller_note="改为发顺丰", refund_requested=False,
    )


def test_times_are_aware_utc_and_json_shape(trade):
    unified = map_taobao_trade(trade)
    assert unified.created_at.utcoffset().total_seconds() == 0
    data = unified.to_json()
    assert data["created_at"] == "2017-07-28T06:18:32Z"
    assert data["total"] == "323.58" and data["discount"] == "10.42"


def test_plain_order_list_maps_like_the_wrapped_one(trade):
    plain = copy.deepcopy(trade)
    plain["orders"] = plain["orders"]["order"]
    assert map_taobao_trade(plain) == map_taobao_trade(trade)
    assert map_taobao_trade(unwrap_lists(trade)) == map_taobao_trade(trade)


def test_tid_str_wins_and_fallbacks(trade):
    trade.update(tid=1234567890123456789, tid_str="1234567890123456789", receiver_mobile="",
                 receiver_phone="029-88886666", buyer_open_uid="AAHxyz")
    line = trade["orders"]["order"][0]
    line.update(outer_sku_id="", sku_id="", discount_fee="5.00", num="2")
    unified = map_taobao_trade(trade)
    assert unified.platform_order_id == "1234567890123456789"
    assert unified.receiver.phone == "029-88886666"
    assert unified.buyer == UnifiedParty(name="采购004", id="AAHxyz")
    assert unified.lines == [UnifiedLine(sku="B-C352-F301-", platform_sku_id="100018587597", title="正常001",
                                         quantity=2, unit_price=Decimal("100.00"), discount=Decimal("5.00"),
                                         platform_line_id="500001083")]


def test_unpaid_trade_has_no_paid_at(trade):
    trade.update(status="WAIT_BUYER_PAY", pay_time="")
    unified = map_taobao_trade(trade)
    assert (unified.status, unified.paid_at) == ("pending_payment", None)


@pytest.mark.parametrize(("raw", "unified"), [
    ("TRADE_NO_CREATE_PAY", "pending_payment"), ("WAIT_BUYER_PAY", "pending_payment"),
    ("PAY_PENDING", "pending_payment"), ("WAIT_PRE_AUTH_CONFIRM", "pending_payment"),
    ("PAID_FORBID_CONSIGN", "group_pending"), ("WAIT_SELLER_SEND_GOODS", "paid"),
    ("SELLER_CONSIGNED_PART", "partially_shipped"), ("WAIT_BUYER_CONFIRM_GOODS", "shipped"),
    ("TRADE_BUYER_SIGNED", "completed"), ("TRADE_FINISHED", "completed"),
    ("TRADE_CLOSED_BY_TAOBAO", "cancelled"), ("TRADE_CLOSED", "closed"),
])
def test_status_mapping(trade, raw, unified):
    trade["status"] = raw
    mapped = map_taobao_trade(trade)
    assert (mapped.status, mapped.raw_status) == (unified, raw)


def test_status_table_is_complete():
    assert len(STATUS_MAP) == 12


@pytest.mark.parametrize(("refund_status", "expected"), [
    ("WAIT_SELLER_AGREE", True), ("WAIT_BUYER_RETURN_GOODS", True), ("WAIT_SELLER_CONFIRM_GOODS", True),
    ("NO_REFUND", False), ("SELLER_REFUSE_BUYER", False), ("CLOSED", False), ("SUCCESS", False),
])
def test_refund_overlay_from_any_order(trade, refund_status, expected):
    orders = trade["orders"]["order"]
    orders.append({**orders[0], "oid": 500001085, "refund_status": refund_status})
    unified = map_taobao_trade(trade)
    assert unified.refund_requested is expected
    assert unified.status == "paid"  # the overlay never replaces the status


@pytest.mark.parametrize(("change", "message"), [
    ({"status": "SOMETHING_NEW"}, "unknown status 'SOMETHING_NEW'"),
    ({"status": None}, "unknown status ''"),
    ({"tid": None}, "has no tid"),
    ({"orders": None}, "has no orders"),
    ({"orders": {"order": []}}, "has no orders"),
    ({"payment": None}, "payment is missing"),
    ({"payment": "12,00"}, "payment '12,00' is not an amount"),
    ({"post_fee": "NaN"}, "post_fee 'NaN' is not an amount"),
    ({"created": "2017/07/28 14:18"}, "created '2017/07/28 14:18' is not yyyy-MM-dd HH:mm:ss"),
    ({"modified": ""}, "modified is missing"),
])
def test_unmappable_trades_raise_permanent_error(trade, change, message):
    trade.update(change)
    with pytest.raises(PermanentError) as caught:
        map_taobao_trade(trade)
    assert message in caught.value.message


@pytest.mark.parametrize(("line_change", "message"), [
    ({"num": "one"}, "num must be an integer"),
    ({"num": 0}, "num must be at least 1"),
    ({"price": None}, "price is missing"),
])
def test_unmappable_lines_raise_permanent_error(trade, line_change, message):
    trade["orders"]["order"][0].update(line_change)
    with pytest.raises(PermanentError) as caught:
        map_taobao_trade(trade)
    assert message in caught.value.message
    assert "order 500001083" in caught.value.message


def test_envelope_and_non_objects_are_refused():
    envelope = json.loads(FIXTURE.read_text(encoding="utf-8"))
    with pytest.raises(PermanentError, match="response envelope"):
        map_taobao_trade(envelope)
    with pytest.raises(PermanentError, match="must be a JSON object"):
        map_taobao_trade(["not", "a", "trade"])


def test_generated_sandbox_trades_map_and_reconcile():
    sandbox = TaobaoSandbox(seed=3)
    sandbox.set_clock(datetime(2026, 3, 1, 4, 0, tzinfo=UTC))
    statuses = set()
    for _ in range(60):
        unified = map_taobao_trade(sandbox.generate_order())
        statuses.add(unified.status)
        gross = sum((line.unit_price * line.quantity for line in unified.lines), Decimal("0"))
        # The unified discount is the order-level part; the lines carry their own.
        line_discounts = sum((line.discount for line in unified.lines), Decimal("0"))
        assert gross - line_discounts - unified.discount + unified.shipping == unified.total
        assert unified.discount >= 0
        assert 1 <= len(unified.lines) <= 3
        assert len(unified.receiver.phone) == 11 and unified.receiver.province
        assert unified.updated_at == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
        assert 18 <= len(unified.platform_order_id) <= 19
    assert statuses == {"paid", "pending_payment"}
