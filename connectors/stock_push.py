"""Channel stock push: each store's platform gets its new quantity after any change of available stock.

Every stock change marks its (store, SKU) pairs in inventory's ChannelStockDirty in the change's own
transaction, so no crash after the commit can lose a push. The flusher (a beat tick every few seconds,
or sooner when the pipeline asks after a commit) reads the marks, computes every marked quantity and
pushes each pair whose number actually changed, so a burst of 1,000 reservations on one SKU becomes one
or two pushes. Per store the pushes go in batches (as many SKUs per call as the platform's batch endpoint
takes: 250 on Shopify's GraphQL inventorySetQuantities, one elsewhere), several calls in flight at once.
A mark is removed only while it still has the version the flusher read (compare-and-delete): a change
made during a push is pushed again. ChannelStock keeps what each platform was told last, when, the retry
state of a failing push, and the platform ids the push needs (looked up once, then reused).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from connectors.base import Connector, PermanentError, StockPush, TransientError
from connectors.models import ChannelStock, ChannelSyncState
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import backoff_seconds
from inventory import selectors as stock_selectors
from inventory import services as stock_services
from inventory.models import PlatformSKUMapping
from oms.bulk import rows_update
from orders.models import Store

logger = logging.getLogger(__name__)


def forget_mapping_cache() -> None:
    """Kept for callers of the former mapping cache: marks now read the mappings in the stock change's
    own transaction, so there is nothing to forget."""


def stock_changed(sku_ids) -> list[tuple[int, int]]:
    """Mark these SKUs' channel stock to push now (demo data, a catalogue mapped by hand), with their
    ChannelStock rows created at once so the channel stock page lists them before the first push."""
    with transaction.atomic():
        pairs = stock_services.channel_stock_mark(sku_ids=sku_ids)
        ChannelStock.objects.bulk_create([ChannelStock(store_id=s, sku_id=k) for s, k in pairs],
                                         ignore_conflicts=True)
    return pairs


def _channel_settings(store: Store) -> ChannelSyncState:
    """The store's channel settings; a store never set up (no row yet) has the defaults: all of it, no buffer."""
    try:
        return store.sync_state
    except ChannelSyncState.DoesNotExist:
        return ChannelSyncState(store=store)


def channel_quantity(store: Store, available: int) -> int:
    """floor(available × share) − buffer, never below zero (the store's ChannelSyncState holds both)."""
    state = _channel_settings(store)
    return max(math.floor(Decimal(available) * state.stock_share) - state.stock_buffer, 0)


FLUSH_LOCK = "channel-stock-flushing"
FLUSH_AGAIN = "channel-stock-flush-again"
FLUSH_LOCK_SECONDS = 600


def channel_stock_flush(*, limit: int = 5000) -> dict[str, int]:
    """Push every marked (store, SKU) quantity, one flush at a time; returns counts of SKUs pushed, found
    unchanged and failed. ``limit`` bounds the marks one store's cycle reads.

    Single flight: two flushes at once would push the same rows twice and could write the platform
    and the row in opposite orders (leaving an old number on the platform). A flush that finds
    another running asks it to run once more instead (``channel_stock_flush_wanted``).
    """
    if not cache.add(FLUSH_LOCK, 1, timeout=FLUSH_LOCK_SECONDS):
        cache.set(FLUSH_AGAIN, 1, timeout=FLUSH_LOCK_SECONDS)
        return {"calls": 0, "unchanged": 0, "errors": 0, "busy": 1}
    try:
        return _flush_once(limit=limit)
    finally:
        cache.delete(FLUSH_LOCK)


def channel_stock_flush_wanted() -> bool:
    """After a flush: did changes arrive meanwhile (marks ready now, or a flush turned away)?"""
    again = cache.get(FLUSH_AGAIN)
    cache.delete(FLUSH_AGAIN)
    return bool(again) or _ready_marks(timezone.now()).exists()


