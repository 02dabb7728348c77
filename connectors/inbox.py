"""Claiming a store's inbox in partitions and batches: who may drain which rows, and marking a batch's rows.

A store's inbox is split into INBOX_PARTITIONS by the platform order id (InboxMessage.partition), so the
versions of one order always share a partition. A worker drains a partition only while it holds the
partition's lock: on PostgreSQL a session advisory lock, which the server drops the moment the worker's
connection dies (a killed worker's partition is free at once, and its uncommitted batch rolls back); on
SQLite (the trial, one writer at a time anyway) the store's processing lease, so one worker per store.
Inside the lock a batch is claimed with FOR UPDATE SKIP LOCKED in platform-update order, so a row a
person is replaying or discarding right now is left for the next batch instead of waited for.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from connectors.models import INBOX_PARTITIONS, ChannelSyncState, InboxKind, InboxMessage, InboxStatus
from oms.bulk import rows_update
from oms.leases import lease_claim
from oms.locks import lock_rows

# First key of the two-key advisory locks taken here (the second is store and partition), so they
# never collide with another feature's advisory locks.
ADVISORY_NAMESPACE = 0x1B0C
# How long a trial (SQLite) drain may hold the store before another worker may take over.
SQLITE_LEASE = timedelta(minutes=5)


def _advisory_key(store_id: int, partition: int) -> int:
    return store_id * INBOX_PARTITIONS + partition


def inbox_partition_lock(store_id: int, partition: int) -> bool:
    """Take the partition for this worker; False when another worker drains it right now."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_NAMESPACE, _advisory_key(store_id, partition)])
            return bool(cursor.fetchone()[0])
    now = timezone.now()
    free = ChannelSyncState.objects.filter(store_id=store_id).filter(
        Q(process_lease_until__isnull=True) | Q(process_lease_until__lt=now))
    return bool(lease_claim(free, lease_field="process_lease_until", lease=SQLITE_LEASE, limit=1, now=now))


def inbox_partition_unlock(store_id: int, partition: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_NAMESPACE, _advisory_key(store_id, partition)])
        return
    ChannelSyncState.objects.filter(store_id=store_id).update(process_lease_until=None)


def _due(store_id: int):
    # Polled after-sales share the inbox (stored raw, dead letters, replay) but go to tickets, not orders.
    return InboxMessage.objects.filter(store_id=store_id, status=InboxStatus.PENDING,
                                       next_attempt_at__lte=timezone.now()).exclude(kind=InboxKind.AFTER_SALE)


def inbox_due_partitions(*, store_id: int) -> list[int]:
    """The store's partitions with due rows, fullest first (where a second worker helps most)."""
    return [row["partition"] for row in _due(store_id).values("partition").annotate(rows=Count("id"))
            .order_by("-rows", "partition")]


def inbox_due_ids(*, store_id: int, partition: int | None = None, limit: int = 500) -> list[int]:
    """Due rows in platform-update order (the order versions must be applied in), of one partition or all."""
    due = _due(store_id)
    if partition is not None:
        due = due.filter(partition=partition)
    return list(due.order_by(F("platform_updated_at").asc(nulls_first=True), "id").values_list("pk", flat=True)[:limit])


def inbox_claim(*, message_ids: list[int]) -> list[InboxMessage]:
    """Lock the still-pending rows among ``message_ids`` for the caller's transaction, skipping rows another
    transaction holds; in platform-update order."""
    rows = lock_rows(InboxMessage.objects.filter(pk__in=message_ids, status=InboxStatus.PENDING), skip_locked=True)
    return sorted(rows, key=lambda m: (m.platform_updated_at is not None, m.platform_updated_at or 0, m.pk))


def inbox_mark_applied_many(*, outcomes: list[tuple[InboxMessage, int, str]]) -> dict[str, int]:
    """Mark a batch's rows applied: (message, order id, outcome "created" / "updated" / "stale"). One UPDATE
    for the rows and one for the store's counters. Returns the counts by outcome."""
    if not outcomes:
        return {}
    now = timezone.now()
    counts = {"created": 0, "updated": 0, "stale": 0}
    for message, order_id, outcome in outcomes:
        message.status = InboxStatus.SKIPPED if outcome == "stale" else InboxStatus.DONE
        message.order_id = order_id
        message.processed_at = now
        message.attempts += 1
        message.last_error = ""
        counts[outcome] += 1
    rows_update([m for m, _o, _x in outcomes], ["status", "order", "processed_at", "attempts", "last_error"])
    store_id = outcomes[0][0].store_id
    # Webhooks are counted here, by the drain, not by the request that stored them (the intake does one INSERT).
    webhooks = sum(1 for message, _o, _x in outcomes if message.kind == InboxKind.WEBHOOK)
    ChannelSyncState.objects.filter(store_id=store_id).update(
        orders_created=F("orders_created") + counts["created"], orders_updated=F("orders_updated") + counts["updated"],
        stale_updates=F("stale_updates") + counts["stale"], webhooks_received=F("webhooks_received") + webhooks)
    return counts
