"""Helpers the benchmarks share: the report with its FAIL lines and JSON, percentiles, stock checks, profiles,
and the channel fixtures (a catalogue in stock, a Shopify store, a sandbox making 1-5 line paid orders)."""

from __future__ import annotations

import copy
import io
import json
import math
import pstats
import random
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

from django.db import connections
from django.db.models import Sum

from connectors.sandbox import shopify as shopify_sandbox
from connectors.services import store_create_with_channel
from inventory.models import (
    SKU,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from orders.models import Platform, Store

ACTIVE = ReservationStatus.ACTIVE
BATCH = 1000


class Report:
    """Human-readable lines as the phases go, FAIL lines for broken sanity checks, and the figures for --json."""

    def __init__(self, stdout, as_json: bool):
        self.out = stdout
        self.as_json = as_json
        self.figures: dict = {}
        self.failures: list[str] = []

    def write(self, text: str = "") -> None:
        self.out.write(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        self.out.write(f"FAIL {text}")

    def finish(self) -> None:
        self.figures["ok"] = not self.failures
        self.figures["failures"] = self.failures
        if self.as_json:
            self.out.write(json.dumps(self.figures))


def percentile_ms(seconds: list[float], pct: float) -> float:
    """Nearest-rank percentile of durations in seconds, in milliseconds."""
    if not seconds:
        return 0.0
    ordered = sorted(seconds)
    return round(ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)] * 1000, 2)