def _ready_marks(now):
    """Marks of stores that still take pushes and are not waiting out a failed push's backoff.

    Switching a store (or its push) off stops what was queued without losing it: its marks stay until
    it is switched on again.
    """
    backing_off = ChannelStock.objects.filter(store_id=OuterRef("store_id"), sku_id=OuterRef("sku_id"),
                                              next_attempt_at__gt=now)
    return (stock_selectors.channel_stock_marks()
            .filter(store__active=True, store__platform__in=list(CONNECTORS))
            .exclude(store__sync_state__stock_push_enabled=False)
            .exclude(Exists(backing_off)))


# A store whose cycle pushed at least this many SKUs has a backlog: its lane reads its marks again at once, in the
# same flush, instead of waiting for the next flush to be scheduled. A store done with its cycle while another
# store's lane is still busy looks again every RECHECK_SECONDS (a fast platform is not held back by a slow one for
# the rest of the flush). A quiet flush (a hot SKU's reservations) ends with its cycle, so changes go on coalescing
# into one push per flush.
BACKLOG_PUSHES = 20
RECHECK_SECONDS = 0.5
FLUSH_BUDGET_SECONDS = 60.0  # no new cycle starts after this; what is left waits for the next flush


@dataclass
class _Planned:
    """One (store, SKU) to push in this flush: its row, the mark version read, and the item handed to the platform."""

    row: ChannelStock
    version: int
    push: StockPush


@dataclass
class _Lane:
    """One store's part of a flush: a connector per call it may have in flight, and its current cycle's batches
    (those waiting their turn, and how many are out)."""

    store: Store
    connectors: list[Connector]
    batch_size: int
    waiting: deque = field(default_factory=deque)
    in_flight: int = 0
    planned: int = 0
    cycles: int = 0
    cycle_began: float = 0.0

    @property
    def busy(self) -> bool:
        return bool(self.in_flight or self.waiting)


