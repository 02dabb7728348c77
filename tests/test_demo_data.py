"""The demo data loader: everything it promises exists once, even after a second run."""

from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from aftersales.models import (
    AftersalesPolicy,
    AutoApprovalRule,
    Grade,
    RefundMethod,
    RefundStatus,
    ReturnUnit,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketStatus,
)
from aftersales.selectors import ticket_escalated_q, ticket_overdue_q
from connectors.models import ChannelSyncState, RefundPush
from demo.aftersales import CASES, PLATFORM_CASE, PLATFORM_REFUND_ID, TOUR_TRACKING
from demo.catalog import SKUS
from demo.desk import MASKED_PHONE, VIP, XIAOBEI, XIAOMING
from demo.desk import NOTES as DESK_NOTES
from demo.desk import ORDERS as DESK_ORDERS
from demo.finance import FILE_PREFIX as FINANCE_FILE_PREFIX
from demo.finance import STORE as FINANCE_STORE
from demo.loader import demo_load
from demo.orders import SCARCE_ORDERS
from demo.users import DEMO_USERS
from desk.customers import buyer_key_of_order, customer_view
from desk.models import CustomerNote
from desk.selectors import SearchKind, desk_search
from finance.models import AccountMapping, Difference, DifferenceReason, SettlementFile, SettlementRow
from finance.readers.base import RowKind
from fulfillment.models import Shipment, ShipmentStatus
from inventory.models import SKU, MovementKind, StockMovement, Warehouse
from inventory.services import stock_reconcile
from orders.models import HoldReason, Order, OrderEvent, OrderEventType, OrderStatus, Priority, Store
from pipeline.expedite import order_expedite

ORDERS = 40


@pytest.fixture
def loaded_twice():
    demo_load(orders=ORDERS)
    return demo_load(orders=ORDERS)


@pytest.mark.django_db
def test_demo_users_have_their_roles_and_tokens(loaded_twice):
    users = get_user_model().objects.filter(username__in=[username for username, _role in DEMO_USERS])
    assert users.count() == 5
    for username, role in DEMO_USERS:
        user = users.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_staff == user.is_superuser == (role == "admin")
        assert Token.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_each_printed_password_logs_in(loaded_twice):
    assert [(username, role) for username, role, _password in loaded_twice] == DEMO_USERS
    for username, _role, password in loaded_twice:
        assert password == f"demo-{username}-2026"
        assert authenticate(request=HttpRequest(), username=username, password=password) is not None


@pytest.mark.django_db
def test_master_data_is_not_duplicated(loaded_twice):
    assert Store.objects.count() == 5
    assert Warehouse.objects.count() == 4
    assert list(Warehouse.objects.filter(is_quarantine=True).values_list("code", flat=True)) == ["SH-QC"]
    assert Warehouse.objects.get(code="SH").quarantine_warehouse.code == "SH-QC"
    # The kanban opens on the first warehouse of the picker: still Shanghai, never the quarantine.
    assert Warehouse.objects.filter(active=True).order_by("priority", "code").first().code == "SH"
    assert SKU.objects.count() == len(SKUS) >= 40


@pytest.mark.django_db
def test_orders_are_created_once_in_many_states(loaded_twice):
    # Plus the orders waiting for the scarce SKU, the after-sales orders (WeChat and one Taobao), the exchange's
    # replacement order and the desk's named buyers.
    assert Order.objects.count() == ORDERS + SCARCE_ORDERS + len(CASES) + 1 + 1 + len(DESK_ORDERS)
    assert Order.objects.values("status").distinct().count() > 5
    created = OrderEvent.objects.filter(type=OrderEventType.CREATED)
    assert not Order.objects.exclude(pk__in=created.values("order_id")).exists()


@pytest.mark.django_db
def test_a_changed_password_survives_a_rerun():
    demo_load(orders=0)
    user = get_user_model().objects.get(username="cs")
    user.set_password("my-own-password-42")
    user.save()
    user.groups.clear()

    logins = demo_load(orders=0)

    assert ("cs", "customer_service", None) in logins
    assert authenticate(request=HttpRequest(), username="cs", password="my-own-password-42") is not None
    assert list(user.groups.values_list("name", flat=True)) == ["customer_service"]


