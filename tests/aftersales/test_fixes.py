"""After-sales gaps closed: the hub's own Shopify refunds open no ticket, refunds only through the refunds flow (and
a refused one tried again), platform tickets due by the store's policy, exchanges for another SKU, a replacement
order made by hand when the flow could not, and the claimed-units read shared by the desk and the service."""

import copy
import re
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from aftersales import refunds as refund_services
from aftersales import selectors, services
from aftersales.models import (
    AftersalesPolicy,
    Grade,
    Refund,
    RefundStatus,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketLine,
    TicketStatus,
)
from aftersales.platform import PlatformAfterSale, PlatformAfterSaleLine, ticket_upsert_from_platform
from aftersales.services import TicketLineInput
from connectors import services as connector_services
from connectors.models import ChannelSyncState, InboxMessage, InboxStatus, RefundPush, RefundPushStatus
from connectors.sandbox.shopify import ShopifySandbox
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.shopify.mapping import map_shopify_order
from inventory.models import SKU
from oms.exceptions import ConflictError, ValidationFailed
from orders.models import Order, Platform
from pipeline import channel
from pipeline import refunds as refund_flow
from pipeline import tickets as ticket_flow
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD, channel_store


def login(user, language: str = "zh-hans") -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def banner(response) -> str:
    found = re.search(r'<li class="msg-(?:error|success)" role="alert">(.*?)</li>', response.content.decode(), re.S)
    return found.group(1) if found else ""


@pytest.fixture
def manual_order(make_order, manual_store):
    """Manual store, paid and shipped: 2 × TEA-LJ-250G at 188.00, 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00."""
    return ship_order(make_order(store=manual_store))


# --- 1. The hub's own Shopify refund comes back in the order's refunds[] ------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_refund_the_hub_made_on_shopify_comes_back_with_the_order_and_opens_no_second_ticket(skus):
    sandbox = ShopifySandbox(port=0, skus=[("TEA-LJ-250G", "37.99")], seed=4)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.SHOPIFY, code="shop-own", name="Shop", default_currency="USD",
                              credentials=sandbox.connector_credentials())
        ChannelSyncState.objects.get_or_create(store=store)
        start = timezone.now().replace(microsecond=0)

        def sync(at):
            connector_services.store_poll(store_id=store.pk, now=at)
            channel.inbox_process_store(store_id=store.pk)

        sandbox.set_clock(start - timedelta(minutes=30))
        generated = sandbox.generate_order()
        sandbox.put_order({**generated, "financial_status": "paid"}, push=False)
        sync(start - timedelta(minutes=25))
        order = Order.objects.get(store=store)
        line = order.lines.order_by("line_no").first()
        ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="damaged",
                                        lines=[TicketLineInput(line.pk, 1, Decimal("5.00"))])
        ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve")
        sandbox.set_clock(start - timedelta(minutes=20))
        push = RefundPush.objects.get()
        assert refund_flow.refund_push_deliver(push_id=push.pk) == RefundPushStatus.SENT
        refund = Refund.objects.get()
        shopify_refund = sandbox.orders[order.platform_order_id]["refunds"][0]
        # Both sides keep the numeric id; Shopify's answer to refundCreate was a gid.
        assert refund.platform_refund_id == str(shopify_refund["id"])
        assert shopify_refund["note"].startswith(f"OMS refund oms-refund-{refund.pk} ")

        # The order comes back with the hub's refund in refunds[]: no platform after-sale, no second ticket.
        sync(start - timedelta(minutes=15))
        versions = list(InboxMessage.objects.filter(store=store).order_by("id").values_list("status", flat=True))
        assert versions == [InboxStatus.DONE, InboxStatus.DONE]  # the order as it came back was applied
        assert list(Ticket.objects.values_list("pk", flat=True)) == [ticket.pk]

        # The same refund without its note (the id alone tells it is the hub's, gid or number) opens none either;
        # a refund the seller made in Shopify's admin does open one.
        sandbox.set_clock(start - timedelta(minutes=10))
        changed = copy.deepcopy(sandbox.orders[order.platform_order_id])
        changed["refunds"][0]["note"] = ""
        changed["refunds"][0]["id"] = f"gid://shopify/Refund/{shopify_refund['id']}"
        admin_refund = copy.deepcopy(shopify_refund)
        admin_refund.update(id=shopify_refund["id"] + 1000, note="Refunded in the admin",
                            admin_graphql_api_id=f"gid://shopify/Refund/{shopify_refund['id'] + 1000}")
        changed["refunds"].append(admin_refund)
        changed["updated_at"] = sandbox.iso(sandbox.now())
        sandbox.put_order(changed, push=False)
        sync(start - timedelta(minutes=5))
        opened = Ticket.objects.exclude(pk=ticket.pk).get()
        assert (opened.source, opened.platform_after_sale_id) == ("platform", str(shopify_refund["id"] + 1000))
        assert Ticket.objects.count() == 2
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.REFUNDED
        assert not TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.PLATFORM_UPDATED).exists()
    finally:
        sandbox.stop()


