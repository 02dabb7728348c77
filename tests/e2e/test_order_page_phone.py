"""The order page on a 390 px phone does not scroll sideways, and the channels page shows 立即同步 at 1366 px."""

from decimal import Decimal

from connectors.models import ChannelSyncState
from orders.models import Platform, Store
from orders.services import LineInput
from tests.conftest import PASSWORD
from tests.e2e.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS

# What overflows, for the failure message: the widest elements running past the viewport's right edge.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
  // Inside a scroll box (a wide table in .table-wrap) an element may be wider: the page itself does not move.
  .filter(el => { for (let p = el.parentElement; p; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return false; } return true; })
  .map(el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '')
       + ' ' + Math.round(el.getBoundingClientRect().right))
  .slice(0, 20)"""


def log_in(page, live_server, user, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def test_the_order_page_fits_a_390px_phone(live_server, browser_page, role_users, make_order):
    long_title = "2024新茶 西湖龙井 明前特级 250g 罐装 送礼佳品 含手提袋 顺丰包邮"
    order = make_order(lines=[
        LineInput(sku_code="TEA-LJ-250G", quantity=12, unit_price=Decimal("188.00"), title=long_title,
                  discount_amount=Decimal("100.00")),
        LineInput(sku_code="CUP-CER-350", quantity=1, unit_price=Decimal("39.90"))])
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, role_users["manager"], f"/orders/{order.pk}/")
    page.locator("[data-transition=cancel]").click()  # the opened cancel form must fit too
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes[1] == 390
    assert sizes[0] <= sizes[1], "\n".join(page.evaluate(OVERFLOWING))


def test_sync_now_is_on_screen_at_1366px_without_scrolling(live_server, browser_page, role_users, db):
    for code, platform, name in [("tb-wide", Platform.TAOBAO, "演示淘宝旗舰店（华东大区）"),
                                 ("dy-wide", Platform.DOUYIN, "演示抖店")]:
        store = Store.objects.create(platform=platform, code=code, name=name)
        ChannelSyncState.objects.create(
            store=store, enabled=True, orders_created=12345, orders_updated=67890, webhooks_received=4321,
            duplicates=12, signature_failures=3, errors=27,
            last_error="TransientError: 淘宝接口返回 isp.top-remote-connection-timeout（远程服务调用超时），"
                       "将在 30 秒后重试 taobao.trades.sold.increment.get")
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, role_users["manager"], "/channels/")
    buttons = page.locator("table[data-table=sync-status] button[type=submit]")
    assert buttons.count() == 2
    width = page.evaluate("() => window.innerWidth")
    for index in range(2):
        box = buttons.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    errors = page.locator("table[data-table=sync-status] tbody td:nth-child(10)")
    for index in range(2):
        box = errors.nth(index).bounding_box()
        assert box["x"] + box["width"] <= width, (box, width)
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], "\n".join(page.evaluate(OVERFLOWING))
