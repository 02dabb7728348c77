"""Platform after-sales intake: Douyin's and Pinduoduo's after-sale lists polled into the inbox, and read back mapped.

Their order payloads do not carry the after-sale id (Douyin's after_sale_info, PDD's refund_status), so each
after-sale is listed by its own incremental call (afterSale/List, pdd.refund.list.increment.get; API_FACTS
"After-sales") from ChannelSyncState.after_sales_watermark, like the orders: stored raw first (InboxMessage kind
"after_sale", one row per after-sale version), then mapped and applied by pipeline/after_sales.py. Taobao and
Shopify carry theirs in the order payload (UnifiedOrder.after_sale_requests) and need no poll.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConnectorError, PermanentError, UnifiedAfterSale, split_windows
from connectors.douyin.mapping import map_douyin_after_sale
from connectors.models import ChannelSyncState, DeadReason, InboxKind, InboxMessage, InboxStatus
from connectors.pdd.mapping import map_pdd_after_sale
from connectors.registry import connector_for_store
from connectors.services import (
    POLL_LEASE,
    PollResult,
    inbox_mark_dead,
    inbox_retry_later,
    store_lease_release,
    store_lease_take,
    sync_state_for,
)
from oms.guard import clean_data, clean_text, json_text_is_clean
from orders.models import Store

PAGE_SIZE = 100  # both lists' maximum


@dataclass
class RawAfterSale:
    """One after-sale as the platform's list returned it, with what identifies its version."""

    platform_after_sale_id: str
    platform_order_id: str
    updated_at: datetime  # aware UTC
    payload: dict


@dataclass
class BadAfterSale:
    """A listed item the mapping refuses: stored as a dead letter with the reason, never dropped."""

    payload: object
    error: str


@dataclass(frozen=True)
class AfterSaleSource:
    pages: Callable  # (client, start, end) → iterator of raw after-sale dicts
    mapper: Callable[[dict], UnifiedAfterSale]
    max_window: timedelta
    lag: timedelta


def _douyin_pages(client, start: datetime, end: datetime) -> Iterator[dict]:
    # Newest first; read from the last page back to page 0 (as the order poll does) so an after-sale updated
    # while we page only moves onto a page already read, never past one still to come.
    first = client.after_sale_list(update_start_time=start, update_end_time=end, page=0, size=PAGE_SIZE)
    pages = math.ceil(first["total"] / PAGE_SIZE)
    if pages <= 1:
        yield from first["items"]
        return
    for page in range(pages - 1, -1, -1):
        yield from client.after_sale_list(update_start_time=start, update_end_time=end, page=page,
                                          size=PAGE_SIZE)["items"]


def _pdd_pages(client, start: datetime, end: datetime) -> Iterator[dict]:
    first = client.refund_list_increment_get(start_updated_at=start, end_updated_at=end, page=1, page_size=PAGE_SIZE)
    pages = math.ceil(int(first.get("total_count") or 0) / PAGE_SIZE)
    if pages <= 1:
        yield from first["refund_list"]
        return
    for page in range(pages, 0, -1):
        yield from client.refund_list_increment_get(start_updated_at=start, end_updated_at=end, page=page,
                                                    page_size=PAGE_SIZE)["refund_list"]


SOURCES = {
    "douyin": AfterSaleSource(_douyin_pages, map_douyin_after_sale, timedelta(days=1), timedelta(0)),
    # The same 30-minute span and 3-minute lag as PDD's order increment call.
    "pdd": AfterSaleSource(_pdd_pages, map_pdd_after_sale, timedelta(minutes=30), timedelta(minutes=3)),
}
OVERLAP = timedelta(minutes=5)


def after_sales_polled(platform: str) -> bool:
    """Whether the platform's after-sales come from a list call of their own."""
    return platform in SOURCES


def _raw(item, mapper) -> RawAfterSale:
    """What identifies one listed after-sale's version (PermanentError when the item cannot be mapped)."""
    unified = mapper(item)
    return RawAfterSale(unified.platform_after_sale_id, unified.platform_order_id, unified.updated_at, item)


def after_sales_fetch(*, store: Store, start: datetime, end: datetime) -> Iterator[RawAfterSale | BadAfterSale]:
    """Every after-sale of the store updated in [start, end), once each; an item the mapping refuses comes out
    as a BadAfterSale so the caller stores it as a dead letter (a bad payload is kept, not dropped)."""
    source = SOURCES[store.platform]
    client = connector_for_store(store).client
    seen: set[tuple[str, datetime]] = set()
    for window_start, window_end in split_windows(start, end, source.max_window):
        for item in source.pages(client, window_start, window_end):
            try:
                raw = _raw(item, source.mapper)
            except PermanentError as exc:
                yield BadAfterSale(item, exc.message)
                continue
            # Bounds are whole seconds and inclusive on the platform; the contract here is [start, end).
            key = (raw.platform_after_sale_id, raw.updated_at)
            if not window_start <= raw.updated_at < window_end or key in seen:
                continue
            seen.add(key)
            yield raw


