"""Warehouse kanban benchmark: the board page, a column partial and card moves over 20,000 active shipments.

Set-up (not timed): three warehouses, four stores (one per channel), three carriers. ``--shipments`` active
shipments are bulk-inserted with their status set directly (to pick 40 %, picking 20 %, packed 15 %, shipped
today 15 %, exception 10 %), plus a quarter as many of history (delivered, or shipped before today) that the
board must skip; the board reads the shipment table alone, so these rows carry no lines. The parcels that are
moved are real: ``--requests`` + 1 paid orders go through the real services (reserve → ready → shipment).

Measured with the Django test client, logged in as a warehouse user: the board page of the first warehouse and
a column partial (``--requests`` requests each after a warm-up, server time per request), and ``--requests``
moves to pick → picking (each on a different real shipment). The page is measured twice, with a tenth of the
shipments (at most 2,000: ``page_p95_ms_small``) and with all of them (``page_p95_ms``): its query count must
not change, and its time should not either (``page_ratio`` = large / small, aim ≤ 1.3, machines differ by 2-3x
so the ratio, not the milliseconds, is what compares). Page sizes are printed in KiB.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

import bench
from bench.common import BATCH, Report, percentile_ms
from connectors.services import store_create_with_channel
from fulfillment.kanban import count_display, start_of_today
from fulfillment.models import Carrier, Shipment, ShipmentEvent, ShipmentStatus
from inventory.models import SKU, Warehouse
from inventory.services import stock_receive
from oms import roles
from orders.models import Platform
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput
from pipeline.orders import order_create

SS = ShipmentStatus
SEED = 5
PAGE_TARGET_P95_MS = 300
# The 20,000-parcel board may cost at most this much more than the 2,000-parcel one.
PAGE_TARGET_RATIO = 1.3
HTMX = {"HTTP_HX_REQUEST": "true"}
ACTIVE_MIX = [(SS.TO_PICK, 40), (SS.PICKING, 20), (SS.PACKED, 15), (SS.SHIPPED, 15), (SS.EXCEPTION, 10)]
CHANNELS = [Platform.TAOBAO, Platform.DOUYIN, Platform.PDD, Platform.SHOPIFY]


def add_arguments(parser) -> None:
    parser.add_argument(
        "--shipments",
        type=int,
        default=20_000,
        help="active shipments on the boards of the three warehouses (default 20000)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=50,
        help="timed requests for the page and the partial, and cards moved (default 50)",
    )


# --- Fixtures ----------------------------------------------------------------------------------


class Fixture:
    def __init__(self) -> None:
        self.warehouses = [
            Warehouse.objects.create(code=f"bench-{c}", name=f"bench {c}", priority=10 + n)
            for n, c in enumerate("abc")
        ]
        self.stores = [
            store_create_with_channel(
                platform=platform,
                code=f"bench-{platform}",
                name=f"bench {platform}",
                stock_push_enabled=False,
            )
            for platform in CHANNELS
        ]
        self.carriers = [
            Carrier.objects.create(code=code, name=f"bench {code}") for code in ("SF", "YTO", "ZTO")
        ]
        self.rng = random.Random(SEED)
        self.inserted = 0

    def bulk_shipments(self, count: int, *, history: bool = False) -> None:
        """Insert ``count`` shipments spread over the warehouses, channels, carriers and columns."""
        rng, now, today = self.rng, timezone.now(), start_of_today()
        statuses = [status for status, weight in ACTIVE_MIX for _ in range(weight)]
        rows = []
        for _ in range(count):
            n = self.inserted = self.inserted + 1
            store = rng.choice(self.stores)
            status = rng.choice([SS.DELIVERED, SS.SHIPPED]) if history else rng.choice(statuses)
            shipped_at = None
            if status == SS.SHIPPED:
                shipped_at = (
                    today - timedelta(days=rng.randint(1, 30))
                    if history
                    else today + (now - today) * rng.random()
                )
            elif status == SS.DELIVERED:
                shipped_at = now - timedelta(days=rng.randint(1, 30))
            rows.append(
                Shipment(
                    number=f"K{n:08d}",
                    store=store,
                    warehouse=rng.choice(self.warehouses),
                    status=status,
                    platform=store.platform,
                    order_numbers=f"SO-K{n:08d}",
                    priority=rng.choice([0] * 16 + [1] * 3 + [2]),
                    amount=Decimal(rng.randint(990, 99_900)) / 100,
                    receiver_key=f"bench-{n}",
                    carrier=rng.choice([*self.carriers, *self.carriers, *self.carriers, None]),
                    sla_due_at=now + timedelta(minutes=rng.randint(-12 * 60, 48 * 60)),
                    shipped_at=shipped_at,
                    status_before_exception=SS.PICKING if status == SS.EXCEPTION else "",
                    exception_reason="bench: damaged box" if status == SS.EXCEPTION else "",
                )
            )
        Shipment.objects.bulk_create(rows, batch_size=BATCH)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE fulfillment_shipment")

    def real_shipments(self, count: int) -> list[int]:
        """Parcels built by the real services, to pick in the first warehouse: the ones the moves act on."""
        store = store_create_with_channel(
            platform=Platform.MANUAL,
            code="bench-moves",
            name="bench moves",
            merge_shipments=False,
            stock_push_enabled=False,
        )
        sku = SKU.objects.create(code="BENCH-KANBAN", name="bench kanban", list_price=Decimal("9.90"))
        stock_receive(
            warehouse_id=self.warehouses[0].pk, sku_id=sku.pk, quantity=count * 2, reference="bench"
        )
        for n in range(count):
            order_create(
                store=store,
                actor_label="bench",
                data=OrderInput(
                    platform_order_id=f"BK{n:05d}",
                    paid=True,
                    lines=[LineInput(sku_code=sku.code, quantity=1, unit_price=Decimal("9.90"))],
                    receiver=ReceiverInput(
                        name=f"bench {n}",
                        phone="13312343069",
                        province="上海市",
                        city="上海市",
                        address=f"bench road {n}",
                    ),
                    buyer=BuyerInput(id=f"bench-{n}"),
                ),
            )
        return list(
            Shipment.objects.filter(store=store, status=SS.TO_PICK)
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def warehouse_client() -> Client:
    user = get_user_model().objects.create_user(username="bench-warehouse")
    user.groups.add(roles.roles_sync()[roles.WAREHOUSE])
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = "en"
    return client


# --- Measures ------------------------------------------------------------------------------------


def timed(report: Report, label: str, call, n: int, *, expect: int = 200) -> list[float]:
    """Server time of ``n`` calls (perf_counter around the client call); a FAIL line per unexpected status."""
    latencies, bad = [], 0
    for i in range(n):
        begin = time.perf_counter()
        response = call(i)
        latencies.append(time.perf_counter() - begin)
        if response.status_code != expect:
            bad += 1
    if bad:
        report.fail(f"{label}: {bad} of {n} answers were not {expect}")
    return latencies


def queries_of(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return len(captured.captured_queries), response


def run(options: dict, stdout) -> bool:
    report = Report(stdout, options["json"])
    total, n = options["shipments"], options["requests"]
    small = max(min(2000, total // 10), 1)
    report.figures.update({"shipments": total, "requests": n, "shipments_small": small})
    with (
        bench.production_like_settings(),
        override_settings(ALLOWED_HOSTS=["testserver"]),
        bench.scratch_database(options["db_name"], keep=options["keep_db"], out=report),
    ):
        begin = time.perf_counter()
        fx = Fixture()
        moved_ids = fx.real_shipments(n + 1)
        client = warehouse_client()
        warehouse = fx.warehouses[0]
        board = f"/fulfillment/kanban/{warehouse.code}/"
        column = f"/fulfillment/kanban/{warehouse.code}/column/{SS.TO_PICK}/?page=2"
        report.write(
            f"fixtures: {len(moved_ids)} real shipments through the services in "
            f"{time.perf_counter() - begin:.1f} s (not timed)"
        )
        if len(moved_ids) != n + 1:
            report.fail(f"expected {n + 1} real shipments to pick, found {len(moved_ids)}")

        # [1] The query count with few shipments.
        fx.bulk_shipments(small - len(moved_ids) if small > len(moved_ids) else 0)
        client.get(board)  # warm-up: session, templates
        page_queries_small, response = queries_of(lambda: client.get(board))
        if response.status_code != 200:
            report.fail(f"board page answered {response.status_code}")
        report.figures["shipments_small"] = Shipment.objects.count()
        page_small_kib = len(response.content) // 1024
        for _ in range(2):
            client.get(board)
        page_small = timed(report, "page (small)", lambda _i: client.get(board), n)
        report.write(
            f"\n[1] board page with {Shipment.objects.count()} shipments: {page_queries_small} SQL queries; "
            f"{n} requests, p50 {percentile_ms(page_small, 50)} ms, p95 {percentile_ms(page_small, 95)} ms "
            f"({page_small_kib} KiB)"
        )

        # [2] The rest of the shipments, plus history the board must skip.
        begin = time.perf_counter()
        fx.bulk_shipments(total - Shipment.objects.count())
        fx.bulk_shipments(total // 4, history=True)
        on_board = (
            Shipment.objects.filter(warehouse=warehouse)
            .exclude(status__in=[SS.DELIVERED, SS.CANCELLED])
            .exclude(status=SS.SHIPPED, shipped_at__lt=start_of_today())
            .count()
        )
        report.write(
            f"\n[2] {Shipment.objects.count()} shipments ({total} active, {total // 4} history) inserted in "
            f"{time.perf_counter() - begin:.1f} s; {on_board} on the board of {warehouse.code}"
        )
        for _ in range(3):
            client.get(board)
        page_queries, response = queries_of(lambda: client.get(board))
        html = response.content.decode()
        # The bulk parcels have no lines, so none is held: every parcel to pick is in the to-pick lane.
        count_to_pick = count_display(Shipment.objects.filter(warehouse=warehouse, status=SS.TO_PICK).count())
        if f'data-count-for="to_pick">{count_to_pick}<' not in html:
            report.fail(f"the board does not show the to-pick count {count_to_pick}")
        report.write(
            f"  board page: {page_queries} SQL queries (with {report.figures['shipments_small']} shipments: {page_queries_small})"
        )
        if page_queries != page_queries_small:
            report.fail(f"page queries grow with the shipments: {page_queries_small} → {page_queries}")
        page = timed(report, "page", lambda _i: client.get(board), n)
        small_p95 = percentile_ms(page_small, 95)
        ratio = round(percentile_ms(page, 95) / small_p95, 2) if small_p95 else None
        report.write(
            f"  page: {n} requests, p50 {percentile_ms(page, 50)} ms, p95 {percentile_ms(page, 95)} ms, "
            f"max {percentile_ms(page, 100)} ms ({len(html) // 1024} KiB); target p95 ≤ "
            f"{PAGE_TARGET_P95_MS} ms: {'met' if percentile_ms(page, 95) <= PAGE_TARGET_P95_MS else 'MISSED'}; "
            f"p95 {ratio} x the small board's (aim ≤ {PAGE_TARGET_RATIO}: "
            f"{'met' if ratio is not None and ratio <= PAGE_TARGET_RATIO else 'MISSED'})"
        )

        # [3] "Load more" on the to-pick column.
        partial_queries, response = queries_of(lambda: client.get(column, **HTMX))
        if response.status_code != 200 or "kanban-card" not in response.content.decode():
            report.fail(f"column partial answered {response.status_code} without cards")
        partial = timed(report, "partial", lambda _i: client.get(column, **HTMX), n)
        report.write(
            f"\n[3] column partial (to pick, page 2): {partial_queries} SQL queries; {n} requests, "
            f"p50 {percentile_ms(partial, 50)} ms, p95 {percentile_ms(partial, 95)} ms"
        )

        # [4] Card moves, each on its own real shipment.
        def move(shipment_id: int):
            return client.post(f"/fulfillment/shipments/{shipment_id}/move/", {"to": SS.PICKING}, **HTMX)

        move_queries, response = queries_of(lambda: move(moved_ids[0]))
        if response.status_code != 200:
            report.fail(f"the first move answered {response.status_code}: {response.content[:300]!r}")
        moves = timed(report, "move", lambda i: move(moved_ids[i + 1]), min(n, len(moved_ids) - 1))
        picking = Shipment.objects.filter(pk__in=moved_ids, status=SS.PICKING).count()
        events = ShipmentEvent.objects.filter(shipment_id__in=moved_ids, to_status=SS.PICKING).count()
        report.write(
            f"\n[4] card moves to pick → picking: {move_queries} SQL queries each; {len(moves)} moves, "
            f"p50 {percentile_ms(moves, 50)} ms, p95 {percentile_ms(moves, 95)} ms; {picking} shipments "
            f"now picking, {events} status events"
        )
        if picking != len(moved_ids) or events != len(moved_ids):
            report.fail(f"{len(moved_ids)} moves: {picking} shipments picking, {events} events")

        report.figures.update(
            {
                "page_p50_ms": percentile_ms(page, 50),
                "page_p95_ms": percentile_ms(page, 95),
                "page_p50_ms_small": percentile_ms(page_small, 50),
                "page_p95_ms_small": small_p95,
                "page_ratio": ratio,
                "page_ratio_target_met": ratio is not None and ratio <= PAGE_TARGET_RATIO,
                "page_kib_small": page_small_kib,
                "partial_p50_ms": percentile_ms(partial, 50),
                "partial_p95_ms": percentile_ms(partial, 95),
                "move_p50_ms": percentile_ms(moves, 50),
                "move_p95_ms": percentile_ms(moves, 95),
                "page_queries": page_queries,
                "page_queries_small": page_queries_small,
                "partial_queries": partial_queries,
                "move_queries": move_queries,
                "on_board": on_board,
                "page_kib": len(html) // 1024,
                "page_target_met": percentile_ms(page, 95) <= PAGE_TARGET_P95_MS,
            }
        )
        report.write(
            f"\nsummary: board page p95 {percentile_ms(page, 95)} ms with {total} active shipments "
            f"({page_queries} queries, {page_queries_small} at {report.figures['shipments_small']}); partial p95 "
            f"{percentile_ms(partial, 95)} ms; move p95 {percentile_ms(moves, 95)} ms"
        )
    report.finish()
    return not report.failures
