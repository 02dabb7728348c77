"""Read-side helpers of the project package: the health report."""

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.utils import DatabaseError
from django.utils import timezone

from oms.models import WorkerHeartbeat

WORKER_STALE_AFTER = timedelta(minutes=2)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"status": "ok", "vendor": connection.vendor}
    except DatabaseError as exc:
        return {"status": "error", "error": exc.__class__.__name__}


def _check_broker() -> dict:
    from kombu import Connection
    from kombu.exceptions import OperationalError

    try:
        with Connection(settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                        connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"status": "ok", "transport": settings.CELERY_BROKER_URL.split(":", 1)[0]}
    except (OperationalError, OSError) as exc:
        return {"status": "error", "error": exc.__class__.__name__}


def _check_workers() -> dict:
    cutoff = timezone.now() - WORKER_STALE_AFTER
    try:
        alive = list(WorkerHeartbeat.objects.filter(seen_at__gte=cutoff).values_list("worker", flat=True))
    except DatabaseError:
        return {"status": "error", "error": "database"}
    return {"status": "ok" if alive else "error", "alive": alive}


def health_report() -> dict:
    checks = {"web": {"status": "ok"}, "database": _check_database(), "broker": _check_broker(), "workers": _check_workers()}
    overall = "ok" if all(c["status"] == "ok" for c in checks.values()) else "degraded"
    return {"status": overall, "checks": checks, "time": timezone.now().isoformat()}
