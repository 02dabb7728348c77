"""The printing pages: permissions, print buttons (parcel, wave, kanban selection), previews as PNG, the print queue
with its actions and refresh, the off-line alert, and the set-up of printers and bridges. Refusals are messages,
unknown ids 404, never a 500. Jobs are only queued here (nothing is sent: no task runs inside a test transaction).
"""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.html import escape

from fulfillment.models import Shipment, ShipmentStatus
from fulfillment.services import shipment_set_tracking_number, wave_create
from orders.models import OrderStatus
from orders.services import ReceiverInput
from pipeline import printing as print_flows
from printing import escpos_decode, labels, renderers, services
from printing.exceptions import BridgeAuthFailed
from printing.models import JobKind, JobStatus, PrintBridge, Printer, PrintJob, Transport
from printing.preview import render_png
from printing.virtual_printer import VirtualPrinter
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SS = ShipmentStatus
HTMX = {"HTTP_HX_REQUEST": "true"}
PNG = b"\x89PNG\r\n\x1a\n"


def login(role_users, role: str) -> Client:
    client = Client()
    assert client.login(username=role_users[role].username, password=PASSWORD)
    client.cookies["django_language"] = "en"  # English msgids: assertions do not depend on the catalogue
    return client


def said(client: Client, response) -> list[str]:
    """The messages an action left, read (and so consumed) on the page it redirects to."""
    assert response.status_code == 302, response.status_code
    page = client.get(response["Location"], follow=True)
    return [str(m) for m in page.context["messages"]]


@pytest.fixture
def printer(warehouse) -> Printer:
    # Port 9 (discard) on 127.0.0.1: nothing is sent in these tests, the jobs only queue.
    return Printer.objects.create(
        code="sh-1",
        name="打包台 1",
        warehouse=warehouse,
        transport=Transport.NETWORK,
        host="127.0.0.1",
        port=9,
    )


@pytest.fixture
def parcel(make_order):
    counter = {"n": 0}

    def make(*, tracking: bool = True) -> Shipment:
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
            shipment = shipment_set_tracking_number(
                shipment_id=shipment.pk, tracking_number=f"YT{8800000000 + n}"
            )
        return shipment

    return make


