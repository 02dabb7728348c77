"""Channel stock push: after any change of available stock, each store's platform gets its new quantity.

Changes only mark rows stale (cheap, after commit); a flush a second later computes every stale
(store, SKU) quantity and calls the platform once per row whose number actually changed. So a burst
of 1,000 reservations on one SKU becomes one or two platform calls, and the last pushed value and
time are kept per store and SKU so drift is visible.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConnectorError, PermanentError
from connectors.models import ChannelStock
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import backoff_seconds
from inventory.models import BundleComponent, PlatformSKUMapping, StockLevel
from orders.models import Store

logger = logging.getLogger(__name__)

FLUSH_DELAY_SECONDS = 1.0
_MAPPED_CACHE: dict[str, object] = {"at": 0.0, "ids": frozenset()}
MAPPED_CACHE_SECONDS = 5.0


def _mapped_sku_ids() -> frozenset[int]:
    """SKUs that some pushing store maps (cached briefly: the reservation hot path asks on every change)."""
    if time.monotonic() - _MAPPED_CACHE["at"] > MAPPED_CACHE_SECONDS:
        ids = PlatformSKUMapping.objects.filter(
            store__stock_push_enabled=True, store__active=True, store__platform__in=list(CONNECTORS),
        ).values_list("sku_id", flat=True)
        bundle_components = BundleComponent.objects.filter(bundle_id__in=ids).values_list("component_id", flat=True)
        _MAPPED_CACHE.update(at=time.monotonic(), ids=frozenset([*ids, *bundle_components]))
    return _MAPPED_CACHE["ids"]  # type: ignore[return-value]


def forget_mapping_cache() -> None:
    _MAPPED_CACHE["at"] = 0.0


def stock_changed(sku_ids) -> None:
    """Called by the stock services after commit: mark the platforms' copies of these SKUs stale."""
    relevant = set(sku_ids) & _mapped_sku_ids()
    if not relevant:
        return
    bundles = set(BundleComponent.objects.filter(component_id__in=relevant).values_list("bundle_id", flat=True))
    pairs = list(PlatformSKUMapping.objects.filter(
        sku_id__in=relevant | bundles, store__stock_push_enabled=True, store__active=True,
        store__platform__in=list(CONNECTORS)).values_list("store_id", "sku_id").distinct())
    if not pairs:
        return
    now = timezone.now()
    ChannelStock.objects.bulk_create([ChannelStock(store_id=s, sku_id=k) for s, k in pairs], ignore_conflicts=True)
    query = Q()
    for store_id, sku_id in pairs:
        query |= Q(store_id=store_id, sku_id=sku_id)
    ChannelStock.objects.filter(query).update(change_seq=F("change_seq") + 1, changed_at=now)
    schedule_flush()


def schedule_flush() -> None:
    from connectors.tasks import flush_channel_stock_task

    # One flush per second at most however many changes arrive (cache.add is atomic on Redis).
    if cache.add("channel-stock-flush", 1, timeout=FLUSH_DELAY_SECONDS):
        flush_channel_stock_task.apply_async(countdown=FLUSH_DELAY_SECONDS)


