"""Read-side queries of the channels: sync status per store, the dead-letter list, channel stock."""

from django.db.models import Count, Q
from django.utils import timezone

from connectors.models import (
    ChannelStock,
    ChannelSyncState,
    DeadReason,
    InboxKind,
    InboxMessage,
    InboxStatus,
    SyncCheck,
)
from connectors.stock_push import channel_quantity
from inventory.selectors import available_by_sku, channel_stock_marks
from orders.models import Platform, Store


def sync_status_rows() -> list[dict]:
    """One row per platform store: its sync state, lag and inbox counts.

    Webhooks received are counted from the inbox (one row per verified delivery; repeats are in the store's
    duplicates counter, refused ones in its bad signatures): the webhook endpoint updates no counter.
    """
    now = timezone.now()
    inbox = {row["store_id"]: row for row in InboxMessage.objects.values("store_id").annotate(
        pending=Count("id", filter=Q(status=InboxStatus.PENDING)),
        dead=Count("id", filter=Q(status=InboxStatus.DEAD)),
        webhooks=Count("id", filter=Q(kind=InboxKind.WEBHOOK) & ~Q(dead_reason=DeadReason.SIGNATURE)))}
    states = {s.store_id: s for s in ChannelSyncState.objects.all()}
    latest_checks = {}
    for check in SyncCheck.objects.order_by("store_id", "-checked_at"):
        latest_checks.setdefault(check.store_id, check)
    rows = []
    for store in Store.objects.exclude(platform=Platform.MANUAL).order_by("platform", "code"):
        state = states.get(store.pk)
        lag = (now - state.watermark).total_seconds() if state and state.watermark else None
        rows.append({"store": store, "state": state, "lag_seconds": lag,
                     "pending": inbox.get(store.pk, {}).get("pending", 0),
                     "dead": inbox.get(store.pk, {}).get("dead", 0),
                     "webhooks": inbox.get(store.pk, {}).get("webhooks", 0), "check": latest_checks.get(store.pk)})
    return rows


def dead_letters(*, store_code: str = ""):
    query = InboxMessage.objects.filter(status=InboxStatus.DEAD).select_related("store").order_by("-received_at")
    if store_code:
        query = query.filter(store__code=store_code)
    return query


def channel_stock_rows(*, store_code: str = "", limit: int = 500) -> list[dict]:
    """Per store and SKU: the quantity the hub would push now next to what the platform got last; a row
    is in sync when the platform holds that quantity and no change waits to be pushed."""
    rows = ChannelStock.objects.select_related("store__sync_state", "sku").order_by("store__code", "sku__code")
    if store_code:
        rows = rows.filter(store__code=store_code)
    rows = list(rows[:limit])
    available = available_by_sku({row.sku_id for row in rows})
    waiting = set(channel_stock_marks().filter(store_id__in={row.store_id for row in rows},
                                               sku_id__in={row.sku_id for row in rows})
                  .values_list("store_id", "sku_id"))
    result = []
    for row in rows:
        now_quantity = channel_quantity(row.store, available.get(row.sku_id, 0))
        result.append({"row": row, "hub_quantity": now_quantity,
                       "in_sync": row.last_pushed_quantity == now_quantity
                       and (row.store_id, row.sku_id) not in waiting})
    return result


def authorized_counts_as_paid(*, store_id: int) -> bool:
    """The store captures on fulfilment: an authorized payment lets the order reserve and ship."""
    return ChannelSyncState.objects.filter(store_id=store_id, authorized_counts_as_paid=True).exists()
