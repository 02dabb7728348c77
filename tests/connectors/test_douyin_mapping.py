"""Douyin shop order → UnifiedOrder: the detail fixture, fen and epoch values, every status, after-sales, PII."""

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import PermanentError, UnifiedAddress, UnifiedLine, UnifiedOrder, UnifiedParty
from connectors.douyin.connector import DouyinConnector
from connectors.douyin.mapping import STATUS_MAP, map_douyin_order
from connectors.sandbox.douyin import DouyinSandbox

FIXTURE = Path(__file__).parent / "fixtures" / "douyin_order.json"


@pytest.fixture
def envelope() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def order(envelope) -> dict:
    return envelope["data"]["shop_order_detail"]


def reconciles(unified: UnifiedOrder) -> bool:
    goods = sum((line.unit_price * line.quantity - line.discount for line in unified.lines), Decimal("0"))
    return goods - unified.discount + unified.shipping + unified.tax == unified.total


def test_fixture_maps_exactly(order):
    assert map_douyin_order(order) == UnifiedOrder(
        platform_order_id="6921345678901234567", status="paid", raw_status="2 备货中", currency="CNY",
        total=Decimal("563.00"), shipping=Decimal("8.00"), discount=Decimal("0.00"), tax=Decimal("0.00"),
        created_at=datetime(2024, 6, 1, 5, 25, 33, tzinfo=UTC), paid_at=datetime(2024, 6, 1, 5, 26, 11, tzinfo=UTC),
        updated_at=datetime(2024, 6, 1, 6, 30, 5, tzinfo=UTC),
        lines=[
            UnifiedLine(sku="TEA-LJ-250G", platform_sku_id="1742658012345678",
                        title="2024新茶 西湖龙井 明前特级 250g 罐装", quantity=2, unit_price=Decimal("268.00"),
                        discount=Decimal("18.00"), platform_line_id="6921345678901234567"),
            # No code: out_sku_id is the merchant key; its 8.00 freight is not part of the goods paid.
            UnifiedLine(sku="CUP-CER-350", platform_sku_id="1742658012349999", title="陶瓷马克杯 350ml 简约办公室水杯",
                        quantity=1, unit_price=Decimal("39.00"), discount=Decimal("2.00"),
                        platform_line_id="6921345678901298765"),
        ],
        buyer=UnifiedParty(id="1@#L0ZqVjBmS3pRbG5rR2Z3dE1xY0h0N0x6R1E9PQ=="),
        receiver=UnifiedAddress(
            name="王**", phone="138****5678", country="CN", province="浙江省", city="杭州市", district="西湖区",
            address="西溪街道文三路****",
            encrypted={"encrypt_post_receiver": order["encrypt_post_receiver"],
                       "encrypt_post_tel": order["encrypt_post_tel"],
                       "encrypt_detail": order["post_addr"]["encrypt_detail"]},
            masked={"mask_post_receiver": "王**", "mask_post_tel": "138****5678",
                    "mask_post_addr": order["mask_post_addr"]}),
        buyer_note="周末配送", seller_note="老客户，送试饮装",
        refund_requested=True,
        after_sales=[{"platform_line_id": "6921345678901298765", "after_sale_status": 6, "after_sale_type": 2,
                      "refund_status": 1}],
        payment_id="4200002231202406011234567890",  # channel_payment_no
    )
    assert reconciles(map_douyin_order(order))


def test_the_detail_envelope_maps_like_the_shop_order(envelope, order):
    untouched = copy.deepcopy(envelope)
    assert map_douyin_order(envelope) == map_douyin_order(order)
    assert envelope == untouched  # mapping never changes its input
    assert map_douyin_order(envelope["data"]) == map_douyin_order(order)
    assert DouyinConnector.map_order(order) == map_douyin_order(order)


