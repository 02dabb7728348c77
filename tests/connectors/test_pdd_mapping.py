"""PDD order → UnifiedOrder: the captured-style sample, money from JSON doubles, every status, PII, bad input."""

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import PermanentError, UnifiedAddress, UnifiedLine, UnifiedOrder, UnifiedParty
from connectors.pdd.mapping import map_pdd_order
from connectors.sandbox.pdd import PddSandbox

FIXTURE = Path(__file__).parent / "fixtures" / "pdd_order.json"
NAME_CIPHER = "~AgAAAAHNk1aLcCQn9Xz3gV5aB6b7IFS+K0jt0cLxnuY=~0~~"
PHONE_CIPHER = "$AgAAAAHNk1aKz0Qm3fTQ4hV9dN0pLq8sXw==$0$$"
ADDRESS_CIPHER = "~AgAAAAHNk1aMn4XTYwkQzrMvF6N2hR3gqW7oB9yJpDs0LuEcHaK5+1ZiVx8=~0~~"
FULL_ADDRESS_CIPHER = "~AgAAAAHNk1aNo5YUZxlRasNwG7O3iS4hrX8pC0zKqEt1MvFdIbL6+2AjWy9kPeQo=~0~~"


@pytest.fixture
def order() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["order_info_get_response"]["order_info"]


def test_sample_maps_exactly(order):
    assert map_pdd_order(order) == UnifiedOrder(
        platform_order_id="240318-422796379670125", status="paid", currency="CNY",
        raw_status="order_status=1 confirm_status=1 group_status=1 refund_status=1 after_sales_status=0",
        total=Decimal("188.00"), shipping=Decimal("0.00"), discount=Decimal("49.80"), tax=Decimal("0"),
        created_at=datetime(2024, 3, 18, 13, 5, 11, tzinfo=UTC),  # 21:05:11 in Beijing
        updated_at=datetime(2024, 3, 18, 13, 6, 5, tzinfo=UTC),
        paid_at=datetime(2024, 3, 18, 13, 5, 40, tzinfo=UTC),
        lines=[
            UnifiedLine(sku="TEA-LJ-250G", platform_sku_id="1158223344556", title="2024新茶 西湖龙井 明前特级 250g 罐装",
                        quantity=1, unit_price=Decimal("198.00"), discount=Decimal("0"),
                        platform_line_id="269934123456:1158223344556"),
            # No outer_id on the SKU: the goods-level merchant code stands in.
            UnifiedLine(sku="CUP-CER-350", platform_sku_id="1160987654321", title="陶瓷马克杯 350ml 简约办公室水杯",
                        quantity=2, unit_price=Decimal("19.90"), discount=Decimal("0"),
                        platform_line_id="271234567890:1160987654321"),
        ],
        buyer=UnifiedParty(),
        receiver=UnifiedAddress(
            name="林*坤", phone="1*********5", country="CN", province="浙江省", city="杭州市", district="西湖区",
            address="文三路***号*栋*单元****室", zip="",
            encrypted={"name": NAME_CIPHER, "phone": PHONE_CIPHER, "address": ADDRESS_CIPHER,
                       "full_address": FULL_ADDRESS_CIPHER},
            masked={"name": "林*坤", "phone": "1*********5", "address": "文三路***号*栋*单元****室",
                    "full_address": "浙江省杭州市西湖区文三路***号*栋*单元****室"}),
        buyer_note="请尽快发货，谢谢", seller_note="老客户", refund_requested=False, after_sales=[],
        payment_id="4200002173202403182873123456",  # pay_no
    )


def test_amounts_reconcile_and_json_shape(order):
    unified = map_pdd_order(order)
    gross = sum((line.unit_price * line.quantity for line in unified.lines), Decimal("0"))
    assert gross - unified.discount + unified.shipping == unified.total
    data = unified.to_json()
    assert (data["total"], data["discount"], data["shipping"]) == ("188.00", "49.80", "0.00")
    assert data["created_at"] == "2024-03-18T13:05:11Z"
    assert data["lines"][1]["unit_price"] == "19.90"
    assert unified.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(("wire", "expected"), [
    ("188.0", "188.00"),
    ("19.9", "19.90"),  # Decimal(19.9) would be 19.899999999999998578914528479799628257751464843750
    ("0.1", "0.10"),
    ("0.30000000000000004", "0.30"),  # 0.1 + 0.2 computed in doubles upstream
    ("1234567.89", "1234567.89"),
    ("8", "8.00"),
    ('"12.5"', "12.50"),  # some SDK docs type the amounts as strings
])
def test_money_from_json_numbers_is_exact(order, wire, expected):
    patched = json.loads(FIXTURE.read_text(encoding="utf-8").replace('"pay_amount":188.0', f'"pay_amount":{wire}'))
    total = map_pdd_order(patched["order_info_get_response"]["order_info"]).total
    assert total == Decimal(expected)
    assert str(total) == expected


