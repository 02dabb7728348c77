"""The one way a worker claims leased work rows (inbox, push-back, captures, notifications, print jobs).

A leased row is a unit of outside work (a call to a platform, a mail server, a printer) that must run
at most once at a time and be picked up again when its worker dies. Claiming is one statement:

    UPDATE t SET <lease field> = now + lease, <set> WHERE pk IN (
        SELECT pk FROM t WHERE <due> ORDER BY <order> LIMIT n FOR UPDATE SKIP LOCKED) RETURNING pk

so a batch is claimed at once, two workers never claim the same row, and a claim outlives its
worker only until the lease runs out. This is the single exception GUIDE.md allows to "never
QuerySet.update(status=…)": a claim is bookkeeping of the queue, not a business transition; the
business state machines (Order, Shipment, PrintJob) stay django-fsm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone


def lease_claim(queryset: models.QuerySet, *, lease_field: str, lease: timedelta, limit: int = 1,
                set_fields: dict | None = None, order_by: tuple[str, ...] = ("pk",),
                now: datetime | None = None) -> list[int]:
    """Claim up to ``limit`` rows of ``queryset`` (already filtered to what is due): their
    ``lease_field`` becomes now + ``lease`` and ``set_fields`` (values or F() expressions) are
    written. Returns the claimed primary keys in ``order_by`` order; rows locked by another
    claimer are passed over, never waited for."""
    now = now or timezone.now()
    values = {lease_field: now + lease, **(set_fields or {})}
    with transaction.atomic():
        ids = list(queryset.select_for_update(skip_locked=True, of=("self",)).order_by(*order_by)
                   .values_list("pk", flat=True)[:limit])
        if ids:
            queryset.model._default_manager.filter(pk__in=ids).update(**values)
    return ids


def lease_claim_one(queryset: models.QuerySet, *, pk, lease_field: str, lease: timedelta,
                    set_fields: dict | None = None, now: datetime | None = None) -> bool:
    """Claim the one row ``pk`` if ``queryset`` still finds it due; False when it is not due or taken."""
    return bool(lease_claim(queryset.filter(pk=pk), lease_field=lease_field, lease=lease, limit=1,
                            set_fields=set_fields, now=now))


def lease_release(model: type[models.Model], pk, *, lease_field: str, set_fields: dict | None = None) -> None:
    """End a claim early (the work is done or handed back): the lease field is cleared."""
    model._default_manager.filter(pk=pk).update(**{lease_field: None, **(set_fields or {})})


def outbox_due(model: type[models.Model], *, pending, sending, now: datetime | None = None) -> models.QuerySet:
    """An outbox's rows that are due: waiting and past their retry time, or claimed by a sender whose lease
    ran out (it died). The outboxes share the columns status, next_attempt_at, lease_until and attempts."""
    now = now or timezone.now()
    return model._default_manager.filter(Q(status=pending, next_attempt_at__lte=now)
                                         | Q(status=sending, lease_until__lt=now))


def outbox_claim_one(model: type[models.Model], *, pk, pending, sending, lease: timedelta,
                     now: datetime | None = None) -> bool:
    """Claim one due outbox row for sending: status becomes ``sending``, attempts + 1, the lease starts."""
    now = now or timezone.now()
    return lease_claim_one(outbox_due(model, pending=pending, sending=sending, now=now), pk=pk,
                           lease_field="lease_until", lease=lease, now=now,
                           set_fields={"status": sending, "attempts": F("attempts") + 1})
