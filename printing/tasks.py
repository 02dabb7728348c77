"""Celery tasks of printing: send a network printer's job or its whole due queue, and the sweeper that finds due
jobs again."""

from celery import shared_task

from pipeline import printing as print_flows
from printing import services


@shared_task(acks_late=True, ignore_result=True)
def send_print_job_task(*, job_id: int) -> str:
    return print_flows.job_send_direct(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def sweep_print_jobs_task() -> int:
    due = services.jobs_due_direct()
    for job_id in due:
        send_print_job_task.delay(job_id=job_id)
    return len(due)


@shared_task(acks_late=True, ignore_result=True)
def send_printer_queue_task(*, printer_id: int) -> int:
    """A printer answered again: send what it has waiting now instead of at the end of each job's backoff."""
    return len(print_flows.printer_send_queue(printer_id=printer_id))