def test_fen_become_exact_decimal_yuan(order):
    order.update(pay_amount=1, post_amount=999, tax_amount=7, promotion_amount=0)
    line = order["sku_order_list"][0]
    line.update(origin_amount=19999, item_num=3, pay_amount=None)
    unified = map_douyin_order(order)
    assert (unified.total, unified.shipping, unified.tax) == (Decimal("0.01"), Decimal("9.99"), Decimal("0.07"))
    assert unified.lines[0].unit_price == Decimal("199.99")
    assert str(unified.lines[0].unit_price) == "199.99" and str(unified.total) == "0.01"
    data = unified.to_json()
    assert data["total"] == "0.01" and data["shipping"] == "9.99" and data["lines"][0]["unit_price"] == "199.99"
    assert data["lines"][1]["unit_price"] == "39.00"


def test_epoch_seconds_become_aware_utc(order):
    unified = map_douyin_order(order)
    assert unified.created_at.utcoffset() == timedelta(0)
    # 13:25:33 in Beijing is 05:25:33 UTC.
    assert unified.to_json()["created_at"] == "2024-06-01T05:25:33Z"
    order.update(pay_time=0, create_time="1717219533")
    unified = map_douyin_order(order)
    assert unified.paid_at is None  # 0 is "not set"
    assert unified.created_at == datetime(2024, 6, 1, 5, 25, 33, tzinfo=UTC)


@pytest.mark.parametrize(("order_status", "main_status", "expected"), [
    (1, 1, "pending_payment"),
    (1, 103, "pending_payment"),  # partly paid
    (105, 105, "paid"),  # paid, pending release: not a group-buy hold (NOT CONFIRMED)
    (2, 2, "paid"),
    (101, 101, "partially_shipped"),
    (3, 3, "shipped"),
    (4, 4, "cancelled"),
    (5, 5, "completed"),
    (4, 21, "cancelled"),  # cancelled stays cancelled
    (2, 21, "closed"),  # refunded before shipping
    (3, 22, "closed"),  # refunded after shipping
    (5, 39, "closed"),  # refunded after receipt
])
def test_every_status(order, order_status, main_status, expected):
    order.update(order_status=order_status, main_status=main_status)
    unified = map_douyin_order(order)
    assert unified.status == expected
    assert unified.raw_status.startswith(str(order_status))
    if expected == "closed":
        assert f"main_status {main_status}" in unified.raw_status


def test_status_table_covers_the_documented_statuses():
    assert set(STATUS_MAP) == {1, 105, 2, 101, 3, 4, 5}


@pytest.mark.parametrize(("after_sale_status", "refund_status", "requested"), [
    (6, 0, True), (7, 0, True), (11, 0, True), (13, 0, True), (14, 0, True),
    (12, 3, False),  # succeeded and refunded
    (28, 0, False),  # failed / closed
    (27, 0, False),  # refused
    (28, 1, False),  # a buyer who withdrew: refund_status stays 1 (SDK field note), nothing is pending
    (0, 1, True),  # a refund waiting without an after-sale status
    (0, 0, False),
])
def test_after_sales_are_kept_and_set_the_refund_overlay(order, after_sale_status, refund_status, requested):
    line = order["sku_order_list"][1]
    line["after_sale_info"] = {"after_sale_status": after_sale_status, "after_sale_type": 1,
                               "refund_status": refund_status}
    unified = map_douyin_order(order)
    assert unified.refund_requested is requested
    if after_sale_status or refund_status:
        assert unified.after_sales == [{"platform_line_id": "6921345678901298765",
                                        "after_sale_status": after_sale_status, "after_sale_type": 1,
                                        "refund_status": refund_status}]
    else:
        assert unified.after_sales == []


def test_ciphertext_is_kept_and_masked_values_are_shown(order):
    receiver = map_douyin_order(order).receiver
    assert receiver.encrypted["encrypt_post_tel"].startswith("#1ucSGp+R#")
    assert set(receiver.encrypted) == {"encrypt_post_receiver", "encrypt_post_tel", "encrypt_detail"}
    assert (receiver.name, receiver.phone) == ("王**", "138****5678")
    assert "文三路****" in receiver.address
    assert receiver.masked["mask_post_addr"]["detail"] == "文三路****"


