"""The kanban on a phone (390 px) with a held order: its parcel sits in the held lane, not among the parcels to
pick, without a pick button; the page itself never scrolls sideways (the board scrolls inside itself)."""

from fulfillment.models import Shipment, ShipmentStatus
from orders import services as order_services
from orders.models import HoldReason, OrderStatus
from orders.services import BuyerInput, ReceiverInput
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS, sync_api

SS = ShipmentStatus

pytestmark = BROWSER_MARKS


def make_parcels(make_order, count: int) -> list[Shipment]:
    shipments = []
    for n in range(count):
        receiver = ReceiverInput(name=f"买家{n}", phone="13312343069", province="上海市", city="上海市",
                                 district="浦东新区", address=f"张江路 {n} 号 一个很长很长的地址用来测试窄屏换行")
        order = make_order(buyer=BuyerInput(id=f"phone-{n}", name=f"买家{n}"), receiver=receiver)
        order.refresh_from_db()
        assert order.status == OrderStatus.READY
        shipments.append(Shipment.objects.filter(lines__order=order).distinct().get())
    return shipments


def test_held_parcel_is_in_its_own_lane_and_the_phone_page_does_not_scroll_sideways(
    live_server, browser_page, role_users, make_order, warehouse
):
    held, free = make_parcels(make_order, 2)
    order = held.lines.first().order
    order_services.order_hold(order_id=order.pk, hold_reason=HoldReason.ADDRESS, note="门牌号缺失")
    page = browser_page
    expect = sync_api.expect
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{live_server.url}/accounts/login/?next=/fulfillment/kanban/")
    page.fill("input[name=username]", role_users["warehouse"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/fulfillment/kanban/{warehouse.code}/")

    to_pick = page.locator('.kanban-column[data-status="to_pick"]')
    lane = page.locator('.kanban-column[data-status="held"]')
    expect(to_pick.locator(".kanban-card")).to_have_count(1)
    expect(to_pick.locator(f'.kanban-card[data-shipment-id="{free.pk}"]')).to_have_count(1)
    expect(to_pick.locator(f'.kanban-card[data-shipment-id="{held.pk}"]')).to_have_count(0)
    held_card = lane.locator(f'.kanban-card[data-shipment-id="{held.pk}"]')
    expect(held_card).to_have_count(1)
    expect(held_card.locator(".kc-hold")).to_contain_text("Address problem")
    expect(held_card.locator('button[data-move-to="picking"]')).to_have_count(0)
    expect(page.locator('[data-count-for="held"]')).to_have_text("1")
    expect(page.locator('[data-count-for="to_pick"]')).to_have_text("1")

    def sideways() -> int:
        return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")

    assert sideways() <= 0
    # Swiping the board to the held lane scrolls the board, not the page.
    held_card.scroll_into_view_if_needed()
    expect(held_card).to_be_in_viewport()
    assert sideways() <= 0 and page.evaluate("window.scrollX") == 0

    # The free card's pick button still works on the phone (its form answers with the card, htmx).
    to_pick.locator(f'.kanban-card[data-shipment-id="{free.pk}"] button[data-move-to="picking"]').click()
    expect(page.locator(f'.kanban-column[data-status="picking"] .kanban-card[data-shipment-id="{free.pk}"]')
           ).to_have_count(1)
    assert Shipment.objects.get(pk=free.pk).status == SS.PICKING
    assert Shipment.objects.get(pk=held.pk).status == SS.TO_PICK