def available_by_sku(sku_ids) -> dict[int, int]:
    """Sellable units per SKU over active warehouses (a bundle: how many whole kits its components make)."""
    sku_ids = set(sku_ids)
    components = defaultdict(list)
    for bundle_id, component_id, quantity in BundleComponent.objects.filter(bundle_id__in=sku_ids).values_list(
            "bundle_id", "component_id", "quantity"):
        components[bundle_id].append((component_id, quantity))
    needed = sku_ids | {c for parts in components.values() for c, _q in parts}
    free: dict[int, int] = defaultdict(int)
    for sku_id, on_hand, reserved, safety in StockLevel.objects.filter(
            sku_id__in=needed, warehouse__active=True).values_list("sku_id", "on_hand", "reserved", "safety_stock"):
        free[sku_id] += max(on_hand - reserved - safety, 0)
    result = {}
    for sku_id in sku_ids:
        if sku_id in components:
            result[sku_id] = min((free[c] // q for c, q in components[sku_id]), default=0)
        else:
            result[sku_id] = free[sku_id]
    return result


def channel_quantity(store: Store, available: int) -> int:
    """floor(available × share) − buffer, never below zero."""
    return max(math.floor(Decimal(available) * store.stock_share) - store.stock_buffer, 0)


FLUSH_LOCK = "channel-stock-flushing"
FLUSH_AGAIN = "channel-stock-flush-again"
FLUSH_LOCK_SECONDS = 600


def channel_stock_flush(*, limit: int = 2000) -> dict[str, int]:
    """Push every stale (store, SKU) quantity, one flush at a time; returns counts of calls and errors.

    Single flight: two flushes at once would push the same rows twice and could write the platform
    and the row in opposite orders (leaving an old number on the platform). A flush that finds
    another running asks it to run once more instead.
    """
    if not cache.add(FLUSH_LOCK, 1, timeout=FLUSH_LOCK_SECONDS):
        cache.set(FLUSH_AGAIN, 1, timeout=FLUSH_LOCK_SECONDS)
        return {"calls": 0, "unchanged": 0, "errors": 0, "busy": 1}
    try:
        counts = _flush_once(limit=limit)
    finally:
        cache.delete(FLUSH_LOCK)
    if cache.get(FLUSH_AGAIN) or _pushable().filter(next_attempt_at__isnull=True).exists():
        cache.delete(FLUSH_AGAIN)
        schedule_flush()  # changes arrived while pushing
    return counts


def _pushable():
    """Stale rows of stores that still take pushes: switching a store (or its push) off stops what was
    queued, and such rows never make the flush schedule itself again."""
    return ChannelStock.objects.filter(change_seq__gt=F("pushed_seq"), store__active=True,
                                       store__stock_push_enabled=True, store__platform__in=list(CONNECTORS))


def _flush_once(*, limit: int) -> dict[str, int]:
    now = timezone.now()
    rows = list(_pushable()
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                # Oldest change first, so one slow platform does not hold the others back.
                .select_related("store", "sku").order_by("changed_at", "store_id", "sku_id")[:limit])
    if not rows:
        return {"calls": 0, "unchanged": 0, "errors": 0}
    available = available_by_sku({row.sku_id for row in rows})
    mappings = {(m.store_id, m.sku_id): m for m in PlatformSKUMapping.objects.filter(
        store_id__in={row.store_id for row in rows}, sku_id__in={row.sku_id for row in rows})}
    connectors = {}
    counts = {"calls": 0, "unchanged": 0, "errors": 0}
    for row in rows:
        seq = row.change_seq
        quantity = channel_quantity(row.store, available.get(row.sku_id, 0))
        if quantity == row.last_pushed_quantity:
            ChannelStock.objects.filter(pk=row.pk).update(pushed_seq=seq)
            counts["unchanged"] += 1
            continue
        mapping = mappings.get((row.store_id, row.sku_id))
        if mapping is None:  # the mapping was removed since: nothing to push to
            ChannelStock.objects.filter(pk=row.pk).update(pushed_seq=seq)
            continue
        connector = connectors.setdefault(row.store_id, connector_for_store(row.store))
        try:
            connector.set_stock(platform_product_id=mapping.platform_product_id, quantity=quantity,
                                platform_sku_id=mapping.platform_sku_id, sku=row.sku.code)
        except ConnectorError as exc:
            counts["errors"] += 1
            delay = 3600 if isinstance(exc, PermanentError) else backoff_seconds(1, base=2, cap=60)
            ChannelStock.objects.filter(pk=row.pk).update(
                last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
                next_attempt_at=timezone.now() + timedelta(seconds=max(delay, exc.retry_after or 0)))
            logger.warning("stock push %s/%s failed: %s", row.store.code, row.sku.code, exc.message)
            continue
        counts["calls"] += 1
        with transaction.atomic():
            ChannelStock.objects.filter(pk=row.pk).update(
                pushed_seq=seq, last_pushed_quantity=quantity, last_pushed_at=timezone.now(), last_error="",
                next_attempt_at=None, pushes=F("pushes") + 1)
    return counts
