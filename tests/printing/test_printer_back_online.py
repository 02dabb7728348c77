"""A printer that answers again gets its whole queue at once: after a long outage the jobs waiting out their
backoff (up to a minute each) print within seconds of the first success — a test page from the printers page,
the next due job, or a bridge's acknowledgement — in the order they were asked for.

Real TCP to a VirtualPrinter on 127.0.0.1, the real views and bridge API; Celery runs its tasks in this thread
(task_always_eager) and the after-commit hooks run when the test's transaction would have committed.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from pipeline import printing as print_flows
from printing import services
from printing.models import JobKind, JobStatus, Printer, PrintJob, Transport
from printing.virtual_printer import VirtualPrinter
from tests.conftest import PASSWORD
from tests.printing.test_direct_printing import quiet, received, sweep

# What a printer off for a few minutes leaves behind: every job waits out the capped backoff.
LONG_OUTAGE_BACKOFF = timedelta(seconds=services.MAX_BACKOFF_SECONDS)


@pytest.fixture
def device():
    printer = VirtualPrinter(host="127.0.0.1", port=0)
    printer.start()
    yield printer
    printer.stop()


def make_printer(warehouse, device, *, transport: str) -> Printer:
    return Printer.objects.create(
        code=f"sh-{transport}",
        name="打包台 1",
        warehouse=warehouse,
        transport=transport,
        host="127.0.0.1",
        port=device.port,
        paper_width=80,
    )


def queued_jobs(printer: Printer, n: int) -> list[PrintJob]:
    now = timezone.now()
    return [
        PrintJob.objects.create(
            printer=printer,
            kind=JobKind.LABEL,
            dedup_key=f"label:outage:{i}",
            payload=b"\x1b@" + f"label {i}\n".encode() + b"\x1dVA\x00",
            next_attempt_at=now,
        )
        for i in range(n)
    ]


def sit_out_long_backoff(jobs: list[PrintJob]) -> None:
    # The test's shortcut for many failed rounds (a plain column): each job is due a minute from now.
    PrintJob.objects.filter(pk__in=[j.pk for j in jobs]).update(
        next_attempt_at=timezone.now() + LONG_OUTAGE_BACKOFF
    )


def network_outage(warehouse, device, n: int = 3) -> tuple[Printer, list[PrintJob]]:
    """A network printer that was off: its jobs failed and wait out a minute's backoff; it is off-line."""
    printer = make_printer(warehouse, device, transport=Transport.NETWORK)
    jobs = queued_jobs(printer, n)
    device.refuse(True)
    assert sweep() == {job.pk: JobStatus.QUEUED for job in jobs}
    sit_out_long_backoff(jobs)
    assert services.jobs_due_direct() == []
    printer.refresh_from_db()
    assert printer.offline_since is not None
    device.refuse(False)
    return printer, jobs


@pytest.mark.django_db
def test_a_test_page_that_prints_sends_the_waiting_queue_at_once(
    warehouse, device, role_users, celery_eager, django_capture_on_commit_callbacks
):
    printer, jobs = network_outage(warehouse, device)
    client = Client()
    assert client.login(username=role_users["manager"].username, password=PASSWORD)

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("printing:printer-test", args=[printer.pk]))
    assert response.status_code == 302

    quiet(device, 4)
    assert time.monotonic() - started < 5  # not a minute later
    test_page = PrintJob.objects.get(kind=JobKind.TEST)
    assert received(device) == [bytes(test_page.payload)] + [bytes(job.payload) for job in jobs]
    assert set(PrintJob.objects.values_list("status", flat=True)) == {JobStatus.PRINTED}
    assert services.jobs_due_direct() == []
    printer.refresh_from_db()
    assert (printer.offline_since, printer.last_error) == (None, "")


@pytest.mark.django_db
def test_the_next_job_that_prints_brings_the_rest_with_it(
    warehouse, device, celery_eager, django_capture_on_commit_callbacks
):
    printer, jobs = network_outage(warehouse, device)
    # The oldest job's backoff ends first; the others would wait most of a minute more.
    PrintJob.objects.filter(pk=jobs[0].pk).update(next_attempt_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep() == {jobs[0].pk: JobStatus.PRINTED}

    quiet(device, 3)
    assert received(device) == [bytes(job.payload) for job in jobs]
    assert set(PrintJob.objects.values_list("status", "attempts")) == {(JobStatus.PRINTED, 2)}


@pytest.mark.django_db
def test_a_printer_off_again_stops_the_queue_at_the_first_failure(warehouse, device):
    printer, jobs = network_outage(warehouse, device)
    PrintJob.objects.filter(pk__in=[j.pk for j in jobs]).update(next_attempt_at=timezone.now())
    device.refuse(True)

    assert print_flows.printer_send_queue(printer_id=printer.pk) == {jobs[0].pk: JobStatus.QUEUED}
    quiet(device, 0)
    # Only the first was tried again; the others were not hammered against a dead printer.
    assert list(PrintJob.objects.order_by("pk").values_list("attempts", flat=True)) == [2, 1, 1]


@pytest.mark.django_db
def test_a_bridge_printer_that_answers_again_has_its_queue_due_at_the_next_poll(warehouse, device):
    printer = make_printer(warehouse, device, transport=Transport.BRIDGE)
    _bridge, token = services.bridge_create(name="SH PC", warehouse_id=warehouse.pk)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    claim_url = reverse("print_bridge:claim")

    def claim() -> int | None:
        response = api.post(claim_url)
        assert response.status_code in (200, 204), response.content
        return response.json()["job"]["id"] if response.status_code == 200 else None

    def ack(job_id: int, ok: bool) -> str:
        response = api.post(
            reverse("print_bridge:ack", args=[job_id]),
            {"ok": ok, "error": "" if ok else "connection refused"},
            format="json",
        )
        assert response.status_code == 200, response.content
        return response.json()["status"]

    jobs = queued_jobs(printer, 3)
    for job in jobs:  # the printer is off: every job comes back with a backoff
        assert claim() == job.pk
        assert ack(job.pk, ok=False) == JobStatus.QUEUED
    sit_out_long_backoff(jobs)
    assert claim() is None  # nothing due for a minute

    # Someone prints a test page; it is due at once, the bridge sends it and it prints.
    page = print_flows.test_page_print(printer_id=printer.pk).job
    assert claim() == page.pk
    assert ack(page.pk, ok=True) == JobStatus.PRINTED

    # The very next polls hand out the waiting labels, oldest first, not a minute later.
    assert [claim() for _ in jobs] == [job.pk for job in jobs]
    assert [ack(job.pk, ok=True) for job in jobs] == [JobStatus.PRINTED] * 3
    assert claim() is None
    assert set(PrintJob.objects.values_list("status", flat=True)) == {JobStatus.PRINTED}