def test_the_shopify_mapping_leaves_out_the_hubs_refunds_and_keeps_refund_ids_numeric():
    payload = {"id": 5001, "line_items": [{"id": 7, "quantity": 1, "price": "10.00", "sku": "A"}], "currency": "USD",
               "total_price": "10.00", "financial_status": "partially_refunded",
               "created_at": "2026-12-01T10:00:00+08:00", "updated_at": "2026-12-01T11:00:00+08:00",
               "refunds": [
                   {"id": 901, "note": "OMS refund oms-refund-12", "created_at": "2026-12-01T10:30:00+08:00",
                    "transactions": [{"kind": "refund", "status": "success", "amount": "5.00"}]},
                   {"id": "gid://shopify/Refund/902", "note": "", "created_at": "2026-12-01T10:40:00+08:00",
                    "transactions": [{"kind": "refund", "status": "success", "amount": "2.00"}]}]}
    after_sales = map_shopify_order(payload).after_sale_requests
    assert [(a.platform_after_sale_id, a.refund_amount) for a in after_sales] == [("902", Decimal("2.00"))]


# --- 2. Refunds only through the refunds flow; a refused refund tried again ---------------------------------------

@pytest.mark.django_db
def test_a_person_refunds_a_held_graded_return_through_the_refunds_flow(manual_order, warehouse, role_users):
    tea, _cup = lines_of(manual_order)
    ticket = services.ticket_create(order_id=manual_order.pk, type="return_refund", reason="changed_mind",
                                    lines=[TicketLineInput(tea.pk, 1)])
    for name in ("approve", "await_return", "receive", "grade"):
        ticket = services.ticket_transition(ticket_id=ticket.pk, name=name)
    ReturnUnit.objects.create(ticket=ticket, ticket_line=ticket.lines.get(), unit_no=1, sku=SKU.objects.get(
        code="TEA-LJ-250G"), grade=Grade.NOT_RESALABLE,
        warehouse=warehouse)
    ticket = ticket_flow.ticket_follow_up(ticket=ticket)
    assert ticket.status == TicketStatus.GRADED and not Refund.objects.exists()  # held for a person
    agent = role_users["customer_service"]
    client = login(agent)
    page = client.get(f"/aftersales/{ticket.pk}/").content.decode()
    assert 'data-transition="start_refund"' in page and 'data-transition="confirm_refund"' not in page

    # confirm_refund is no action of a person: the ticket would be refunded without any money going out.
    response = client.post(f"/aftersales/{ticket.pk}/transition/confirm_refund/", {}, follow=True)
    assert "未知操作" in banner(response)
    response = client.post(f"/aftersales/{ticket.pk}/transition/start_refund/", {"reason": "客户同意按折旧退"},
                           follow=True)
    assert response.status_code == 200 and "msg-error" not in response.content.decode()
    ticket.refresh_from_db()
    refund = Refund.objects.get(ticket=ticket)
    assert (ticket.status, refund.amount, refund.method, refund.status) == (
        TicketStatus.REFUNDED, Decimal("188.00"), "original", RefundStatus.CONFIRMED)
    started = TicketEvent.objects.get(ticket=ticket, to_status=TicketStatus.REFUNDING)
    assert (started.actor_id, started.reason) == (agent.pk, "客户同意按折旧退")
    assert ticket.first_response_at is not None


