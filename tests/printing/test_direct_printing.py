"""Direct printing over real TCP: network-printer jobs sent by the worker path (job_send_direct, the task and the
sweeper's jobs_due_direct) to a VirtualPrinter on 127.0.0.1. One label prints once; asking twice is one job; a
reprint is a second job and a second print; an off-line printer keeps its jobs queued (attempts, last error, the
printer's off-line mark and the kanban's alert) and every one of them prints exactly once when it answers again.

The only shortcut: a re-queued job's next_attempt_at is set to now instead of sitting out the real backoff.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from fulfillment.models import Shipment
from fulfillment.services import shipment_set_tracking_number
from orders.models import OrderStatus
from orders.services import ReceiverInput
from pipeline import printing as print_flows
from printing import services
from printing.exceptions import PrintRefused
from printing.models import JobKind, JobStatus, Printer, PrintJob, Transport
from printing.tasks import send_print_job_task, sweep_print_jobs_task
from printing.virtual_printer import VirtualPrinter
from tests.conftest import PASSWORD

SETTLE_S = 0.3  # how long to watch for a print that must not come


@pytest.fixture
def device():
    printer = VirtualPrinter(host="127.0.0.1", port=0)
    printer.start()
    yield printer
    printer.stop()


@pytest.fixture
def printer(warehouse, device) -> Printer:
    return Printer.objects.create(
        code="sh-net-1",
        name="打包台 1",
        warehouse=warehouse,
        transport=Transport.NETWORK,
        host="127.0.0.1",
        port=device.port,
        paper_width=80,
    )


@pytest.fixture
def parcel(make_order):
    """A real parcel (paid order → ready → shipment) with a tracking number typed in, as for a manual carrier."""
    counter = {"n": 0}

    def make(*, tracking: str | None = "auto") -> Shipment:
        counter["n"] += 1
        n = counter["n"]
        order = make_order(
            receiver=ReceiverInput(
                name=f"买家{n}",
                phone="13312343069",
                province="上海市",
                city="上海市",
                district="浦东新区",
                address=f"张江路 {n} 号",
            )
        )
        order.refresh_from_db()
        assert order.status == OrderStatus.READY
        shipment = Shipment.objects.filter(lines__order=order).distinct().get()
        if tracking:
            number = f"YT{9000000000 + n}" if tracking == "auto" else tracking
            shipment = shipment_set_tracking_number(shipment_id=shipment.pk, tracking_number=number)
        return shipment

    return make


def received(device) -> list[bytes]:
    return [bytes(job.data) for job in device.jobs]


def quiet(device, expected: int) -> None:
    """Wait for ``expected`` prints, then a moment more: a print that must not come would show up meanwhile."""
    if expected:
        device.wait_for_jobs(expected, timeout=5)
    time.sleep(SETTLE_S)
    assert len(device.jobs) == expected, received(device)


def make_due(*job_ids: int) -> None:
    # The test's shortcut for the backoff (a plain column, not the state).
    PrintJob.objects.filter(pk__in=job_ids).update(next_attempt_at=timezone.now())


def sweep() -> dict[int, str]:
    """What the beat sweeper and the worker do, in this thread: find due network jobs and send each."""
    return {job_id: print_flows.job_send_direct(job_id=job_id) for job_id in services.jobs_due_direct()}


# --- One label, once -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_label_job_prints_once_and_sending_it_again_prints_nothing(parcel, printer, device):
    shipment = parcel()
    result = print_flows.label_print(shipment_id=shipment.pk)
    assert result.created is True
    job = result.job
    assert (job.kind, job.status, job.shipment_id, job.printer_id) == (
        JobKind.LABEL,
        JobStatus.QUEUED,
        shipment.pk,
        printer.pk,
    )

    assert send_print_job_task(job_id=job.pk) == JobStatus.PRINTED  # the Celery task's body, in this thread
    quiet(device, 1)
    job.refresh_from_db()
    assert received(device) == [bytes(job.payload)]
    assert shipment.tracking_number.encode() in bytes(job.payload)
    assert (job.status, job.attempts, job.last_error, job.lease_until) == (JobStatus.PRINTED, 1, "", None)
    assert job.printed_at is not None

    # A duplicate task message, the sweeper and a direct call: the job is printed, nothing is sent again.
    assert print_flows.job_send_direct(job_id=job.pk) == JobStatus.PRINTED
    assert send_print_job_task(job_id=job.pk) == JobStatus.PRINTED
    assert services.jobs_due_direct() == []
    assert sweep_print_jobs_task() == 0
    quiet(device, 1)
    job.refresh_from_db()
    assert job.attempts == 1


@pytest.mark.django_db
def test_asking_for_the_same_label_twice_is_one_job_and_one_print(parcel, printer, device):
    shipment = parcel()
    first = print_flows.label_print(shipment_id=shipment.pk)
    second = print_flows.label_print(shipment_id=shipment.pk)
    assert (first.created, second.created) == (True, False)
    assert second.job.pk == first.job.pk
    assert PrintJob.objects.count() == 1

    assert sweep() == {first.job.pk: JobStatus.PRINTED}
    third = print_flows.label_print(shipment_id=shipment.pk)  # after it printed: still the same job
    assert (third.created, third.job.pk) == (False, first.job.pk)
    assert sweep() == {}
    quiet(device, 1)
    assert PrintJob.objects.count() == 1


@pytest.mark.django_db
def test_a_reprint_is_a_second_job_with_its_reason_and_a_second_print(parcel, printer, device, role_users):
    shipment = parcel()
    original = print_flows.label_print(shipment_id=shipment.pk).job
    assert print_flows.job_send_direct(job_id=original.pk) == JobStatus.PRINTED
    quiet(device, 1)

    copy = services.job_reprint(job_id=original.pk, reason="卡纸 paper jam", actor=role_users["warehouse"])
    assert copy.pk != original.pk
    assert (copy.reprint_of_id, copy.reason, copy.kind, copy.shipment_id, copy.requested_by_id) == (
        original.pk,
        "卡纸 paper jam",
        JobKind.LABEL,
        shipment.pk,
        role_users["warehouse"].pk,
    )
    assert bytes(copy.payload) == bytes(original.payload)
    assert sweep() == {copy.pk: JobStatus.PRINTED}
    quiet(device, 2)
    assert received(device) == [bytes(original.payload)] * 2
    # The reprint does not make the label "new": asking for the label again still answers with the first job.
    again = print_flows.label_print(shipment_id=shipment.pk)
    assert (again.created, again.job.pk) == (False, original.pk)
    assert PrintJob.objects.count() == 2


@pytest.mark.django_db
def test_a_reprint_needs_a_reason(parcel, printer):
    job = print_flows.label_print(shipment_id=parcel().pk).job
    with pytest.raises(PrintRefused) as refused:
        services.job_reprint(job_id=job.pk, reason="   ")
    assert refused.value.code == "reason_required"
    assert PrintJob.objects.count() == 1


# --- An off-line printer ---------------------------------------------------------------------------


def kanban_html(role_users, warehouse) -> str:
    client = Client()
    assert client.login(username=role_users["warehouse"].username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    response = client.get(f"/fulfillment/kanban/{warehouse.code}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_an_offline_printer_keeps_its_jobs_queued_then_prints_each_exactly_once(
    parcel, printer, device, role_users, warehouse
):
    shipments = [parcel() for _ in range(3)]
    device.refuse(True)
    jobs = [print_flows.label_print(shipment_id=s.pk).job for s in shipments]

    before = timezone.now()
    assert sweep() == {job.pk: JobStatus.QUEUED for job in jobs}
    quiet(device, 0)
    for job in jobs:
        job.refresh_from_db()
        assert (job.status, job.attempts, job.printed_at, job.lease_until) == (
            JobStatus.QUEUED,
            1,
            None,
            None,
        )
        assert f"127.0.0.1:{device.port}" in job.last_error
        assert job.next_attempt_at > before  # backed off: not due right away
    printer.refresh_from_db()
    assert printer.offline_since is not None and before <= printer.offline_since <= timezone.now()
    assert f"127.0.0.1:{device.port}" in printer.last_error
    offline_since = printer.offline_since

    # The board of the warehouse says so, with since-when and the error.
    html = kanban_html(role_users, warehouse)
    assert f'data-printer="{printer.code}"' in html and "is off-line" in html
    assert timezone.localtime(offline_since).strftime("%Y-%m-%d %H:%M:%S") in html

    # Not due yet: the sweeper leaves them alone (no hammering of a dead printer).
    assert sweep() == {}
    # Still off-line at the next try: a second attempt, the first off-line time is kept.
    make_due(*(job.pk for job in jobs))
    assert sweep() == {job.pk: JobStatus.QUEUED for job in jobs}
    printer.refresh_from_db()
    assert printer.offline_since == offline_since
    assert set(PrintJob.objects.values_list("attempts", flat=True)) == {2}

    # Back on-line: the next sweep prints every job once, in order, and clears the mark.
    device.refuse(False)
    make_due(*(job.pk for job in jobs))
    assert sweep() == {job.pk: JobStatus.PRINTED for job in jobs}
    quiet(device, 3)
    payloads = [bytes(PrintJob.objects.get(pk=job.pk).payload) for job in jobs]
    assert received(device) == payloads
    assert len(set(payloads)) == 3
    assert set(PrintJob.objects.values_list("status", "attempts", "last_error")) == {
        (JobStatus.PRINTED, 3, "")
    }
    printer.refresh_from_db()
    assert (printer.offline_since, printer.last_error) == (None, "")
    assert 'data-printer="' not in kanban_html(role_users, warehouse)

    # And nothing is left to send: a later sweep prints nothing more.
    assert sweep() == {}
    quiet(device, 3)


@pytest.mark.django_db
def test_an_inactive_printer_is_not_swept_and_a_cancelled_job_never_prints(parcel, printer, device):
    first, second = parcel(), parcel()
    kept = print_flows.label_print(shipment_id=first.pk).job
    cancelled = print_flows.label_print(shipment_id=second.pk).job
    services.job_cancel(job_id=cancelled.pk)
    assert print_flows.job_send_direct(job_id=cancelled.pk) == JobStatus.FAILED
    Printer.objects.filter(pk=printer.pk).update(active=False)
    assert services.jobs_due_direct() == []
    Printer.objects.filter(pk=printer.pk).update(active=True)
    assert sweep() == {kept.pk: JobStatus.PRINTED}
    quiet(device, 1)
    assert received(device) == [bytes(kept.payload)]


# --- Two senders at once ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_workers_sending_the_same_jobs_at_once_print_each_once(warehouse, printer, device):
    """A duplicated task message and the sweeper race for the same rows: the claim (SKIP LOCKED, then the
    state) lets one sender have each job, so each payload reaches the printer once."""
    now = timezone.now()
    jobs = [
        PrintJob.objects.create(
            printer=printer,
            kind=JobKind.TEST,
            payload=b"\x1b@" + f"race {n}\n".encode() + b"\x1dV\x00",
            dedup_key=f"test:race:{n}",
            next_attempt_at=now,
        )
        for n in range(20)
    ]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            for job in jobs:
                outcomes.append(print_flows.job_send_direct(job_id=job.pk))
        except Exception as exc:  # reported by the assertion below, not swallowed
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    # A sender that finds a job's row locked by another skips it (SKIP LOCKED) rather than wait; whatever the
    # race left queued is due, and the sweeper's next round sends it.
    left = sweep()
    assert set(left.values()) <= {JobStatus.PRINTED}
    assert services.jobs_due_direct() == []
    quiet(device, 20)
    assert sorted(received(device)) == sorted(bytes(job.payload) for job in jobs)
    assert set(PrintJob.objects.values_list("status", "attempts")) == {(JobStatus.PRINTED, 1)}
    assert outcomes.count(JobStatus.PRINTED) + len(left) >= 20
