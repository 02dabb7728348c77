"""Channel intake: receive webhooks, poll stores, store every payload in the inbox, and the inbox's own
bookkeeping (leases, dead letters, counters). Applying a payload to an order is the pipeline's
(pipeline/channel.py), which drains a store's inbox with the helpers below.

The database is the source of truth: a payload is stored (and acknowledged) before anything is done
with it; processing drains a store's inbox in platform-update order under a lease, so versions of
one order are applied one at a time and in order; a sweeper re-enqueues anything left pending.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.base import (
    AuthError,
    ConnectorError,
    PermanentError,
    RawOrder,
    SignatureError,
    TransientError,
)
from connectors.models import ChannelSyncState, DeadReason, InboxKind, InboxMessage, InboxStatus
from connectors.registry import CONNECTORS, connector_class, connector_for_store
from gateway.http import jittered_backoff
from oms.exceptions import DomainError, NotFoundError, ValidationFailed
from oms.guard import clean_data, clean_text, json_text_is_clean
from oms.leases import lease_claim
from oms.locks import lock_one_or_none
from orders.models import Store

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
POLL_LEASE = timedelta(minutes=10)
PROCESS_LEASE = timedelta(minutes=5)
# Headers kept with a webhook (the signature itself is not needed once verified).
KEPT_HEADERS = ("x-shopify-topic", "x-shopify-event-id", "x-shopify-webhook-id", "x-shopify-triggered-at",
                "x-shopify-shop-domain", "x-shopify-api-version", "app-id", "content-type")
# A header value longer than this is cut: the kept headers are for reading, not for replaying.
KEPT_HEADER_CHARS = 200
# What a refused (unverified) delivery keeps of its body: the start, for a person to recognise it.
REFUSED_BODY_PREFIX_CHARS = 256
REFUSED_WINDOW_SECONDS = 60


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """The gateway clients' jittered backoff, for rows retried by the sweepers (inbox, outbox, stock)."""
    return jittered_backoff(max(attempt, 0), base=base, cap=cap, uniform=random.uniform)


def sync_state_for(store: Store) -> ChannelSyncState:
    state, _created = ChannelSyncState.objects.get_or_create(store=store)
    return state


def store_credentials(store: Store | None) -> dict:
    """The store's stored credentials (empty for a new store or one never set up)."""
    if store is None or store.pk is None:
        return {}
    return dict(ChannelSyncState.objects.filter(store=store).values_list("credentials", flat=True).first() or {})


# The platform-only settings a store keeps on its ChannelSyncState rather than on the order core's Store.
CHANNEL_SETTINGS = ("credentials", "stock_push_enabled", "stock_share", "stock_buffer", "api_version",
                    "authorized_counts_as_paid", "enabled", "poll_interval_seconds")


def store_create_with_channel(**fields) -> Store:
    """Create a store from Store fields and channel settings together (scripts, benchmarks, tests): the
    channel settings (CHANNEL_SETTINGS) go to its ChannelSyncState, the rest to the Store."""
    settings = {name: fields.pop(name) for name in CHANNEL_SETTINGS if name in fields}
    with transaction.atomic():
        store = Store.objects.create(**fields)
        ChannelSyncState.objects.create(store=store, **settings)
    webhook_targets_forget()  # a code reused after a store was deleted: not the old store's cached row
    return store


def store_channel_settings_set(*, store: Store, **settings) -> ChannelSyncState:
    """Set platform-only settings of the store (credentials, stock_push_enabled, stock_share, stock_buffer,
    api_version…), creating its channel row if it has none."""
    state = sync_state_for(store)
    for name, value in settings.items():
        setattr(state, name, value)
    state.save(update_fields=list(settings))
    webhook_targets_forget()  # new credentials verify this process's next webhook (others: within the TTL)
    return state


def sync_count(store_id: int, **increments: int) -> None:
    """Add to the store's sync counters (orders created, errors, duplicates…) in one UPDATE."""
    ChannelSyncState.objects.filter(store_id=store_id).update(**{k: F(k) + v for k, v in increments.items()})


_count = sync_count


# --- Storing payloads --------------------------------------------------------------------------

