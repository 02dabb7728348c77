"""Side effects after commit: the pipeline schedules Celery tasks by name, so no layer below the
tasks modules ever imports one (tasks import the flows they run, never the other way)."""

from __future__ import annotations

import threading

from celery import current_app
from django.db import transaction

_DISCOVERY = threading.Lock()


def task_after_commit(task_name: str, *, countdown: float | None = None, **kwargs) -> None:
    """Queue the registered task ``task_name`` (its dotted name, e.g. "connectors.tasks.push_shipment_task")
    once the current transaction commits (at once outside one); nothing is queued if it rolls back."""
    def send() -> None:
        if task_name not in current_app.tasks:
            # A web process registers a task only once its module is imported (autodiscovery runs
            # at worker start): load every app's tasks module as a worker does; an unknown name stays a KeyError.
            # One thread at a time: another one would see a half-filled registry (NotRegistered).
            with _DISCOVERY:
                current_app.loader.import_default_modules()
        task = current_app.tasks[task_name]
        if countdown is None:
            task.delay(**kwargs)
        else:
            task.apply_async(kwargs=kwargs, countdown=countdown)

    transaction.on_commit(send)