# --- Access ----------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, warehouse):
    for url in (
        "/printing/",
        f"/printing/queue/{warehouse.code}/",
        "/printing/printers/",
        "/printing/jobs/1/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    response = client.post("/printing/batch/", {"shipments": ["1"]})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["customer_service", "finance"])
def test_who_may_not_print_gets_403_and_nothing_is_queued(role_users, role, parcel, printer, warehouse):
    shipment = parcel()
    client = login(role_users, role)
    job = print_flows.label_print(shipment_id=shipment.pk).job
    wave = wave_create(shipment_ids=[shipment.pk], actor=role_users["warehouse"])
    posts = [
        f"/printing/shipments/{shipment.pk}/label/",
        f"/printing/waves/{wave.pk}/pick-list/",
        f"/printing/waves/{wave.pk}/labels/",
        f"/printing/printers/{printer.pk}/test/",
        f"/printing/jobs/{job.pk}/cancel/",
        f"/printing/jobs/{job.pk}/reprint/",
        "/printing/batch/",
        "/printing/bridges/new/",
    ]
    for url in posts:
        assert client.post(url, {"shipments": [shipment.pk], "reason": "x"}).status_code == 403, url
    for url in (
        f"/printing/queue/{warehouse.code}/",
        f"/printing/jobs/{job.pk}/",
        f"/printing/jobs/{job.pk}/preview.png",
        f"/printing/shipments/{shipment.pk}/preview.png",
        "/printing/printers/",
        "/printing/printers/new/",
    ):
        assert client.get(url).status_code == 403, url
    assert list(PrintJob.objects.values_list("pk", flat=True)) == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_warehouse_staff_print_but_do_not_set_up_printers(role_users, printer, warehouse):
    client = login(role_users, "warehouse")
    assert client.get("/printing/printers/").status_code == 200
    assert client.get("/printing/printers/new/").status_code == 403
    assert client.get(f"/printing/printers/{printer.pk}/").status_code == 403
    assert client.post("/printing/bridges/new/", {"name": "x", "warehouse": warehouse.pk}).status_code == 403
    assert PrintBridge.objects.count() == 0


def test_unknown_ids_are_404(role_users, warehouse):
    client = login(role_users, "manager")
    for url in (
        "/printing/jobs/999999/",
        "/printing/jobs/999999/preview.png",
        "/printing/shipments/999999/preview.png",
        "/printing/queue/NOPE/",
        "/printing/queue/NOPE/jobs/",
        "/printing/printers/999999/",
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        "/printing/shipments/999999/label/",
        "/printing/waves/999999/pick-list/",
        "/printing/waves/999999/labels/",
        "/printing/printers/999999/test/",
        "/printing/jobs/999999/retry/",
        "/printing/jobs/999999/reprint/",
        "/printing/jobs/999999/cancel/",
        "/printing/bridges/999999/deactivate/",
    ):
        assert client.post(url, {"reason": "x"}).status_code == 404, url


def test_print_actions_are_post_only(role_users, parcel, printer):
    client = login(role_users, "warehouse")
    shipment = parcel()
    assert client.get(f"/printing/shipments/{shipment.pk}/label/").status_code == 405
    assert client.get("/printing/batch/").status_code == 405
    assert PrintJob.objects.count() == 0


# --- The parcel's buttons and previews -------------------------------------------------------------


def test_print_label_from_the_parcel_page_queues_one_job_and_says_so(role_users, parcel, printer):
    shipment = parcel()
    client = login(role_users, "warehouse")
    page = client.get(f"/fulfillment/shipments/{shipment.pk}/").content.decode()
    assert f'action="/printing/shipments/{shipment.pk}/label/"' in page
    assert f'href="/printing/shipments/{shipment.pk}/preview.png"' in page

    response = client.post(f"/printing/shipments/{shipment.pk}/label/")
    assert response.status_code == 302 and response["Location"] == f"/fulfillment/shipments/{shipment.pk}/"
    job = PrintJob.objects.get()
    assert (job.kind, job.shipment_id, job.printer_id, job.requested_by_id, job.status) == (
        JobKind.LABEL,
        shipment.pk,
        printer.pk,
        role_users["warehouse"].pk,
        JobStatus.QUEUED,
    )
    assert said(client, response) == [
        f"Label of parcel {shipment.number} queued on {printer.name} (job #{job.pk})."
    ]

    again = client.post(f"/printing/shipments/{shipment.pk}/label/")
    assert PrintJob.objects.count() == 1
    assert said(client, again) == [
        f"The label of parcel {shipment.number} is already Queued (job #{job.pk}); to print it again, use Reprint "
        "on the print queue."
    ]


def test_customer_service_sees_no_print_buttons(role_users, parcel, printer):
    shipment = parcel()
    page = (
        login(role_users, "customer_service").get(f"/fulfillment/shipments/{shipment.pk}/").content.decode()
    )
    assert "/printing/" not in page


def test_print_label_without_tracking_number_or_printer_is_a_message(role_users, parcel, warehouse):
    client = login(role_users, "warehouse")
    no_tracking = parcel(tracking=False)
    response = client.post(f"/printing/shipments/{no_tracking.pk}/label/")
    assert response.status_code == 302
    assert said(client, response) == [
        f"Refused: Parcel {no_tracking.number} has no tracking number yet: a label needs one."
    ]
    # No printer in the warehouse at all.
    response = client.post(f"/printing/shipments/{parcel().pk}/label/")
    assert said(client, response) == [
        "Refused: No active printer in this warehouse: add one under Printing → Printers."
    ]
    assert PrintJob.objects.count() == 0


def test_parcel_preview_is_a_png_of_its_label_and_creates_no_job(role_users, parcel, printer, monkeypatch):
    monkeypatch.setattr(labels, "now_text", lambda: "2026-11-22 09:30")  # the label's printed-at line
    shipment = parcel()
    client = login(role_users, "warehouse")
    response = client.get(f"/printing/shipments/{shipment.pk}/preview.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    label = renderers.render_label(labels.label_data(shipment), paper_width=80)
    assert response.content == render_png(escpos_decode.decode(label), paper_width=80)  # exactly that label
    assert PrintJob.objects.count() == 0

    # 58 mm paper on the warehouse's printer: a narrower picture.
    Printer.objects.filter(pk=printer.pk).update(paper_width=58)
    narrow = client.get(f"/printing/shipments/{shipment.pk}/preview.png")
    assert narrow.status_code == 200 and narrow.content.startswith(PNG)
    assert png_width(narrow.content) < png_width(response.content)


def png_width(data: bytes) -> int:
    return int.from_bytes(data[16:20], "big")  # IHDR width


def test_parcel_preview_without_tracking_number_is_a_409_with_the_reason(role_users, parcel, printer):
    shipment = parcel(tracking=False)
    response = login(role_users, "warehouse").get(f"/printing/shipments/{shipment.pk}/preview.png")
    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/plain")
    assert (
        response.content.decode()
        == f"Parcel {shipment.number} has no tracking number yet: a label needs one."
    )


def test_job_preview_and_page_show_the_jobs_own_bytes(role_users, parcel, printer):
    shipment = parcel()
    job = print_flows.label_print(shipment_id=shipment.pk, actor=role_users["warehouse"]).job
    client = login(role_users, "warehouse")
    png = client.get(f"/printing/jobs/{job.pk}/preview.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content == render_png(escpos_decode.decode(bytes(job.payload)), paper_width=80)  # its own bytes

    page = client.get(f"/printing/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="/printing/jobs/{job.pk}/preview.png"' in html
    text = escpos_decode.decode(bytes(job.payload)).text
    assert shipment.tracking_number in text
    # The decoded text is on the page (HTML-escaped).
    assert f'<pre class="pj-text">{escape(text)}</pre>' in html and "u_warehouse" in html


# --- Waves -----------------------------------------------------------------------------------------


def test_wave_buttons_print_the_pick_list_and_the_labels(role_users, parcel, printer):
    with_number, without = parcel(), parcel(tracking=False)
    wave = wave_create(shipment_ids=[with_number.pk, without.pk], actor=role_users["warehouse"])
    client = login(role_users, "warehouse")
    page = client.get(f"/fulfillment/waves/{wave.pk}/").content.decode()
    assert f'action="/printing/waves/{wave.pk}/pick-list/"' in page
    assert f'action="/printing/waves/{wave.pk}/labels/"' in page

    response = client.post(f"/printing/waves/{wave.pk}/pick-list/")
    assert response.status_code == 302 and response["Location"] == f"/fulfillment/waves/{wave.pk}/"
    pick_list = PrintJob.objects.get(kind=JobKind.PICK_LIST)
    assert pick_list.wave_id == wave.pk
    assert said(client, response) == [
        f"Pick list of wave {wave.number} queued on {printer.name} (job #{pick_list.pk})."
    ]

    response = client.post(f"/printing/waves/{wave.pk}/labels/")
    assert said(client, response) == [
        "Labels: 1 queued, 0 already queued or printed, 1 refused.",
        f"Parcel {without.number} not printed: Parcel {without.number} has no tracking number yet: a label needs "
        "one.",
    ]
    assert list(PrintJob.objects.filter(kind=JobKind.LABEL).values_list("shipment_id", flat=True)) == [
        with_number.pk
    ]
    # Once more: nothing new, and the summary says the label is there already.
    response = client.post(f"/printing/waves/{wave.pk}/labels/")
    assert said(client, response)[0] == "Labels: 0 queued, 1 already queued or printed, 1 refused."
    assert PrintJob.objects.filter(kind=JobKind.LABEL).count() == 1


# --- The kanban selection --------------------------------------------------------------------------


def test_kanban_cards_carry_a_tick_box_for_the_print_form(role_users, parcel, printer, warehouse):
    shipment = parcel()
    html = login(role_users, "warehouse").get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert '<form id="kanban-print" method="post" action="/printing/batch/"' in html
    assert re.search(
        rf'<input type="checkbox" class="kc-select" name="shipments" value="{shipment.pk}" form="kanban-print"',
        html,
    )
    cs = login(role_users, "customer_service").get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert "kanban-print" not in cs and "kc-select" not in cs
    # A card moved by a button comes back with its tick box.
    moved = login(role_users, "warehouse").post(
        f"/fulfillment/shipments/{shipment.pk}/move/", {"to": SS.PICKING}, **HTMX
    )
    assert moved.status_code == 200 and f'value="{shipment.pk}" form="kanban-print"' in moved.content.decode()


def test_batch_from_the_kanban_reports_queued_already_refused_and_unknown(
    role_users, parcel, printer, warehouse
):
    ready, done, no_number = parcel(), parcel(), parcel(tracking=False)
    print_flows.label_print(shipment_id=done.pk)
    client = login(role_users, "warehouse")
    board = f"/fulfillment/kanban/{warehouse.code}/"
    response = client.post(
        "/printing/batch/",
        {
            "shipments": [str(ready.pk), str(done.pk), str(no_number.pk), "999999", "abc", str(ready.pk)],
            "next": board,
        },
    )
    assert response.status_code == 302 and response["Location"] == board
    assert said(client, response) == [
        "Labels: 1 queued, 1 already queued or printed, 1 refused.",
        f"Parcel {no_number.number} not printed: Parcel {no_number.number} has no tracking number yet: a label "
        "needs one.",
        "1 selected parcel does not exist any more.",
    ]
    assert sorted(PrintJob.objects.values_list("shipment_id", flat=True)) == sorted([ready.pk, done.pk])
    assert PrintJob.objects.get(shipment=ready).requested_by_id == role_users["warehouse"].pk

    # The messages are shown on the board the form returns to.
    followed = client.post("/printing/batch/", {"shipments": [str(no_number.pk)], "next": board}, follow=True)
    assert followed.status_code == 200
    html = followed.content.decode()
    assert "Labels: 0 queued, 0 already queued or printed, 1 refused." in html
    assert "has no tracking number yet" in html


def test_batch_without_a_selection_or_with_an_outside_next_is_safe(role_users, printer):
    client = login(role_users, "warehouse")
    response = client.post("/printing/batch/", {"next": "https://evil.example.com/"})
    assert response.status_code == 302 and response["Location"] == "/fulfillment/kanban/"
    assert said(client, response) == ["Refused: Tick the parcels whose labels to print."]
    assert PrintJob.objects.count() == 0


# --- The print queue -------------------------------------------------------------------------------


@pytest.fixture
def device():
    printer = VirtualPrinter(host="127.0.0.1", port=0)
    printer.start()
    yield printer
    printer.stop()


@pytest.fixture
def jobs(role_users, parcel, printer, device):
    """Three label jobs, in their states by the real paths: printed (sent to the virtual printer), failed (the
    printer refused it, then a manager cancelled it) and queued."""
    Printer.objects.filter(pk=printer.pk).update(port=device.port)
    made = {
        state: print_flows.label_print(shipment_id=parcel().pk, actor=role_users["warehouse"]).job
        for state in ("printed", "failed", "queued")
    }
    device.refuse(True)
    assert print_flows.job_send_direct(job_id=made["failed"].pk) == JobStatus.QUEUED
    with translation.override("en"):  # the reason is stored now, in this language
        services.job_cancel(job_id=made["failed"].pk, actor=role_users["manager"])
    device.refuse(False)
    assert print_flows.job_send_direct(job_id=made["printed"].pk) == JobStatus.PRINTED
    device.wait_for_jobs(1)
    for job in made.values():
        job.refresh_from_db()
    return made


def test_queue_home_redirects_to_the_first_warehouse(role_users, warehouse):
    response = login(role_users, "warehouse").get("/printing/")
    assert response.status_code == 302 and response["Location"] == f"/printing/queue/{warehouse.code}/"


def test_queue_lists_jobs_with_their_facts_and_filters_by_state(role_users, jobs, warehouse, printer):
    client = login(role_users, "warehouse")
    html = client.get(f"/printing/queue/{warehouse.code}/").content.decode()
    rows = re.findall(r'<tr data-job="(\d+)" data-status="(\w+)"', html)
    assert rows == [(str(jobs[s].pk), s) for s in ("queued", "failed", "printed")]
    assert 'hx-get="/printing/queue/SH/jobs/"' in html and "every 5s" in html
    assert "Cancelled by u_manager." in html and "u_warehouse" in html
    assert jobs["queued"].shipment.number in html
    assert re.search(r'data-count-for="queued">1<', html) and re.search(r'data-count-for="failed">1<', html)

    failed = client.get(f"/printing/queue/{warehouse.code}/?status=failed").content.decode()
    assert re.findall(r'<tr data-job="(\d+)"', failed) == [str(jobs["failed"].pk)]
    bogus = client.get(f"/printing/queue/{warehouse.code}/?status=nope&page=x")
    assert bogus.status_code == 200 and len(re.findall(r'<tr data-job="', bogus.content.decode())) == 3

    # The htmx refresh: the job region alone, keeping the filter.
    partial = client.get(f"/printing/queue/{warehouse.code}/jobs/?status=printed", **HTMX).content.decode()
    assert "<html" not in partial and partial.lstrip().startswith('<div id="print-queue"')
    assert re.findall(r'<tr data-job="(\d+)"', partial) == [str(jobs["printed"].pk)]
    assert 'hx-get="/printing/queue/SH/jobs/?status=printed"' in partial


def test_queue_actions_follow_the_state(role_users, jobs, warehouse):
    client = login(role_users, "warehouse")
    html = client.get(f"/printing/queue/{warehouse.code}/").content.decode()
    assert f'action="/printing/jobs/{jobs["queued"].pk}/cancel/"' in html
    assert f'action="/printing/jobs/{jobs["failed"].pk}/retry/"' in html
    assert f'action="/printing/jobs/{jobs["failed"].pk}/reprint/"' in html
    assert f'action="/printing/jobs/{jobs["printed"].pk}/reprint/"' in html
    assert f'action="/printing/jobs/{jobs["printed"].pk}/retry/"' not in html
    assert f'action="/printing/jobs/{jobs["queued"].pk}/reprint/"' not in html
    queue = f"/printing/queue/{warehouse.code}/"

    # Retry the failed job: the same job, queued again.
    response = client.post(f"/printing/jobs/{jobs['failed'].pk}/retry/", {"next": queue})
    assert response.status_code == 302 and response["Location"] == queue
    assert said(client, response) == [f"Print job #{jobs['failed'].pk} is queued again."]
    jobs["failed"].refresh_from_db()
    assert (jobs["failed"].status, jobs["failed"].attempts) == (JobStatus.QUEUED, 0)

    # Retrying a printed job is refused with the reason.
    response = client.post(f"/printing/jobs/{jobs['printed'].pk}/retry/")
    assert said(client, response) == ["Refused: Only a failed job can be retried."]

    # Cancel the queued one.
    response = client.post(f"/printing/jobs/{jobs['queued'].pk}/cancel/")
    assert said(client, response) == [f"Print job #{jobs['queued'].pk} cancelled: it will not print."]
    jobs["queued"].refresh_from_db()
    assert jobs["queued"].status == JobStatus.FAILED and "u_warehouse" in jobs["queued"].last_error
    assert said(client, client.post(f"/printing/jobs/{jobs['queued'].pk}/cancel/")) == [
        "Refused: Only a queued job can be cancelled."
    ]

    # Reprint the printed one: a reason is required, then a new job.
    count = PrintJob.objects.count()
    assert said(client, client.post(f"/printing/jobs/{jobs['printed'].pk}/reprint/", {"reason": "  "})) == [
        "Refused: Say why the label is printed again."
    ]
    assert PrintJob.objects.count() == count
    response = client.post(
        f"/printing/jobs/{jobs['printed'].pk}/reprint/", {"reason": "smudged", "next": queue}
    )
    copy = PrintJob.objects.latest("pk")
    assert said(client, response) == [f"Reprint queued as job #{copy.pk} (copy of #{jobs['printed'].pk})."]
    assert (copy.reprint_of_id, copy.reason, copy.status) == (jobs["printed"].pk, "smudged", JobStatus.QUEUED)
    # A queued job is not reprinted (it will print anyway).
    assert said(client, client.post(f"/printing/jobs/{copy.pk}/reprint/", {"reason": "again"})) == [
        "Refused: Only a printed or failed job can be printed again."
    ]
    assert PrintJob.objects.count() == count + 1


def test_offline_printer_banner_on_the_queue_and_the_kanban(role_users, printer, warehouse):
    client = login(role_users, "warehouse")
    queue = client.get(f"/printing/queue/{warehouse.code}/").content.decode()
    assert 'class="printer-offline"' not in queue
    since = timezone.now()
    Printer.objects.filter(pk=printer.pk).update(offline_since=since, last_error="127.0.0.1:9: timed out")
    stamp = timezone.localtime(since).strftime("%Y-%m-%d %H:%M:%S")
    for url in (
        f"/printing/queue/{warehouse.code}/",
        f"/fulfillment/kanban/{warehouse.code}/",
        f"/printing/offline/{warehouse.code}/",
    ):
        html = client.get(url).content.decode()
        assert f'data-printer="{printer.code}"' in html, url
        assert f"Printer {printer.name} is off-line" in html and stamp in html and "timed out" in html, url
    # The kanban's alert polls by itself; the queue's refreshes with its job list.
    board = client.get(f"/fulfillment/kanban/{warehouse.code}/").content.decode()
    assert f'hx-get="/printing/offline/{warehouse.code}/"' in board


def test_the_kanban_alert_costs_one_query_whatever_the_printers(role_users, printer, warehouse):
    client = login(role_users, "warehouse")
    board = f"/fulfillment/kanban/{warehouse.code}/"
    client.get(board)
    with CaptureQueriesContext(connection) as none_offline:
        client.get(board)
    for n in range(3):
        Printer.objects.create(code=f"x{n}", name=f"X{n}", warehouse=warehouse, offline_since=timezone.now())
    with CaptureQueriesContext(connection) as three_offline:
        html = client.get(board).content.decode()
    assert html.count('class="printer-offline"') == 3
    assert len(three_offline.captured_queries) == len(none_offline.captured_queries)
    printer_queries = [q["sql"] for q in three_offline.captured_queries if '"printing_printer"' in q["sql"]]
    assert len(printer_queries) == 1, printer_queries


# --- Printers and bridges --------------------------------------------------------------------------


def test_manager_adds_and_edits_a_printer(role_users, warehouse):
    client = login(role_users, "manager")
    data = {
        "code": "sh-pack-2",
        "name": "打包台 2",
        "warehouse": warehouse.pk,
        "paper_width": 58,
        "transport": Transport.NETWORK,
        "host": "192.168.1.50",
        "port": 9100,
        "active": "on",
    }
    response = client.post("/printing/printers/new/", data)
    assert response.status_code == 302 and response["Location"] == "/printing/printers/"
    printer = Printer.objects.get(code="sh-pack-2")
    assert (printer.paper_width, printer.host, printer.port, printer.active) == (
        58,
        "192.168.1.50",
        9100,
        True,
    )

    bad = client.post(f"/printing/printers/{printer.pk}/", {**data, "port": 70000, "host": "a b"})
    assert bad.status_code == 400
    assert 'data-error-for="port"' in bad.content.decode() and 'data-error-for="host"' in bad.content.decode()
    response = client.post(f"/printing/printers/{printer.pk}/", {**data, "transport": Transport.BRIDGE})
    assert response.status_code == 302
    printer.refresh_from_db()
    assert printer.transport == Transport.BRIDGE
    html = client.get("/printing/printers/").content.decode()
    assert f'data-printer="{printer.code}"' in html and "192.168.1.50:9100" in html


def test_a_test_page_is_queued_on_the_printer(role_users, printer):
    client = login(role_users, "warehouse")
    response = client.post(f"/printing/printers/{printer.pk}/test/")
    assert response.status_code == 302 and response["Location"] == "/printing/printers/"
    job = PrintJob.objects.get()
    assert (job.kind, job.printer_id) == (JobKind.TEST, printer.pk)
    assert said(client, response) == [f"Test page queued on {printer.name} (job #{job.pk})."]


def test_a_new_bridge_shows_its_token_once_with_the_command_line(role_users, warehouse):
    client = login(role_users, "manager")
    response = client.post("/printing/bridges/new/", {"name": "SH 打包区 PC", "warehouse": warehouse.pk})
    assert response.status_code == 200
    assert "no-store" in [part.strip() for part in response["Cache-Control"].split(",")]
    html = response.content.decode()
    token = re.search(r"<code class=\"pb-token\" data-token>([^<]+)</code>", html).group(1)
    bridge = PrintBridge.objects.get()
    assert bridge.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (bridge.name, bridge.warehouse_id, bridge.active) == ("SH 打包区 PC", warehouse.pk, True)
    assert f"python -m printing.bridge --server http://testserver --token {token} --workers 2" in html
    # Never again: the list shows only the first characters.
    listing = client.get("/printing/printers/").content.decode()
    assert token not in listing and f"{bridge.token_prefix}…" in listing

    assert client.post("/printing/bridges/new/", {"name": "", "warehouse": ""}).status_code == 400
    assert PrintBridge.objects.count() == 1

    response = client.post(f"/printing/bridges/{bridge.pk}/deactivate/")
    assert response.status_code == 302
    bridge.refresh_from_db()
    assert bridge.active is False
    with pytest.raises(BridgeAuthFailed):
        services.bridge_authenticate(token=token)