def check_stock_consistency(report: Report, label: str) -> int:
    """Every stock row: 0 <= reserved <= on_hand, reserved = ACTIVE holds, counters = ledger sums."""
    holds = {(row["warehouse_id"], row["sku_id"]): row["total"] for row in
             Reservation.objects.filter(status=ACTIVE).values("warehouse_id", "sku_id").annotate(
                 total=Sum("quantity")).order_by()}
    ledger = {(row["warehouse_id"], row["sku_id"]): (row["on_hand"], row["reserved"]) for row in
              StockMovement.objects.values("warehouse_id", "sku_id").annotate(
                  on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")).order_by()}
    mismatches = 0
    rows = 0
    for level in StockLevel.objects.order_by("warehouse_id", "sku_id").iterator():
        rows += 1
        key = (level.warehouse_id, level.sku_id)
        problems = []
        if not 0 <= level.reserved <= level.on_hand:
            problems.append("reserved outside 0..on_hand")
        if level.reserved != holds.get(key, 0):
            problems.append(f"active holds {holds.get(key, 0)}")
        if (level.on_hand, level.reserved) != ledger.get(key, (0, 0)):
            problems.append(f"ledger on_hand/reserved {ledger.get(key, (0, 0))}")
        if problems:
            mismatches += 1
            if mismatches <= 10:
                report.write(f"    mismatch warehouse {key[0]} SKU {key[1]} on_hand {level.on_hand} "
                             f"reserved {level.reserved}: {', '.join(problems)}")
    report.write(f"  {rows} stock rows checked against holds and ledger: {mismatches} mismatches")
    if mismatches:
        report.fail(f"{label}: {mismatches} stock rows disagree with their reservations or ledger")
    return mismatches


def raw_connection_params() -> dict:
    """psycopg2.connect() arguments for the database the default connection points at (the scratch one)."""
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # plain psycopg2 cursors
    return params


def write_profile_stats(report: Report, profiler, *, top: int = 25,
                        orders: tuple[str, ...] = ("tottime", "cumulative")) -> None:
    """The profiler's top ``top`` functions for each sort order, as report lines."""
    for order in orders:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(order).print_stats(top)
        report.write(f"  top {top} by {order}:")
        lines = buffer.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        for line in lines[start:]:
            if line.strip():
                report.write(f"    {line}")


# --- Channel fixtures ------------------------------------------------------------------------------

def catalogue_fixture(*, skus: int, units: int, seed: int = 11, prefix: str = "BENCH") -> list[tuple[str, str]]:
    """``skus`` SKUs with ``units`` on hand each in one warehouse; returns their (code, price) pairs.

    Stock rows and their receipt ledger rows are inserted together (200 stock_receive calls would only add
    set-up time); the counters equal the ledger sums, as the service guarantees.
    """
    rng = random.Random(seed)
    warehouse = Warehouse.objects.create(code=f"{prefix.lower()}-wh", name=f"{prefix} warehouse", priority=10)
    prices = [Decimal(rng.randint(300, 8000)) / 100 for _ in range(skus)]
    created = SKU.objects.bulk_create([SKU(code=f"{prefix}-{n:04d}", name=f"{prefix} SKU {n}", list_price=price)
                                       for n, price in enumerate(prices)], batch_size=BATCH)
    StockLevel.objects.bulk_create([StockLevel(warehouse=warehouse, sku=sku, on_hand=units) for sku in created],
                                   batch_size=BATCH)
    StockMovement.objects.bulk_create([StockMovement(warehouse=warehouse, sku=sku, kind=MovementKind.RECEIPT,
                                                     on_hand_delta=units, reference="bench:receipt")
                                       for sku in created], batch_size=BATCH)
    return [(sku.code, str(price)) for sku, price in zip(created, prices, strict=True)]


def shopify_store(*, code: str, credentials: dict, polling: bool = True) -> Store:
    """A Shopify store that reserves at payment and approves automatically, with its sync state."""
    return store_create_with_channel(platform=Platform.SHOPIFY, code=code, name=f"bench {code}",
                                     default_currency="USD", credentials=credentials, enabled=polling)


class BenchShopifySandbox(shopify_sandbox.ShopifySandbox):
    """The Shopify sandbox, with orders of 1-5 lines that are all paid (the stock one makes 1-3 lines, 85 % paid).

    The lines are redrawn from the catalogue and every amount recomputed the way the sandbox computes it, so the
    platform total still adds up (the hub would record a mismatch otherwise).
    """

    def generate_order(self) -> dict:
        order = super().generate_order()
        rng, sb = self.rng, shopify_sandbox
        template = order["line_items"][0]
        items, subtotal = [], Decimal("0")
        for code, price in rng.sample(self.skus, k=min(len(self.skus), rng.randint(1, 5))):
            quantity = rng.choice([1, 1, 1, 2, 3])
            unit = Decimal(price)
            subtotal += unit * quantity
            ids, line_id = self.variant(code), self._new_id()
            items.append({**copy.deepcopy(template), "id": line_id,
                          "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                          "variant_id": ids["variant_id"], "product_id": ids["product_id"], "sku": code,
                          "title": code, "name": code, "quantity": quantity, "current_quantity": quantity,
                          "fulfillable_quantity": quantity, "price": sb._money(unit), "price_set": sb._money_set(unit)})
        discount = Decimal("0")
        if order["discount_codes"]:
            discount = (subtotal * Decimal("0.10")).quantize(sb.CENT, rounding=ROUND_HALF_UP)
            order["discount_codes"][0]["amount"] = sb._money(discount)
        shipping = Decimal("0") if subtotal >= sb.FREE_SHIPPING_FROM else sb.SHIPPING_PRICE
        rate = sb.TAX_RATES.get(order["shipping_address"]["country_code"], Decimal("0"))
        tax = ((subtotal - discount) * rate).quantize(sb.CENT, rounding=ROUND_HALF_UP)
        total = subtotal - discount + shipping + tax
        order.update({
            "line_items": items, "financial_status": "paid", "total_outstanding": "0.00",
            "subtotal_price": sb._money(subtotal), "total_line_items_price": sb._money(subtotal),
            "total_discounts": sb._money(discount), "total_tax": sb._money(tax), "total_price": sb._money(total),
            "current_total_price": sb._money(total), "total_price_set": sb._money_set(total),
            "total_shipping_price_set": sb._money_set(shipping), "total_discounts_set": sb._money_set(discount),
            "total_tax_set": sb._money_set(tax),
            "tax_lines": [{"price": sb._money(tax), "rate": float(rate), "title": "State Tax"}] if tax else [],
        })
        order["shipping_lines"][0].update({"price": sb._money(shipping), "discounted_price": sb._money(shipping),
                                           "code": "Standard" if shipping else "Free Shipping",
                                           "title": "Standard" if shipping else "Free Shipping"})
        return order


def profile_areas(profiler) -> Counter:
    """Own time (tottime) of the profile summed by where the code lives: psycopg2 calls, Django's SQL compiler,
    the rest of the ORM, Django's database wrappers, the project's apps, the standard library..."""
    areas: Counter = Counter()
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in pstats.Stats(profiler).stats.items():
        path = filename.replace("\\", "/")
        if filename == "~":
            area = f"psycopg2 {function.split(' of ')[0].strip('<')}" if "psycopg2" in function else "builtins"
        elif "/django/db/models/sql/" in path:
            area = "Django ORM: SQL compiler (django/db/models/sql)"
        elif "/django/db/models/" in path:
            area = "Django ORM: models, querysets, fields (django/db/models)"
        elif "/django/db/" in path:
            area = "Django database wrappers and transactions (django/db/backends, transaction)"
        elif "/django/" in path:
            area = "Django, other"
        elif "/site-packages/" in path:
            area = f"package {path.split('/site-packages/')[1].split('/')[0]}"
        elif "/lib/python3" in path or path.startswith("<"):
            area = "Python standard library"
        else:
            area = f"project: {path.rsplit('/', 2)[-2]}/"
        areas[area] += own
    return areas


def write_profile_areas(report: Report, profiler, *, per: int, unit: str) -> None:
    """The profile's own time grouped by area (see profile_areas), in ms per ``unit`` and as shares."""
    areas = profile_areas(profiler)
    total = sum(areas.values()) or 1.0
    report.write(f"  own time by area (ms per {unit} under the profiler, share):")
    for area, own in areas.most_common(14):
        report.write(f"    {own / per * 1000:8.3f} ms {own / total * 100:5.1f}%  {area}")