def inbox_store(*, store: Store, kind: str, delivery_key: str, body: str, platform_order_id: str = "",
                platform_updated_at: datetime | None = None, topic: str = "", headers: dict | None = None,
                status: str = InboxStatus.PENDING, dead_reason: str = "", last_error: str = "",
                body_size: int | None = None, body_sha256: str = "",
                source_address: str | None = None) -> tuple[InboxMessage, bool]:
    """Store one delivery; a repeat of the same delivery is counted and not stored again.

    A refused delivery passes only the start of its body, with its size, hash and source address.
    """
    # Texts from outside: the database cannot hold a NUL, in text nor in jsonb.
    delivery_key, topic, platform_order_id = clean_text(delivery_key), clean_text(topic), clean_text(platform_order_id)
    headers, last_error = clean_data(headers or {}), clean_text(last_error)
    try:
        with transaction.atomic():
            message = InboxMessage.objects.create(
                store=store, kind=kind, delivery_key=delivery_key[:200], body=body, topic=topic[:64],
                platform_order_id=platform_order_id[:64], platform_updated_at=platform_updated_at,
                headers=headers or {}, status=status, dead_reason=dead_reason, last_error=last_error,
                next_attempt_at=timezone.now() if status == InboxStatus.PENDING else None,
                body_size=body_size, body_sha256=body_sha256, source_address=source_address)
    except IntegrityError:
        InboxMessage.objects.filter(store=store, delivery_key=delivery_key[:200]).update(
            duplicates=F("duplicates") + 1)
        _count(store.pk, duplicates=1)
        return InboxMessage.objects.get(store=store, delivery_key=delivery_key[:200]), False
    return message, True


def inbox_store_polled(*, store: Store, raws: list[RawOrder]) -> int:
    """Store a page of polled orders in one insert; versions already stored are skipped. Returns new rows."""
    if not raws:
        return 0
    now = timezone.now()
    rows = [InboxMessage(store=store, kind=InboxKind.POLL, topic="poll",
                         delivery_key=clean_text(f"poll:{raw.platform_order_id}:{raw.updated_at.isoformat()}")[:200],
                         platform_order_id=clean_text(raw.platform_order_id)[:64], platform_updated_at=raw.updated_at,
                         body=json.dumps(raw.payload, ensure_ascii=False), next_attempt_at=now)
            for raw in raws]
    keys = [row.delivery_key for row in rows]
    with transaction.atomic():
        before = InboxMessage.objects.filter(store=store, delivery_key__in=keys).count()
        InboxMessage.objects.bulk_create(rows, ignore_conflicts=True)
        created = len(set(keys)) - before
        _count(store.pk, orders_fetched=created)
    return created


# --- Webhooks ----------------------------------------------------------------------------------
#
# The request path does only what must happen before the 200: find the store and its secret (cached in the
# process), verify the HMAC on the raw body, and one INSERT … ON CONFLICT DO NOTHING of the raw row. The
# caller then wakes the drain (connectors.wake). Counters are not touched on this path: the sync status
# page counts webhooks from the inbox, and a repeat delivery (rare) is counted on its own short path.

# How long a process trusts what it read about a store for webhooks (the store row and its connector with
# the secret). A store deactivated, or a secret changed, in another process takes effect here within this
# many seconds; in the process that changed it (the setup page's service), at once.
WEBHOOK_STORE_CACHE_SECONDS = 30


@dataclass(frozen=True)
class _WebhookTarget:
    store: Store
    connector: object  # connectors.base.Connector: parse_webhook and webhook_ack only read its credentials
    expires_at: float


# (platform, store_code) → the active store and its connector. Only known active stores are kept (an unknown
# code is looked up every time), so the map is bounded by the number of stores, whatever anyone posts.
_webhook_targets: dict[tuple[str, str], _WebhookTarget] = {}


def webhook_target(*, platform: str, store_code: str) -> tuple[Store, object] | None:
    """The active platform store ``store_code`` and its connector, from the process cache while fresh."""
    key, now = (platform, store_code), _monotonic()
    cached = _webhook_targets.get(key)
    if cached is not None and cached.expires_at > now:
        return cached.store, cached.connector
    # Manual stores have no connector and no webhooks: they are unknown here, not a server error.
    store = (Store.objects.filter(code=store_code, platform=platform, platform__in=list(CONNECTORS), active=True)
             .only("pk", "code", "platform").first())
    if store is None:
        _webhook_targets.pop(key, None)
        return None
    connector = connector_for_store(store)
    _webhook_targets[key] = _WebhookTarget(store, connector, now + WEBHOOK_STORE_CACHE_SECONDS)
    return store, connector


