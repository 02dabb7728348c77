"""The packing station in a real browser, typed like a barcode scanner: a wrong item turns the station
red with the reason, the right items turn it green, and the parcel packs once every line is scanned."""

from fulfillment.models import Shipment, ShipmentStatus
from pipeline import shipping
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS, sync_api

pytestmark = BROWSER_MARKS


def scan(page, code: str) -> None:
    """A scanner types the code and presses Enter."""
    field = page.locator("#scan-code")
    field.fill(code)
    field.press("Enter")


def test_a_wrong_item_is_refused_in_red_and_a_fully_scanned_parcel_packs(live_server, browser_page, role_users,
                                                                         make_order):
    parcel = Shipment.objects.filter(lines__order=make_order()).distinct().get()
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    page, expect = browser_page, sync_api.expect
    page.goto(f"{live_server.url}/accounts/login/?next=/fulfillment/pack/")
    page.fill("input[name=username]", role_users["warehouse"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/fulfillment/pack/")

    scan(page, parcel.number)
    expect(page.locator(".parcel h2")).to_contain_text(parcel.number)
    expect(page.locator("#scan-code")).to_be_focused()  # ready for the next scan without a click

    scan(page, "6901234567915")  # the gift bag: not in this parcel
    feedback = page.locator("#scan-feedback")
    expect(feedback).to_have_attribute("data-level", "bad")
    expect(feedback).to_contain_text(f"Wrong item: 6901234567915 is not in parcel {parcel.number}.")
    expect(page.locator("[data-action=pack]")).to_have_count(0)  # nothing to pack yet

    for count, code in enumerate(("6901234567892", "6901234567892", "6901234567908"), start=1):
        scan(page, code)
        # The station is swapped in after each answer: wait for it before the next scan.
        expect(page.locator(".progress-line strong")).to_have_attribute("data-scanned", str(count))
        expect(feedback).to_have_attribute("data-level", "ok")
    page.locator("[data-action=pack]").click()
    for _ in range(50):  # the click's request is answered by the live server in its own thread
        parcel.refresh_from_db()
        if parcel.status == ShipmentStatus.PACKED:
            break
        page.wait_for_timeout(100)
    assert parcel.status == ShipmentStatus.PACKED
    expect(feedback).to_contain_text(f"Parcel {parcel.number} packed. Scan the next parcel.")
    expect(page.locator("#scan-code")).to_be_focused()  # on to the next parcel