@pytest.mark.django_db
def test_demo_orders_walk_through_their_parcels(loaded_twice):
    """The order states of the demo come from real parcels: picking, shipped and delivered agree."""
    from fulfillment.models import Carrier
    from inventory.services import stock_reconcile

    assert Carrier.objects.count() == 4
    shipped = Order.objects.filter(status__in=[OrderStatus.SHIPPED, OrderStatus.DELIVERED])
    in_fulfilment = Order.objects.filter(status=OrderStatus.IN_FULFILMENT)
    assert shipped.exists() and in_fulfilment.exists()  # the loops below check something
    for order in shipped:
        states = set(Shipment.objects.filter(lines__order=order).exclude(status=ShipmentStatus.CANCELLED)
                     .values_list("status", flat=True))
        assert states and states <= {ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED}, order.number
    for order in in_fulfilment:
        assert Shipment.objects.filter(lines__order=order, status=ShipmentStatus.PICKING).exists(), order.number
    assert Shipment.objects.filter(status=ShipmentStatus.TO_PICK).exists()
    assert stock_reconcile() == []


@pytest.mark.django_db
def test_the_channel_stock_page_has_rows_and_the_pushes_reach_the_sandboxes(loaded_twice, role_users):
    """The demo maps each sandbox store's catalogue, so the trial shows stock going out, and each push names a
    SKU the sandbox knows (a wrong id would come back as "no such SKU" on the page)."""
    from django.core.cache import cache
    from django.test import Client

    from connectors import stock_push
    from connectors.models import ChannelStock
    from connectors.sandbox.douyin import DouyinSandbox
    from connectors.sandbox.pdd import PddSandbox
    from connectors.sandbox.shopify import ShopifySandbox
    from connectors.sandbox.taobao import TaobaoSandbox
    from inventory.models import PlatformSKUMapping
    from tests.conftest import PASSWORD

    mapped = PlatformSKUMapping.objects.filter(store__code__in=["shopify-demo", "taobao-demo", "pdd-demo",
                                                                "douyin-demo"])
    assert sorted(mapped.values_list("store__code", flat=True).distinct()) == [
        "douyin-demo", "pdd-demo", "shopify-demo", "taobao-demo"]
    assert mapped.count() == 5 + 6 + 6 + 5  # each default catalogue, less codes the demo does not sell
    assert not PlatformSKUMapping.objects.filter(store__code="wechat-demo").exists()
    rows = ChannelStock.objects.filter(store__code__in=["shopify-demo", "taobao-demo", "pdd-demo", "douyin-demo"])
    assert rows.count() == mapped.count()

    client = Client()
    assert client.login(username=role_users["manager"].username, password=PASSWORD)
    page = client.get("/channels/stock/")
    assert page.status_code == 200 and len(page.context["rows"]) == mapped.count()
    assert "TEA-LJ-250G" in page.content.decode()

    # The sandboxes as `make run` starts them (default catalogues), each on a free port.
    sandboxes = {"shopify-demo": ShopifySandbox(), "taobao-demo": TaobaoSandbox(), "pdd-demo": PddSandbox(),
                 "douyin-demo": DouyinSandbox()}
    try:
        for code, sandbox in sandboxes.items():
            sandbox.start()
            store = Store.objects.get(code=code)
            state = ChannelSyncState.objects.get(store=store)
            state.credentials = {**state.credentials, **sandbox.connector_credentials()}
            state.save(update_fields=["credentials"])
        cache.delete(stock_push.FLUSH_LOCK)
        counts = stock_push.channel_stock_flush()
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
    assert counts["errors"] == 0 and counts["calls"] == mapped.count(), counts
    assert not rows.exclude(last_error="").exists()
    for sandbox in sandboxes.values():
        assert any(push["kind"] in ("stock", "inventory") for push in sandbox.pushed), sandbox


