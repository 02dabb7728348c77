"""Stock writes: receipts, adjustments, counts, returns and write-offs, reservations, shipments, reconcile.

Every counter change is one conditional UPDATE (``reserved = reserved + q WHERE available >= q``)
or a pk-ordered row lock, plus a ledger row in the same short transaction; no network or printer
I/O happens inside. Rows are always touched in ascending (warehouse id, SKU id) order, so two
transactions never wait on each other in a cycle (no deadlocks).

Every change of available stock also marks the channel stock of its SKUs to push
(``channel_stock_mark``), in the same transaction, after the stock rows: a crash after the commit
cannot lose the push. Nothing here enqueues work: the services return what the caller needs to
schedule (pipeline.stock retries the orders awaiting stock after commit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory import reservation_sql
from inventory.exceptions import (
    SKUNotFound,
    StockConflict,
    StockInvalid,
    WarehouseInactive,
    WarehouseNotFound,
)
from inventory.models import (
    SKU,
    BundleComponent,
    ChannelStockDirty,
    MovementKind,
    PlatformSKUMapping,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    Warehouse,
)
from oms.locks import lock_one, lock_one_or_none, lock_rows
from orders.models import Platform

ACTIVE = ReservationStatus.ACTIVE
# Counters are 32-bit integers; anything near that is a typing mistake, not a delivery.
MAX_QUANTITY = 1_000_000


# --- Master-data checks ------------------------------------------------------------------------

def _positive_quantity(quantity, field_name: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise StockInvalid(_("Quantity must be a whole number."), data={field_name: [_("Not a whole number.")]})
    if quantity <= 0:
        raise StockInvalid(_("Quantity must be at least 1."), data={field_name: [_("Must be at least 1.")]})
    if quantity > MAX_QUANTITY:
        raise StockInvalid(_("Quantity may be at most %(max)s.") % {"max": MAX_QUANTITY},
                           data={field_name: [_("Too large.")]})
    return quantity


def _warehouse_for_stock(warehouse_id: int) -> Warehouse:
    try:
        warehouse = Warehouse.objects.get(pk=warehouse_id)
    except (Warehouse.DoesNotExist, ValueError, TypeError) as exc:
        raise WarehouseNotFound(_("Warehouse %(id)s does not exist.") % {"id": warehouse_id}) from exc
    if not warehouse.active:
        raise WarehouseInactive(_("Warehouse %(code)s is not active.") % {"code": warehouse.code},
                                data={"warehouse": [_("Inactive warehouse.")]})
    return warehouse


def _sku_for_stock(sku_id: int) -> SKU:
    try:
        sku = SKU.objects.get(pk=sku_id)
    except (SKU.DoesNotExist, ValueError, TypeError) as exc:
        raise SKUNotFound(_("SKU %(id)s does not exist.") % {"id": sku_id}) from exc
    if BundleComponent.objects.filter(bundle=sku).exists():
        raise StockInvalid(_("%(code)s is a bundle; stock is kept for its components.") % {"code": sku.code},
                           data={"sku": [_("Bundles hold no stock of their own.")]})
    return sku


def _stock_row(warehouse: Warehouse, sku: SKU) -> StockLevel:
    """The counter row for (warehouse, SKU), created at zero on first use."""
    try:
        with transaction.atomic():
            row, _created = StockLevel.objects.get_or_create(
                warehouse=warehouse, sku=sku, defaults={"safety_stock": sku.safety_stock})
    except IntegrityError:  # created by a concurrent transaction a moment ago
        row = StockLevel.objects.get(warehouse=warehouse, sku=sku)
    return row


# --- Channel stock marks -------------------------------------------------------------------------

# Rows per upsert statement: 3 parameters each stays far below PostgreSQL's and SQLite's limits.
_MARK_CHUNK = 5000


def _pushing_mappings():
    """Mappings of the active platform stores: each may get stock pushes (whether its push is switched on is
    a connectors setting, which the flusher checks; a switched-off store keeps its marks until switched on)."""
    return PlatformSKUMapping.objects.filter(store__active=True).exclude(store__platform=Platform.MANUAL)


def channel_stock_mark(*, sku_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Mark the channel stock of these SKUs, and of the bundles made of them, to push; returns the
    (store id, SKU id) pairs marked.

    Runs in the caller's transaction, so the mark commits (or rolls back) with the stock change. One
    upsert bumps the version of marks already waiting: the flusher removes a mark only while it holds
    the version it pushed. Pairs are written in (store, SKU) order, so two transactions marking the
    same pairs queue behind each other instead of deadlocking.
    """
    sku_ids = set(sku_ids)
    if not sku_ids:
        return []
    bundles = BundleComponent.objects.filter(component_id__in=sku_ids).values("bundle_id")
    pairs = sorted(set(_pushing_mappings().filter(Q(sku_id__in=sku_ids) | Q(sku_id__in=bundles))
                       .values_list("store_id", "sku_id")))
    if not pairs:
        return []
    now = timezone.now()
    table = connection.ops.quote_name(ChannelStockDirty._meta.db_table)
    # bulk_create(update_conflicts=True) can only copy the new row's values, not add one to the stored
    # version; ON CONFLICT ... DO UPDATE is the same SQL on PostgreSQL and SQLite (3.24+).
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), _MARK_CHUNK):
            chunk = pairs[start:start + _MARK_CHUNK]
            cursor.execute(
                f"INSERT INTO {table} (store_id, sku_id, version, marked_at) VALUES "
                + ", ".join(["(%s, %s, 1, %s)"] * len(chunk))
                + f" ON CONFLICT (store_id, sku_id) DO UPDATE SET version = {table}.version + 1,"
                " marked_at = excluded.marked_at",
                [value for store_id, sku_id in chunk for value in (store_id, sku_id, now)])
    return pairs


