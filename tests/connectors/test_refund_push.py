"""Refund decisions through the outbox to the platform sandboxes: retried until confirmed, never twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.models import Refund, RefundStatus, TicketEvent, TicketEventType, TicketStatus
from aftersales.services import TicketLineInput, ticket_create
from connectors import services
from connectors.base import PermanentError
from connectors.douyin.connector import DouyinConnector
from connectors.models import ChannelSyncState, RefundPush, RefundPushStatus
from connectors.pdd.connector import PddConnector
from connectors.sandbox.douyin import DouyinSandbox
from connectors.sandbox.pdd import PddSandbox
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from orders.models import Order, Platform
from pipeline import channel, refunds
from pipeline import tickets as ticket_flow
from tests.conftest import channel_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def taobao(skus):
    sandbox = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00"), ("CUP-CER-350", "39.00")], seed=11)
    sandbox.start()
    store = channel_store(platform=Platform.TAOBAO, code="tb-refund", name="淘宝店",
                          credentials=sandbox.connector_credentials())
    ChannelSyncState.objects.get_or_create(store=store)
    yield sandbox, store
    sandbox.stop()


def import_order(sandbox, store, **generate) -> Order:
    order = sandbox.generate_order(**generate)
    sandbox.put_order(order, push=False)
    services.store_poll(store_id=store.pk)
    channel.inbox_process_store(store_id=store.pk)
    return Order.objects.get(store=store, platform_order_id=sandbox.order_id(order))


def run_due(push: RefundPush) -> str:
    """What the sweeper does when the retry time comes (the wait itself is skipped)."""
    RefundPush.objects.filter(pk=push.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    return refunds.refund_push_deliver(push_id=push.pk)


def refunds_pushed(sandbox) -> list[dict]:
    return [p for p in sandbox.pushed if p["kind"] == "refund"]


def test_a_taobao_refund_reaches_the_sandbox_exactly_once_after_five_failures(taobao):
    sandbox, store = taobao
    order = import_order(sandbox, store, lines=1, status="WAIT_SELLER_SEND_GOODS")
    line = order.lines.get()
    request = sandbox.open_refund_request(order.platform_order_id, refund_fee=line.unit_price)
    ticket = ticket_create(order_id=order.pk, type="refund_only", reason="quality", source="platform",
                           platform_after_sale_id=request["refund_id"], lines=[TicketLineInput(line.pk, 1)])
    ticket = ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve",
                                                 approved_amount=Decimal("30.00"))
    assert ticket.status == TicketStatus.REFUNDING
    refund = Refund.objects.get(ticket=ticket)
    assert (refund.amount, refund.method, refund.status) == (Decimal("30.00"), "platform", RefundStatus.PENDING)
    push = RefundPush.objects.get()
    assert (push.refund_ref, push.platform_after_sale_id, push.amount, push.line_ids) == (
        refund.pk, request["refund_id"], Decimal("30.00"), [line.platform_line_id])

    sandbox.faults.server_errors = 5  # the platform fails five times in a row
    assert [run_due(push) for _ in range(5)] == [RefundPushStatus.PENDING] * 5
    assert RefundPush.objects.get(pk=push.pk).attempts == 5
    assert refunds_pushed(sandbox) == []
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PENDING

    assert run_due(push) == RefundPushStatus.SENT
    assert run_due(push) == RefundPushStatus.SENT  # a late retry changes nothing
    sent = refunds_pushed(sandbox)
    assert [(p["refund_id"], p["amount"]) for p in sent] == [(request["refund_id"], "30.00")]
    assert sandbox.refund_requests[request["refund_id"]]["status"] == "SUCCESS"
    push.refresh_from_db()
    assert (push.status, push.attempts, push.platform_refund_id) == (RefundPushStatus.SENT, 6, request["refund_id"])
    refund.refresh_from_db()
    assert (refund.status, refund.platform_refund_id) == (RefundStatus.CONFIRMED, request["refund_id"])
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED
    types = list(TicketEvent.objects.filter(ticket=ticket, type__startswith="refund_").values_list("type", flat=True))
    assert types == [TicketEventType.REFUND_RECORDED, TicketEventType.REFUND_CONFIRMED]
    # The same refund queued again is the same outbox row: never sent twice.
    again = refunds.refund_push_enqueue(order=order, refund_ref=refund.pk, amount=refund.amount)
    assert again.pk == push.pk and RefundPush.objects.count() == 1


def test_a_refund_the_platform_refuses_fails_with_the_reason_and_frees_the_money(taobao):
    sandbox, store = taobao
    order = import_order(sandbox, store, lines=1, status="WAIT_SELLER_SEND_GOODS")
    line = order.lines.get()
    request = sandbox.open_refund_request(order.platform_order_id, refund_fee=Decimal("10.00"))
    ticket = ticket_create(order_id=order.pk, type="refund_only", reason="quality", source="platform",
                           platform_after_sale_id=request["refund_id"], lines=[TicketLineInput(line.pk, 1)])
    # More than the buyer asked for: Taobao refuses it.
    ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve", approved_amount=Decimal("20.00"))
    push = RefundPush.objects.get()
    assert run_due(push) == RefundPushStatus.FAILED
    refund = Refund.objects.get(ticket=ticket)
    assert refund.status == RefundStatus.FAILED
    failed = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.REFUND_FAILED)
    assert "退款金额超过申请金额" in failed.reason
    assert refunds_pushed(sandbox) == []
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDING  # a person decides what next


def test_a_shopify_refund_whose_answer_was_lost_is_made_once(skus):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=4)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.SHOPIFY, code="shop-refund", name="Shop", default_currency="USD",
                              credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        generated = sandbox.generate_order()
        sandbox.put_order({**generated, "financial_status": "paid"}, push=False)
        services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        order = Order.objects.get(store=store)
        line = order.lines.order_by("line_no").first()
        ticket = ticket_create(order_id=order.pk, type="refund_only", reason="damaged",
                               lines=[TicketLineInput(line.pk, 1, Decimal("5.00"))])
        ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve")
        push = RefundPush.objects.get()
        # The refund is made, its answer lost twice: the retries carry the same idempotency key.
        sandbox.lose_refund_answers = 2
        assert refunds.refund_push_deliver(push_id=push.pk) == RefundPushStatus.SENT
        made = refunds_pushed(sandbox)
        assert [(p["order_id"], p["amount"]) for p in made] == [(order.platform_order_id, "5.00")]
        assert Refund.objects.get().platform_refund_id == made[0]["refund_id"]
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.REFUNDED
        assert sandbox.orders[order.platform_order_id]["financial_status"] == "partially_refunded"
    finally:
        sandbox.stop()


def test_pdd_agrees_an_after_sale_once_even_when_asked_again():
    sandbox = PddSandbox(port=0, seed=5)
    sandbox.start()
    try:
        order = sandbox.generate_order(lines=1)
        sandbox.put_order(order, push=False)
        after_sale = sandbox.put_after_sale(order["order_sn"], after_sales_status=2, after_sales_type=1)
        connector = PddConnector(sandbox.connector_credentials())
        first = connector.refund(platform_order_id=order["order_sn"], platform_after_sale_id=after_sale["id"],
                                 amount=Decimal("1.00"), currency="CNY", key="oms-refund-1")
        assert (first["platform_refund_id"], first["succ"]) == (after_sale["id"], True)
        # A retry after a lost answer reads the after-sale first and does not agree again.
        again = connector.refund(platform_order_id=order["order_sn"], platform_after_sale_id=after_sale["id"],
                                 amount=Decimal("1.00"), currency="CNY", key="oms-refund-1")
        assert again["already"] is True
        assert [p["after_sales_id"] for p in refunds_pushed(sandbox)] == [after_sale["id"]]
        assert sandbox.after_sales[after_sale["id"]]["after_sales_status"] == 10
    finally:
        sandbox.stop()


def test_douyin_agrees_a_refund_only_once_and_refuses_another_amount():
    sandbox = DouyinSandbox(port=0, seed=6)
    sandbox.start()
    try:
        order = sandbox.generate_order(lines=1)
        sandbox.put_order(order, push=False)
        item = sandbox.put_after_sale(sandbox.order_id(order), aftersale_type=1, aftersale_status=6,
                                      refund_amount=1234)
        aftersale_id = item["aftersale_info"]["aftersale_id"]
        connector = DouyinConnector(sandbox.connector_credentials())
        with pytest.raises(PermanentError) as refused:
            connector.refund(platform_order_id=sandbox.order_id(order), platform_after_sale_id=aftersale_id,
                             amount=Decimal("12.00"), currency="CNY", key="oms-refund-2")
        assert refused.value.code == "amount_mismatch"
        first = connector.refund(platform_order_id=sandbox.order_id(order), platform_after_sale_id=aftersale_id,
                                 amount=Decimal("12.34"), currency="CNY", key="oms-refund-2")
        again = connector.refund(platform_order_id=sandbox.order_id(order), platform_after_sale_id=aftersale_id,
                                 amount=Decimal("12.34"), currency="CNY", key="oms-refund-2")
        assert first["platform_refund_id"] == aftersale_id and again["already"] is True
        assert [(p["aftersale_id"], p["amount"]) for p in refunds_pushed(sandbox)] == [(aftersale_id, "12.34")]
    finally:
        sandbox.stop()
