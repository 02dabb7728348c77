"""Celery tasks of finance: the import of an uploaded settlement file and the sweeper that re-queues lost ones."""

import random

from celery import shared_task
from django.db import OperationalError

from finance.imports import settlement_files_due, settlement_import_run


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def run_settlement_import_task(self, *, file_id: int) -> str:
    """Import one uploaded file. Idempotent: a file already imported, failed or held by another run is left
    alone, and the import is one transaction, so a redelivery after a crash starts from nothing."""
    try:
        settlement_file = settlement_import_run(file_id=file_id)
    except OperationalError as exc:  # the database went away mid-import (nothing of it was committed)
        # The claim's lease still holds the file: retry after it, or the sweeper's next look, whichever first.
        countdown = min(60 * 2 ** self.request.retries, 1800) + random.uniform(0, 30)
        raise self.retry(exc=exc, countdown=countdown) from exc
    return "skipped" if settlement_file is None else settlement_file.status


@shared_task(acks_late=True, ignore_result=True)
def sweep_settlement_imports_task() -> int:
    """A lost queue message or a dead worker loses no import: overdue files are queued again."""
    due = settlement_files_due()
    for file_id in due:
        run_settlement_import_task.delay(file_id=file_id)
    return len(due)