def channel_stock_unmark(*, store_id: int, sku_id: int, version: int) -> bool:
    """Remove a mark once its quantity is pushed, only if no change marked it again since (its version
    is still the one the flusher read). False: a newer change waits, and the next flush pushes it."""
    return channel_stock_unmark_many(marks=[(store_id, sku_id, version)]) > 0


def channel_stock_unmark_many(*, marks: list[tuple[int, int, int]]) -> int:
    """channel_stock_unmark for many (store id, SKU id, version) marks: one DELETE per thousand marks, each
    mark removed only while it still has the version pushed. Returns how many were removed."""
    table = connection.ops.quote_name(ChannelStockDirty._meta.db_table)
    removed = 0
    with connection.cursor() as cursor:
        for start in range(0, len(marks), _MARK_CHUNK):
            chunk = sorted(marks[start:start + _MARK_CHUNK])
            condition = " OR ".join(["(store_id = %s AND sku_id = %s AND version = %s)"] * len(chunk))
            cursor.execute(f"DELETE FROM {table} WHERE {condition}", [v for mark in chunk for v in mark])
            removed += cursor.rowcount
    return removed


# --- Receipts, adjustments, stock takes ----------------------------------------------------------

def stock_receive(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                  actor=None) -> StockLevel:
    """Goods arrived: on hand goes up (orders awaiting the SKU may now be served: pipeline.stock)."""
    _positive_quantity(quantity)
    warehouse, sku = _warehouse_for_stock(warehouse_id), _sku_for_stock(sku_id)
    with transaction.atomic():
        row = _stock_row(warehouse, sku)
        StockLevel.objects.filter(pk=row.pk).update(on_hand=F("on_hand") + quantity, updated_at=timezone.now())
        StockMovement.objects.create(warehouse=warehouse, sku=sku, kind=MovementKind.RECEIPT, on_hand_delta=quantity,
                                     reference=reference[:100], note=note[:255], actor=_person(actor))
        channel_stock_mark(sku_ids={sku.pk})
    row.refresh_from_db()
    return row


