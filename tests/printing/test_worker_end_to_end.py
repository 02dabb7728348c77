"""End to end with a real Celery worker on Redis: packing asks the carrier sandbox for the waybill, the
label goes to a network thermal printer (the virtual one, over TCP), and the buyer's notice is sent."""

import os
import time

import pytest

from fulfillment.carriers.sf_sandbox import SFSandbox
from fulfillment.models import Carrier, CarrierKind, CustomerNotification, NotificationStatus, Shipment
from orders.services import BuyerInput
from pipeline import printing as print_flows
from pipeline import shipping
from printing.models import JobStatus, Printer, PrintJob, Transport
from printing.virtual_printer import VirtualPrinter
from tests.fulfillment.helpers import parcel_of, scan_all

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (make test sets REDIS_URL)"),
]


def wait_for(condition, *, timeout: float = 30, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sf_and_printer(warehouse):
    warehouse.address, warehouse.contact_phone = "上海市青浦区华新镇 88 号", "021-60000000"
    warehouse.save()
    sandbox, device = SFSandbox(port=0, seed=5), VirtualPrinter(port=0)
    sandbox.start()
    device.start()
    Carrier.objects.create(code="SF", name="顺丰速运", kind=CarrierKind.SF, config=sandbox.adapter_config())
    Printer.objects.create(code="sh-label", name="打包台 1", warehouse=warehouse, transport=Transport.NETWORK,
                           host="127.0.0.1", port=device.port)
    yield sandbox, device
    device.stop()
    sandbox.stop()


def test_a_worker_gets_the_waybill_prints_the_label_and_sends_the_notice(make_order, sf_and_printer,
                                                                          celery_worker_process):
    sandbox, device = sf_and_printer
    order = make_order(buyer=BuyerInput(id="b-1", name="王小贝", email="wang@example.com"))
    parcel = parcel_of(order)
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    shipping.shipment_pack(shipment_id=parcel.pk)  # after commit: the worker asks SF for the waybill
    number = wait_for(lambda: Shipment.objects.get(pk=parcel.pk).tracking_number, what="the waybill")
    assert [w["orderId"] for w in sandbox.waybills()] == [parcel.number]

    job = print_flows.label_print(shipment_id=parcel.pk).job  # after commit: the worker sends it over TCP
    wait_for(lambda: PrintJob.objects.get(pk=job.pk).status == JobStatus.PRINTED, what="the label to print")
    received = device.wait_for_jobs(1, timeout=5)
    assert received[0].data == bytes(job.payload) and number in received[0].text
    assert not print_flows.label_print(shipment_id=parcel.pk).created  # asking again prints nothing new

    shipping.shipment_ship(shipment_id=parcel.pk)
    wait_for(lambda: CustomerNotification.objects.get(order=order).status == NotificationStatus.SENT,
             what="the buyer's notice")
    time.sleep(1)
    assert len(device.jobs) == 1  # one label, printed once