@pytest.mark.django_db
def test_after_sales_tickets_are_made_once_in_each_state_through_the_real_flows(loaded_twice):
    tickets = {ticket.order.platform_order_id: ticket for ticket in Ticket.objects.select_related("order")}
    assert {key: (ticket.type, ticket.status) for key, ticket in tickets.items()} == {
        "WX-AS-001": ("return_refund", TicketStatus.REQUESTED),
        "WX-AS-002": ("refund_only", TicketStatus.REQUESTED),
        "WX-AS-003": ("return_refund", TicketStatus.AWAITING_RETURN),
        "WX-AS-004": ("return_refund", TicketStatus.REFUNDED),
        "WX-AS-005": ("refund_only", TicketStatus.REFUNDED),
        "WX-AS-006": ("exchange", TicketStatus.GRADED),
        "WX-AS-007": ("return_refund", TicketStatus.REJECTED),
        "WX-AS-008": ("return_refund", TicketStatus.CLOSED),
        PLATFORM_CASE.key: ("refund_only", TicketStatus.REFUNDED),
        "WX-DESK-002": ("return_refund", TicketStatus.REQUESTED),  # the desk's returning buyer
    }
    assert sorted(ticket.store.code for ticket in tickets.values()) == ["taobao-demo"] + ["wechat-demo"] * 9
    now = timezone.now()
    overdue = set(Ticket.objects.filter(ticket_overdue_q(now)).values_list("order__platform_order_id", flat=True))
    assert overdue == {"WX-AS-001", "WX-AS-002"}
    assert list(Ticket.objects.filter(ticket_escalated_q()).values_list("order__platform_order_id", flat=True)) == [
        "WX-AS-002"]
    assert TicketEvent.objects.filter(type=TicketEventType.ESCALATED).count() == 1

    # The tour's parcel: scanned by its tracking number at the receiving station.
    assert Ticket.objects.get(return_tracking_number=TOUR_TRACKING) == tickets["WX-AS-003"]
    assert tickets["WX-AS-003"].approved_amount == Decimal("226.00")

    # Graded unit by unit at SH: restocked, quarantined and written off, then refunded (manual store: at once).
    refunded = tickets["WX-AS-004"]
    assert list(ReturnUnit.objects.filter(ticket=refunded).order_by("pk").values_list(
        "sku__code", "unit_no", "grade", "warehouse__code")) == [
        ("TEA-LJ-250G", 1, Grade.RESALABLE, "SH"), ("TEA-LJ-250G", 2, Grade.MINOR_WEAR, "SH-QC"),
        ("CUP-CER-350", 1, Grade.NOT_RESALABLE, "SH-QC")]
    assert list(StockMovement.objects.filter(reference=f"return:{refunded.number}").order_by("pk").values_list(
        "warehouse__code", "kind", "sku__code", "on_hand_delta")) == [
        ("SH", MovementKind.RETURN_RESTOCK, "TEA-LJ-250G", 1), ("SH-QC", MovementKind.RETURN_IN, "TEA-LJ-250G", 1),
        ("SH-QC", MovementKind.RETURN_IN, "CUP-CER-350", 1), ("SH-QC", MovementKind.WRITE_OFF, "CUP-CER-350", -1)]
    assert [(r.amount, r.status) for r in refunded.refunds.all()] == [(Decimal("575.00"), RefundStatus.CONFIRMED)]

    # Refund only within the store's rule: approved by the rule, paid back at once.
    auto = tickets["WX-AS-005"]
    assert auto.events.filter(type=TicketEventType.AUTO_APPROVED).count() == 1
    assert [(r.amount, r.status) for r in auto.refunds.all()] == [(Decimal("49.90"), RefundStatus.CONFIRMED)]
    assert AutoApprovalRule.objects.get(store__code="wechat-demo").max_amount == Decimal("50.00")
    assert AftersalesPolicy.objects.get().store.code == "wechat-demo"

    # The exchange's replacement order waits on the SH kanban, at no charge.
    replacement = tickets["WX-AS-006"].replacement_order
    assert replacement.number == f"{tickets['WX-AS-006'].order.number}-R1"
    assert replacement.total_amount == Decimal("0") and replacement.replaces_id == tickets["WX-AS-006"].order_id
    assert list(Shipment.objects.filter(lines__order=replacement).values_list("status", "warehouse__code")) == [
        (ShipmentStatus.TO_PICK, "SH")]
    assert stock_reconcile() == []

    # The Taobao after-sale, opened and then refunded by the platform: its payout recorded once, nothing sent out.
    platform = tickets[PLATFORM_CASE.key]
    assert (platform.source, platform.platform_after_sale_id, platform.platform_status) == (
        "platform", PLATFORM_REFUND_ID, "SUCCESS")
    assert [(r.amount, r.method, r.status) for r in platform.refunds.all()] == [
        (Decimal("29.90"), RefundMethod.PLATFORM, RefundStatus.CONFIRMED)]
    assert not RefundPush.objects.exists()


