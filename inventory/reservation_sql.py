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
# 1 = availability of a needed SKU in an active warehouse, 2 = the order already holds stock.
READ_SQL = f"""
WITH needs AS (
    SELECT l.id AS line_id, COALESCE(bc.component_id, l.sku_id) AS sku_id,
           l.quantity * COALESCE(bc.quantity, 1) AS qty, l.sku_code AS line_code
    FROM {T["line"]} l LEFT JOIN {T["bundle"]} bc ON bc.bundle_id = l.sku_id
    WHERE l.order_id = %s
)
SELECT 0, n.line_id, n.sku_id, n.qty, 0, COALESCE(k.code, n.line_code), NULL
FROM needs n LEFT JOIN {T["sku"]} k ON k.id = n.sku_id
UNION ALL
SELECT 1, s.warehouse_id, s.sku_id, s.on_hand - s.reserved - s.safety_stock, w.priority, NULL, w.provinces
FROM {T["stock"]} s JOIN {T["warehouse"]} w ON w.id = s.warehouse_id
WHERE w.active AND s.sku_id IN (SELECT sku_id FROM needs)
UNION ALL
SELECT 2, MIN(r.id), NULL, NULL, NULL, NULL, NULL
FROM {T["reservation"]} r WHERE r.order_id = %s AND r.status = %s HAVING COUNT(*) > 0
"""

TAKE_SQL = (f"UPDATE {T['stock']} SET reserved = reserved + %s "
            "WHERE warehouse_id = %s AND sku_id = %s AND on_hand >= reserved + safety_stock + %s")


@dataclass
class Need:
    line_id: int
    sku_id: int | None
    quantity: int
    code: str


@dataclass
class Snapshot:
    """What the combined read returned for one order."""

    needs: list[Need] = field(default_factory=list)
    available: dict[tuple[int, int], int] = field(default_factory=dict)
    warehouse_rank: dict[int, tuple[int, int]] = field(default_factory=dict)  # id → (priority, id)
    provinces: dict[int, list[str]] = field(default_factory=dict)
    already_reserved: bool = False

    @property
    def needs_by_sku(self) -> dict[int, int]:
        totals: dict[int, int] = defaultdict(int)
        for need in self.needs:
            totals[need.sku_id] += need.quantity
        return dict(totals)

    @property
    def codes(self) -> dict[int, str]:
        return {need.sku_id: need.code for need in self.needs}

    def warehouses_best_first(self, province: str) -> list[int]:
        def key(warehouse_id: int):
            serves = bool(province) and province in self.provinces.get(warehouse_id, [])
            return (0 if serves else 1, *self.warehouse_rank[warehouse_id])
        return sorted(self.warehouse_rank, key=key)


def read(order_id: int) -> Snapshot:
    snapshot = Snapshot()
    with connection.cursor() as cursor:
        cursor.execute(READ_SQL, [order_id, order_id, ReservationStatus.ACTIVE])
        rows = cursor.fetchall()
    for kind, a, b, c, d, code, provinces in rows:
        if kind == 0:
            snapshot.needs.append(Need(line_id=a, sku_id=b, quantity=c, code=code))
        elif kind == 1:
            snapshot.available[(a, b)] = c
            snapshot.warehouse_rank[a] = (d, a)
            if a not in snapshot.provinces:
                # jsonb arrives parsed from PostgreSQL, as text from SQLite
                snapshot.provinces[a] = json.loads(provinces) if isinstance(provinces, str) else (provinces or [])
        else:
            snapshot.already_reserved = True
    return snapshot


def take(cursor, warehouse_id: int, sku_id: int, quantity: int) -> bool:
    """One conditional UPDATE: reserve ``quantity`` if that much is available right now."""
    cursor.execute(TAKE_SQL, [quantity, warehouse_id, sku_id, quantity])
    return cursor.rowcount == 1


def record(*, order_id: int, rows: list[tuple[int, int, int, int]], plan: dict[tuple[int, int], int],
           reference: str, now) -> None:
    """Insert the reservation rows (line, warehouse, SKU, quantity) and one ledger row per stock row."""
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        params = []
        for line_id, warehouse_id, sku_id, quantity in rows:
            params += [order_id, line_id, warehouse_id, sku_id, quantity, ReservationStatus.ACTIVE, stamp]
        cursor.execute(f"INSERT INTO {T['reservation']} (order_id, order_line_id, warehouse_id, sku_id, quantity, "
                       f"status, created_at) VALUES {values}", params)
        keys = sorted(plan)
        values = ", ".join(["(%s, %s, %s, 0, %s, %s, %s, '', %s)"] * len(keys))
        params = []
        for warehouse_id, sku_id in keys:
            params += [warehouse_id, sku_id, MovementKind.RESERVATION, plan[(warehouse_id, sku_id)], reference[:100],
                       order_id, stamp]
        cursor.execute(f"INSERT INTO {T['movement']} (warehouse_id, sku_id, kind, on_hand_delta, reserved_delta, "
                       f"reference, order_id, note, created_at) VALUES {values}", params)
