"""Read-side queries of the channels: sync status per store and the dead-letter list."""

from django.db.models import Count, Q
from django.utils import timezone

from connectors.models import ChannelSyncState, InboxMessage, InboxStatus, SyncCheck
from orders.models import Platform, Store


def sync_status_rows() -> list[dict]:
    """One row per platform store: its sync state, lag and inbox counts."""
    now = timezone.now()
    inbox = {row["store_id"]: row for row in InboxMessage.objects.values("store_id").annotate(
        pending=Count("id", filter=Q(status=InboxStatus.PENDING)),
        dead=Count("id", filter=Q(status=InboxStatus.DEAD)))}
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
                     "dead": inbox.get(store.pk, {}).get("dead", 0), "check": latest_checks.get(store.pk)})
    return rows


def dead_letters(*, store_code: str = ""):
    query = InboxMessage.objects.filter(status=InboxStatus.DEAD).select_related("store").order_by("-received_at")
    if store_code:
        query = query.filter(store__code=store_code)
    return query


def channel_stock_rows(*, store_code: str = "", limit: int = 500) -> list[dict]:
    """Per store and SKU: the quantity the hub would push now next to what the platform got last."""
    from connectors.models import ChannelStock
    from connectors.stock_push import available_by_sku, channel_quantity

    rows = ChannelStock.objects.select_related("store", "sku").order_by("store__code", "sku__code")
    if store_code:
        rows = rows.filter(store__code=store_code)
    rows = list(rows[:limit])
    available = available_by_sku({row.sku_id for row in rows})
    result = []
    for row in rows:
        now_quantity = channel_quantity(row.store, available.get(row.sku_id, 0))
        result.append({"row": row, "hub_quantity": now_quantity,
                       "in_sync": row.last_pushed_quantity == now_quantity and row.change_seq == row.pushed_seq})
    return result
