"""The desk in a real browser: find an order by the phone's last four digits, open the customer view, expedite,
and see the parcel move to the top of the warehouse's kanban."""

from fulfillment.models import Shipment
from orders.models import Order, OrderStatus, Priority
from orders.services import BuyerInput, ReceiverInput
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS, sync_api

pytestmark = BROWSER_MARKS


def login(page, live_server, user, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def to_pick_cards(page) -> list[str]:
    return page.locator('.kanban-column[data-status="to_pick"] .kanban-card').evaluate_all(
        "cards => cards.map(card => card.dataset.shipmentId)")


def test_find_by_last_four_open_the_customer_and_expedite(live_server, browser_page, role_users, make_order,
                                                         warehouse):
    phones = ["13800000001", "13800000002", "13912345678"]
    orders = []
    for n, phone in enumerate(phones):
        order = make_order(receiver=ReceiverInput(name=f"买家{n}", phone=phone, province="上海市", city="上海市",
                                                  district="浦东新区", address=f"张江路 {n} 号"),
                           buyer=BuyerInput(id=f"buyer-{n}"))
        order.refresh_from_db()
        assert order.status == OrderStatus.READY
        orders.append(order)
    parcels = [str(Shipment.objects.filter(lines__order=o).distinct().get().pk) for o in orders]
    target = orders[-1]
    expect = sync_api.expect

    # The warehouse's board in a browser of its own: the target's parcel is the last card (latest ship-by).
    browser = browser_page.context.browser
    board_context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    board_context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    try:
        board = board_context.new_page()
        login(board, live_server, role_users["warehouse"], "/fulfillment/kanban/")
        board.wait_for_url(f"**/fulfillment/kanban/{warehouse.code}/")
        expect(board.locator('.kanban-column[data-status="to_pick"] .kanban-card')).to_have_count(3)
        assert to_pick_cards(board) == parcels

        # Customer service: the desk's box with the last four digits finds the one order.
        page = browser_page
        login(page, live_server, role_users["customer_service"], "/desk/")
        page.wait_for_url("**/desk/")
        page.fill("input[name=q]", "5678")
        page.click("form[role=search] button[type=submit]")
        results = page.locator("table.desk-results tbody tr")
        expect(results).to_have_count(1)
        expect(results.first).to_contain_text(target.number)
        results.first.get_by_role("link", name=target.number).click()
        page.wait_for_url(f"**/orders/{target.pk}/")

        # The customer view, from the order page.
        page.click("a[data-action=customer-view]")
        page.wait_for_url(f"**/desk/customer/{target.pk}/")
        expect(page.locator('[data-field="phone"]')).to_have_text("13912345678")
        row = page.locator(f'tr[data-order="{target.number}"]')
        expect(row).to_be_visible()
        row.locator("button[data-action=expedite]").click()
        page.wait_for_url(f"**/desk/customer/{target.pk}/")
        expect(page.locator(".messages")).to_contain_text(f"Order {target.number} expedited")
        expect(page.locator(f'tr[data-order="{target.number}"] [data-field="priority"]')).to_have_text("High")
        assert Order.objects.get(pk=target.pk).priority == Priority.HIGH

        # The warehouse's board, reloaded: the parcel is now the first card to pick.
        board.reload()
        expect(board.locator('.kanban-column[data-status="to_pick"] .kanban-card').first).to_have_attribute(
            "data-shipment-id", parcels[-1])
        assert to_pick_cards(board) == [parcels[2], parcels[0], parcels[1]]
    finally:
        board_context.close()
