"""What must not happen between orders and parcels: a held order's parcel moving, a closed order's goods
leaving in a packed box, a parcel in transit cancelled, a lost delivery checkpoint, a voided label printing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fulfillment import services
from fulfillment.carriers.base import TrackingEvent as CarrierCheckpoint
from fulfillment.exceptions import MoveRefused
from fulfillment.models import Carrier, CarrierKind, Shipment, ShipmentStatus
from fulfillment.tracking import _save_events
from orders import services as order_services
from orders.models import HoldReason, Order, OrderStatus
from orders.services import ReceiverInput
from pipeline import orders as order_flows
from pipeline import printing as print_flows
from pipeline import shipping
from pipeline.shipping import shipments_pull_tracking
from printing.exceptions import PrintRefused
from printing.models import JobStatus, Printer, PrintJob, Transport
from tests.fulfillment.helpers import parcel_of, scan_all, ship_parcel

pytestmark = pytest.mark.django_db


def test_a_held_order_stops_its_parcel(make_order):
    order = make_order()
    parcel = parcel_of(order)
    order_services.order_hold(order_id=order.pk, hold_reason=HoldReason.ADDRESS, note="门牌号缺失")
    with pytest.raises(MoveRefused) as refused:
        shipping.shipment_start_picking(shipment_id=parcel.pk)
    assert refused.value.code == "order_not_workable" and order.number in refused.value.message
    assert Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.TO_PICK


def test_an_order_leaving_a_packed_merged_parcel_sends_the_box_to_exception(make_order):
    first, second = make_order(), make_order()
    parcel = parcel_of(first)
    assert parcel_of(second) == parcel
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    shipping.shipment_pack(shipment_id=parcel.pk)
    order_flows.order_close(order_id=second.pk, reason="refunded in full")
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.EXCEPTION and parcel.exception_reason
    assert set(parcel.lines.values_list("order_id", flat=True)) == {first.pk}
    with pytest.raises(MoveRefused):
        shipping.shipment_ship(shipment_id=parcel.pk, tracking_number="YT5000000001")


def test_closing_an_order_does_not_cancel_a_parcel_already_in_transit(make_order, manual_carrier):
    order = make_order()
    parcel = ship_parcel(parcel_of(order))
    services.shipment_raise_exception(shipment_id=parcel.pk, reason="lost by the carrier")
    order_flows.order_close(order_id=order.pk, reason="refunded")
    parcel.refresh_from_db()
    assert parcel.status == ShipmentStatus.EXCEPTION and parcel.status_before_exception == ShipmentStatus.SHIPPED


def test_a_delivery_checkpoint_saved_earlier_still_delivers_the_parcel(make_order, warehouse):
    from fulfillment.carriers.sf_sandbox import SFSandbox

    warehouse.address = "上海市青浦区华新镇 88 号"
    warehouse.save()
    sandbox = SFSandbox(port=0, seed=4)
    sandbox.start()
    try:
        Carrier.objects.create(code="SF", name="顺丰", kind=CarrierKind.SF, config=sandbox.adapter_config())
        parcel = parcel_of(make_order())
        shipping.shipment_start_picking(shipment_id=parcel.pk)
        scan_all(parcel)
        shipping.shipment_pack(shipment_id=parcel.pk)
        parcel = shipping.shipment_ship(shipment_id=parcel.pk)
        # A sweep that stored the delivery but died before delivering the parcel:
        at = timezone.now()
        _save_events(parcel.pk, [CarrierCheckpoint(parcel.tracking_number, at, "delivered", "签收", "上海")], at)
        sandbox.set_clock(sandbox.now() + timedelta(hours=40))
        shipments_pull_tracking(now=sandbox.now())
        assert Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.DELIVERED
    finally:
        sandbox.stop()


def test_a_parcel_without_a_carrier_does_not_stop_the_tracking_sweep(make_order, warehouse):
    from fulfillment.carriers.sf_sandbox import SFSandbox

    parcel = ship_parcel(parcel_of(make_order()), tracking="XX1234567")  # no carrier was set up for it
    assert Shipment.objects.get(pk=parcel.pk).carrier_id is None
    warehouse.address = "上海市青浦区华新镇 88 号"
    warehouse.save()
    sandbox = SFSandbox(port=0, seed=6)
    sandbox.start()
    try:
        sf = Carrier.objects.create(code="SF", name="顺丰", kind=CarrierKind.SF, config=sandbox.adapter_config())
        other = parcel_of(make_order(platform_order_id="TB-SF", receiver=ReceiverInput(
            name="孙八", phone="13500000000", province="浙江省", city="杭州市", address="文三路 1 号")))
        Shipment.objects.filter(pk=other.pk).update(carrier=sf)
        shipping.shipment_start_picking(shipment_id=other.pk)
        scan_all(other)
        shipping.shipment_pack(shipment_id=other.pk)
        shipping.shipment_ship(shipment_id=other.pk)  # waybill from the sandbox
        assert shipments_pull_tracking()["checked"] == 1  # the SF parcel; the carrier-less one is skipped
    finally:
        sandbox.stop()


def test_a_cancelled_parcel_neither_prints_nor_keeps_its_queued_label(make_order, manual_carrier, warehouse):
    Printer.objects.create(code="sh-bridge", name="SH", warehouse=warehouse, transport=Transport.BRIDGE)
    order = make_order()
    parcel = parcel_of(order)
    services.shipment_set_tracking_number(shipment_id=parcel.pk, tracking_number="YT6000000001")
    job = print_flows.label_print(shipment_id=parcel.pk).job
    order_flows.order_cancel(order_id=order.pk, reason="buyer cancelled")
    assert PrintJob.objects.get(pk=job.pk).status == JobStatus.FAILED
    with pytest.raises(PrintRefused):
        print_flows.label_print(shipment_id=parcel.pk)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
