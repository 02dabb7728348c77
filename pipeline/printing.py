"""Printing flows that reach past printing: a label that first needs the carrier's waybill, and every job a
worker must send to a network printer, scheduled after commit (printing.services itself never queues work)."""

from __future__ import annotations

from django.db import transaction

from fulfillment.services import shipment_needs_waybill
from oms.effects import task_after_commit
from oms.exceptions import DomainError
from pipeline.shipping import shipment_request_waybill
from printing import services
from printing.models import JobStatus, PrintJob, Transport
from printing.services import JobResult

SEND_JOB_TASK = "printing.tasks.send_print_job_task"
SEND_QUEUE_TASK = "printing.tasks.send_printer_queue_task"


def _sent_by_worker(result: JobResult) -> JobResult:
    if result.needs_sending:
        task_after_commit(SEND_JOB_TASK, job_id=result.job.pk)
    return result


def label_print(*, shipment_id: int, printer_id: int | None = None, actor=None) -> JobResult:
    """Queue the shipping label of a parcel; a carrier with an API is asked for the waybill first (network,
    outside any transaction). One label per waybill unless a person asks for a reprint."""
    shipment = services.label_shipment(shipment_id=shipment_id)
    if shipment_needs_waybill(shipment):
        shipment_request_waybill(shipment_id=shipment.pk)
    return _sent_by_worker(services.label_print(shipment_id=shipment_id, printer_id=printer_id, actor=actor))


def labels_print_batch(*, shipment_ids: list[int], actor=None, printer_id: int | None = None) -> dict:
    """One click for many parcels (a wave, a kanban selection), in carrier order so the stacks of labels
    come out grouped by carrier. Returns counts and the parcels that could not be printed, with why."""
    result = {"queued": 0, "already": 0, "refused": []}
    for shipment_id in services.labels_batch_order(shipment_ids=shipment_ids):
        try:
            outcome = label_print(shipment_id=shipment_id, actor=actor, printer_id=printer_id)
        except DomainError as exc:
            result["refused"].append({"shipment_id": shipment_id, "message": exc.message})
            continue
        result["queued" if outcome.created else "already"] += 1
    return result


def pick_list_print(*, wave_id: int, printer_id: int | None = None, actor=None) -> JobResult:
    return _sent_by_worker(services.pick_list_print(wave_id=wave_id, printer_id=printer_id, actor=actor))


def test_page_print(*, printer_id: int, actor=None) -> JobResult:
    return _sent_by_worker(services.test_page_print(printer_id=printer_id, actor=actor))


def job_reprint(*, job_id: int, reason: str, actor=None) -> PrintJob:
    """An explicit second copy (a new job); a network printer's copy is sent by a worker after commit."""
    job = services.job_reprint(job_id=job_id, reason=reason, actor=actor)
    if job.printer.transport == Transport.NETWORK:
        task_after_commit(SEND_JOB_TASK, job_id=job.pk)
    return job


def job_retry(*, job_id: int, actor=None) -> PrintJob:
    """Send a failed job again (the same job: it has not printed)."""
    with transaction.atomic():
        job = services.job_retry(job_id=job_id, actor=actor)
        if job.printer.transport == Transport.NETWORK:
            task_after_commit(SEND_JOB_TASK, job_id=job.pk)
    return job


def job_send_direct(*, job_id: int) -> str:
    """Send one network-printer job from a worker; returns the job's status afterwards. When the printer
    took it after an outage, its other queued jobs stop waiting out their backoff and a worker sends
    them now, because people are standing at that printer."""
    sent = services.job_send(job_id=job_id)
    if sent.queue_released:
        task_after_commit(SEND_QUEUE_TASK, printer_id=sent.printer_id)
    return sent.status


def printer_send_queue(*, printer_id: int, limit: int = 500) -> dict[int, str]:
    """Send a network printer's due jobs one after another in the order they were asked for; stop at the
    first one the printer does not take again."""
    outcome: dict[int, str] = {}
    for job_id in services.printer_jobs_due(printer_id=printer_id, limit=limit):
        outcome[job_id] = job_send_direct(job_id=job_id)
        # Off-line again: the backoff and the sweeper take over. (A job another sender holds also answers
        # "queued"; the printer's off-line mark tells the two apart.)
        if outcome[job_id] == JobStatus.QUEUED and services.printer_is_offline(printer_id=printer_id):
            break
    return outcome
