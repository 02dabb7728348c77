"""A real Celery worker on Redis runs the heartbeat task, and the health endpoint then reports it alive."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from oms.models import WorkerHeartbeat
from oms.tasks import record_worker_heartbeat_task

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (make test sets REDIS_URL)"),
]


def test_worker_heartbeat_through_redis_makes_health_ok():
    db = settings.DATABASES["default"]
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{connection.settings_dict['NAME']}"}
    queue = f"health-test-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "oms", "worker", "--pool=solo", "--loglevel=WARNING",
         "-Q", queue, f"--hostname=test-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert Client().get("/healthz").json()["checks"]["workers"]["status"] == "error"
        record_worker_heartbeat_task.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
            time.sleep(0.3)
        assert WorkerHeartbeat.objects.count() == 1, "the worker never ran the heartbeat task"
        report = Client().get("/healthz")
        assert report.status_code == 200, report.json()
        assert report.json()["checks"]["broker"] == {"status": "ok", "transport": "redis"}
        assert report.json()["status"] == "ok"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