def stock_adjust(*, warehouse_id: int, sku_id: int, delta: int, reason: str, reference: str = "",
                 actor=None) -> StockLevel:
    """Correct on hand by ``delta`` (damage, found goods...); never below what is reserved."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise StockInvalid(_("The adjustment must be a non-zero whole number of at most %(max)s.") % {
            "max": MAX_QUANTITY}, data={"delta": [_("Invalid.")]})
    if not reason.strip():
        raise StockInvalid(_("Give a reason for the adjustment."), data={"reason": [_("This field may not be blank.")]})
    warehouse, sku = _warehouse_for_stock(warehouse_id), _sku_for_stock(sku_id)
    with transaction.atomic():
        row = _stock_row(warehouse, sku)
        changed = StockLevel.objects.filter(pk=row.pk, on_hand__gte=F("reserved") - delta).update(
            on_hand=F("on_hand") + delta, updated_at=timezone.now())
        if not changed:
            row.refresh_from_db()
            message = _("Adjusting %(code)s by %(delta)s would leave less than the %(reserved)s units reserved.") % {
                "code": sku.code, "delta": delta, "reserved": row.reserved}
            raise StockConflict(message, data={"delta": [message]})
        StockMovement.objects.create(warehouse=warehouse, sku=sku, kind=MovementKind.ADJUSTMENT, on_hand_delta=delta,
                                     reference=reference[:100], note=reason[:255], actor=_person(actor))
        channel_stock_mark(sku_ids={sku.pk})
    row.refresh_from_db()
    return row


def stock_take(*, warehouse_id: int, sku_id: int, counted: int, reference: str = "", actor=None) -> StockLevel:
    """Set on hand to the counted quantity and ledger the difference; a count below reserved is refused."""
    _valid_count(counted)
    warehouse, sku = _warehouse_for_stock(warehouse_id), _sku_for_stock(sku_id)
    with transaction.atomic():
        row = _stock_row(warehouse, sku)
        row = lock_one(StockLevel, row.pk)
        if counted < row.reserved:
            raise StockConflict(
                _("Counted %(counted)s of %(code)s, but %(reserved)s are reserved for orders; recount or release "
                  "orders first.") % {"counted": counted, "code": sku.code, "reserved": row.reserved},
                data={"counted": [_("Below the reserved quantity.")]})
        delta = counted - row.on_hand
        StockLevel.objects.filter(pk=row.pk).update(on_hand=counted, updated_at=timezone.now())
        StockMovement.objects.create(warehouse=warehouse, sku=sku, kind=MovementKind.STOCK_TAKE, on_hand_delta=delta,
                                     reference=reference[:100], note=f"counted {counted}", actor=_person(actor))
        if delta:
            channel_stock_mark(sku_ids={sku.pk})
    row.refresh_from_db()
    return row


def _valid_count(counted) -> int:
    if isinstance(counted, bool) or not isinstance(counted, int) or not 0 <= counted <= MAX_QUANTITY:
        raise StockInvalid(_("The counted quantity must be a whole number from 0 to %(max)s.") % {
            "max": MAX_QUANTITY}, data={"counted": [_("Invalid.")]})
    return counted


@dataclass(frozen=True)
class Count:
    warehouse_id: int
    sku_id: int
    counted: int


def stock_take_many(*, counts: list[Count], reference: str = "", actor=None) -> set[int]:
    """Apply a whole count sheet in one transaction: every row or none. Returns the ids of the SKUs
    whose on hand went up (orders waiting for them may now be served).

    Rows are locked in (warehouse, SKU) order, the order every stock service uses, and the ledger
    rows go in with one insert. A count below what is reserved refuses the sheet with
    ``data={"index": i}`` (its position).
    """
    if not counts:
        return set()
    keys = [(c.warehouse_id, c.sku_id) for c in counts]
    if len(set(keys)) != len(keys):
        raise StockInvalid(_("A SKU is counted twice for one warehouse."), code="duplicate_count")
    for count in counts:
        _valid_count(count.counted)
    warehouses = {w.pk: w for w in Warehouse.objects.filter(pk__in={c.warehouse_id for c in counts})}
    skus = {s.pk: s for s in SKU.objects.filter(pk__in={c.sku_id for c in counts})}
    bundles = set(BundleComponent.objects.filter(bundle_id__in=skus).values_list("bundle_id", flat=True))
    for index, count in enumerate(counts):
        warehouse, sku = warehouses.get(count.warehouse_id), skus.get(count.sku_id)
        if warehouse is None or not warehouse.active:
            raise WarehouseInactive(_("The warehouse is unknown or inactive."), data={"index": index})
        if sku is None or sku.pk in bundles:
            raise StockInvalid(_("The SKU is unknown or a bundle."), data={"index": index})
    position = {key: index for index, key in enumerate(keys)}
    with transaction.atomic():
        in_scope = StockLevel.objects.filter(warehouse_id__in=warehouses, sku_id__in=skus)
        existing = set(in_scope.values_list("warehouse_id", "sku_id"))
        StockLevel.objects.bulk_create(
            [StockLevel(warehouse_id=w, sku_id=s, safety_stock=skus[s].safety_stock)
             for w, s in sorted(keys) if (w, s) not in existing], ignore_conflicts=True)
        wanted = [pk for pk, w, s in in_scope.values_list("pk", "warehouse_id", "sku_id") if (w, s) in position]
        # Locked in (warehouse, SKU) order like every stock write, not the helper's pk order.
        rows = {(r.warehouse_id, r.sku_id): r for r in lock_rows(StockLevel.objects.filter(
            pk__in=wanted)).order_by("warehouse_id", "sku_id")}
        movements, raised = [], set()
        for key in sorted(keys):
            row, counted = rows[key], counts[position[key]].counted
            if counted < row.reserved:
                raise StockConflict(
                    _("Counted %(counted)s of %(code)s, but %(reserved)s are reserved for orders; recount or "
                      "release orders first.") % {"counted": counted, "code": skus[key[1]].code,
                                                  "reserved": row.reserved},
                    data={"index": position[key]})
            movements.append(StockMovement(warehouse_id=key[0], sku_id=key[1], kind=MovementKind.STOCK_TAKE,
                                           on_hand_delta=counted - row.on_hand, reference=reference[:100],
                                           note=f"counted {counted}", actor=_person(actor)))
            if counted > row.on_hand:
                raised.add(key[1])
            row.on_hand = counted
        StockLevel.objects.bulk_update(list(rows.values()), ["on_hand"])
        StockMovement.objects.bulk_create(movements)
        channel_stock_mark(sku_ids={c.sku_id for c in counts})
    return raised


def _person(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


# --- Returns: restock, quarantine, write-off ------------------------------------------------------

def _return_warehouse(warehouse_id: int, *, quarantine: bool) -> Warehouse:
    """The warehouse a return moves stock in: a sellable one for a restock, a quarantine one otherwise."""
    warehouse = _warehouse_for_stock(warehouse_id)
    if warehouse.is_quarantine != quarantine:
        message = (_("%(code)s is not a quarantine warehouse: returns that cannot be sold as new go to one.")
                   if quarantine else
                   _("%(code)s is a quarantine warehouse: resalable returns go back to a sellable warehouse."))
        raise StockInvalid(message % {"code": warehouse.code}, code="warehouse_kind_wrong",
                           data={"warehouse": [message % {"code": warehouse.code}]})
    return warehouse


def _stock_in(*, warehouse: Warehouse, sku: SKU, quantity: int, kind: str, reference: str, note: str,
              actor) -> StockLevel:
    row = _stock_row(warehouse, sku)
    StockLevel.objects.filter(pk=row.pk).update(on_hand=F("on_hand") + quantity, updated_at=timezone.now())
    StockMovement.objects.create(warehouse=warehouse, sku=sku, kind=kind, on_hand_delta=quantity,
                                 reference=reference[:100], note=note[:255], actor=_person(actor))
    if not warehouse.is_quarantine:  # quarantine stock is never offered on a channel
        channel_stock_mark(sku_ids={sku.pk})
    row.refresh_from_db()
    return row


def _stock_return(*, warehouse_id: int, sku_id: int, quantity: int, quarantine: bool, kind: str, reference: str,
                  note: str, actor) -> StockLevel:
    _positive_quantity(quantity)
    warehouse = _return_warehouse(warehouse_id, quarantine=quarantine)
    sku = _sku_for_stock(sku_id)
    with transaction.atomic():
        return _stock_in(warehouse=warehouse, sku=sku, quantity=quantity, kind=kind, reference=reference, note=note,
                         actor=actor)


def stock_return_restock(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                         actor=None) -> StockLevel:
    """A resalable returned unit goes back into sellable stock (ledger kind RETURN_RESTOCK); like a receipt,
    orders awaiting the SKU may now be served (pipeline.returns schedules that)."""
    return _stock_return(warehouse_id=warehouse_id, sku_id=sku_id, quantity=quantity, quarantine=False,
                         kind=MovementKind.RETURN_RESTOCK, reference=reference, note=note, actor=actor)


def stock_return_in(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                    actor=None) -> StockLevel:
    """A returned unit that cannot be sold as new comes into a quarantine warehouse (ledger kind RETURN_IN)."""
    return _stock_return(warehouse_id=warehouse_id, sku_id=sku_id, quantity=quantity, quarantine=True,
                         kind=MovementKind.RETURN_IN, reference=reference, note=note, actor=actor)


def stock_write_off(*, warehouse_id: int, sku_id: int, quantity: int, reference: str = "", note: str = "",
                    actor=None) -> StockLevel:
    """Units leave the books (broken, not resalable): on hand goes down with a WRITE_OFF ledger row. One
    conditional UPDATE refuses to go below zero or below what is reserved."""
    _positive_quantity(quantity)
    warehouse, sku = _warehouse_for_stock(warehouse_id), _sku_for_stock(sku_id)
    with transaction.atomic():
        row = _stock_row(warehouse, sku)
        changed = StockLevel.objects.filter(pk=row.pk, on_hand__gte=F("reserved") + quantity).update(
            on_hand=F("on_hand") - quantity, updated_at=timezone.now())
        if not changed:
            row.refresh_from_db()
            message = _("Cannot write off %(quantity)s of %(code)s in %(warehouse)s: %(on_hand)s on hand, "
                        "%(reserved)s reserved.") % {"quantity": quantity, "code": sku.code,
                                                     "warehouse": warehouse.code, "on_hand": row.on_hand,
                                                     "reserved": row.reserved}
            raise StockConflict(message, code="write_off_exceeds_stock", data={"quantity": [message]})
        StockMovement.objects.create(warehouse=warehouse, sku=sku, kind=MovementKind.WRITE_OFF,
                                     on_hand_delta=-quantity, reference=reference[:100], note=note[:255],
                                     actor=_person(actor))
        if not warehouse.is_quarantine:
            channel_stock_mark(sku_ids={sku.pk})
    row.refresh_from_db()
    return row


# --- Reservations ------------------------------------------------------------------------------

@dataclass
class ReservationResult:
    reserved: bool
    already: bool = False
    warehouse_ids: list[int] = field(default_factory=list)
    # [{"sku": code, "needed": n, "available": m, "short": n - m}] when not reserved
    shortages: list[dict] = field(default_factory=list)


def _split_plan(needs_by_sku: dict[int, int], order: list[int], available) -> dict[tuple[int, int], int] | None:
    """Greedy split: each SKU from the best warehouses in turn; None when the total is not enough."""
    plan = {}
    for sku_id, needed in needs_by_sku.items():
        for warehouse_id in order:
            if needed == 0:
                break
            take = min(needed, max(available.get((warehouse_id, sku_id), 0), 0))
            if take:
                plan[(warehouse_id, sku_id)] = take
                needed -= take
        if needed:
            return None
    return plan


def _assign_lines(needs, plan: dict[tuple[int, int], int]) -> list[tuple[int, int, int, int]]:
    """Cut the plan into reservation rows (line, warehouse, SKU, quantity) per order line and warehouse."""
    left = dict(plan)
    rows = []
    keys = sorted(left)
    for need in needs:
        wanted = need.quantity
        for key in keys:
            warehouse_id, sku_id = key
            if sku_id != need.sku_id or not left[key] or not wanted:
                continue
            take = min(wanted, left[key])
            left[key] -= take
            wanted -= take
            rows.append((need.line_id, warehouse_id, sku_id, take))
    return rows


@dataclass
class ReserveRequest:
    """One order to reserve, with where to look first (see stock_reserve_for_orders)."""

    order_id: int
    allow_split: bool = False
    province: str = ""
    reference: str = ""
    preferred_warehouse_ids: list[int] | None = None
    only_warehouse_ids: list[int] | None = None


# A lost race (the read saw stock that a concurrent order took first) re-reads; each round sees
# less stock, so a few rounds settle it.
RESERVE_ROUNDS = 3


def stock_reserve_for_order(*, order_id: int, allow_split: bool = False, province: str = "",
                            reference: str = "", preferred_warehouse_ids: list[int] | None = None,
                            only_warehouse_ids: list[int] | None = None) -> ReservationResult:
    """Reserve one order: stock_reserve_for_orders with a batch of one."""
    return stock_reserve_for_orders([ReserveRequest(
        order_id=order_id, allow_split=allow_split, province=province, reference=reference,
        preferred_warehouse_ids=preferred_warehouse_ids, only_warehouse_ids=only_warehouse_ids)])[order_id]


def _ranked(snapshot, request: ReserveRequest) -> list[int]:
    ranked = snapshot.warehouses_best_first(request.province)
    if request.preferred_warehouse_ids:
        ranked = ([w for w in request.preferred_warehouse_ids if w in ranked]
                  + [w for w in ranked if w not in request.preferred_warehouse_ids])
    if request.only_warehouse_ids is not None:
        ranked = [w for w in ranked if w in request.only_warehouse_ids]
    return ranked


def _plan_one(needs_by_sku: dict[int, int], ranked: list[int], available, allow_split: bool):
    """The first warehouse that holds every line, else (where allowed) a split; None when short."""
    for warehouse_id in ranked:
        if all(available.get((warehouse_id, sku), 0) >= qty for sku, qty in needs_by_sku.items()):
            return {(warehouse_id, sku): qty for sku, qty in needs_by_sku.items()}
    if allow_split and len(ranked) > 1:
        return _split_plan(needs_by_sku, ranked, available)
    return None


def stock_reserve_for_orders(requests: list[ReserveRequest]) -> dict[int, ReservationResult]:
    """Reserve every line of each order in one warehouse (all or nothing), or split where allowed.

    Set-based for a batch: one read gives every order's needs and the availability of every needed
    SKU; the orders are planned in the given order against that availability (each takes what it
    needs from the best warehouse that holds all of it: the routing rules' ranking first, else the
    warehouse serving the receiver's province, then priority); then ONE conditional UPDATE per stock
    row adds the batch's total, in (warehouse, SKU) order like every stock write. An order that does
    not fit is short on its own; the others go on. A row whose UPDATE finds less than the read saw
    (a concurrent reservation took it) sends the orders planned on it to another round, their other
    rows given back; after RESERVE_ROUNDS they are short. An order already holding active
    reservations is left as it is. Returns a ReservationResult per order id; the caller (the order
    pipeline) decides what happens to each order.
    """
    results: dict[int, ReservationResult] = {}
    pending = {request.order_id: request for request in requests}
    now = timezone.now()
    reservations, movements, marked = [], [], set()
    with transaction.atomic(), connection.cursor() as cursor:
        for _round in range(RESERVE_ROUNDS):
            if not pending:
                break
            snapshot = reservation_sql.read(list(pending))
            available = dict(snapshot.available)
            plans: dict[int, dict[tuple[int, int], int]] = {}
            for order_id, request in pending.items():
                needs = snapshot.needs[order_id]
                if order_id in snapshot.already_reserved:
                    results[order_id] = ReservationResult(reserved=True, already=True)
                    continue
                if not needs or any(need.sku_id is None for need in needs):
                    raise StockInvalid(_("The order has no lines or a line without a known SKU."),
                                       code="sku_unmapped")
                needs_by_sku = snapshot.needs_by_sku(needs)
                ranked = _ranked(snapshot, request)
                plan = _plan_one(needs_by_sku, ranked, available, request.allow_split)
                if plan is None:
                    results[order_id] = ReservationResult(reserved=False, shortages=_shortages(
                        needs_by_sku, snapshot.codes(needs), ranked, available, request.allow_split))
                    continue
                for key, quantity in plan.items():
                    available[key] -= quantity
                plans[order_id] = plan
            totals: dict[tuple[int, int], int] = defaultdict(int)
            for plan in plans.values():
                for key, quantity in plan.items():
                    totals[key] += quantity
            lost = reservation_sql.take_many(cursor, totals)
            raced = {order_id for order_id, plan in plans.items() if lost & plan.keys()}
            for order_id in sorted(raced):  # their rows that were taken go back, in the same key order
                for key in sorted(plans[order_id].keys() - lost):
                    reservation_sql.give_back(cursor, *key, plans[order_id][key])
            for order_id, plan in plans.items():
                if order_id in raced:
                    continue
                request = pending[order_id]
                reservations += [(order_id, *row) for row in _assign_lines(snapshot.needs[order_id], plan)]
                movements += [(w, sku, order_id, quantity, request.reference)
                              for (w, sku), quantity in sorted(plan.items())]
                marked.update(sku for _w, sku in plan)
                results[order_id] = ReservationResult(reserved=True, warehouse_ids=sorted({w for w, _s in plan}))
            pending = {order_id: pending[order_id] for order_id in raced}
        for order_id in pending:  # still losing races after every round: short for now, retried later
            needs = snapshot.needs[order_id]
            needs_by_sku = snapshot.needs_by_sku(needs)
            ranked = _ranked(snapshot, pending[order_id])
            results[order_id] = ReservationResult(reserved=False, shortages=_shortages(
                needs_by_sku, snapshot.codes(needs), ranked, {}, pending[order_id].allow_split))
        if reservations:
            reservation_sql.record(reservations=reservations, movements=movements, now=now)
            channel_stock_mark(sku_ids=marked)
    return results


def _shortages(needs_by_sku: dict[int, int], codes: dict[int, str], ranked: list[int], available,
               allow_split: bool) -> list[dict]:
    """What is missing: against all warehouses together when splitting is allowed, else against the
    single warehouse that comes closest (so "no warehouse holds every line" still names a SKU)."""

    def free(warehouse_id, sku_id) -> int:
        return max(available.get((warehouse_id, sku_id), 0), 0)

    if allow_split or not ranked:
        have = {sku: sum(free(w, sku) for w in ranked) for sku in needs_by_sku}
    else:
        best = min(ranked, key=lambda w: (sum(max(q - free(w, sku), 0) for sku, q in needs_by_sku.items()),
                                          ranked.index(w)))
        have = {sku: free(best, sku) for sku in needs_by_sku}
    return [
        {"sku": codes[sku], "needed": needed, "available": have[sku], "short": needed - have[sku]}
        for sku, needed in sorted(needs_by_sku.items(), key=lambda item: codes[item[0]])
        if have[sku] < needed
    ]


def _close_reservations(*, order_id: int, kind: str, reference: str, reservation_ids: list[int] | None = None) -> int:
    """Release or ship the order's active reservations (all, or the given ones). Returns units moved."""
    with transaction.atomic():
        query = Reservation.objects.filter(order_id=order_id, status=ACTIVE)
        if reservation_ids is not None:
            query = query.filter(pk__in=reservation_ids)
        reservations = list(lock_rows(query))
        if not reservations:
            return 0
        per_row: dict[tuple[int, int], int] = defaultdict(int)
        for reservation in reservations:
            per_row[(reservation.warehouse_id, reservation.sku_id)] += reservation.quantity
        shipping = kind == MovementKind.SHIPMENT
        for (warehouse_id, sku_id), quantity in sorted(per_row.items()):
            update = {"reserved": F("reserved") - quantity}
            if shipping:
                update["on_hand"] = F("on_hand") - quantity
            StockLevel.objects.filter(warehouse_id=warehouse_id, sku_id=sku_id).update(**update)
        Reservation.objects.filter(pk__in=[r.pk for r in reservations]).update(
            status=ReservationStatus.SHIPPED if shipping else ReservationStatus.RELEASED, closed_at=timezone.now())
        StockMovement.objects.bulk_create([
            StockMovement(warehouse_id=warehouse_id, sku_id=sku_id, kind=kind, reserved_delta=-quantity,
                          on_hand_delta=-quantity if shipping else 0, order_id=order_id, reference=reference)
            for (warehouse_id, sku_id), quantity in sorted(per_row.items())
        ])
        if not shipping:  # shipping leaves available unchanged (on hand and reserved drop together)
            channel_stock_mark(sku_ids={sku_id for _w, sku_id in per_row})
    return sum(per_row.values())


def stock_ship_reservations(*, reservation_ids: list[int], reference: str = "") -> dict[int, int]:
    """Ship the given reservations of any orders (a merged parcel) in one pass over the stock rows,
    in (warehouse, SKU) order like every other stock write. Returns units shipped per order."""
    with transaction.atomic():
        reservations = list(lock_rows(Reservation.objects.filter(pk__in=reservation_ids, status=ACTIVE)))
        if not reservations:
            return {}
        per_level: dict[tuple[int, int], int] = defaultdict(int)
        per_order: dict[tuple[int, int, int], int] = defaultdict(int)
        for reservation in reservations:
            per_level[(reservation.warehouse_id, reservation.sku_id)] += reservation.quantity
            per_order[(reservation.order_id, reservation.warehouse_id, reservation.sku_id)] += reservation.quantity
        for (warehouse_id, sku_id), quantity in sorted(per_level.items()):
            StockLevel.objects.filter(warehouse_id=warehouse_id, sku_id=sku_id).update(
                on_hand=F("on_hand") - quantity, reserved=F("reserved") - quantity)
        Reservation.objects.filter(pk__in=[r.pk for r in reservations]).update(status=ReservationStatus.SHIPPED,
                                                                              closed_at=timezone.now())
        StockMovement.objects.bulk_create([
            StockMovement(warehouse_id=warehouse_id, sku_id=sku_id, kind=MovementKind.SHIPMENT,
                          reserved_delta=-quantity, on_hand_delta=-quantity, order_id=order_id, reference=reference)
            for (order_id, warehouse_id, sku_id), quantity in sorted(per_order.items())
        ])
    units: dict[int, int] = defaultdict(int)
    for (order_id, _warehouse, _sku), quantity in per_order.items():
        units[order_id] += quantity
    return dict(units)


def stock_lock_levels(*, warehouse_ids: list[int], sku_ids: list[int]) -> None:
    """Lock the stock rows of these warehouses and SKUs up front, in (warehouse, SKU) order, for an
    operation that releases in one warehouse and reserves in another (a routing override)."""
    # (warehouse, SKU) order like every stock write, not the helper's pk order.
    list(lock_rows(StockLevel.objects.filter(warehouse_id__in=warehouse_ids, sku_id__in=sku_ids))
         .order_by("warehouse_id", "sku_id").values_list("pk", flat=True))


def stock_release_for_order(*, order_id: int, reference: str = "") -> int:
    """Give the order's reserved stock back to the pool (cancel, timeout, close). Safe to call twice."""
    return _close_reservations(order_id=order_id, kind=MovementKind.RELEASE, reference=reference)


def stock_reservation_split(*, reservation_id: int, quantity: int) -> Reservation:
    """Cut ``quantity`` units off an active reservation into a new one (a parcel split by hand).

    The counters and the ledger do not change: the same units stay reserved, only in two rows.
    """
    with transaction.atomic():
        reservation = lock_one(Reservation, reservation_id)
        if reservation.status != ACTIVE or not 0 < quantity < reservation.quantity:
            raise StockInvalid(_("Only part of an active reservation can be split off."), code="split_invalid")
        Reservation.objects.filter(pk=reservation.pk).update(quantity=F("quantity") - quantity)
        return Reservation.objects.create(order_id=reservation.order_id, order_line_id=reservation.order_line_id,
                                          warehouse_id=reservation.warehouse_id, sku_id=reservation.sku_id,
                                          quantity=quantity)


def stock_ship(*, order_id: int, reservation_ids: list[int] | None = None, reference: str = "") -> int:
    """Goods left the warehouse: on hand and reserved both go down for the shipped reservations."""
    return _close_reservations(order_id=order_id, kind=MovementKind.SHIPMENT, reference=reference,
                               reservation_ids=reservation_ids)


# --- Reconciliation ----------------------------------------------------------------------------

@dataclass
class Drift:
    warehouse_id: int
    sku_id: int
    on_hand: int
    ledger_on_hand: int
    reserved: int
    ledger_reserved: int
    active_reservations: int


def stock_reconcile(*, repair: bool = False, actor=None) -> list[Drift]:
    """Recompute every counter from the ledger; report drift and, with ``repair``, fix it with a ledger note."""
    ledger = {
        (row["warehouse_id"], row["sku_id"]): (row["on_hand"] or 0, row["reserved"] or 0)
        for row in StockMovement.objects.values("warehouse_id", "sku_id").annotate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
    }
    holds = {
        (row["warehouse_id"], row["sku_id"]): row["quantity"] or 0
        for row in Reservation.objects.filter(status=ACTIVE).values("warehouse_id", "sku_id").annotate(
            quantity=Sum("quantity"))
    }
    drifts = []
    for level in StockLevel.objects.order_by("warehouse_id", "sku_id").iterator():
        key = (level.warehouse_id, level.sku_id)
        on_hand, reserved = ledger.get(key, (0, 0))
        if (level.on_hand, level.reserved) != (on_hand, reserved) or holds.get(key, 0) != reserved:
            drifts.append(Drift(level.warehouse_id, level.sku_id, level.on_hand, on_hand, level.reserved, reserved,
                                holds.get(key, 0)))
    if repair:
        for drift in drifts:
            _repair(drift, actor)
    return drifts


def _repair(drift: Drift, actor) -> None:
    """Trust the ledger: set the counters to its sums and record what was wrong."""
    with transaction.atomic():
        level = lock_one_or_none(StockLevel.objects.filter(warehouse_id=drift.warehouse_id, sku_id=drift.sku_id))
        if level is None:  # stock rows are never deleted (PROTECT); nothing to repair if one were
            return
        if drift.ledger_reserved > drift.ledger_on_hand or drift.ledger_on_hand < 0 or drift.ledger_reserved < 0:
            raise StockConflict(_("The ledger of SKU %(sku)s in warehouse %(wh)s is itself inconsistent.") % {
                "sku": drift.sku_id, "wh": drift.warehouse_id})
        StockLevel.objects.filter(pk=level.pk).update(on_hand=drift.ledger_on_hand, reserved=drift.ledger_reserved)
        StockMovement.objects.create(
            warehouse_id=drift.warehouse_id, sku_id=drift.sku_id, kind=MovementKind.RECONCILE, actor=_person(actor),
            note=(f"counters were on_hand={level.on_hand} reserved={level.reserved}; set to ledger "
                  f"on_hand={drift.ledger_on_hand} reserved={drift.ledger_reserved}; "
                  f"active reservations={drift.active_reservations}")[:255])
        channel_stock_mark(sku_ids={drift.sku_id})


def sku_set_safety_stock(*, sku_id: int, safety_stock: int) -> bool:
    """Change a SKU's safety stock and copy it to its stock rows (the reservation UPDATE reads it there).

    Returns True when it went down: more stock is free, so orders waiting for the SKU may be served.
    """
    if isinstance(safety_stock, bool) or not isinstance(safety_stock, int) or not 0 <= safety_stock <= MAX_QUANTITY:
        raise StockInvalid(_("Safety stock must be 0 or more."), data={"safety_stock": [_("Invalid.")]})
    with transaction.atomic():
        sku = lock_one_or_none(SKU.objects.filter(pk=sku_id))
        if sku is None:
            raise SKUNotFound(_("SKU %(id)s does not exist.") % {"id": sku_id})
        SKU.objects.filter(pk=sku_id).update(safety_stock=safety_stock)
        StockLevel.objects.filter(sku_id=sku_id).update(safety_stock=safety_stock)
        if safety_stock != sku.safety_stock:  # the platforms' quantities move with it
            channel_stock_mark(sku_ids={sku_id})
    return safety_stock < sku.safety_stock


def bundle_components_check(*, bundle_id: int, component_ids: list[int]) -> None:
    """Refuse a bundle definition that would strand stock or could never be reserved."""
    if bundle_id in component_ids:
        raise StockInvalid(_("A bundle cannot contain itself."), code="bundle_invalid")
    if StockLevel.objects.filter(sku_id=bundle_id, on_hand__gt=0).exists():
        raise StockInvalid(_("This SKU holds stock; count it to zero before making it a bundle."),
                           code="bundle_invalid")
    if BundleComponent.objects.filter(bundle_id__in=component_ids).exists():
        raise StockInvalid(_("A component may not itself be a bundle (bundles are not nested)."),
                           code="bundle_invalid")
    if BundleComponent.objects.filter(component_id=bundle_id).exists():
        raise StockInvalid(_("This SKU is a component of another bundle, so it cannot be a bundle."),
                           code="bundle_invalid")


