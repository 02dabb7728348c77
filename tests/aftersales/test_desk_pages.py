"""The customer-service pages of after-sales, read in Chinese: the queue and its filters, a ticket with its checks,
timeline and buttons, opening a ticket from an order; refusals show why and change nothing."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone, translation

from aftersales import services
from aftersales.models import Ticket, TicketEvent, TicketEventType, TicketLine, TicketStatus
from aftersales.services import TicketLineInput
from fulfillment.models import Shipment
from tests.aftersales.helpers import ship_order
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


@pytest.fixture
def order(make_order):
    """Shipped order: 2 × TEA-LJ-250G at 188.00 and 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00."""
    return ship_order(make_order())


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def open_ticket(order, *, type="return_refund", reason="damaged", quantity=1, amount=None, **extra) -> Ticket:
    tea, _cup = lines_of(order)
    return services.ticket_create(order_id=order.pk, type=type, reason=reason,
                                  lines=[TicketLineInput(tea.pk, quantity, amount)], **extra)


def numbers_in(page: str) -> set[str]:
    return set(re.findall(r'data-ticket="(RMA\d+)"', page))


def test_queue_filters_by_state_type_store_owner_overdue_and_escalation(role_users, make_order):
    agent = role_users["customer_service"]
    mine = open_ticket(ship_order(make_order()))
    services.ticket_assign(ticket_id=mine.pk, owner=agent, actor=agent)
    late = open_ticket(make_order(), type="refund_only", amount=Decimal("20.00"))
    Ticket.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=5))
    escalated = open_ticket(ship_order(make_order()), type="exchange", reason="size")
    Ticket.objects.filter(pk=escalated.pk).update(escalated_at=timezone.now())
    done = services.ticket_transition(ticket_id=open_ticket(ship_order(make_order())).pk, name="reject", actor=agent,
                                      reason="超过七天")
    client = login(agent)

    page = client.get("/aftersales/").content.decode()
    assert numbers_in(page) == {mine.number, late.number, escalated.number, done.number}
    assert "售后工单" in page and "共 4 个售后单" in page
    # The late first reply is red in the queue; the others are not.
    row = re.search(rf'<tr data-ticket="{late.number}" class="overdue">.*?</tr>', page, re.S).group(0)
    assert 'data-overdue="true"' in row and "已超时" in row
    assert page.count('data-overdue="true"') == 1
    assert "已升级" in re.search(rf'<tr data-ticket="{escalated.number}".*?</tr>', page, re.S).group(0)

    def shown(query: str) -> set[str]:
        response = client.get(f"/aftersales/?{query}")
        assert response.status_code == 200
        return numbers_in(response.content.decode())

    assert shown("status=requested") == {mine.number, late.number, escalated.number}
    assert shown("status=rejected") == {done.number}
    assert shown("type=refund_only") == {late.number}
    assert shown("store=tb") == {mine.number, late.number, escalated.number, done.number}
    assert shown("owner=mine") == {mine.number}
    assert shown("owner=unassigned") == {late.number, escalated.number, done.number}
    assert shown("overdue=true") == {late.number}
    assert shown("overdue=false") == {mine.number, escalated.number, done.number}
    assert shown("escalated=true") == {escalated.number}
    assert shown("owner=mine&status=rejected") == set()
    # A value the filter does not know is a form error, never a 500.
    refused = client.get("/aftersales/?overdue=maybe&status=lost").content.decode()
    assert 'class="error"' in refused


def test_filters_refresh_only_the_table_through_htmx(role_users, order):
    ticket = open_ticket(order)
    response = login(role_users["customer_service"]).get("/aftersales/?type=return_refund", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page and numbers_in(page) == {ticket.number}


def test_ticket_page_shows_lines_checks_amounts_timeline_and_the_allowed_buttons(role_users, order):
    ticket = open_ticket(order, quantity=2, shipping_amount=Decimal("10.00"), actor=role_users["customer_service"])
    page = login(role_users["customer_service"]).get(f"/aftersales/{ticket.pk}/").content.decode()

    assert ticket.number in page and "待审核" in page and "退货退款" in page and "到货破损" in page
    assert "TEA-LJ-250G" in page and "376.00" in page and "10.00" in page
    checks = re.findall(r'data-check="(\w+)" data-ok="(\w+)"', page)
    assert checks == [("window", "true"), ("line", "true")]
    assert "✓ 通过" in page and "退货期限" in page and "第 1 行" in page
    assert re.findall(r'data-transition="(\w+)"', page) == ["approve", "reject", "close"]
    # Approving asks for the amount, filled with what the ticket asks for (goods and shipping).
    assert 'name="approved_amount" step="0.01" min="0" max="386.00" value="386.00"' in page
    assert 'data-transition="receive"' not in page and 'data-transition="grade"' not in page
    assert 'data-event="created"' in page and "u_customer_service" in page
    # Times in Asia/Shanghai.
    assert timezone.localtime(ticket.created_at).strftime("%Y-%m-%d %H:%M") in page

    # The warehouse sees the ticket but has no buttons on it.
    warehouse_page = login(role_users["warehouse"]).get(f"/aftersales/{ticket.pk}/").content.decode()
    assert "data-transition=" not in warehouse_page and 'data-action="note"' not in warehouse_page


def test_a_failed_check_shows_as_failed_with_its_message(role_users, order):
    ticket = open_ticket(order)
    Ticket.objects.filter(pk=ticket.pk).update(checks=[*ticket.checks, {
        "check": "auto_approval", "ok": False, "message": "超过规则上限 50.00"}])
    page = login(role_users["customer_service"]).get(f"/aftersales/{ticket.pk}/").content.decode()
    assert 'data-check="auto_approval" data-ok="false"' in page
    assert "✗ 未通过" in page and "自动审核: 超过规则上限 50.00" in page


def test_approving_with_a_smaller_amount_moves_the_return_on_and_records_who(role_users, order):
    agent = role_users["customer_service"]
    ticket = open_ticket(order)
    response = login(agent).post(f"/aftersales/{ticket.pk}/transition/approve/",
                                 {"approved_amount": "150.00", "reason": "部分同意"}, follow=True)
    ticket.refresh_from_db()
    # A return waits for the buyer's parcel once approved (pipeline.tickets).
    assert (ticket.status, ticket.approved_amount) == (TicketStatus.AWAITING_RETURN, Decimal("150.00"))
    assert ticket.first_response_at is not None
    steps = list(TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.STATUS_CHANGED)
                 .order_by("id").values_list("to_status", "actor__username", "reason"))
    assert steps == [("approved", "u_customer_service", "部分同意"), ("awaiting_return", None, "")]
    page = response.content.decode()
    assert "操作成功" in page and "等待买家退货" in page
    assert "退货由仓库在退货签收页签收并质检。" in page


@pytest.mark.parametrize(("name", "data", "why"), [
    ("confirm_refund", {}, "未知操作"),  # refunded only by the money going out, never by a click
    ("ship_replacement", {}, "未知操作"),  # shipped by the replacement's parcel, never by a click
    ("await_return", {}, "不能"),
    ("approve", {"approved_amount": "188.01"}, "188.00"),
    ("approve", {"approved_amount": "1e999"}, "操作被拒绝"),
    ("reject", {"reason": "   "}, "请填写拒绝原因。"),
    ("receive", {}, "退货需在退货签收页签收和质检。"),
])
def test_a_refused_move_shows_a_red_banner_and_changes_nothing(role_users, order, name, data, why):
    ticket = open_ticket(order)
    events_before = TicketEvent.objects.count()
    response = login(role_users["customer_service"]).post(f"/aftersales/{ticket.pk}/transition/{name}/", data,
                                                          follow=True)
    page = response.content.decode()
    banner = re.search(r'<li class="msg-error" role="alert">(.*?)</li>', page, re.S)
    assert response.status_code == 200 and banner is not None
    assert "操作被拒绝" in banner.group(1) and why in banner.group(1)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REQUESTED and ticket.approved_amount is None
    assert ticket.first_response_at is None
    assert TicketEvent.objects.count() == events_before


def test_roles_without_the_permission_cannot_move_a_ticket(role_users, order):
    ticket = open_ticket(order)
    for role in ("warehouse", "finance"):
        assert login(role_users[role]).post(f"/aftersales/{ticket.pk}/transition/approve/").status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.REQUESTED
    assert login(role_users["customer_service"]).post("/aftersales/999999/transition/close/").status_code == 404


def test_assign_tracking_number_and_note_from_the_ticket_page(role_users, order):
    agent = role_users["customer_service"]
    ticket = open_ticket(order)
    client = login(agent)
    client.post(f"/aftersales/{ticket.pk}/assign/")
    client.post(f"/aftersales/{ticket.pk}/tracking/", {"tracking_number": "SF1234567890"})
    page = client.post(f"/aftersales/{ticket.pk}/note/", {"text": "买家说外盒压坏"}, follow=True).content.decode()
    ticket.refresh_from_db()
    assert (ticket.owner, ticket.return_tracking_number) == (agent, "SF1234567890")
    assert list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", flat=True)) == [
        "created", "assigned", "note_added", "note_added"]
    assert "买家说外盒压坏" in page and "SF1234567890" in page and 'data-action="unassign"' in page
    refused = client.post(f"/aftersales/{ticket.pk}/note/", {"text": ""}, follow=True).content.decode()
    assert "备注" in refused and 'class="msg-error"' in refused
    assert TicketEvent.objects.filter(ticket=ticket).count() == 4


def test_the_order_page_offers_a_new_ticket_to_customer_service_only(role_users, order):
    button = f'href="/aftersales/new/{order.pk}/" data-action="new-ticket"'
    page = login(role_users["customer_service"]).get(f"/orders/{order.pk}/").content.decode()
    assert button in page and "新建售后" in page
    assert button not in login(role_users["warehouse"]).get(f"/orders/{order.pk}/").content.decode()
    assert login(role_users["warehouse"]).get(f"/aftersales/new/{order.pk}/").status_code == 403
    assert login(role_users["customer_service"]).get("/aftersales/new/999999/").status_code == 404


def test_the_new_ticket_form_is_prefilled_with_what_can_still_be_claimed(role_users, order):
    tea, cup = lines_of(order)
    open_ticket(order, quantity=1)  # one tea is under another ticket already
    page = login(role_users["customer_service"]).get(f"/aftersales/new/{order.pk}/").content.decode()
    assert f'name="line_{tea.pk}_quantity" value="1"' in page and f'name="line_{cup.pk}_quantity" value="1"' in page
    assert 'placeholder="188.00"' in page and 'placeholder="34.90"' in page
    assert "售后类型" in page and "退运费" in page and "退货运单号" in page and "提交售后单" in page


def new_ticket_post(order, **overrides) -> dict:
    tea, cup = lines_of(order)
    data = {"type": "return_refund", "reason": "damaged", "reason_text": "", "shipping_amount": "0",
            "return_tracking_number": "", f"line_{tea.pk}_quantity": "1", f"line_{tea.pk}_amount": "",
            f"line_{cup.pk}_quantity": "0", f"line_{cup.pk}_amount": ""}
    data.update(overrides)
    return data


def test_a_ticket_opened_from_the_order_page_lands_on_its_page(role_users, order):
    tea, _cup = lines_of(order)
    client = login(role_users["customer_service"])
    response = client.post(f"/aftersales/new/{order.pk}/", new_ticket_post(
        order, reason="other", reason_text="颜色和图片不一样", shipping_amount="10.00",
        return_tracking_number="YT9876543210"))
    ticket = Ticket.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/aftersales/{ticket.pk}/"
    assert (ticket.type, ticket.reason, ticket.reason_text, ticket.source) == (
        "return_refund", "other", "颜色和图片不一样", "desk")
    assert (ticket.requested_amount, ticket.requested_shipping) == (Decimal("188.00"), Decimal("10.00"))
    assert ticket.return_tracking_number == "YT9876543210"
    assert list(ticket.lines.values_list("order_line_id", "quantity")) == [(tea.pk, 1)]
    assert TicketEvent.objects.get(ticket=ticket).actor == role_users["customer_service"]
    assert f"售后单 {ticket.number} 已创建。" in client.get(response["Location"]).content.decode()


def delivered(order, days_ago: int) -> None:
    Shipment.objects.filter(lines__order=order).update(delivered_at=timezone.now() - timedelta(days=days_ago))


@pytest.mark.parametrize(("overrides", "field", "message"), [
    (lambda tea, cup: {f"line_{tea.pk}_quantity": "3"}, "line_{tea}_quantity", "最多"),
    (lambda tea, cup: {f"line_{cup.pk}_quantity": "1", f"line_{cup.pk}_amount": "34.91",
                       f"line_{tea.pk}_quantity": "0"}, "line_{cup}_amount", "34.90"),
    (lambda tea, cup: {"shipping_amount": "10.01"}, "shipping_amount", "10.00"),
    (lambda tea, cup: {"reason": "other"}, "reason_text", None),
    (lambda tea, cup: {f"line_{tea.pk}_quantity": "0"}, "form", None),
    (lambda tea, cup: {f"line_{tea.pk}_amount": "99999999999999999"}, "line_{tea}_amount", None),
    (lambda tea, cup: {"reason": ""}, "reason", "请选择买家的售后原因。"),
])
def test_bad_input_is_a_form_error_next_to_its_field_and_nothing_is_created(role_users, order, overrides, field,
                                                                            message):
    tea, cup = lines_of(order)
    response = login(role_users["customer_service"]).post(f"/aftersales/new/{order.pk}/",
                                                          new_ticket_post(order, **overrides(tea, cup)))
    page = response.content.decode()
    assert response.status_code == 400
    name = field.format(tea=tea.pk, cup=cup.pk)
    errors = re.findall(rf'<p class="(?:error|msg-error)"(?: role="alert")? data-error="{re.escape(name)}">(.*?)</p>',
                        page, re.S)
    assert errors, page
    if message:
        assert message in errors[0]
    assert not Ticket.objects.exists() and not TicketLine.objects.exists() and not TicketEvent.objects.exists()


def test_a_return_after_the_window_is_refused_on_the_form(role_users, order):
    order.store.return_window_days = 3
    order.store.save(update_fields=["return_window_days"])
    delivered(order, days_ago=4)
    response = login(role_users["customer_service"]).post(f"/aftersales/new/{order.pk}/", new_ticket_post(order))
    page = response.content.decode()
    assert response.status_code == 400
    error = re.search(r'data-error="form">(.*?)</p>', page, re.S).group(1)
    assert "退货" in error and "3" in error
    assert not Ticket.objects.exists()


def test_the_menu_links_and_the_escalation_notice(role_users, order):
    cs_page = login(role_users["customer_service"]).get("/orders/").content.decode()
    assert '<a href="/aftersales/">售后</a>' in cs_page and "/aftersales/receiving/" not in cs_page
    warehouse_page = login(role_users["warehouse"]).get("/orders/").content.decode()
    assert '<a href="/aftersales/receiving/">退货签收</a>' in warehouse_page
    assert '<a href="/aftersales/returns/expected/">待收退货</a>' in warehouse_page
    # A manager sees the notice on every page once a ticket is escalated (the count comes from the SLA's
    # context processor); customer service does not.
    ticket = open_ticket(order)
    Ticket.objects.filter(pk=ticket.pk).update(escalated_at=timezone.now())
    manager_page = login(role_users["manager"]).get("/orders/").content.decode()
    assert "有 1 个售后工单超时未更新，已升级给主管" in manager_page
    assert "notice-escalated" not in login(role_users["customer_service"]).get("/orders/").content.decode()
    request = RequestFactory().get("/orders/")
    request.user = role_users["manager"]
    with translation.override("zh-hans"):
        notice = render_to_string("base.html", {"escalated_tickets_count": 3}, request=request)
        quiet = render_to_string("base.html", {"escalated_tickets_count": 0}, request=request)
    assert "有 3 个售后工单超时未更新，已升级给主管" in notice
    assert 'href="/aftersales/?escalated=true"' in notice
    assert "notice-escalated" not in quiet