def after_sales_store(*, store: Store, raws: list[RawAfterSale | BadAfterSale]) -> int:
    """Store a page of listed after-sales (one row per version; versions stored before are skipped); an item the
    mapping refused goes in as a dead letter with the reason. Returns the rows stored."""
    if not raws:
        return 0
    now = timezone.now()
    rows = []
    for raw in raws:
        if isinstance(raw, RawAfterSale):
            rows.append(InboxMessage(
                store=store, kind=InboxKind.AFTER_SALE, topic="after_sale",
                delivery_key=clean_text(f"as:{raw.platform_after_sale_id}:{raw.updated_at.isoformat()}")[:200],
                platform_order_id=clean_text(raw.platform_order_id)[:64], platform_updated_at=raw.updated_at,
                body=json.dumps(raw.payload, ensure_ascii=False), next_attempt_at=now))
            continue
        body = json.dumps(clean_data(raw.payload), ensure_ascii=False, default=str)
        # Keyed by its content: the same broken item listed again by the next poll is one dead letter.
        rows.append(InboxMessage(
            store=store, kind=InboxKind.AFTER_SALE, topic="after_sale", status=InboxStatus.DEAD,
            dead_reason=DeadReason.BAD_PAYLOAD, last_error=clean_text(raw.error)[:2000],
            delivery_key=f"as:bad:{hashlib.sha256(body.encode()).hexdigest()}", body=body))
    keys = [row.delivery_key for row in rows]
    before = InboxMessage.objects.filter(store=store, delivery_key__in=keys).count()
    InboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
    return len(set(keys)) - before


def after_sales_poll(*, store_id: int, now: datetime | None = None) -> PollResult:
    """Fetch every after-sale the platform changed since the after-sales watermark into the inbox, window by
    window; the watermark moves only after a whole window is stored, so a failure half-way loses nothing."""
    store = Store.objects.get(pk=store_id)
    if not after_sales_polled(store.platform):
        return PollResult("disabled")
    state = sync_state_for(store)
    if not state.enabled or not store.active:
        return PollResult("disabled")
    if not store_lease_take(store_id, "poll_lease_until", POLL_LEASE):
        return PollResult("busy")
    source, now = SOURCES[store.platform], now or timezone.now()
    result = PollResult("ok")
    try:
        start = (state.after_sales_watermark or now - timedelta(hours=state.initial_lookback_hours)) - OVERLAP
        end = now - source.lag
        window_start = start
        while window_start < end:
            window_end = min(window_start + source.max_window, end)
            page = list(after_sales_fetch(store=store, start=window_start, end=window_end))
            result.fetched += len(page)
            result.stored += after_sales_store(store=store, raws=page)
            ChannelSyncState.objects.filter(pk=state.pk).update(after_sales_watermark=window_end)
            window_start = window_end
    except ConnectorError as exc:
        ChannelSyncState.objects.filter(pk=state.pk).update(
            last_error=f"after-sales: {type(exc).__name__}: {exc.message}"[:2000], last_error_at=timezone.now(),
            errors=F("errors") + 1)
        result = PollResult("failed", result.fetched, result.stored, exc.message)
    finally:
        store_lease_release(store_id, "poll_lease_until")
    return result


def after_sale_due_ids(*, store_id: int, limit: int = 500) -> list[int]:
    """The store's pending after-sale rows that are due, in platform-update order."""
    return list(InboxMessage.objects.filter(
        store_id=store_id, kind=InboxKind.AFTER_SALE, status=InboxStatus.PENDING,
        next_attempt_at__lte=timezone.now()).order_by(F("platform_updated_at").asc(nulls_first=True), "id")
        .values_list("pk", flat=True)[:limit])


def after_sale_store_ids_due() -> list[int]:
    """Stores with pending after-sale rows due (the sweeper's list: a lost task loses no after-sale)."""
    return list(InboxMessage.objects.filter(kind=InboxKind.AFTER_SALE, status=InboxStatus.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
        .values_list("store_id", flat=True).distinct())


def after_sale_map(*, platform: str, body: str) -> UnifiedAfterSale:
    """A stored after-sale row's body as a UnifiedAfterSale (PermanentError when it cannot be read or mapped)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise PermanentError(f"not JSON: {exc}", code="bad_payload") from None
    if not json_text_is_clean(body):
        payload = clean_data(payload)
    return SOURCES[platform].mapper(payload)


def after_sale_mark(*, message: InboxMessage, order_id: int, outcome: str) -> str:
    """The row was applied to the order's ticket ("created", "updated" or "stale": skipped as older)."""
    status = InboxStatus.SKIPPED if outcome == "stale" else InboxStatus.DONE
    InboxMessage.objects.filter(pk=message.pk).update(status=status, order_id=order_id, processed_at=timezone.now(),
                                                      attempts=F("attempts") + 1, last_error="")
    return status


def after_sale_dead(message: InboxMessage, reason: str, error: str) -> str:
    return inbox_mark_dead(message, reason, error)


def after_sale_retry_later(message: InboxMessage, error: str) -> str:
    return inbox_retry_later(message, error)
