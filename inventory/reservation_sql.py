"""The reservation hot path as a few plain SQL statements (one read, one UPDATE per stock row, two inserts).

A flash sale sends thousands of attempts a second at one stock row, so this path avoids the ORM's
per-query overhead and extra round trips: one statement reads what the order needs, whether it
already holds stock, and the availability in every active warehouse; a sold-out attempt ends there.
The SQL is portable between PostgreSQL and SQLite (the trial database).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from inventory.models import (
    SKU,
    BundleComponent,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from orders.models import OrderLine

T = {
    "line": OrderLine._meta.db_table, "bundle": BundleComponent._meta.db_table, "sku": SKU._meta.db_table,
    "stock": StockLevel._meta.db_table, "warehouse": Warehouse._meta.db_table,
    "reservation": Reservation._meta.db_table, "movement": StockMovement._meta.db_table,
}

# Row kinds of the combined read: 0 = a need of a line (bundles expanded to their components),
# 1 = availability of a needed SKU in an active warehouse (never a quarantine one: returned goods that cannot be
# sold as new), 2 = an order already holds stock.
def _read_sql(count: int) -> str:
    marks = ", ".join(["%s"] * count)
    return f"""
WITH needs AS (
    SELECT l.order_id, l.id AS line_id, COALESCE(bc.component_id, l.sku_id) AS sku_id,
           l.quantity * COALESCE(bc.quantity, 1) AS qty, l.sku_code AS line_code, l.line_no, bc.id AS part
    FROM {T["line"]} l LEFT JOIN {T["bundle"]} bc ON bc.bundle_id = l.sku_id
    WHERE l.order_id IN ({marks})
)
SELECT 0, n.order_id, n.line_id, n.sku_id, n.qty, COALESCE(k.code, n.line_code), NULL, n.line_no, n.part
FROM needs n LEFT JOIN {T["sku"]} k ON k.id = n.sku_id
UNION ALL
SELECT 1, NULL, s.warehouse_id, s.sku_id, s.on_hand - s.reserved - s.safety_stock, NULL, w.provinces, w.priority, NULL
FROM {T["stock"]} s JOIN {T["warehouse"]} w ON w.id = s.warehouse_id
WHERE w.active AND NOT w.is_quarantine AND s.sku_id IN (SELECT sku_id FROM needs)
UNION ALL
SELECT 2, r.order_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM {T["reservation"]} r WHERE r.order_id IN ({marks}) AND r.status = %s GROUP BY r.order_id
"""


TAKE_SQL = (f"UPDATE {T['stock']} SET reserved = reserved + %s "
            "WHERE warehouse_id = %s AND sku_id = %s AND on_hand >= reserved + safety_stock + %s")
GIVE_BACK_SQL = f"UPDATE {T['stock']} SET reserved = reserved - %s WHERE warehouse_id = %s AND sku_id = %s"


@dataclass
class Need:
    line_id: int
    sku_id: int | None
    quantity: int
    code: str


@dataclass
class Snapshot:
    """What the combined read returned for a set of orders: each order's needs, and the availability of
    every needed SKU in every active warehouse (shared by the orders)."""

    needs: dict[int, list[Need]] = field(default_factory=dict)
    available: dict[tuple[int, int], int] = field(default_factory=dict)
    warehouse_rank: dict[int, tuple[int, int]] = field(default_factory=dict)  # id → (priority, id)
    provinces: dict[int, list[str]] = field(default_factory=dict)
    already_reserved: set[int] = field(default_factory=set)

    @staticmethod
    def needs_by_sku(needs: list[Need]) -> dict[int, int]:
        totals: dict[int, int] = defaultdict(int)
        for need in needs:
            totals[need.sku_id] += need.quantity
        return dict(totals)

    @staticmethod
    def codes(needs: list[Need]) -> dict[int, str]:
        return {need.sku_id: need.code for need in needs}

    def warehouses_best_first(self, province: str) -> list[int]:
        def key(warehouse_id: int):
            serves = bool(province) and province in self.provinces.get(warehouse_id, [])
            return (0 if serves else 1, *self.warehouse_rank[warehouse_id])
        return sorted(self.warehouse_rank, key=key)


def read(order_ids: list[int]) -> Snapshot:
    """One statement for the whole batch: needs, availability and the orders already holding stock."""
    snapshot = Snapshot(needs={order_id: [] for order_id in order_ids})
    with connection.cursor() as cursor:
        cursor.execute(_read_sql(len(order_ids)), [*order_ids, *order_ids, ReservationStatus.ACTIVE])
        rows = cursor.fetchall()
    ordered_needs = []
    for kind, order_id, a, b, c, code, provinces, rank, part in rows:
        if kind == 0:
            ordered_needs.append((order_id, rank, part or 0, Need(line_id=a, sku_id=b, quantity=c, code=code)))
        elif kind == 1:
            snapshot.available[(a, b)] = c
            snapshot.warehouse_rank[a] = (rank, a)
            if a not in snapshot.provinces:
                # jsonb arrives parsed from PostgreSQL, as text from SQLite
                snapshot.provinces[a] = json.loads(provinces) if isinstance(provinces, str) else (provinces or [])
        else:
            snapshot.already_reserved.add(order_id)
    for order_id, _line_no, _part, need in sorted(ordered_needs, key=lambda item: item[:3]):
        snapshot.needs[order_id].append(need)
    return snapshot


def take(cursor, warehouse_id: int, sku_id: int, quantity: int) -> bool:
    """One conditional UPDATE: reserve ``quantity`` if that much is available right now."""
    cursor.execute(TAKE_SQL, [quantity, warehouse_id, sku_id, quantity])
    return cursor.rowcount == 1


def take_many(cursor, totals: dict[tuple[int, int], int]) -> set[tuple[int, int]]:
    """Reserve each (warehouse, SKU) → quantity where that much is available right now; returns the rows
    that were NOT taken. On PostgreSQL one statement for the whole batch: the rows are locked in (warehouse,
    SKU) order first (a CTE with FOR UPDATE), so two batches never deadlock, then updated conditionally; on
    SQLite (one writer at a time) one conditional UPDATE per row in the same order."""
    keys = sorted(totals)
    if not keys:
        return set()
    if connection.vendor != "postgresql":
        return {key for key in keys if not take(cursor, *key, totals[key])}
    lost = set(keys)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        values = ", ".join(["(%s::bigint, %s::bigint, %s::integer)"] * len(chunk))
        cursor.execute(f"""