def _flush_once(*, limit: int) -> dict[str, int]:
    """Every store with ready marks gets a lane; the lanes push side by side, so a store with a batch endpoint
    is not held back by a store that takes one SKU per call.

    Only HTTP runs in the pool. A lane has at most ``stock_concurrency`` calls out, each on a connector (and so
    an HTTP session and rate-limit state) of its own; its next batch goes out when one comes back, so no pool
    thread ever waits for a store's turn while another store's batch could go. Marks and rows are read and
    written here, in the flushing thread: no pool thread touches the database.
    """
    began = time.monotonic()
    counts = {"calls": 0, "unchanged": 0, "errors": 0}
    store_ids = set(_ready_marks(timezone.now()).order_by().values_list("store_id", flat=True).distinct())
    if not store_ids:
        return counts
    lanes = []
    for store in Store.objects.filter(pk__in=store_ids).select_related("sync_state").order_by("pk"):
        first = connector_for_store(store)
        more = [type(first)(first.credentials, timeout=first.timeout) for _ in range(first.stock_concurrency - 1)]
        lanes.append(_Lane(store, [first, *more], max(first.stock_batch_size, 1)))

    futures: dict = {}
    with ThreadPoolExecutor(max_workers=sum(len(lane.connectors) for lane in lanes),
                            thread_name_prefix="stock-push") as executor:

        def send(lane: _Lane) -> None:
            chunk = lane.waiting.popleft()
            connector = lane.connectors.pop()  # one of its own per call out; returned when the call is back
            lane.in_flight += 1
            future = executor.submit(connector.set_stock_many, [planned.push for planned in chunk])
            futures[future] = (lane, chunk, connector)

        def cycle(lane: _Lane) -> None:
            lane.cycle_began = time.monotonic()
            planned = _plan(lane.store, limit=limit, counts=counts)
            # Neighbours in a batch share their product where they can (batch endpoints work per item).
            planned.sort(key=lambda item: item.push.platform_product_id)
            lane.waiting.extend(planned[n:n + lane.batch_size] for n in range(0, len(planned), lane.batch_size))
            lane.planned, lane.cycles = len(planned), lane.cycles + 1
            while lane.waiting and lane.connectors:
                send(lane)

        for lane in lanes:
            cycle(lane)
        while any(lane.busy for lane in lanes):
            now = time.monotonic()
            # Lanes with nothing out come back for another look while another store is still busy.
            rechecks = [lane for lane in lanes if not lane.busy and now - began < FLUSH_BUDGET_SECONDS]
            due = min((lane.cycle_began + RECHECK_SECONDS for lane in rechecks), default=None)
            # Everything that came back since the last write is recorded in one transaction: single-SKU calls
            # come back by the hundred per second, and a transaction each would make the database the pace.
            finished, _running = wait(list(futures), timeout=None if due is None else max(due - now, 0),
                                      return_when=FIRST_COMPLETED)
            returned: list[_Planned] = []
            for future in finished:
                lane, chunk, connector = futures.pop(future)
                lane.in_flight -= 1
                lane.connectors.append(connector)
                failure = future.exception()
                if failure is not None:  # a connector bug, not a platform answer: the batch is retried later
                    logger.error("stock push batch failed", exc_info=failure)
                    for planned in chunk:
                        planned.push.error = planned.push.error or TransientError(
                            f"{type(failure).__name__}: {failure}", code="crash")
                returned += chunk
                if lane.waiting:
                    send(lane)
            if returned:
                _record_batch(returned, counts)
            now = time.monotonic()
            others_busy = {lane.store.pk: any(other.busy for other in lanes if other is not lane) for lane in lanes}
            for lane in lanes:
                if lane.busy or now - began >= FLUSH_BUDGET_SECONDS:
                    continue
                if lane.planned >= BACKLOG_PUSHES:  # its cycle just ended with a backlog: straight on
                    cycle(lane)
                elif others_busy[lane.store.pk] and now >= lane.cycle_began + RECHECK_SECONDS:
                    cycle(lane)
    logger.info("stock flush: %d pushed, %d failed, %d unchanged in %.2fs (cycles per store %s)", counts["calls"],
                counts["errors"], counts["unchanged"], time.monotonic() - began,
                {lane.store.code: lane.cycles for lane in lanes})
    return counts


def _plan(store: Store, *, limit: int, counts: dict[str, int]) -> list[_Planned]:
    """One cycle of a store: its ready marks (oldest first), their quantities now, and what must be pushed.
    Marks whose quantity the platform already shows are settled here."""
    now = timezone.now()
    # The versions are read before the stock: a change committed after this read has bumped its version, so it
    # stays marked.
    marks = {(store_id, sku_id): version for store_id, sku_id, version in
             _ready_marks(now).filter(store_id=store.pk).values_list("store_id", "sku_id", "version")[:limit]}
    if not marks:
        return []
    rows = _channel_rows(marks, now)
    available = stock_selectors.available_by_sku({row.sku_id for row in rows})
    mappings = {m.sku_id: m for m in PlatformSKUMapping.objects.filter(
        store_id=store.pk, sku_id__in={row.sku_id for row in rows})}
    done: list[tuple[ChannelStock, int]] = []  # nothing to push: in sync already, or no mapping any more
    planned: list[_Planned] = []
    for row in rows:
        version = marks[(row.store_id, row.sku_id)]
        quantity = channel_quantity(row.store, available.get(row.sku_id, 0))
        mapping = mappings.get(row.sku_id)
        if quantity == row.last_pushed_quantity or mapping is None:  # no mapping: removed since, nothing to push to
            done.append((row, version))
            counts["unchanged"] += quantity == row.last_pushed_quantity
            continue
        planned.append(_Planned(row, version, StockPush(
            platform_product_id=mapping.platform_product_id, platform_sku_id=mapping.platform_sku_id,
            sku=row.sku.code, quantity=quantity, cached_ids=dict(row.platform_ids or {}))))
    _record_unchanged(done)
    return planned


