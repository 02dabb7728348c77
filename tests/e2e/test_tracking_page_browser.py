"""The public tracking page on a 390x844 phone: the stage bar, the carrier timeline, nothing sideways; a screenshot
is kept in var/test-artifacts/ (or OMS_TEST_ARTIFACTS) for a person to look at."""

import os
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from customer.services import parcel_tracking_path
from fulfillment.models import Shipment, TrackingEvent
from tests.conftest import ROOT
from tests.e2e.browser import BROWSER_MARKS
from tests.fulfillment.helpers import ship_parcel

pytestmark = BROWSER_MARKS

ARTIFACTS = Path(os.environ.get("OMS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))


def test_the_tracking_page_on_a_phone(live_server, browser_page, make_order):
    order = make_order()
    parcel = Shipment.objects.filter(lines__order=order).distinct().get()
    ship_parcel(parcel, tracking="YT6600000001")
    now = timezone.now()
    for hours, code, place, text in [(1, "picked_up", "上海", "快件已揽收"),
                                     (7, "in_transit", "上海转运中心", "快件已发往北京转运中心"),
                                     (20, "in_transit", "北京转运中心", "快件已到达北京转运中心")]:
        TrackingEvent.objects.create(shipment=parcel, occurred_at=now + timedelta(hours=hours), code=code,
                                     description=text, location=place)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    # A buyer's phone asks for Chinese; the fixture's cookie says English, so drop it: the page's default is zh-hans.
    page.context.clear_cookies()
    page.goto(f"{live_server.url}{parcel_tracking_path(shipment=parcel)}")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("progress").get_attribute("value") == "4"
    assert page.locator("ol.steps li.done").count() == 4
    assert page.locator("[data-receiver]").inner_text() == "王**"
    assert page.locator("[data-city]").inner_text() == "上海市"
    events = page.locator("ol.timeline li")
    assert events.count() == 3
    assert "快件已到达北京转运中心" in events.first.inner_text()
    body = page.locator("body").inner_text()
    for secret in ("王小贝", order.receiver_phone, "张江路", order.number):
        assert secret not in body, secret
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes == [390, 390]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "tracking-page-390x844.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # A broken link: the friendly page, still at phone size.
    response = page.goto(f"{live_server.url}/t/broken-link")
    assert response.status == 404
    assert page.locator("[data-page=track-missing]").is_visible()