def test_goods_price_double_noise_rounds_to_the_fen(order):
    order["item_list"][0]["goods_price"] = 0.1 + 0.2
    order["postage"] = 0.1 + 0.7  # 0.7999999999999999
    unified = map_pdd_order(order)
    assert (unified.lines[0].unit_price, unified.shipping) == (Decimal("0.30"), Decimal("0.80"))


STATUS_CASES = [
    # order_status, confirm_status, group_status, refund_status, shipping_time → unified
    ((1, 1, 1, 1, ""), "paid"),
    ((2, 1, 1, 1, "2024-03-19 10:00:00"), "shipped"),
    ((3, 1, 1, 1, "2024-03-19 10:00:00"), "completed"),
    ((1, 0, 0, 1, ""), "group_pending"),  # 拼团中, 未成交
    ((1, 1, 0, 1, ""), "group_pending"),
    ((1, 0, 1, 1, ""), "group_pending"),
    ((1, 2, 1, 1, ""), "cancelled"),  # 已取消
    ((1, 0, 2, 1, ""), "cancelled"),  # 团失败
    ((1, 0, 2, 4, ""), "cancelled"),
    ((1, 1, 1, 4, ""), "cancelled"),  # refunded in full before shipping
    ((1, 0, 0, 4, ""), "cancelled"),
    ((2, 1, 1, 4, "2024-03-19 10:00:00"), "shipped"),  # a refund after shipping leaves the order shipped
    ((3, 1, 1, 4, "2024-03-19 10:00:00"), "completed"),
    ((1, 1, 1, 2, ""), "paid"),  # an open after-sale is an overlay, not a status
]


@pytest.mark.parametrize(("state", "expected"), STATUS_CASES)
def test_status_mapping(order, state, expected):
    order_status, confirm_status, group_status, refund_status, shipping_time = state
    order.update(order_status=order_status, confirm_status=confirm_status, group_status=group_status,
                 refund_status=refund_status, shipping_time=shipping_time)
    unified = map_pdd_order(order)
    assert unified.status == expected
    assert unified.raw_status.startswith(f"order_status={order_status} confirm_status={confirm_status} "
                                         f"group_status={group_status} refund_status={refund_status}")


def test_a_refund_with_a_tracking_number_is_not_a_cancellation(order):
    order.update(refund_status=4, after_sales_status=10, tracking_number="SF1234567890")
    assert map_pdd_order(order).status == "paid"


@pytest.mark.parametrize("order_status", [0, 4, 9])
def test_unknown_order_status_is_permanent(order, order_status):
    order["order_status"] = order_status
    with pytest.raises(PermanentError) as caught:
        map_pdd_order(order)
    assert caught.value.code == "unknown_status"
    assert f"unknown order_status {order_status}" in caught.value.message


@pytest.mark.parametrize(("refund_status", "after_sales_status", "expected"), [
    (1, 0, False), (2, 0, True), (3, 0, True), (4, 10, False), (1, 9, False), (1, 11, False), (1, 12, False),
    (1, 2, True), (1, 3, True), (1, 4, True), (1, 5, True), (1, 6, True), (1, 7, True), (1, 8, True),
    (1, 14, False), (1, 16, False),
])
def test_refund_overlay(order, refund_status, after_sales_status, expected):
    order.update(order_status=2, shipping_time="2024-03-19 10:00:00", refund_status=refund_status,
                 after_sales_status=after_sales_status)
    unified = map_pdd_order(order)
    assert unified.refund_requested is expected
    assert unified.status == "shipped"


def test_after_sales_carry_the_order_level_state(order):
    order.update(refund_status=2, after_sales_status=3)
    assert map_pdd_order(order).after_sales == [
        {"platform_line_id": "", "status": "3", "type": "return_refund", "refund_status": "2",
         "description": "退货退款，待商家处理"}]
    order.update(refund_status=4, after_sales_status=10, order_status=2, shipping_time="2024-03-19 10:00:00")
    assert map_pdd_order(order).after_sales == [
        {"platform_line_id": "", "status": "10", "type": "", "refund_status": "4", "description": "退款成功"}]
    order.update(refund_status=1, after_sales_status=0)
    assert map_pdd_order(order).after_sales == []


def test_shipped_orders_without_ciphertext_keep_the_masks(order):
    # PDD sends empty ciphertext once an order has left 待发货.
    order.update(order_status=2, shipping_time="2024-03-19 10:00:00", receiver_name="", receiver_phone="",
                 receiver_address="", address="")
    receiver = map_pdd_order(order).receiver
    assert receiver.encrypted == {}
    assert (receiver.name, receiver.phone, receiver.address) == ("林*坤", "1*********5", "文三路***号*栋*单元****室")


def test_ciphertext_never_becomes_the_shown_receiver(order):
    for key in ("receiver_name_mask", "receiver_phone_mask", "receiver_address_mask"):
        order[key] = ""
    receiver = map_pdd_order(order).receiver
    assert (receiver.name, receiver.phone) == ("", "")
    assert receiver.address == "浙江省杭州市西湖区文三路***号*栋*单元****室"  # the full masked address
    assert receiver.encrypted["name"] == NAME_CIPHER
    assert receiver.masked == {"full_address": "浙江省杭州市西湖区文三路***号*栋*单元****室"}


