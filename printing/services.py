"""Print jobs: create them once (dedup key), reprint on purpose, send directly to network printers with
retries, and hand them to LAN print bridges that claim one job at a time.

A job's bytes are rendered when it is created, so what prints is what was previewed. Sending happens
outside any transaction: a job is claimed (queued → sending, with a lease) under a row lock with
SKIP LOCKED, then sent, then marked printed or put back in the queue with a backoff.

These functions never queue Celery work: pipeline.printing wraps the ones whose outcome must be sent by a
worker (a new network job, a retry, a printer back on-line) and schedules that after commit.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from fulfillment.models import Shipment, ShipmentStatus, Wave
from oms.exceptions import ConflictError, NotFoundError
from oms.locks import lock_one, lock_rows
from printing import labels, renderers
from printing.exceptions import BridgeAuthFailed, BridgeForbidden, PrintRefused  # raised here; defined there
from printing.models import JobKind, JobStatus, PrintBridge, Printer, PrintJob, Transport
from printing.transports import PrinterUnreachable, send_to_printer

logger = logging.getLogger(__name__)

# Longer than the bridge agent keeps retrying an acknowledgement (120 s), so a job whose ack is delayed
# by an OMS outage is not handed to another sender and printed twice.
SEND_LEASE = timedelta(seconds=180)
# An off-line printer is tried again soon (people are waiting at it), never given up on by itself.
MAX_BACKOFF_SECONDS = 60


# --- Printers and bridges -------------------------------------------------------------------------

def printer_for_warehouse(*, warehouse_id: int, printer_id: int | None = None) -> Printer:
    query = Printer.objects.filter(warehouse_id=warehouse_id, active=True)
    printer = query.filter(pk=printer_id).first() if printer_id else query.order_by("name", "pk").first()
    if printer is None:
        raise PrintRefused(_("No active printer in this warehouse: add one under Printing → Printers."),
                           code="no_printer")
    return printer


def bridge_create(*, name: str, warehouse_id: int) -> tuple[PrintBridge, str]:
    """Register a bridge; the token is returned once and only its hash is kept."""
    token = f"pb_{secrets.token_urlsafe(32)}"
    bridge = PrintBridge.objects.create(name=name.strip()[:100] or "bridge", warehouse_id=warehouse_id,
                                        token_hash=_token_hash(token), token_prefix=token[:8])
    return bridge, token


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bridge_authenticate(*, token: str) -> PrintBridge:
    bridge = PrintBridge.objects.filter(token_hash=_token_hash(token or ""), active=True).first() if token else None
    if bridge is None:
        raise BridgeAuthFailed(_("Unknown or disabled print bridge token."))
    now = timezone.now()
    if bridge.last_seen_at is None or now - bridge.last_seen_at > timedelta(seconds=30):
        # A bridge polls every second or so: one write per half minute is enough to show it is alive.
        PrintBridge.objects.filter(pk=bridge.pk).update(last_seen_at=now)
    return bridge


def bridge_deactivate(*, bridge_id: int) -> PrintBridge:
    """Switch a bridge off: its token stops working at once; jobs it held go back to the queue at lease end."""
    bridge = PrintBridge.objects.filter(pk=bridge_id).first()
    if bridge is None:
        raise NotFoundError(_("Print bridge %(id)s does not exist.") % {"id": bridge_id}, code="bridge_not_found")
    PrintBridge.objects.filter(pk=bridge.pk).update(active=False)
    bridge.active = False
    return bridge


# --- Creating jobs --------------------------------------------------------------------------------

@dataclass
class JobResult:
    job: PrintJob
    created: bool  # False: the same job existed already (nothing new will print)

    @property
    def needs_sending(self) -> bool:
        """A new job of a network printer: a worker sends it (a bridge printer's job waits for its bridge)."""
        return self.created and self.job.printer.transport == Transport.NETWORK


def _job_create(*, printer: Printer, kind: str, payload: bytes, dedup_key: str, actor=None, shipment=None, wave=None,
                reprint_of: PrintJob | None = None, reason: str = "") -> JobResult:
    try:
        with transaction.atomic():
            job = PrintJob.objects.create(printer=printer, kind=kind, payload=payload, dedup_key=dedup_key[:120],
                                          shipment=shipment, wave=wave, reprint_of=reprint_of, reason=reason[:200],
                                          requested_by=actor if getattr(actor, "is_authenticated", False) else None,
                                          next_attempt_at=timezone.now())
    except IntegrityError:
        return JobResult(PrintJob.objects.get(dedup_key=dedup_key[:120]), created=False)
    return JobResult(job, created=True)


def label_shipment(*, shipment_id: int) -> Shipment:
    """The parcel whose label is asked for; refused when it does not exist or is cancelled."""
    shipment = Shipment.objects.select_related("carrier", "warehouse").filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFoundError(_("Shipment %(id)s does not exist.") % {"id": shipment_id}, code="shipment_not_found")
    if shipment.status == ShipmentStatus.CANCELLED:
        raise PrintRefused(_("Parcel %(number)s is cancelled: its label must not be used.") % {
            "number": shipment.number}, code="parcel_cancelled")
    return shipment


def label_print(*, shipment_id: int, printer_id: int | None = None, actor=None) -> JobResult:
    """Queue the shipping label of a parcel that has its tracking number (pipeline.printing.label_print asks
    the carrier for one first). Asking again for the same parcel and tracking number returns the existing
    job: one label per waybill unless a person asks for a reprint."""
    shipment = label_shipment(shipment_id=shipment_id)
    if not shipment.tracking_number:
        raise PrintRefused(_("Parcel %(number)s has no tracking number yet: a label needs one.") % {
            "number": shipment.number}, code="tracking_required")
    printer = printer_for_warehouse(warehouse_id=shipment.warehouse_id, printer_id=printer_id)
    payload = renderers.render_label(labels.label_data(shipment), paper_width=printer.paper_width)
    return _job_create(printer=printer, kind=JobKind.LABEL, payload=payload, shipment=shipment, actor=actor,
                       dedup_key=f"label:{shipment.pk}:{shipment.tracking_number}")


def labels_batch_order(*, shipment_ids: list[int]) -> list[int]:
    """The parcels of a batch in carrier order, so the stacks of labels come out grouped by carrier."""
    return list(Shipment.objects.filter(pk__in=shipment_ids).order_by("carrier__code", "sla_due_at", "pk")
                .values_list("pk", flat=True))


def pick_list_print(*, wave_id: int, printer_id: int | None = None, actor=None) -> JobResult:
    wave = Wave.objects.select_related("warehouse").filter(pk=wave_id).first()
    if wave is None:
        raise NotFoundError(_("Wave %(id)s does not exist.") % {"id": wave_id}, code="wave_not_found")
    printer = printer_for_warehouse(warehouse_id=wave.warehouse_id, printer_id=printer_id)
    payload = renderers.render_pick_list(labels.pick_list_data(wave), paper_width=printer.paper_width)
    return _job_create(printer=printer, kind=JobKind.PICK_LIST, payload=payload, wave=wave, actor=actor,
                       dedup_key=f"pick_list:{wave.pk}:{wave.shipments.exclude(status=ShipmentStatus.CANCELLED).count()}")


def test_page_print(*, printer_id: int, actor=None) -> JobResult:
    printer = Printer.objects.filter(pk=printer_id).first()
    if printer is None:
        raise NotFoundError(_("Printer %(id)s does not exist.") % {"id": printer_id}, code="printer_not_found")
    payload = renderers.render_test_page(printer_name=printer.name, paper_width=printer.paper_width,
                                         printed_at=labels.now_text())
    return _job_create(printer=printer, kind=JobKind.TEST, payload=payload, actor=actor,
                       dedup_key=f"test:{printer.pk}:{uuid.uuid4().hex}")


def job_reprint(*, job_id: int, reason: str, actor=None) -> PrintJob:
    """An explicit second copy: a new job with its own key and the reason recorded."""
    reason = (reason or "").strip()
    if not reason:
        raise PrintRefused(_("Say why the label is printed again."), code="reason_required",
                           data={"reason": [_("This field may not be blank.")]})
    original = PrintJob.objects.select_related("printer").filter(pk=job_id).first()
    if original is None:
        raise NotFoundError(_("Print job %(id)s does not exist.") % {"id": job_id}, code="job_not_found")
    if original.status not in (JobStatus.PRINTED, JobStatus.FAILED):
        raise ConflictError(_("Only a printed or failed job can be printed again."), code="job_not_done")
    return _job_create(printer=original.printer, kind=original.kind, payload=bytes(original.payload),
                       shipment=original.shipment, wave=original.wave, actor=actor, reprint_of=original,
                       reason=reason, dedup_key=f"reprint:{original.pk}:{uuid.uuid4().hex}").job


def _lock_job(job_id: int) -> PrintJob:
    try:
        return lock_one(PrintJob, job_id)
    except PrintJob.DoesNotExist:
        raise NotFoundError(_("Print job %(id)s does not exist.") % {"id": job_id}, code="job_not_found") from None


def job_retry(*, job_id: int, actor=None) -> PrintJob:
    """Send a failed job again (the same job: it has not printed)."""
    with transaction.atomic():
        job = _lock_job(job_id)
        if job.status != JobStatus.FAILED:
            raise ConflictError(_("Only a failed job can be retried."), code="job_not_failed")
        job.retry()
        job.attempts, job.next_attempt_at, job.lease_until = 0, timezone.now(), None
        job.save(update_fields=["status", "attempts", "next_attempt_at", "lease_until"])
        return job


def job_cancel(*, job_id: int, actor=None) -> PrintJob:
    """Give up on a queued job (e.g. the parcel was cancelled): it will not print."""
    with transaction.atomic():
        job = _lock_job(job_id)
        if job.status != JobStatus.QUEUED:
            raise ConflictError(_("Only a queued job can be cancelled."), code="job_not_queued")
        job.fail()
        job.last_error = _("Cancelled by %(user)s.") % {"user": getattr(actor, "username", "system")}
        job.save(update_fields=["status", "last_error"])
        return job


def jobs_void_for_shipment(*, shipment_id: int) -> int:
    """A cancelled parcel's labels still waiting in the queue will not print (one being sent may)."""
    voided = 0
    with transaction.atomic():
        for job in lock_rows(PrintJob.objects.filter(shipment_id=shipment_id, status=JobStatus.QUEUED),
                             skip_locked=True, of=("self",)):
            job.fail()
            job.last_error = _("The parcel was cancelled.")
            job.save(update_fields=["status", "last_error"])
            voided += 1
    return voided


# --- Sending --------------------------------------------------------------------------------------

def _claimable(now) -> Q:
    """Queued and due, or stuck in sending past its lease (the sender died)."""
    return (Q(status=JobStatus.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            | Q(status=JobStatus.SENDING, lease_until__lt=now))


def _claim(job: PrintJob, now, bridge: PrintBridge | None = None) -> None:
    if job.status == JobStatus.SENDING:  # an expired lease: take it over
        job.requeue()
    job.claim()
    job.attempts += 1
    job.lease_until = now + SEND_LEASE
    job.claimed_by = bridge
    job.save(update_fields=["status", "attempts", "lease_until", "claimed_by"])


@dataclass
class JobSent:
    """What sending a job did: its status afterwards, and whether the printer's other queued jobs were
    released from their backoff (the printer answered again), so its queue should be sent now."""

    status: str
    printer_id: int | None = None
    queue_released: bool = False


# Claims of print jobs lock the row with SKIP LOCKED (oms.locks.lock_rows) rather than through
# oms.leases.lease_claim: the claim is PrintJob's own django-fsm transition (queued → sending, or an
# expired sending taken over), which must run on the locked row; lease_claim's bare UPDATE would
# bypass the state machine. The lease itself is still a column (lease_until) any sender can expire.


def job_send(*, job_id: int) -> JobSent:
    """Send one network-printer job from a worker (pipeline.printing.job_send_direct)."""
    now = timezone.now()
    with transaction.atomic():
        job = (lock_rows(PrintJob.objects.filter(_claimable(now), pk=job_id, printer__transport=Transport.NETWORK),
                         skip_locked=True, of=("self",))
               .select_related("printer").first())
        if job is None:
            return JobSent(PrintJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing")
        _claim(job, now)
    try:
        send_to_printer(host=job.printer.host, port=job.printer.port, payload=bytes(job.payload))
    except PrinterUnreachable as exc:
        return JobSent(_sent_failed(job.pk, str(exc)), printer_id=job.printer_id)
    status, released = _sent_ok(job.pk)
    return JobSent(status, printer_id=job.printer_id, queue_released=bool(released))


def _held(job: PrintJob, bridge: PrintBridge | None) -> bool:
    """Still ours to finish: sending, and (for a bridge) still claimed by that bridge — a late answer
    after the lease passed to another sender must not touch the other sender's attempt."""
    return job.status == JobStatus.SENDING and (bridge is None or job.claimed_by_id == bridge.pk)


def _sent_ok(job_id: int, bridge: PrintBridge | None = None) -> tuple[str, list[int]]:
    """Mark a held job printed; returns its status and the printer's jobs released from their backoff.
    (A bridge printer's released jobs are due, so the bridge's next poll takes them; a network printer's
    queue is sent by a worker, scheduled by pipeline.printing.)"""
    with transaction.atomic():
        job = lock_one(PrintJob, job_id)
        if not _held(job, bridge):
            if bridge is not None:
                raise ConflictError(_("This bridge does not hold the job (its lease may have expired)."),
                                    code="job_not_claimed")
            return job.status, []
        job.mark_printed()
        job.printed_at, job.lease_until, job.last_error = timezone.now(), None, ""
        job.save(update_fields=["status", "printed_at", "lease_until", "last_error"])
        Printer.objects.filter(pk=job.printer_id, offline_since__isnull=False).update(offline_since=None, last_error="")
        return job.status, printer_queue_release(printer_id=job.printer_id)


def printer_queue_release(*, printer_id: int) -> list[int]:
    """The printer just took a job, so it is on-line again: its other queued jobs stop waiting out their
    backoff (which grows to a minute) and are due now, because people are standing at that printer.

    Only next_attempt_at changes (a plain column, not the state); a claim still goes through the state."""
    now = timezone.now()
    waiting = list(PrintJob.objects.filter(printer_id=printer_id, status=JobStatus.QUEUED, next_attempt_at__gt=now)
                   .order_by("pk").values_list("pk", flat=True))
    if waiting:
        PrintJob.objects.filter(pk__in=waiting, status=JobStatus.QUEUED).update(next_attempt_at=now)
    return waiting


def printer_jobs_due(*, printer_id: int, limit: int = 500) -> list[int]:
    """A network printer's due jobs in the order they were asked for (labels come out in the order people expect)."""
    return list(PrintJob.objects.filter(_claimable(timezone.now()), printer_id=printer_id,
                                        printer__transport=Transport.NETWORK, printer__active=True)
                .order_by("pk").values_list("pk", flat=True)[:limit])


def printer_is_offline(*, printer_id: int) -> bool:
    return Printer.objects.filter(pk=printer_id, offline_since__isnull=False).exists()


def _sent_failed(job_id: int, error: str, bridge: PrintBridge | None = None) -> str:
    """The printer did not take the bytes: back in the queue with a backoff; the printer is marked off-line."""
    now = timezone.now()
    with transaction.atomic():
        job = lock_one(PrintJob, job_id)
        if not _held(job, bridge):
            if bridge is not None:
                raise ConflictError(_("This bridge does not hold the job (its lease may have expired)."),
                                    code="job_not_claimed")
            return job.status
        job.requeue()
        job.lease_until, job.last_error = None, error[:300]
        job.next_attempt_at = now + timedelta(seconds=min(2 ** min(job.attempts, 6), MAX_BACKOFF_SECONDS))
        job.save(update_fields=["status", "lease_until", "last_error", "next_attempt_at"])
        Printer.objects.filter(pk=job.printer_id, offline_since__isnull=True).update(offline_since=now)
        Printer.objects.filter(pk=job.printer_id).update(last_error=error[:300])
    logger.warning("print job %s not sent (attempt %s): %s", job_id, job.attempts, error)
    return JobStatus.QUEUED


def jobs_due_direct(*, limit: int = 500) -> list[int]:
    """Network jobs a worker should send now (the sweeper re-enqueues them: a lost task loses nothing)."""
    return list(PrintJob.objects.filter(_claimable(timezone.now()), printer__transport=Transport.NETWORK,
                                        printer__active=True).order_by("pk").values_list("pk", flat=True)[:limit])


# --- The bridge side ------------------------------------------------------------------------------

def bridge_claim(*, bridge: PrintBridge) -> PrintJob | None:
    """The oldest due job for a bridge printer of the bridge's warehouse, claimed for this bridge.

    SKIP LOCKED: two bridges polling at once each get a different job (or none), never the same one.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (lock_rows(PrintJob.objects.filter(_claimable(now), printer__transport=Transport.BRIDGE,
                                                 printer__active=True, printer__warehouse_id=bridge.warehouse_id),
                         skip_locked=True, of=("self",))
               .select_related("printer").first())
        if job is None:
            return None
        _claim(job, now, bridge=bridge)
        return job


def bridge_ack(*, bridge: PrintBridge, job_id: int, ok: bool, error: str = "") -> str:
    """A bridge reports the outcome of a job it claimed."""
    job = PrintJob.objects.select_related("printer").filter(pk=job_id).first()
    if job is None:
        raise NotFoundError(_("Print job %(id)s does not exist.") % {"id": job_id}, code="job_not_found")
    if job.printer.warehouse_id != bridge.warehouse_id:
        raise BridgeForbidden(_("This job belongs to another warehouse."))
    if job.claimed_by_id != bridge.pk or job.status != JobStatus.SENDING:
        raise ConflictError(_("This bridge does not hold the job (its lease may have expired)."),
                            code="job_not_claimed")
    return (_sent_ok(job.pk, bridge)[0] if ok
            else _sent_failed(job.pk, error or "bridge reported a failure", bridge))
