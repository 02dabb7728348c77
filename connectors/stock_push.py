"""Channel stock push: each store's platform gets its new quantity after any change of available stock.

Every stock change marks its (store, SKU) pairs in inventory's ChannelStockDirty in the change's own
transaction, so no crash after the commit can lose a push. The flusher (a beat tick every few seconds,
or sooner when the pipeline asks after a commit) reads the marks, computes every marked quantity and
calls the platform once per pair whose number actually changed, so a burst of 1,000 reservations on
one SKU becomes one or two platform calls. A mark is removed only while it still has the version the
flusher read (compare-and-delete): a change made during a push is pushed again. ChannelStock keeps
what each platform was told last, when, and the retry state of a failing push.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from connectors.base import ConnectorError, PermanentError
from connectors.models import ChannelStock, ChannelSyncState
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import backoff_seconds
from inventory import selectors as stock_selectors
from inventory import services as stock_services
from inventory.models import PlatformSKUMapping
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


def channel_stock_flush(*, limit: int = 2000) -> dict[str, int]:
    """Push every marked (store, SKU) quantity, one flush at a time; returns counts of calls and errors.

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


def _flush_once(*, limit: int) -> dict[str, int]:
    now = timezone.now()
    # Oldest mark first, so one slow platform does not hold the others back. The versions are read
    # before the stock: a change committed after this read has bumped its version, so it stays marked.
    marks = {(store_id, sku_id): version for store_id, sku_id, version in
             _ready_marks(now).values_list("store_id", "sku_id", "version")[:limit]}
    if not marks:
        return {"calls": 0, "unchanged": 0, "errors": 0}
    rows = _channel_rows(marks, now)
    available = stock_selectors.available_by_sku({row.sku_id for row in rows})
    mappings = {(m.store_id, m.sku_id): m for m in PlatformSKUMapping.objects.filter(
        store_id__in={row.store_id for row in rows}, sku_id__in={row.sku_id for row in rows})}
    connectors = {}
    counts = {"calls": 0, "unchanged": 0, "errors": 0}
    for row in rows:
        seq, version = row.change_seq, marks[(row.store_id, row.sku_id)]
        quantity = channel_quantity(row.store, available.get(row.sku_id, 0))
        if quantity == row.last_pushed_quantity:
            _pushed(row, version, pushed_seq=seq)
            counts["unchanged"] += 1
            continue
        mapping = mappings.get((row.store_id, row.sku_id))
        if mapping is None:  # the mapping was removed since: nothing to push to
            _pushed(row, version, pushed_seq=seq)
            continue
        connector = connectors.setdefault(row.store_id, connector_for_store(row.store))
        try:
            connector.set_stock(platform_product_id=mapping.platform_product_id, quantity=quantity,
                                platform_sku_id=mapping.platform_sku_id, sku=row.sku.code)
        except ConnectorError as exc:
            counts["errors"] += 1
            delay = 3600 if isinstance(exc, PermanentError) else backoff_seconds(1, base=2, cap=60)
            # The mark stays: the push is retried once the backoff is over.
            ChannelStock.objects.filter(pk=row.pk).update(
                last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
                next_attempt_at=timezone.now() + timedelta(seconds=max(delay, exc.retry_after or 0)))
            logger.warning("stock push %s/%s failed: %s", row.store.code, row.sku.code, exc.message)
            continue
        counts["calls"] += 1
        _pushed(row, version, pushed_seq=seq, last_pushed_quantity=quantity, last_pushed_at=timezone.now(),
                last_error="", next_attempt_at=None, pushes=F("pushes") + 1)
    return counts


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


def _pushed(row: ChannelStock, version: int, *, pushed_seq: int, **fields) -> None:
    """Record the push and remove the mark in one transaction, the mark only if it still has the version
    that was pushed (otherwise a newer change waits and the next flush pushes it)."""
    with transaction.atomic():
        ChannelStock.objects.filter(pk=row.pk).update(pushed_seq=pushed_seq, **fields)
        stock_services.channel_stock_unmark(store_id=row.store_id, sku_id=row.sku_id, version=version)