def webhook_targets_forget() -> None:
    """Drop this process's cached webhook stores (after a store or its credentials changed here, and in tests)."""
    _webhook_targets.clear()


@dataclass
class WebhookOutcome:
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    # The store whose inbox got new rows to process (the caller wakes the drain), else None.
    stored_for_store_id: int | None = None


def webhook_receive(*, platform: str, store_code: str, headers: dict[str, str], body: bytes,
                    source_address: str | None = None) -> WebhookOutcome:
    """Verify on the raw body, store, acknowledge. Nothing is processed here (a worker does it after commit).

    With the store cached, a new delivery costs one SQL statement (the insert); a repeat costs two more.
    """
    target = webhook_target(platform=platform, store_code=store_code)
    if target is None:
        return WebhookOutcome(404, json.dumps({"code": "unknown_store", "message": "No such active store."}))
    store, connector = target
    lowered = {k.lower(): v for k, v in headers.items()}
    kept = {k: str(v)[:KEPT_HEADER_CHARS] for k, v in lowered.items() if k in KEPT_HEADERS}
    try:
        deliveries = connector.parse_webhook(headers=lowered, body=body)
    except PermanentError as exc:
        return _webhook_refused(store, connector, exc, body=body, kept=kept, lowered=lowered,
                                source_address=source_address)
    kept, now = clean_data(kept), timezone.now()
    # Texts from outside are cleaned as inbox_store does: the database cannot hold a NUL, in text nor in jsonb.
    rows = [InboxMessage(store=store, kind=InboxKind.WEBHOOK, status=InboxStatus.PENDING, next_attempt_at=now,
                         delivery_key=clean_text(f"wh:{delivery.delivery_id}")[:200],
                         topic=clean_text(delivery.topic)[:64],
                         platform_order_id=clean_text(delivery.platform_order_id)[:64],
                         platform_updated_at=delivery.updated_at, headers=kept,
                         body=json.dumps({"needs_fetch": True, "platform_order_id": delivery.platform_order_id})
                         if delivery.needs_fetch else json.dumps(delivery.payload, ensure_ascii=False))
            for delivery in deliveries]
    created = inbox_insert_new(rows)
    if len(created) < len(rows):
        inbox_count_repeats(store_id=store.pk, delivery_keys=[row.delivery_key for row in rows], created=created)
    ack, content_type = connector.webhook_ack()
    return WebhookOutcome(200, ack, content_type, stored_for_store_id=store.pk if created else None)


# The columns of an inbox row as the insert below writes them (every concrete field but the id and the
# columns the database computes, such as the partition).
_INBOX_INSERT_FIELDS = [f for f in InboxMessage._meta.concrete_fields if not f.primary_key and not f.generated]