def test_plaintext_receiver_of_older_apps_fills_the_gaps(order):
    for key in ("encrypt_post_receiver", "encrypt_post_tel", "mask_post_receiver", "mask_post_tel", "mask_post_addr"):
        order.pop(key)
    order["post_addr"].pop("encrypt_detail")
    order.update(post_receiver="王小明", post_tel="13812345678")
    order["post_addr"]["detail"] = "文三路100号"
    receiver = map_douyin_order(order).receiver
    assert (receiver.name, receiver.phone, receiver.address) == ("王小明", "13812345678", "西溪街道文三路100号")
    assert receiver.encrypted == {} and receiver.masked == {}
    assert receiver.province == "浙江省" and receiver.district == "西湖区"


def test_unallocated_promotion_stays_at_order_level(order):
    # A 10.00 platform coupon the sku orders do not carry: the order keeps it, the total still adds up.
    order.update(promotion_amount=3000, promotion_platform_amount=1000, pay_amount=55300)
    unified = map_douyin_order(order)
    assert [line.discount for line in unified.lines] == [Decimal("18.00"), Decimal("2.00")]
    assert unified.discount == Decimal("10.00")
    assert reconciles(unified)


def test_line_discount_includes_price_changes_and_is_never_negative(order):
    first, second = order["sku_order_list"]
    first.update(pay_amount=50000, modify_amount=-1800)  # the seller took another 18.00 off
    second.update(pay_amount=5000)  # pays more than the goods and freight (a packing fee)
    unified = map_douyin_order(order)
    assert [line.discount for line in unified.lines] == [Decimal("36.00"), Decimal("0.00")]


def test_generated_sandbox_orders_reconcile():
    sandbox = DouyinSandbox(seed=5)
    sandbox.set_clock(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    discounted = 0
    for _ in range(60):
        unified = map_douyin_order(sandbox.generate_order())
        assert reconciles(unified), unified
        assert unified.discount == Decimal("0.00")  # the sandbox allocates every promotion to its lines
        assert unified.status in ("paid", "pending_payment")
        discounted += any(line.discount for line in unified.lines)
    assert discounted > 0


def test_a_free_item_catalogue_still_generates_orders():
    sandbox = DouyinSandbox(seed=1, skus=[("GIFT-BAG", "0.00")])
    unified = map_douyin_order(sandbox.generate_order(status=2))
    assert unified.total == Decimal("8.00") and unified.lines[0].unit_price == Decimal("0.00")


@pytest.mark.parametrize("change, message, code", [
    (lambda o: o.pop("order_id"), "no order_id", "invalid_payload"),
    (lambda o: o.update(order_status=7), "unknown order_status 7", "unknown_status"),
    (lambda o: o.pop("order_status"), "order_status is missing", "invalid_payload"),
    (lambda o: o.update(sku_order_list=[]), "no sku_order_list", "invalid_payload"),
    (lambda o: o.update(sku_order_list=["x"]), "must be JSON objects", "invalid_payload"),
    (lambda o: o["sku_order_list"][0].update(item_num=0), "item_num must be at least 1", "invalid_payload"),
    (lambda o: o["sku_order_list"][0].update(origin_amount=268.0), "not an integer amount in fen", "invalid_payload"),
    (lambda o: o["sku_order_list"][0].pop("origin_amount"), "origin_amount is missing", "invalid_payload"),
    (lambda o: o.update(pay_amount="5.63"), "not an integer", "invalid_payload"),
    (lambda o: o.update(create_time=0), "create_time is missing", "invalid_payload"),
    (lambda o: o.update(update_time=1717223405000000), "not a UNIX time", "invalid_payload"),
    (lambda o: o.update(order_status=True), "not an integer", "invalid_payload"),
])
def test_unmappable_input_is_a_permanent_error(order, change, message, code):
    change(order)
    with pytest.raises(PermanentError, match=message) as caught:
        map_douyin_order(order)
    assert caught.value.code == code


def test_non_objects_and_error_envelopes_are_refused(envelope):
    for payload in ([envelope], "x", None):
        with pytest.raises(PermanentError, match="JSON object"):
            map_douyin_order(payload)
    with pytest.raises(PermanentError, match="error envelope"):
        map_douyin_order({"code": 40003, "msg": "非法的参数", "data": {}})
    with pytest.raises(PermanentError, match="no order_id"):
        map_douyin_order({"code": 10000, "data": {"shop_order_detail": {}}})
