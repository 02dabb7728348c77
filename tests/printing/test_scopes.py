"""Staff scopes on the printing pages: a user tied to one warehouse neither sees nor drives another warehouse's
printers, print jobs, labels and pick lists; unscoped users and managers keep seeing everything."""

import pytest
from django.test import Client

from fulfillment.models import Shipment
from fulfillment.services import shipment_set_tracking_number, wave_create
from inventory.models import StaffScope, Warehouse
from orders.services import ReceiverInput
from pipeline import printing as print_flows
from printing import services
from printing.models import JobStatus, PrintBridge, Printer, PrintJob, Transport
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def bj(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)


@pytest.fixture
def printers(warehouse, bj) -> dict[str, Printer]:
    return {
        w.code: Printer.objects.create(
            code=f"{w.code.lower()}-1", name=f"{w.code} 打印机", warehouse=w, transport=Transport.NETWORK,
            host="127.0.0.1", port=9,
        )
        for w in (warehouse, bj)
    }


@pytest.fixture
def parcel(make_order, warehouse) -> Shipment:
    """A parcel of SH with a tracking number (so its label can print)."""
    order = make_order(
        receiver=ReceiverInput(
            name="买家", phone="13312343069", province="上海市", city="上海市", district="浦东新区",
            address="张江路 1 号",
        )
    )
    shipment = Shipment.objects.filter(lines__order=order).distinct().get()
    return shipment_set_tracking_number(shipment_id=shipment.pk, tracking_number="YT8800000001")


@pytest.fixture
def bj_clerk(role_users, bj):
    user = role_users["warehouse"]
    StaffScope.objects.create(user=user).warehouses.set([bj])
    return user


def test_a_scoped_user_cannot_print_or_touch_another_warehouses_jobs(bj_clerk, role_users, parcel, printers,
                                                                    warehouse):
    # A failed SH job (queued, then cancelled by a manager) and a queued one.
    failed = print_flows.label_print(shipment_id=parcel.pk, actor=role_users["manager"]).job
    services.job_cancel(job_id=failed.pk, actor=role_users["manager"])
    test_page = print_flows.test_page_print(printer_id=printers["SH"].pk, actor=role_users["manager"]).job
    wave = wave_create(shipment_ids=[parcel.pk])
    jobs_before = PrintJob.objects.count()

    client = login(bj_clerk)
    # Print actions on another warehouse's parcel, wave and printer: 404, no job queued.
    assert client.post(f"/printing/shipments/{parcel.pk}/label/").status_code == 404
    assert client.get(f"/printing/shipments/{parcel.pk}/preview.png").status_code == 404
    assert client.post(f"/printing/waves/{wave.pk}/pick-list/").status_code == 404
    assert client.post(f"/printing/waves/{wave.pk}/labels/").status_code == 404
    assert client.post(f"/printing/printers/{printers['SH'].pk}/test/").status_code == 404
    # The kanban batch leaves the parcel out, as one that does not exist.
    response = client.post("/printing/batch/", {"shipments": [parcel.pk]})
    assert response.status_code == 302
    # The job actions and pages: 404, the jobs unchanged.
    for url in (f"/printing/jobs/{failed.pk}/retry/", f"/printing/jobs/{test_page.pk}/cancel/"):
        assert client.post(url).status_code == 404, url
    assert client.post(f"/printing/jobs/{failed.pk}/reprint/", {"reason": "糊了"}).status_code == 404
    assert client.get(f"/printing/jobs/{failed.pk}/").status_code == 404
    assert client.get(f"/printing/jobs/{failed.pk}/preview.png").status_code == 404
    assert PrintJob.objects.count() == jobs_before
    failed.refresh_from_db()
    test_page.refresh_from_db()
    assert (failed.status, test_page.status) == (JobStatus.FAILED, JobStatus.QUEUED)

    # Another warehouse's queue is a 403; the queue home goes to their own.
    assert client.get(f"/printing/queue/{warehouse.code}/").status_code == 403
    assert client.get(f"/printing/queue/{warehouse.code}/jobs/").status_code == 403
    assert client.get(f"/printing/offline/{warehouse.code}/").status_code == 403
    assert client.get("/printing/")["Location"] == "/printing/queue/BJ/"
    assert client.get("/printing/queue/BJ/").status_code == 200


def test_the_printers_page_and_its_pickers_show_only_the_users_warehouses(bj_clerk, printers, warehouse, bj):
    PrintBridge.objects.create(name="SH PC", warehouse=warehouse, token_hash="x" * 64, token_prefix="x")
    client = login(bj_clerk)
    page = client.get("/printing/printers/")
    assert [p.code for p in page.context["printers"]] == ["bj-1"]
    assert page.context["bridges"] == []
    assert list(page.context["bridge_form"].fields["warehouse"].queryset) == [bj]
    queue = client.get("/printing/queue/BJ/")
    assert [w.code for w in queue.context["warehouses"]] == ["BJ"]
    assert "/printing/queue/SH/" not in queue.content.decode()


def test_unscoped_staff_and_managers_see_every_warehouses_printing(role_users, parcel, printers, warehouse, bj):
    StaffScope.objects.create(user=role_users["manager"]).warehouses.set([bj])  # ignored for a manager
    for role in ("warehouse", "manager"):
        client = login(role_users[role])
        assert client.get(f"/printing/queue/{warehouse.code}/").status_code == 200, role
        page = client.get("/printing/printers/")
        assert sorted(p.code for p in page.context["printers"]) == ["bj-1", "sh-1"], role
        assert [w.code for w in client.get("/printing/queue/BJ/").context["warehouses"]] == ["SH", "BJ"]
    client = login(role_users["warehouse"])
    assert client.post(f"/printing/printers/{printers['SH'].pk}/test/").status_code == 302
    assert PrintJob.objects.filter(printer=printers["SH"]).count() == 1
    assert client.post(f"/printing/shipments/{parcel.pk}/label/").status_code == 302
    assert PrintJob.objects.filter(shipment=parcel).count() == 1


def test_the_bridge_api_stays_scoped_to_its_own_warehouse(parcel, printers, bj, client):
    """The print-bridge API has no user: its token is the scope. A BJ bridge neither claims nor acks SH jobs."""
    Printer.objects.filter(pk=printers["SH"].pk).update(transport=Transport.BRIDGE)
    job = print_flows.label_print(shipment_id=parcel.pk).job
    _bridge, token = services.bridge_create(name="BJ PC", warehouse_id=bj.pk)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.post("/api/v1/print-bridge/claim/", **auth).status_code == 204
    response = client.post(
        f"/api/v1/print-bridge/jobs/{job.pk}/ack/", {"ok": True}, content_type="application/json", **auth
    )
    assert response.status_code == 403
    assert response.json()["code"] == "bridge_forbidden"
    assert client.get("/api/v1/print-bridge/printers/", **auth).json() == []
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
