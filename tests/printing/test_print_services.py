"""Print job services without HTTP: a bridge's late answer after its lease passed on changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oms.exceptions import ConflictError
from printing import services
from printing.exceptions import PrintRefused
from printing.models import JobStatus, Printer, PrintJob, Transport

pytestmark = pytest.mark.django_db


def test_a_late_ack_after_the_lease_passed_to_another_bridge_is_refused(warehouse):
    printer = Printer.objects.create(code="sh-1", name="SH 1", warehouse=warehouse, transport=Transport.BRIDGE)
    job = PrintJob.objects.create(printer=printer, kind="test", payload=b"\x1b@x\n", dedup_key="t-1",
                                  next_attempt_at=timezone.now())
    slow, _token = services.bridge_create(name="slow", warehouse_id=warehouse.pk)
    quick, _token = services.bridge_create(name="quick", warehouse_id=warehouse.pk)
    assert services.bridge_claim(bridge=slow).pk == job.pk
    PrintJob.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.bridge_claim(bridge=quick).pk == job.pk  # the lease ran out: the job is taken over
    with pytest.raises(ConflictError):
        services.bridge_ack(bridge=slow, job_id=job.pk, ok=True)
    job.refresh_from_db()
    assert (job.status, job.claimed_by_id, job.attempts) == (JobStatus.SENDING, quick.pk, 2)
    assert services.bridge_ack(bridge=quick, job_id=job.pk, ok=True) == JobStatus.PRINTED


def test_a_reprint_needs_a_reason_and_is_a_new_job(warehouse):
    printer = Printer.objects.create(code="sh-2", name="SH 2", warehouse=warehouse, transport=Transport.BRIDGE)
    job = PrintJob.objects.create(printer=printer, kind="label", payload=b"\x1b@label\n", dedup_key="label:1:SF1")
    with pytest.raises(ConflictError):  # still queued: it has not printed yet
        services.job_reprint(job_id=job.pk, reason="again")
    job = PrintJob.objects.create(printer=printer, kind="label", payload=b"\x1b@label\n", dedup_key="label:2:SF2",
                                  status=JobStatus.PRINTED)
    with pytest.raises(PrintRefused):
        services.job_reprint(job_id=job.pk, reason=" ")
    copy = services.job_reprint(job_id=job.pk, reason="label torn")
    assert copy.pk != job.pk and copy.reprint_of == job and copy.reason == "label torn"
    assert bytes(copy.payload) == bytes(job.payload) and copy.status == JobStatus.QUEUED
