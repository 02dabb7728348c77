"""Sync completeness: per store and hour, does the hub hold every order the platform reports?"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from connectors.base import ConnectorError
from connectors.models import ChannelSyncState, InboxMessage, InboxStatus, SyncCheck
from connectors.registry import CONNECTORS, connector_for_store
from connectors.services import store_poll_now
from orders.models import Order, Store

logger = logging.getLogger(__name__)


def sync_check_window(*, store_id: int, window_start: datetime, window_end: datetime) -> SyncCheck:
    """Count the platform's orders updated in the window and look each one up in the hub.

    A gap is logged as an error (the alert), shown on the channels page, and answered with a catch-up:
    the watermark goes back to the window's start and the store is polled again at once.
    """
    store = Store.objects.get(pk=store_id)
    connector = connector_for_store(store)
    reported = {raw.platform_order_id for raw in connector.poll(start=window_start, end=window_end)}
    # A replacement order (after-sales) is the hub's own and never stands in for an order the platform reports.
    held = set(Order.objects.filter(store=store, platform_order_id__in=reported, replaces__isnull=True)
               .values_list("platform_order_id", flat=True))
    # Stored but not yet processed (or dead-lettered for a person) also counts as received.
    held |= set(InboxMessage.objects.filter(store=store, platform_order_id__in=reported - held)
                .exclude(status=InboxStatus.DISCARDED).values_list("platform_order_id", flat=True))
    missing = sorted(reported - held)
    check = SyncCheck.objects.create(store=store, window_start=window_start, window_end=window_end,
                                     platform_count=len(reported), hub_count=len(reported) - len(missing),
                                     missing=missing[:200])
    if missing:
        logger.error("sync gap store=%s window=%s..%s missing=%s first=%s", store.code, window_start.isoformat(),
                     window_end.isoformat(), len(missing), missing[:5])
        ChannelSyncState.objects.filter(store=store).filter(
            Q(watermark__isnull=True) | Q(watermark__gt=window_start)).update(watermark=window_start)
        store_poll_now(store_id=store.pk)
    return check


def sync_check_last_hour(*, now: datetime | None = None) -> list[SyncCheck]:
    """Check the last full hour that polling has surely covered, for every store that syncs."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    checks = []
    for state in ChannelSyncState.objects.filter(enabled=True, store__active=True,
                                                 store__platform__in=list(CONNECTORS)).select_related("store"):
        try:
            checks.append(sync_check_window(store_id=state.store_id, window_start=end - timedelta(hours=1),
                                            window_end=end))
        except ConnectorError as exc:  # the platform is unreachable now; the next hour checks again
            logger.warning("sync check of %s failed: %s", state.store.code, exc.message)
    return checks