def inbox_insert_new(rows: list[InboxMessage]) -> set[str]:
    """Insert the rows that are new in one statement; a (store, delivery_key) already stored is left as it is.

    Returns the delivery keys inserted. One INSERT … ON CONFLICT DO NOTHING RETURNING, in autocommit: no
    transaction, savepoint or follow-up query around it (bulk_create with ignore_conflicts cannot say which
    rows were new). The texts must be cleaned already (clean_text / clean_data), as webhook_receive does.
    """
    if not rows:
        return set()
    table, quote = InboxMessage._meta.db_table, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _INBOX_INSERT_FIELDS)
    placeholders = "(" + ", ".join(["%s"] * len(_INBOX_INSERT_FIELDS)) + ")"
    params = [field.get_db_prep_save(field.pre_save(row, True), connection)
              for row in rows for field in _INBOX_INSERT_FIELDS]
    key_column = quote(InboxMessage._meta.get_field("delivery_key").column)
    sql = (f"INSERT INTO {quote(table)} ({columns}) VALUES {', '.join([placeholders] * len(rows))} "
           f"ON CONFLICT ({quote(InboxMessage._meta.get_field('store').column)}, {key_column}) DO NOTHING "
           f"RETURNING {key_column}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key for (key,) in cursor.fetchall()}


def inbox_count_repeats(*, store_id: int, delivery_keys: list[str], created: set[str]) -> int:
    """Count the deliveries of one request that were stored before (or repeated within the request) on their
    rows and on the store's counter. Returns how many repeats there were."""
    repeats = Counter(delivery_keys)
    for key in created:
        repeats[key] -= 1  # the first of each new key is the stored row, not a repeat
    repeats = +repeats
    if not repeats:
        return 0
    for times in sorted(set(repeats.values())):
        InboxMessage.objects.filter(store_id=store_id, delivery_key__in=[k for k, n in repeats.items() if n == times]
                                    ).update(duplicates=F("duplicates") + times)
    total = sum(repeats.values())
    _count(store_id, duplicates=total)
    return total


def _webhook_refused(store: Store, connector, exc: PermanentError, *, body: bytes, kept: dict,
                     lowered: dict, source_address: str | None) -> WebhookOutcome:
    """What a refused delivery becomes. Only a verified body may ever be replayed into an order."""
    if exc.code == "push_unsupported":
        # This platform only polls: a body posted here was never sent by it. Nothing is stored.
        return WebhookOutcome(404, json.dumps({"code": "push_unsupported",
                                               "message": "This platform does not push orders."}))
    if isinstance(exc, (SignatureError, AuthError)):
        # Not verified (a wrong signature, or no secret to check it with): anyone can send these, so they
        # are rate-limited per store and address and keep only a bounded record (size, hash, the start of
        # the body) for the operator; never processed nor replayable; the platform gets 401.
        retry_after = refused_webhook_throttle(store_id=store.pk, source_address=source_address)
        if retry_after:
            return WebhookOutcome(429, json.dumps({"code": "too_many_refused",
                                                   "message": "Too many refused deliveries; try again later."}),
                                  headers={"Retry-After": str(retry_after)})
        _count(store.pk, signature_failures=1)
        inbox_store(store=store, kind=InboxKind.WEBHOOK, delivery_key=f"badsig:{timezone.now().timestamp()}:{random.random()}",
                    body=clean_text(body[:REFUSED_BODY_PREFIX_CHARS * 4].decode("utf-8", "replace"))
                    [:REFUSED_BODY_PREFIX_CHARS],
                    headers=kept, status=InboxStatus.DEAD, dead_reason=DeadReason.SIGNATURE,
                    last_error=exc.message, body_size=len(body), body_sha256=hashlib.sha256(body).hexdigest(),
                    source_address=_ip_or_none(source_address))
        return WebhookOutcome(401, json.dumps({"code": "bad_signature", "message": "Signature does not match."}))
    # A verified body may hold a NUL only as a JSON escape (the input guard refuses raw ones); cleaning
    # cannot change a valid JSON document, and the database cannot hold a raw NUL.
    text = clean_text(body.decode("utf-8", "replace"))
    # Verified but unusable: kept as a dead letter a person can fix and replay; acknowledged, since the
    # platform retrying a broken body cannot help.
    inbox_store(store=store, kind=InboxKind.WEBHOOK,
                delivery_key=f"bad:{lowered.get('x-shopify-event-id') or timezone.now().timestamp()}",
                body=text, headers=kept, status=InboxStatus.DEAD, dead_reason=DeadReason.BAD_PAYLOAD,
                last_error=exc.message)
    _count(store.pk, errors=1)  # the webhook itself is counted from the inbox (its row)
    ack, content_type = connector.webhook_ack()
    return WebhookOutcome(200, ack, content_type)


def refused_webhook_throttle(*, store_id: int, source_address: str | None) -> int:
    """Count one refused delivery of (store, address) in a fixed one-minute window of the shared cache.

    Returns 0 while under OMS_REFUSED_WEBHOOK_LIMIT_PER_MINUTE, else the seconds until the window ends
    (the Retry-After). Verified deliveries never come here, so junk cannot slow down the real platform.
    """
    now = _clock()
    window = int(now // REFUSED_WINDOW_SECONDS)
    key = f"oms:refused-webhook:{store_id}:{_ip_or_none(source_address) or '-'}:{window}"
    cache.add(key, 0, timeout=REFUSED_WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a fresh window
        cache.add(key, 1, timeout=REFUSED_WINDOW_SECONDS + 5)
        count = 1
    limit = settings.OMS_REFUSED_WEBHOOK_LIMIT_PER_MINUTE
    if count <= limit:
        return 0
    if count == limit + 1:  # once per window, so the log cannot be flooded either
        logger.warning("refused webhooks of store %s from %s over %s a minute: refusing for the rest of the "
                       "minute", store_id, source_address, limit)
    return max(1, math.ceil((window + 1) * REFUSED_WINDOW_SECONDS - now))


def _ip_or_none(address: str | None) -> str | None:
    """REMOTE_ADDR as the inet column takes it (a unix-socket server may pass something else)."""
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        return None


def _clock() -> float:
    return time.time()


def _monotonic() -> float:
    return time.monotonic()


def refused_deliveries_purge(*, now: datetime | None = None) -> int:
    """Delete the records of refused deliveries older than OMS_REFUSED_WEBHOOK_RETENTION_DAYS. Returns how many.

    Only unverified deliveries (reason "signature") are purged: accepted ones and dead letters a person may
    still replay stay.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.OMS_REFUSED_WEBHOOK_RETENTION_DAYS)
    deleted, _per_model = InboxMessage.objects.filter(dead_reason=DeadReason.SIGNATURE, received_at__lt=cutoff).delete()
    return deleted


# --- Processing ----------------------------------------------------------------------------------

def store_lease_take(store_id: int, field: str, duration: timedelta) -> bool:
    """Take a store's lease (polling or inbox draining) through the claim helper; no lock is held while
    the work runs, and a dead worker's lease runs out after ``duration``."""
    now = timezone.now()
    free = ChannelSyncState.objects.filter(store_id=store_id).filter(
        Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now}))
    return bool(lease_claim(free, lease_field=field, lease=duration, limit=1, now=now))


def store_lease_release(store_id: int, field: str) -> None:
    ChannelSyncState.objects.filter(store_id=store_id).update(**{field: None})


_lease, _release = store_lease_take, store_lease_release


def inbox_due_ids(*, store_id: int, limit: int = 200) -> list[int]:
    """The store's due inbox rows in platform-update order (the order versions must be applied in)."""
    return list(InboxMessage.objects.filter(
        store_id=store_id, status=InboxStatus.PENDING, next_attempt_at__lte=timezone.now(),
    ).order_by(F("platform_updated_at").asc(nulls_first=True), "id").values_list("pk", flat=True)[:limit])


def inbox_has_due(*, store_id: int) -> bool:
    return InboxMessage.objects.filter(store_id=store_id, status=InboxStatus.PENDING,
                                       next_attempt_at__lte=timezone.now()).exists()


def inbox_payload(*, message: InboxMessage, store: Store):
    """The row's payload as the platform sent it; a push that only named the order is fetched now
    (network I/O: call outside any transaction) and the row keeps the fetched body."""
    payload = json.loads(message.body)
    if isinstance(payload, dict) and payload.get("needs_fetch"):
        raw = connector_for_store(store).fetch_order(payload["platform_order_id"])
        payload = raw.payload
        message.body = json.dumps(payload, ensure_ascii=False)
        InboxMessage.objects.filter(pk=message.pk).update(body=message.body, platform_updated_at=raw.updated_at)
    return payload


def inbox_map(*, store: Store, payload, body: str | None = None):
    """The payload as a UnifiedOrder. What reaches the orders has no NUL (PostgreSQL refuses it in text
    and jsonb, and the row would fail on every retry) nor other control characters; ``body``, the JSON
    text the payload was decoded from, lets a clean document skip the cleaning walk."""
    if body is None or not json_text_is_clean(body):
        payload = clean_data(payload)
    return connector_class(store.platform).map_order(payload)


def inbox_lock_pending(*, message_id: int) -> InboxMessage | None:
    """Lock the row inside the caller's transaction; None when it is no longer pending."""
    locked = lock_one_or_none(InboxMessage.objects.filter(pk=message_id))
    return locked if locked is not None and locked.status == InboxStatus.PENDING else None


def inbox_mark_applied(*, message: InboxMessage, order, outcome: str) -> str:
    """The row was applied to ``order`` ("created", "updated" or "stale"); counted on the store."""
    status = InboxStatus.SKIPPED if outcome == "stale" else InboxStatus.DONE
    InboxMessage.objects.filter(pk=message.pk).update(
        status=status, order=order, processed_at=timezone.now(), attempts=F("attempts") + 1, last_error="")
    _count(message.store_id, **{"orders_created" if outcome == "created" else
                                "stale_updates" if outcome == "stale" else "orders_updated": 1})
    return status


def inbox_mark_dead(message: InboxMessage, reason: str, error: str) -> str:
    InboxMessage.objects.filter(pk=message.pk).update(status=InboxStatus.DEAD, dead_reason=reason,
                                                      last_error=clean_text(error)[:2000],
                                                      attempts=F("attempts") + 1)
    _count(message.store_id, errors=1)
    logger.warning("inbox %s dead-lettered: %s %s", message.pk, reason, error[:200])
    return InboxStatus.DEAD


def inbox_retry_later(message: InboxMessage, error: str) -> str:
    attempts = message.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return inbox_mark_dead(message, DeadReason.RETRIES_EXHAUSTED, error)
    InboxMessage.objects.filter(pk=message.pk).update(
        attempts=attempts, last_error=clean_text(error)[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=backoff_seconds(attempts)))
    _count(message.store_id, errors=1)
    return InboxStatus.PENDING


def dead_letter_replay(*, message_id: int) -> InboxMessage:
    """Put a dead letter back in line (after fixing its cause, e.g. adding the SKU mapping)."""
    with transaction.atomic():
        message = lock_one_or_none(InboxMessage.objects.filter(pk=message_id))
        if message is None:
            raise NotFoundError(_("No such inbox message."))
        if message.status != InboxStatus.DEAD:
            raise DomainError(_("Only dead letters can be replayed."), code="not_dead", http_status=409)
        if message.dead_reason == DeadReason.SIGNATURE:
            raise DomainError(_("A delivery with a bad signature is never processed; discard it."),
                              code="signature_not_replayable", http_status=409)
        InboxMessage.objects.filter(pk=message.pk).update(status=InboxStatus.PENDING, attempts=0, dead_reason="",
                                                          next_attempt_at=timezone.now())
    message.refresh_from_db()
    return message


def dead_letter_discard(*, message_id: int) -> InboxMessage:
    with transaction.atomic():
        updated = InboxMessage.objects.filter(pk=message_id, status=InboxStatus.DEAD).update(
            status=InboxStatus.DISCARDED)
        if not updated:
            if not InboxMessage.objects.filter(pk=message_id).exists():
                raise NotFoundError(_("Inbox message %(id)s does not exist.") % {"id": message_id},
                                    code="message_not_found")
            raise DomainError(_("Only dead letters can be discarded."), code="not_dead", http_status=409)
    return InboxMessage.objects.get(pk=message_id)


# --- Polling ---------------------------------------------------------------------------------------

@dataclass
class PollResult:
    status: str  # "ok", "busy", "failed", "disabled"
    fetched: int = 0
    stored: int = 0
    error: str = ""


def store_poll(*, store_id: int, now: datetime | None = None) -> PollResult:
    """Fetch everything the platform changed since the watermark, window by window, into the inbox.

    The window starts an overlap before the watermark (orders updated at the edge are fetched
    again and deduplicated by the inbox) and ends the platform's lag before now. The watermark
    moves only after a whole window has been stored, so an outage or a failure half-way through
    loses nothing: the next poll starts from the last complete window.
    """
    store = Store.objects.get(pk=store_id)
    state = sync_state_for(store)
    if not state.enabled or not store.active:
        return PollResult("disabled")
    if not _lease(store_id, "poll_lease_until", POLL_LEASE):
        return PollResult("busy")
    now = now or timezone.now()
    connector = connector_for_store(store)
    result = PollResult("ok")
    ChannelSyncState.objects.filter(pk=state.pk).update(last_poll_started_at=now)
    try:
        start = (state.watermark or now - timedelta(hours=state.initial_lookback_hours)) - connector.overlap
        end = now - connector.lag
        window_start = start
        while window_start < end:
            window_end = min(window_start + connector.max_window, end)
            page: list[RawOrder] = []
            for raw in connector.poll(start=window_start, end=window_end):
                page.append(raw)
                result.fetched += 1
                if len(page) >= 250:  # store as we go: a failure later keeps what was fetched
                    result.stored += inbox_store_polled(store=store, raws=page)
                    page = []
            result.stored += inbox_store_polled(store=store, raws=page)
            ChannelSyncState.objects.filter(pk=state.pk).update(watermark=window_end)
            window_start = window_end
        ChannelSyncState.objects.filter(pk=state.pk).update(
            last_success_at=timezone.now(), consecutive_failures=0, last_error="",
            next_poll_at=timezone.now() + timedelta(seconds=state.poll_interval_seconds))
    except ConnectorError as exc:
        failures = state.consecutive_failures + 1
        # Transient trouble backs off exponentially; credentials problems wait for a person.
        delay = backoff_seconds(failures, base=5, cap=900) if isinstance(exc, TransientError) else 300
        if exc.retry_after:
            delay = max(delay, exc.retry_after)
        ChannelSyncState.objects.filter(pk=state.pk).update(
            consecutive_failures=failures, last_error=f"{type(exc).__name__}: {exc.message}"[:2000],
            last_error_at=timezone.now(), errors=F("errors") + 1,
            next_poll_at=timezone.now() + timedelta(seconds=delay))
        logger.warning("poll of store %s failed: %s", store.code, exc.message)
        result = PollResult("failed", result.fetched, result.stored, exc.message)
    finally:
        sync_state_note_api_version(store_id=store_id, connector=connector)
        _release(store_id, "poll_lease_until")
    return result


def sync_state_note_api_version(*, store_id: int, connector) -> None:
    """Keep the API version the platform says it served (Shopify's X-Shopify-API-Version) on the sync state,
    so the channel page shows when an asked version has expired and another one answers."""
    served = getattr(connector, "served_api_version", None)
    if served:
        ChannelSyncState.objects.filter(store_id=store_id).exclude(api_version_served=served).update(
            api_version_served=served)


def store_ids_due_for_poll(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(ChannelSyncState.objects.filter(enabled=True, store__active=True).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).filter(store__platform__in=list(CONNECTORS))
        .values_list("store_id", flat=True))


def store_poll_now(*, store_id: int) -> None:
    """The "sync now" button: poll at the next beat tick (the caller also schedules a poll right away)."""
    ChannelSyncState.objects.filter(store_id=store_id).update(next_poll_at=timezone.now())


def inbox_overdue_store_ids(*, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Stores with pending rows that should have been processed by now (a lost task message)."""
    cutoff = timezone.now() - older_than
    return list(InboxMessage.objects.filter(status=InboxStatus.PENDING, next_attempt_at__lte=cutoff)
                .values_list("store_id", flat=True).distinct())


def store_setup(*, store: Store | None, platform: str, code: str, name: str, active: bool, default_currency: str,
                reserve_on: str, allow_split: bool, credentials: dict, sync_enabled: bool,
                poll_interval_seconds: int, api_version: str | None = None,
                authorized_counts_as_paid: bool | None = None) -> Store:
    """Create or update a store and its sync settings; credentials are stored as given, never echoed."""
    with transaction.atomic():
        if store is None:
            store = Store(platform=platform)
        elif store.platform != platform and store.orders.exists():
            # Its orders, outbox rows and stock pushes belong to the old platform's API.
            raise ValidationFailed(_("A store with orders cannot move to another platform: create a new store."),
                                   code="platform_change", data={"platform": [_("Cannot change once orders exist.")]})
        store.platform, store.code, store.name, store.active = platform, code, name, active
        store.default_currency, store.reserve_on, store.allow_split = default_currency, reserve_on, allow_split
        store.save()
        state = sync_state_for(store)
        # Platform settings (None: not on the form, keep what is stored).
        platform_settings = {name: value for name, value in (("api_version", api_version),
                                                             ("authorized_counts_as_paid", authorized_counts_as_paid))
                             if value is not None}
        ChannelSyncState.objects.filter(pk=state.pk).update(enabled=sync_enabled,
                                                            poll_interval_seconds=poll_interval_seconds,
                                                            credentials=credentials, **platform_settings)
    webhook_targets_forget()  # deactivated or new secret: at once in this process, within the TTL elsewhere
    return store
