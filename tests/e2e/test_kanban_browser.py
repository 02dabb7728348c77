"""The kanban in a real browser: log in, drag a card to the next column, and see an illegal drop snap back."""


from fulfillment.models import Shipment, ShipmentStatus
from orders.models import OrderStatus
from orders.services import ReceiverInput
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS, sync_api

SS = ShipmentStatus

pytestmark = BROWSER_MARKS


def make_parcels(make_order, count: int) -> list[Shipment]:
    shipments = []
    for n in range(count):
        order = make_order(
            receiver=ReceiverInput(
                name=f"买家{n}",
                phone="13312343069",
                province="上海市",
                city="上海市",
                district="浦东新区",
                address=f"张江路 {n} 号",
            )
        )
        order.refresh_from_db()
        assert order.status == OrderStatus.READY
        shipments.append(Shipment.objects.filter(lines__order=order).distinct().get())
    return shipments


def drag(page, source, target) -> None:
    """A real mouse drag with intermediate moves (SortableJS reacts to the moves, not to the drop alone)."""
    source.scroll_into_view_if_needed()
    start, end = source.bounding_box(), target.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + 12  # the card's head, away from its buttons
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 8, y + 8, steps=4)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + min(end["height"] / 2, 40), steps=25)
    page.wait_for_timeout(150)
    page.mouse.up()


def test_drag_a_card_to_picking_then_an_illegal_drop_snaps_back(
    live_server, browser_page, role_users, make_order, warehouse
):
    first, second, third = make_parcels(make_order, 3)
    page = browser_page
    expect = sync_api.expect

    # Log in through the real login page; it sends us on to the board.
    page.goto(f"{live_server.url}/accounts/login/?next=/fulfillment/kanban/")
    page.fill("input[name=username]", role_users["warehouse"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/fulfillment/kanban/{warehouse.code}/")

    column = {status: page.locator(f'.kanban-column[data-status="{status}"]') for status in SS.values}
    count = {status: page.locator(f'[data-count-for="{status}"]') for status in SS.values}
    expect(count[SS.TO_PICK]).to_have_text("3")
    expect(count[SS.PICKING]).to_have_text("0")
    expect(column[SS.TO_PICK].locator(".kanban-card")).to_have_count(3)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # 1. A legal move: the most urgent card goes to picking; the counts follow without a reload.
    card = column[SS.TO_PICK].locator(f'.kanban-card[data-shipment-id="{first.pk}"]')
    drag(page, card, column[SS.PICKING].locator(".kanban-list"))
    moved = column[SS.PICKING].locator(f'.kanban-card[data-shipment-id="{first.pk}"]')
    expect(moved).to_have_attribute("data-status", SS.PICKING)
    expect(count[SS.TO_PICK]).to_have_text("2")
    expect(count[SS.PICKING]).to_have_text("1")
    expect(column[SS.TO_PICK].locator(".kanban-card")).to_have_count(2)
    expect(page.locator("#kanban-alert")).to_be_empty()
    assert page.evaluate("window.__sameDocument") is True
    first.refresh_from_db()
    assert first.status == SS.PICKING

    # 2. An illegal move: to pick → shipped is refused; the card snaps back and the reason is shown.
    card = column[SS.TO_PICK].locator(f'.kanban-card[data-shipment-id="{second.pk}"]')
    drag(page, card, column[SS.SHIPPED].locator(".kanban-list"))
    alert = page.locator("#kanban-alert")
    expect(alert).to_contain_text("A parcel cannot go from “To pick” to “Shipped”.")
    expect(alert.locator(".kanban-refusal")).to_be_visible()
    expect(column[SS.TO_PICK].locator(f'.kanban-card[data-shipment-id="{second.pk}"]')).to_have_count(1)
    expect(column[SS.SHIPPED].locator(".kanban-card")).to_have_count(0)
    expect(count[SS.TO_PICK]).to_have_text("2")
    second.refresh_from_db()
    assert second.status == SS.TO_PICK
    # The refused card is back in its place: the order of the column is unchanged.
    ids = (
        column[SS.TO_PICK]
        .locator(".kanban-card")
        .evaluate_all("cards => cards.map(c => c.dataset.shipmentId)")
    )
    assert ids == [str(second.pk), str(third.pk)]

    # 3. The button on a card (no dragging, as on a phone) moves it too.
    column[SS.TO_PICK].locator(f'.kanban-card[data-shipment-id="{third.pk}"] button[value="picking"]').click()
    expect(column[SS.PICKING].locator(f'.kanban-card[data-shipment-id="{third.pk}"]')).to_have_count(1)
    expect(count[SS.PICKING]).to_have_text("2")
    expect(count[SS.TO_PICK]).to_have_text("1")
    expect(alert).to_be_empty()
    assert page.evaluate("window.__sameDocument") is True

    # 4. A refused button move (pack before scanning) shows why, and the card stays where it is.
    column[SS.PICKING].locator(f'.kanban-card[data-shipment-id="{third.pk}"] button[value="packed"]').click()
    expect(alert).to_contain_text("Not every item is scanned")
    expect(column[SS.PICKING].locator(f'.kanban-card[data-shipment-id="{third.pk}"]')).to_have_count(1)
