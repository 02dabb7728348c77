"""The finance pages in a real browser (issue 18): an import with its progress, matching and resolving, closing the month."""

import os
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from django.conf import settings

from finance import views_reconcile
from finance.models import (
    Difference,
    DifferenceReason,
    DifferenceStatus,
    FinancePeriod,
    FinancePeriodStatus,
    ImportFailure,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import SettlementSource
from oms.celery import app as celery_app
from orders.models import Platform, Store
from orders.services import LineInput
from tests.conftest import PASSWORD, ROOT
from tests.e2e.browser import BROWSER_MARKS, sync_api

pytestmark = [
    *BROWSER_MARKS,
    # The import runs in a real Celery worker on the tests' Redis, as in production.
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (make test sets REDIS_URL)"),
]

SAMPLES = ROOT / "tests" / "finance" / "samples"
ARTIFACTS = Path(os.environ.get("OMS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
SEPTEMBER = date(2026, 9, 1)  # the month of the sample settlement files
FINANCE_URLS = ["/finance/", "/finance/imports/", "/finance/differences/", "/finance/close/?month=2026-09"]


def login(page, live_server, user, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def usd_order(make_order, store: Store, platform_order_id: str, amount: str, paid_on: int):
    """A paid USD order of the Shopify store, paid on the given day of September (its payment snapshot says so)."""
    paid_at = datetime(2026, 9, paid_on, 10, 0, tzinfo=SHANGHAI)
    return make_order(store=store, platform_order_id=platform_order_id, currency="USD", placed_at=paid_at,
                      paid_at=paid_at, shipping_amount=Decimal("0"),
                      lines=[LineInput(sku_code="TEA-LJ-250G", quantity=1, unit_price=Decimal(amount))])


@pytest.fixture
def worker_queue():
    """The queue the test's Celery worker will listen on, set before the upload queues the import, so the task
    waits in Redis until the worker is started (the page shows the file pending and polling meanwhile)."""
    previous = celery_app.conf.task_default_queue
    queue = f"worker-test-{os.getpid()}"  # the name celery_worker_process uses
    celery_app.conf.task_default_queue = queue
    yield
    celery_app.conf.task_default_queue = previous
    # A test that failed before its worker started leaves the queued import behind: drop it.
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2)
    try:
        client.delete(queue)
    finally:
        client.close()


def test_import_match_resolve_close_and_the_warehouse_is_kept_out(request, live_server, browser_page, role_users,
                                                                  make_order, monkeypatch, worker_queue):
    shop = Store.objects.create(platform=Platform.SHOPIFY, code="shop-fin", name="独立站", default_currency="USD")
    # The sample export settles #1001 (56.29, refunded 10.00) and #1002 (1,250.00); the hub says #1002 was paid
    # 1,200.00 (amount differs) and knows #1003, paid in September and in no settlement (missing in it).
    usd_order(make_order, shop, "#1001", "56.29", 3)
    short = usd_order(make_order, shop, "#1002", "1200.00", 4)
    missing = usd_order(make_order, shop, "#1003", "88.00", 10)
    finance = role_users["finance"]
    page, expect = browser_page, sync_api.expect

    # 1. Upload the Shopify payouts export. Every file goes to the Celery task here, so the page shows its progress.
    monkeypatch.setattr(views_reconcile, "INLINE_IMPORT_MAX_BYTES", 0)
    login(page, live_server, finance, "/finance/imports/")
    page.select_option("select[name=source]", SettlementSource.SHOPIFY_PAYOUTS.value)
    page.select_option("select[name=store]", str(shop.pk))
    page.set_input_files("input[name=file]", str(SAMPLES / "shopify_payouts_bom.csv"))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url(re.compile(r"/finance/imports/[0-9]+/$"))  # the file's page, once the upload is kept
    settlement_file = SettlementFile.objects.get()
    assert page.url.endswith(f"/finance/imports/{settlement_file.pk}/")
    expect(page.locator(".messages")).to_contain_text("shopify_payouts_bom.csv is being imported")
    progress = page.locator(f"#import-progress-{settlement_file.pk}")
    expect(progress).to_have_attribute("data-status", "pending")
    expect(progress.locator("progress")).to_be_attached()
    # The page asks for its progress every second while nothing takes the task.
    poll = page.wait_for_event("response", predicate=lambda response: response.url.endswith(
        f"/finance/imports/{settlement_file.pk}/progress/"))
    assert poll.status == 200 and 'data-status="pending"' in poll.text()
    assert SettlementFile.objects.get().status == SettlementFileStatus.PENDING

    request.getfixturevalue("celery_worker_process")  # a real worker takes the queued import
    # Done: the progress partial tells htmx to reload the page once; the counts show and nothing polls any more.
    expect(progress).to_have_attribute("data-status", "imported", timeout=30_000)
    expect(page.locator("dd[data-field=rows]")).to_have_text("4")
    expect(page.locator("dd[data-field=skipped]")).to_have_text("0")
    assert progress.get_attribute("hx-trigger") is None
    settlement_file.refresh_from_db()
    assert (settlement_file.status, settlement_file.row_count, settlement_file.uploaded_by) == (
        SettlementFileStatus.IMPORTED, 4, finance)
    assert SettlementRow.objects.filter(file=settlement_file).count() == 4
    page.get_by_role("link", name="← Settlement imports").click()  # the way back from the file
    row = page.locator(f"table.settlement-files tr[data-file='{settlement_file.pk}']")
    expect(row.locator("[data-field=rows]")).to_have_text("4")
    expect(row.locator(".import-progress")).to_have_attribute("data-status", "imported")

    # 2. Match September for the store from the difference list.
    page.goto(f"{live_server.url}/finance/differences/")
    expect(page.locator("[data-count]")).to_have_attribute("data-count", "0")
    recheck = page.locator("form.filters[action$='/differences/recheck/']")
    recheck.locator("select[name=store]").select_option(str(shop.pk))
    recheck.locator("select[name=source]").select_option(SettlementSource.SHOPIFY_PAYOUTS.value)
    recheck.locator("input[name=month]").fill("2026-09")
    recheck.get_by_role("button", name="Re-check").click()
    summary = page.locator(".recheck-summary")
    expect(summary).to_have_attribute("data-matched", "2")
    expect(summary).to_have_attribute("data-differences", "2")
    rows = page.locator("table.differences tbody tr[data-difference]")
    expect(rows).to_have_count(2)
    assert sorted(rows.evaluate_all("rows => rows.map(row => row.dataset.reason)")) == [
        DifferenceReason.AMOUNT_DIFFERS, DifferenceReason.MISSING_IN_SETTLEMENT]

    # Filter by reason: htmx swaps the table and keeps the filter in the address.
    page.goto(f"{live_server.url}/finance/differences/")
    filters = page.locator("form.filters[hx-get]")
    filters.locator("select[name=reason]").select_option(DifferenceReason.AMOUNT_DIFFERS.value)
    page.wait_for_url("**reason=amount_differs**")
    expect(rows).to_have_count(1)
    amount_row = rows.first
    expect(amount_row).to_have_attribute("data-reason", DifferenceReason.AMOUNT_DIFFERS)
    expect(amount_row.locator("[data-field=expected]")).to_have_text("$1,200.00")
    expect(amount_row.locator("[data-field=actual]")).to_have_text("$1,250.00")
    expect(amount_row.get_by_role("link", name=short.number)).to_be_visible()

    # Resolve it with a note; the list comes back with the same filter and shows it resolved.
    difference = Difference.objects.get(reason=DifferenceReason.AMOUNT_DIFFERS)
    amount_row.locator("input[name=note]").fill("平台少算了运费，已与 Shopify 核对")
    amount_row.get_by_role("button", name="Resolve").click()
    page.wait_for_url("**/finance/differences/?**reason=amount_differs**")
    expect(page.locator(".messages")).to_contain_text(f"Difference {difference.pk} resolved.")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".status")).to_have_class("status dst-resolved")
    expect(rows.first).to_contain_text("平台少算了运费，已与 Shopify 核对")
    expect(rows.first.locator("input[name=note]")).to_have_count(0)
    difference.refresh_from_db()
    assert (difference.status, difference.resolved_by, difference.resolution_note) == (
        DifferenceStatus.RESOLVED, finance, "平台少算了运费，已与 Shopify 核对")
    assert Difference.objects.get(order=missing).status == DifferenceStatus.OPEN

    # The difference list on a phone, in the default language: a screenshot for a person to look at.
    page.context.clear_cookies(name="django_language")  # without the fixture's cookie the pages speak zh-hans
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/finance/differences/?month=2026-09")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    expect(rows).to_have_count(2)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "finance-differences-390x844.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # The wide table scrolls inside its own box; the page itself does not move sideways.
    sizes = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], sizes
    # The note and the button of the open difference sit in the last column: a swipe of the table brings them.
    note = page.locator("tr[data-difference] input[name=note]")
    expect(note).to_have_count(1)
    note.scroll_into_view_if_needed()
    for control in (note, note.locator("xpath=following-sibling::button")):
        box = control.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 390, box
    page.set_viewport_size({"width": 1400, "height": 900})
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])

    # 3. Month-end: the report, a refused close with an open difference, then a close that says so.
    page.goto(f"{live_server.url}/finance/close/")
    page.fill("input[name=month]", "2026-09")
    page.select_option("select[name=store]", str(shop.pk))
    page.get_by_role("button", name="Show").click()
    period = page.locator("section[data-section=period]")
    expect(period).to_have_attribute("data-status", "open")
    report = page.locator("table[data-table=report] tbody tr")
    expect(report).to_have_count(1)
    # Sales 56.29 + 1,250.00, the refund, the fees Shopify kept, and the payout of the whole net.
    assert [cell.strip() for cell in report.first.locator("td").all_inner_texts()] == [
        "独立站", "USD", "1,306.29", "-10.00", "38.48", "0.00", "1,257.81", "1,257.81", "1"]
    page.get_by_role("button", name="Close the month").click()
    expect(page.locator(".messages")).to_contain_text("1 differences of 2026-09 are still open")
    expect(period).to_have_attribute("data-status", "open")
    assert not FinancePeriod.objects.filter(status=FinancePeriodStatus.CLOSED).exists()
    page.check("input[name=force]")
    page.get_by_role("button", name="Close the month").click()
    expect(page.locator(".messages")).to_contain_text("2026-09 is closed: new imports for it are refused")
    expect(period).to_have_attribute("data-status", "closed")
    expect(page.locator("[data-field=period-status]")).to_have_text("Closed")
    expect(page.get_by_role("button", name="Reopen the month")).to_be_visible()
    closed = FinancePeriod.objects.get()
    assert (closed.store, closed.month, closed.status, closed.closed_by) == (
        shop, SEPTEMBER, FinancePeriodStatus.CLOSED, finance)

    # A new file into the closed month is refused on the form, in Chinese (the pages' default language).
    monkeypatch.setattr(views_reconcile, "INLINE_IMPORT_MAX_BYTES", 256 * 1024)  # small: imported in the request
    page.context.clear_cookies(name="django_language")
    page.goto(f"{live_server.url}/finance/imports/")
    page.select_option("select[name=source]", SettlementSource.WECHAT_PAY.value)
    page.select_option("select[name=store]", str(shop.pk))
    page.set_input_files("input[name=file]", str(SAMPLES / "wechat_pay_all.csv"))
    page.get_by_role("button", name="上传并导入").click()
    expect(page.locator("[data-error-for=file]")).to_have_text("账期 2026-09 已结账；如需导入此文件，请先重新打开账期。")
    refused = SettlementFile.objects.get(source=SettlementSource.WECHAT_PAY)
    assert (refused.status, refused.failure) == (SettlementFileStatus.FAILED, ImportFailure.PERIOD_CLOSED)
    assert SettlementRow.objects.filter(file=refused).count() == 0
    assert SettlementRow.objects.count() == 4

    # 4. The warehouse has no finance pages.
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        warehouse_page = context.new_page()
        login(warehouse_page, live_server, role_users["warehouse"], "/")
        for url in [*FINANCE_URLS, f"/finance/imports/{settlement_file.pk}/"]:
            response = warehouse_page.goto(f"{live_server.url}{url}")
            assert response.status == 403, url
            assert "独立站" not in warehouse_page.content(), url
    finally:
        context.close()