WITH wanted (warehouse_id, sku_id, qty) AS (VALUES {values}),
locked AS (
    SELECT s.id, w.qty FROM {T["stock"]} s
    JOIN wanted w ON s.warehouse_id = w.warehouse_id AND s.sku_id = w.sku_id
    ORDER BY s.warehouse_id, s.sku_id FOR UPDATE OF s
)
UPDATE {T["stock"]} s SET reserved = s.reserved + l.qty FROM locked l
WHERE s.id = l.id AND s.on_hand >= s.reserved + s.safety_stock + l.qty
RETURNING s.warehouse_id, s.sku_id""", [value for key in chunk for value in (*key, totals[key])])
        lost -= {(warehouse_id, sku_id) for warehouse_id, sku_id in cursor.fetchall()}
    return lost


def give_back(cursor, warehouse_id: int, sku_id: int, quantity: int) -> None:
    """Undo part of a take whose order could not complete its plan (another of its rows was taken first)."""
    cursor.execute(GIVE_BACK_SQL, [quantity, warehouse_id, sku_id])


def record(*, reservations: list[tuple[int, int, int, int, int]], movements: list[tuple[int, int, int, int, str]],
           now) -> None:
    """Insert the reservation rows (order, line, warehouse, SKU, quantity) and the ledger rows (warehouse,
    SKU, order, quantity, reference) of a whole batch: one INSERT each (chunked for very large batches)."""
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        for start in range(0, len(reservations), _CHUNK):
            chunk = reservations[start:start + _CHUNK]
            params = []
            for order_id, line_id, warehouse_id, sku_id, quantity in chunk:
                params += [order_id, line_id, warehouse_id, sku_id, quantity, ReservationStatus.ACTIVE, stamp]
            cursor.execute(f"INSERT INTO {T['reservation']} (order_id, order_line_id, warehouse_id, sku_id, quantity, "
                           f"status, created_at) VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk)),
                           params)
        for start in range(0, len(movements), _CHUNK):
            chunk = movements[start:start + _CHUNK]
            params = []
            for warehouse_id, sku_id, order_id, quantity, reference in chunk:
                params += [warehouse_id, sku_id, MovementKind.RESERVATION, quantity, reference[:100], order_id, stamp]
            cursor.execute(f"INSERT INTO {T['movement']} (warehouse_id, sku_id, kind, on_hand_delta, reserved_delta, "
                           f"reference, order_id, note, created_at) VALUES "
                           + ", ".join(["(%s, %s, %s, 0, %s, %s, %s, '', %s)"] * len(chunk)), params)


# Rows per INSERT: keeps the parameter count under SQLite's limit (32,766) and PostgreSQL's (65,535).
_CHUNK = 2000