def _desk_order(key: str) -> Order:
    return Order.objects.get(platform_order_id=key)


def _hits(query: str) -> list[tuple[str, str, str, list[SearchKind]]]:
    """(platform order id, receiver name, receiver phone, what matched) of every hit, as customer service sees it."""
    result = desk_search(query=query, user=get_user_model().objects.get(username="cs"))
    assert result.pages <= 1  # every hit is on the page read here
    return sorted((hit.order.platform_order_id, hit.receiver_name, hit.receiver_phone, hit.kinds)
                  for hit in result.hits)


XIAOBEI_KEYS = ["4018362291750235678", "WX-DESK-001", "WX-DESK-002", "4018362291750246678", "4018362291750257678"]
DOUYIN_KEY = "6920260512345675678"


@pytest.mark.django_db
def test_the_desk_finds_the_named_buyers_by_each_kind_of_key(loaded_twice):
    last_four = SearchKind.LAST_FOUR
    # The last four: 王小贝's five orders on two stores and the Douyin order whose phone came masked.
    assert _hits(XIAOBEI.phone[-4:]) == sorted(
        [(key, "王小贝", XIAOBEI.phone, [last_four]) for key in XIAOBEI_KEYS]
        + [(DOUYIN_KEY, "王**", MASKED_PHONE, [last_four])])

    # The full phone: her orders, and the masked one only as a maybe, with the sentence that says so.
    result = desk_search(query=XIAOBEI.phone, user=get_user_model().objects.get(username="cs"))
    kinds = {hit.order.platform_order_id: (hit.kinds, bool(hit.note)) for hit in result.hits}
    assert kinds == {**{key: ([SearchKind.PHONE], False) for key in XIAOBEI_KEYS},
                     DOUYIN_KEY: ([SearchKind.PHONE_ENCRYPTED], True)}

    # A partial Chinese name: two people, 王小贝 and 王小明, each by receiver and buyer name.
    found = _hits("王小")
    assert {(name, phone) for _key, name, phone, _kinds in found} == {("王小贝", XIAOBEI.phone),
                                                                      ("王小明", XIAOMING.phone)}
    assert len(found) == len(XIAOBEI_KEYS) + 2
    assert {tuple(kinds) for *_rest, kinds in found} == {(SearchKind.RECEIVER_NAME, SearchKind.BUYER_NAME)}

    # The tracking number the loader prints and the README cites: her parcel on its way.
    assert _hits("ZTO5678202600") == [("4018362291750246678", "王小贝", XIAOBEI.phone, [SearchKind.TRACKING_NUMBER])]
    assert _desk_order("4018362291750246678").status == OrderStatus.SHIPPED


@pytest.mark.django_db
def test_the_customer_view_joins_the_returning_buyer_across_stores(loaded_twice):
    cs = get_user_model().objects.get(username="cs")
    view = customer_view(key=buyer_key_of_order(_desk_order("4018362291750246678")), user=cs)
    assert (view.name, view.phone, view.order_count, str(view.vip_tier)) == ("王小贝", XIAOBEI.phone, 5, "普通")
    assert sorted(row.order.platform_order_id for row in view.orders) == sorted(XIAOBEI_KEYS)
    assert {row.order.store.code for row in view.orders} == {"taobao-demo", "wechat-demo"}
    assert [(row.order.platform_order_id, row.risk) for row in view.held] == [("4018362291750257678", True)]
    assert [(t.order.platform_order_id, t.status) for t in view.tickets] == [("WX-DESK-002", TicketStatus.REQUESTED)]
    assert [(note.author.username, note.phone) for note in view.notes] == [("cs", XIAOBEI.phone)]
    assert view.totals == [("CNY", Decimal("1627.90"))]

    # The masked Douyin order identifies nobody by phone: only its store's buyer id, one order.
    masked = customer_view(key=buyer_key_of_order(_desk_order(DOUYIN_KEY)), user=cs)
    assert (masked.phone, masked.order_count) == ("", 1)