@pytest.mark.django_db
def test_a_person_cannot_refund_a_resend_or_a_ticket_still_requested(manual_order, api_client_for):
    tea, _cup = lines_of(manual_order)
    requested = services.ticket_create(order_id=manual_order.pk, type="refund_only", reason="quality",
                                       lines=[TicketLineInput(tea.pk, 1, Decimal("10.00"))])
    resend = services.ticket_create(order_id=manual_order.pk, type="resend", reason="lost_in_transit",
                                    lines=[TicketLineInput(tea.pk, 1)])
    resend = services.ticket_transition(ticket_id=resend.pk, name="approve")
    client = api_client_for("customer_service")
    for ticket in (requested, resend):
        response = client.post(f"/api/v1/tickets/{ticket.pk}/transition/", {"name": "start_refund"}, format="json")
        assert (response.status_code, response.json()["code"]) == (409, "refund_not_allowed")
    assert not Refund.objects.exists()
    assert Ticket.objects.get(pk=resend.pk).status == TicketStatus.APPROVED
    # A resend waits for no parcel and ships its replacement by the parcel, not by a click.
    assert ticket_flow.ticket_actions_available(Ticket.objects.get(pk=resend.pk)) == ["create_replacement", "close"]


@pytest.mark.django_db(transaction=True)
def test_a_refund_the_platform_refused_is_tried_again_from_the_ticket_page(skus, role_users):
    sandbox = TaobaoSandbox(port=0, skus=[("TEA-LJ-250G", "268.00")], seed=11)
    sandbox.start()
    try:
        store = channel_store(platform=Platform.TAOBAO, code="tb-retry", name="淘宝店",
                              credentials=sandbox.connector_credentials())
        generated = sandbox.generate_order(lines=1, status="WAIT_SELLER_SEND_GOODS")
        sandbox.put_order(generated, push=False)
        connector_services.store_poll(store_id=store.pk)
        channel.inbox_process_store(store_id=store.pk)
        order = Order.objects.get(store=store)
        request = sandbox.open_refund_request(order.platform_order_id, refund_fee=Decimal("10.00"))
        ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality", source="platform",
                                        platform_after_sale_id=request["refund_id"],
                                        lines=[TicketLineInput(order.lines.get().pk, 1)])
        # More than the buyer asked for: Taobao refuses it.
        ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve", approved_amount=Decimal("20.00"))
        first_push = RefundPush.objects.get()
        RefundPush.objects.filter(pk=first_push.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert refund_flow.refund_push_deliver(push_id=first_push.pk) == RefundPushStatus.FAILED
        failed = Refund.objects.get()
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.REFUNDING

        agent = role_users["customer_service"]
        client = login(agent)
        page = client.get(f"/aftersales/{ticket.pk}/").content.decode()
        assert 'data-transition="retry_refund"' in page
        assert f'data-refund-error="{failed.pk}"' in page and "退款金额超过申请金额" in page

        # The buyer raises the request on Taobao; customer service tries again from the page.
        with sandbox.lock:
            sandbox.refund_requests[request["refund_id"]]["refund_fee"] = "20.00"
        response = client.post(f"/aftersales/{ticket.pk}/transition/retry_refund/", {}, follow=True)
        assert "msg-error" not in response.content.decode(), banner(response)
        second = Refund.objects.exclude(pk=failed.pk).get()
        assert (second.amount, second.status) == (Decimal("20.00"), RefundStatus.PENDING)
        # A second click while the new refund waits for the platform is refused; nothing more is recorded.
        response = client.post(f"/aftersales/{ticket.pk}/transition/retry_refund/", {}, follow=True)
        assert "操作被拒绝" in banner(response)
        assert Refund.objects.count() == 2 and RefundPush.objects.count() == 2
        second_push = RefundPush.objects.exclude(pk=first_push.pk).get()
        assert second_push.refund_ref == second.pk
        RefundPush.objects.filter(pk=second_push.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert refund_flow.refund_push_deliver(push_id=second_push.pk) == RefundPushStatus.SENT
        ticket.refresh_from_db()
        failed.refresh_from_db()
        assert (ticket.status, failed.status) == (TicketStatus.REFUNDED, RefundStatus.FAILED)
        assert sandbox.refund_requests[request["refund_id"]]["status"] == "SUCCESS"
        assert TicketEvent.objects.get(ticket=ticket, data__refund_retry_of=failed.pk).actor_id == agent.pk
    finally:
        sandbox.stop()


# --- 3. Platform tickets are due by the store's policy ------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("quantity", [1, 5])  # 5 > bought: the checks refuse it and the ticket opens flagged
def test_a_platform_ticket_is_due_by_the_stores_policy(manual_order, quantity):
    AftersalesPolicy.objects.create(store=manual_order.store, first_response_minutes=120, work_starts="00:00",
                                    work_ends="00:00")  # round the clock: due exactly 120 minutes after opening
    tea, _cup = lines_of(manual_order)
    before = timezone.now()
    ticket, outcome = ticket_upsert_from_platform(
        store_id=manual_order.store_id, order_id=manual_order.pk, after_sale=PlatformAfterSale(
            platform_after_sale_id="AS-DUE", type="refund_only", status="open", raw_status="OPEN",
            updated_at=before, lines=[PlatformAfterSaleLine(order_line_id=tea.pk, quantity=quantity)]))
    assert outcome == "created" and bool(ticket.checks and not ticket.checks[0]["ok"]) == (quantity == 5)
    assert before + timedelta(minutes=120) <= ticket.due_at <= timezone.now() + timedelta(minutes=120)
    assert ticket.due_at == selectors.first_response_due(policy=selectors.policy_for_store(ticket.store_id),
                                                         opened_at=ticket.due_at - timedelta(minutes=120))
    assert not hasattr(services, "FIRST_RESPONSE_WITHIN")


# --- 4. An exchange for another SKU ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_exchange_line_names_another_sku_and_the_replacement_sends_it(manual_order, skus):
    tea, _cup = lines_of(manual_order)
    ticket = services.ticket_create(order_id=manual_order.pk, type="exchange", reason="size",
                                    lines=[TicketLineInput(tea.pk, 1, replacement_sku=" CUP-CER-350 ")])
    assert ticket.lines.get().replacement_sku == skus["CUP-CER-350"]
    for name in ("approve", "await_return", "receive", "grade"):
        ticket = services.ticket_transition(ticket_id=ticket.pk, name=name)
    ticket = ticket_flow.ticket_follow_up(ticket=ticket)
    replacement = ticket.replacement_order
    assert [(line.sku_code, line.title, line.quantity) for line in replacement.lines.all()] == [
        ("CUP-CER-350", "陶瓷马克杯 350ml", 1)]


@pytest.mark.django_db
@pytest.mark.parametrize(("type", "code", "message"), [
    ("refund_only", "CUP-CER-350", "只有换货才能换成其他 SKU，请留空。"),
    ("exchange", "NO-SUCH", "没有 SKU NO-SUCH。"),
    ("exchange", "OLD-SKU", "SKU OLD-SKU 已停售。"),
    ("exchange", "X" * 65 + "\x00", "没有 SKU " + "X" * 64 + "。"),
])
def test_a_replacement_sku_is_refused_per_line_and_nothing_is_written(manual_order, type, code, message):
    SKU.objects.create(code="OLD-SKU", name="停售款", active=False)
    tea, cup = lines_of(manual_order)
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_create(order_id=manual_order.pk, type=type, reason="size",
                               lines=[TicketLineInput(cup.pk, 1), TicketLineInput(tea.pk, 1, replacement_sku=code)])
    assert list(refused.value.data) == ["lines[1].replacement_sku"]
    assert [str(text) for text in refused.value.data["lines[1].replacement_sku"]] == [message]
    assert not Ticket.objects.exists() and not TicketLine.objects.exists()


@pytest.mark.django_db
def test_the_desk_and_the_api_set_and_show_the_replacement_sku(manual_order, skus, role_users, api_client_for):
    tea, cup = lines_of(manual_order)
    client = login(role_users["customer_service"])
    form = {"type": "exchange", "reason": "size", "shipping_amount": "0", f"line_{tea.pk}_quantity": "1",
            f"line_{tea.pk}_replacement_sku": "CUP-CER-350", f"line_{cup.pk}_quantity": "0"}
    refused = client.post(f"/aftersales/new/{manual_order.pk}/", {**form, f"line_{tea.pk}_replacement_sku": "NOPE"})
    assert refused.status_code == 400
    assert f'data-error="line_{tea.pk}_replacement_sku"' in refused.content.decode()
    response = client.post(f"/aftersales/new/{manual_order.pk}/", form)
    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.lines.get().replacement_sku == skus["CUP-CER-350"]
    page = client.get(f"/aftersales/{ticket.pk}/").content.decode()
    assert 'data-field="replacement-sku"><span class="mono">CUP-CER-350</span> 陶瓷马克杯 350ml' in page

    api = api_client_for("customer_service")
    body = {"order": manual_order.pk, "type": "exchange", "reason": "size",
            "lines": [{"order_line_id": tea.pk, "quantity": 1, "replacement_sku": "GIFT-BAG"}]}
    created = api.post("/api/v1/tickets/", body, format="json")
    assert created.status_code == 201, created.json()
    assert [line["replacement_sku"] for line in created.json()["lines"]] == ["GIFT-BAG"]
    body["lines"] = [{"order_line_id": cup.pk, "quantity": 1, "replacement_sku": "NOPE"}]
    refused = api.post("/api/v1/tickets/", body, format="json").json()
    assert refused["code"] == "ticket_invalid" and list(refused["errors"] if "errors" in refused
                                                        else refused["data"]) == ["lines[0].replacement_sku"]
    assert Ticket.objects.count() == 2


# --- 5. A replacement the flow could not make, made by hand ---------------------------------------------------------

@pytest.mark.django_db
def test_a_resend_whose_replacement_failed_gets_it_from_the_ticket_page(manual_order, skus, role_users):
    tea, _cup = lines_of(manual_order)
    SKU.objects.filter(pk=skus["TEA-LJ-250G"].pk).update(active=False)
    ticket = ticket_flow.ticket_open(order_id=manual_order.pk, type="resend", reason="lost_in_transit",
                                     lines=[TicketLineInput(tea.pk, 1)])
    agent = role_users["customer_service"]
    client = login(agent)
    response = client.post(f"/aftersales/{ticket.pk}/transition/approve/", {"approved_amount": "0"}, follow=True)
    assert "msg-error" not in response.content.decode(), banner(response)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.replacement_order_id) == (TicketStatus.APPROVED, None)
    held = TicketEvent.objects.get(ticket=ticket, data__has_key="replacement_held")
    assert "TEA-LJ-250G" in held.reason
    page = client.get(f"/aftersales/{ticket.pk}/").content.decode()
    assert 'data-transition="create_replacement"' in page and 'data-held="replacement"' in page

    # Still not sold: the click says why, nothing is made.
    response = client.post(f"/aftersales/{ticket.pk}/transition/create_replacement/", {}, follow=True)
    assert "操作被拒绝" in banner(response) and "TEA-LJ-250G" in banner(response)
    assert not Order.objects.filter(replaces=manual_order).exists()

    SKU.objects.filter(pk=skus["TEA-LJ-250G"].pk).update(active=True)
    response = client.post(f"/aftersales/{ticket.pk}/transition/create_replacement/", {}, follow=True)
    assert "msg-error" not in response.content.decode(), banner(response)
    ticket.refresh_from_db()
    replacement = Order.objects.get(replaces=manual_order)
    assert ticket.replacement_order_id == replacement.pk
    assert TicketEvent.objects.get(ticket=ticket, type=TicketEventType.REPLACEMENT_CREATED).actor_id == agent.pk
    page = client.get(f"/aftersales/{ticket.pk}/").content.decode()
    assert 'data-transition="create_replacement"' not in page and 'data-held="replacement"' not in page


# --- 6. One read of what tickets already claim ----------------------------------------------------------------------

@pytest.mark.django_db
def test_the_new_ticket_page_and_the_service_read_the_same_claims(manual_order, role_users):
    tea, cup = lines_of(manual_order)
    first = services.ticket_create(order_id=manual_order.pk, type="refund_only", reason="quality",
                                   lines=[TicketLineInput(tea.pk, 1, Decimal("20.00"))])
    services.ticket_create(order_id=manual_order.pk, type="return_refund", reason="quality",
                           lines=[TicketLineInput(tea.pk, 1)])
    rejected = services.ticket_create(order_id=manual_order.pk, type="refund_only", reason="quality",
                                      lines=[TicketLineInput(cup.pk, 1)])
    services.ticket_transition(ticket_id=rejected.pk, name="reject")
    units, amounts = selectors.ticket_claimed_on_lines([tea.pk, cup.pk])
    assert (units[tea.pk], amounts[tea.pk], units[cup.pk], amounts[cup.pk]) == (
        2, Decimal("208.00"), 0, Decimal("0"))
    units, _amounts = selectors.ticket_claimed_on_lines([tea.pk], excluding=first.pk)
    assert units[tea.pk] == 1
    page = login(role_users["customer_service"]).get(f"/aftersales/new/{manual_order.pk}/").content.decode()
    assert f'name="line_{tea.pk}_quantity" value="0"' in page and f'name="line_{cup.pk}_quantity" value="1"' in page
    assert services.money_or_none("1.005") == Decimal("1.01") and services.money_or_none("NaN") is None
    assert not hasattr(services, "_money_or_none") and refund_services.money_or_none is services.money_or_none


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_retries_record_one_new_refund(make_order):
    order = make_order()  # a Taobao order: its refunds go to the platform through the outbox
    tea, _cup = lines_of(order)
    ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1, Decimal("30.00"))])
    ticket_flow.ticket_apply_transition(ticket_id=ticket.pk, name="approve")
    failed = Refund.objects.get()
    refund_services.refund_fail(refund_id=failed.pk, error="平台拒绝")
    barrier = threading.Barrier(2)
    made, refused, errors = [], [], []

    def retry():
        try:
            barrier.wait(timeout=10)
            made.append(refund_flow.ticket_refund_retry(ticket_id=ticket.pk).pk)
        except ConflictError as exc:
            refused.append(exc.code)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a thread hit
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (errors, len(made), refused) == ([], 1, ["refund_retry_not_allowed"])
    assert list(Refund.objects.order_by("id").values_list("status", "amount")) == [
        (RefundStatus.FAILED, Decimal("30.00")), (RefundStatus.PENDING, Decimal("30.00"))]
    assert sorted(RefundPush.objects.values_list("refund_ref", flat=True)) == [failed.pk, made[0]]
