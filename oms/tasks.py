"""Project-level periodic tasks (worker heartbeat for the health endpoint)."""

import socket

from celery import shared_task
from django.utils import timezone

from oms.models import WorkerHeartbeat


@shared_task(ignore_result=True)
def record_worker_heartbeat_task() -> None:
    worker = f"{socket.gethostname()}"
    WorkerHeartbeat.objects.update_or_create(worker=worker, defaults={"seen_at": timezone.now()})
