"""The split between the parcels' side of a move (fulfillment.services: lock, transition, facts) and the
flow above it (pipeline.shipping: the orders, the platforms, the printers, work after commit)."""

import pytest
from django.db import transaction

from fulfillment import services
from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.tracking import shipment_request_waybill
from orders.models import OrderStatus
from orders.services import ReceiverInput
from pipeline import printing as print_flows
from pipeline import shipping
from printing.models import JobStatus, Printer, Transport
from tests.fulfillment.helpers import parcel_of, scan_all, sf_carrier, ship_parcel

pytestmark = pytest.mark.django_db


@pytest.fixture
def sf(warehouse):
    with sf_carrier(warehouse, seed=5) as running:
        yield running


def picked(order) -> Shipment:
    parcel = parcel_of(order)
    shipping.shipment_start_picking(shipment_id=parcel.pk)
    scan_all(parcel)
    return parcel


def test_packing_queues_no_work_itself_the_pipeline_asks_for_the_waybill_after_commit(
        make_order, sf, celery_eager, django_capture_on_commit_callbacks):
    quiet = picked(make_order())
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            services.shipment_mark_packed(shipment_id=quiet.pk)
    assert callbacks == []  # a domain service never schedules a task

    asking = picked(make_order(receiver=ReceiverInput(name="钱七", phone="13600000000", province="江苏省",
                                                      city="南京市", address="中山路 1 号")))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            shipping.shipment_pack(shipment_id=asking.pk)
    assert len(callbacks) == 1
    asking.refresh_from_db()
    assert asking.status == ShipmentStatus.PACKED and asking.tracking_number  # the worker got the waybill
    quiet.refresh_from_db()
    assert not quiet.tracking_number


def test_shipping_a_parcel_ships_its_order_without_the_order_level_ship_flow(make_order, manual_carrier,
                                                                            monkeypatch):
    import inventory.services
    import pipeline.orders

    def refuse(**kwargs):
        raise AssertionError("the parcel flow must not go through the order-level ship flow")

    # The order-level ship would cancel open parcels and ship stock a second time: neither may run.
    monkeypatch.setattr(pipeline.orders, "order_ship", refuse)
    monkeypatch.setattr(inventory.services, "stock_ship", refuse)
    marked = []
    original = shipping.order_mark_shipped
    monkeypatch.setattr(shipping, "order_mark_shipped", lambda **kw: marked.append(kw["order_id"]) or original(**kw))
    order = make_order()
    parcel = ship_parcel(parcel_of(order), tracking="YT7000000001")
    assert parcel.status == ShipmentStatus.SHIPPED
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED and marked == [order.pk]


def test_an_orders_cancel_gives_facts_and_the_pipeline_voids_labels_and_the_waybill(
        make_order, sf, warehouse, django_capture_on_commit_callbacks):
    Printer.objects.create(code="br", name="打包台", warehouse=warehouse, transport=Transport.BRIDGE,
                           host="127.0.0.1", port=9100, paper_width=80)
    order = make_order()
    parcel = parcel_of(order)
    shipment_request_waybill(shipment_id=parcel.pk)
    job = print_flows.label_print(shipment_id=parcel.pk).job
    assert job.status == JobStatus.QUEUED

    with transaction.atomic():
        facts = services.shipments_cancel_of_order(order_id=order.pk, reason="buyer cancelled")
        assert (facts.cancelled, facts.waybills_to_cancel) == ([parcel.pk], [parcel.pk])
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED  # the parcel's side leaves the printers alone
        transaction.set_rollback(True)

    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            assert shipping.shipments_cancel_for_order(order_id=order.pk, reason="buyer cancelled") == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and Shipment.objects.get(pk=parcel.pk).status == ShipmentStatus.CANCELLED
    assert len(callbacks) == 1  # the waybill's void at the carrier, after commit