@pytest.mark.django_db
def test_the_vip_buyer_has_an_order_in_the_warehouse_to_expedite(loaded_twice):
    cs = get_user_model().objects.get(username="cs")
    waiting = _desk_order("WX-DESK-103")
    view = customer_view(key=buyer_key_of_order(waiting), user=cs)
    assert (view.name, view.phone, view.order_count, view.vip_tier) == (VIP.name, VIP.phone, 3, "VIP")
    assert [note.text for note in view.notes] == [text for buyer, _key, text in DESK_NOTES if buyer == VIP]
    assert (waiting.status, waiting.priority) == (OrderStatus.READY, Priority.NORMAL)
    parcel = Shipment.objects.filter(lines__order=waiting).distinct().get()
    assert (parcel.status, parcel.warehouse.code) == (ShipmentStatus.TO_PICK, "SH")

    done = order_expedite(order_id=waiting.pk, actor=cs)

    assert done.priority_raised and [p.pk for p in done.parcels] == [parcel.pk]
    parcel.refresh_from_db()
    assert parcel.priority == Priority.HIGH and parcel.sla_due_at <= timezone.now()


@pytest.mark.django_db
def test_the_desk_buyers_are_made_once_and_a_rerun_adds_nothing():
    log: list[str] = []
    demo_load(orders=0, log=log.append)
    desk_line = next(line for line in log if line.startswith("Desk buyers:"))
    assert desk_line.startswith(f"Desk buyers: {len(DESK_ORDERS) + 2} new orders and notes.")
    for cited in (XIAOBEI.phone, MASKED_PHONE, XIAOMING.name, VIP.phone, "ZTO5678202600", "WX-DESK-103"):
        assert cited in desk_line
    held = _desk_order("4018362291750257678")
    assert (held.status, held.hold_reasons) == (OrderStatus.HELD, [HoldReason.RISK])

    def counts() -> dict[str, int]:
        return {"orders": Order.objects.count(), "events": OrderEvent.objects.count(),
                "parcels": Shipment.objects.count(), "tickets": Ticket.objects.count(),
                "notes": CustomerNote.objects.count(), "movements": StockMovement.objects.count()}

    before = counts()
    log.clear()
    demo_load(orders=0, log=log.append)

    assert counts() == before
    assert any(line.startswith("Desk buyers: 0 new orders and notes.") for line in log)
    assert stock_reconcile() == []


@pytest.mark.django_db
def test_the_demo_bill_plants_every_difference_once_and_a_rerun_adds_nothing():
    demo_load(orders=ORDERS)
    wechat = Store.objects.get(code=FINANCE_STORE)
    assert wechat.fee_rate is not None
    assert Store.objects.get(code="taobao-demo").fee_rate is None  # Alipay books fees on lines of their own
    assert set(AccountMapping.objects.filter(store=None).values_list("kind", flat=True)) == set(RowKind.values)
    counts = (SettlementFile.objects.count(), SettlementRow.objects.count(), Difference.objects.count())
    file = SettlementFile.objects.get()
    assert (file.status, file.store, file.file_name.startswith(FINANCE_FILE_PREFIX)) == ("imported", wechat, True)
    reasons = Counter(Difference.objects.filter(store=wechat, status="open").values_list("reason", flat=True))
    assert set(reasons) == set(DifferenceReason.values)

    demo_load(orders=ORDERS)

    assert (SettlementFile.objects.count(), SettlementRow.objects.count(), Difference.objects.count()) == counts