def _record_unchanged(done: list[tuple[ChannelStock, int]]) -> None:
    """Rows whose platform already shows the quantity: in sync again, their marks removed (compare-and-delete)."""
    if not done:
        return
    with transaction.atomic():
        for row, _version in done:
            row.pushed_seq = row.change_seq
        _write_rows([row for row, _version in done], ["pushed_seq"])
        _unmark([(row, version) for row, version in done])


def _record_batch(chunk: list[_Planned], counts: dict[str, int]) -> None:
    """The outcome of returned batches in one transaction: a pushed SKU is in sync up to the change it was computed from and
    its mark goes if no change came since (compare-and-delete); a failed one keeps its mark, with the error and
    when to try again."""
    at = timezone.now()
    pushed, failed = [], []
    for planned in chunk:
        row, push = planned.row, planned.push
        if push.found_ids is not None:
            row.platform_ids = push.found_ids
        if push.error is None:
            row.pushed_seq, row.last_pushed_quantity, row.last_pushed_at = row.change_seq, push.quantity, at
            row.last_error, row.next_attempt_at = "", None
            pushed.append(planned)
        else:
            exc = push.error
            delay = 3600 if isinstance(exc, PermanentError) else backoff_seconds(1, base=2, cap=60)
            row.last_error = f"{type(exc).__name__}: {exc.message}"[:2000]
            row.next_attempt_at = at + timedelta(seconds=max(delay, exc.retry_after or 0))
            failed.append(planned)
            logger.warning("stock push %s/%s failed: %s", row.store.code, row.sku.code, exc.message)
    counts["calls"] += len(pushed)
    counts["errors"] += len(failed)
    with transaction.atomic():
        if pushed:
            _write_rows([planned.row for planned in pushed], ["pushed_seq", "last_pushed_quantity", "last_pushed_at",
                                                              "last_error", "next_attempt_at", "platform_ids"],
                        count_push=True)
        if failed:
            # The mark stays: the push is retried once the backoff is over.
            _write_rows([planned.row for planned in failed], ["last_error", "next_attempt_at", "platform_ids"])
        _unmark([(planned.row, planned.version) for planned in pushed])


def _unmark(pushed: list[tuple[ChannelStock, int]]) -> None:
    """Compare-and-delete the marks of pushed rows, each only while it has the version that was pushed
    (one statement per thousand marks: a burst's 4,000 marks are four round trips, not 4,000)."""
    stock_services.channel_stock_unmark_many(marks=[(row.store_id, row.sku_id, version) for row, version in pushed])


def _write_rows(rows: list[ChannelStock], fields: list[str], *, count_push: bool = False) -> None:
    """Write each row's own values of ``fields`` (and add one to ``pushes``) in one statement per thousand rows
    (Django's bulk_update made recording 4,000 pushes take longer than making them)."""
    rows_update(rows, fields, add_one=("pushes",) if count_push else ())


def _channel_rows(marks: dict[tuple[int, int], int], now) -> list[ChannelStock]:
    """The ChannelStock rows of the marked pairs, in the marks' order (created on first use). A row that
    was in sync gets a new change number, so the page and the bench see it stale until it is pushed."""
    ChannelStock.objects.bulk_create([ChannelStock(store_id=s, sku_id=k) for s, k in marks], ignore_conflicts=True)
    order = {pair: n for n, pair in enumerate(marks)}
    rows = sorted((row for row in ChannelStock.objects.filter(
        store_id__in={s for s, _k in marks}, sku_id__in={k for _s, k in marks}).select_related("store__sync_state", "sku")
        if (row.store_id, row.sku_id) in order), key=lambda row: order[(row.store_id, row.sku_id)])
    fresh = [row for row in rows if row.change_seq <= row.pushed_seq]
    ChannelStock.objects.filter(pk__in=[row.pk for row in fresh]).update(change_seq=F("change_seq") + 1,
                                                                        changed_at=now)
    for row in fresh:
        row.change_seq += 1
        row.changed_at = now
    return rows