def test_optional_fields_missing(order):
    for key in ("pay_time", "postage", "discount_amount", "buyer_memo", "remark", "country", "refund_status",
                "after_sales_status"):
        del order[key]
    unified = map_pdd_order(order)
    assert (unified.paid_at, unified.shipping, unified.discount) == (None, Decimal("0"), Decimal("0"))
    assert (unified.buyer_note, unified.seller_note, unified.receiver.country) == ("", "", "CN")
    assert (unified.refund_requested, unified.after_sales, unified.status) == (False, [], "paid")


@pytest.mark.parametrize(("change", "message"), [
    ({"order_sn": None}, "has no order_sn"),
    ({"order_sn": "  "}, "has no order_sn"),
    ({"order_status": None}, "order_status is missing"),
    ({"group_status": None}, "group_status is missing"),
    ({"confirm_status": ""}, "confirm_status is missing"),
    ({"order_status": "shipped"}, "order_status must be an integer"),
    ({"order_status": 1.5}, "order_status must be an integer"),
    ({"group_status": True}, "group_status must be an integer"),
    ({"item_list": None}, "has no item_list"),
    ({"item_list": []}, "has no item_list"),
    ({"item_list": ["x"]}, "item_list entries must be JSON objects"),
    ({"pay_amount": None}, "pay_amount is missing"),
    ({"pay_amount": "12,00"}, "pay_amount '12,00' is not an amount"),
    ({"pay_amount": True}, "pay_amount True is not an amount"),
    ({"postage": "NaN"}, "postage 'NaN' is not an amount"),
    ({"created_time": "2024/03/18 21:05"}, "created_time '2024/03/18 21:05' is not yyyy-MM-dd HH:mm:ss"),
    ({"created_time": 1710767111}, "created_time 1710767111 is not yyyy-MM-dd HH:mm:ss"),
    ({"updated_at": ""}, "updated_at is missing"),
])
def test_unmappable_orders_raise_permanent_error(order, change, message):
    order.update(change)
    with pytest.raises(PermanentError) as caught:
        map_pdd_order(order)
    assert message in caught.value.message


@pytest.mark.parametrize(("item_change", "message"), [
    ({"goods_count": "one"}, "goods_count must be an integer"),
    ({"goods_count": 0}, "goods_count must be at least 1"),
    ({"goods_price": None}, "goods_price is missing"),
    ({"goods_price": "free"}, "goods_price 'free' is not an amount"),
    ({"sku_id": None}, "goods_id and sku_id are required"),
    ({"goods_id": ""}, "goods_id and sku_id are required"),
])
def test_unmappable_items_raise_permanent_error(order, item_change, message):
    order["item_list"][0].update(item_change)
    with pytest.raises(PermanentError) as caught:
        map_pdd_order(order)
    assert message in caught.value.message
    assert "240318-422796379670125 item" in caught.value.message


def test_envelope_and_non_objects_are_refused():
    envelope = json.loads(FIXTURE.read_text(encoding="utf-8"))
    with pytest.raises(PermanentError, match="response envelope"):
        map_pdd_order(envelope)
    with pytest.raises(PermanentError, match="must be a JSON object"):
        map_pdd_order(["not", "an", "order"])


def test_mapping_does_not_change_its_input(order):
    before = copy.deepcopy(order)
    map_pdd_order(order)
    assert order == before


def test_generated_sandbox_orders_map_and_reconcile():
    sandbox = PddSandbox(seed=3)
    sandbox.set_clock(datetime(2026, 3, 1, 4, 0, tzinfo=UTC))
    statuses = set()
    for _ in range(80):
        raw = json.loads(json.dumps(sandbox.generate_order()))  # through the wire format: doubles
        unified = map_pdd_order(raw)
        statuses.add(unified.status)
        gross = sum((line.unit_price * line.quantity for line in unified.lines), Decimal("0"))
        assert gross - unified.discount + unified.shipping == unified.total
        assert all(line.discount == 0 for line in unified.lines)
        assert 1 <= len(unified.lines) <= 3
        assert unified.updated_at == datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
        receiver = unified.receiver
        assert receiver.encrypted["name"].startswith("~AgAAAA") and receiver.encrypted["name"].endswith("~0~~")
        assert receiver.encrypted["phone"].startswith("$AgAAAA") and receiver.encrypted["phone"].endswith("$0$$")
        assert receiver.name == receiver.masked["name"] and "*" in receiver.name
        assert len(receiver.phone) == 11 and receiver.phone[1:10] == "*" * 9
        assert receiver.province and receiver.city and receiver.district
        order_sn = unified.platform_order_id
        assert len(order_sn) == 22 and order_sn[6] == "-" and order_sn.replace("-", "").isdigit()
        assert order_sn.startswith("260301")  # the Beijing creation day
    assert statuses == {"paid", "group_pending"}
