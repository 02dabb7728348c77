"""Print bridge end to end: the agent against a live OMS over real HTTP, printing to virtual printers over TCP.

Nothing is faked between the agent and the printers: the OMS runs as pytest-django's live server (its own
threads and database connections, PostgreSQL row locks) and each printer is a VirtualPrinter listening on
127.0.0.1. The only shortcut: a re-queued job's next_attempt_at is set to now, so the tests do not sit out
the real backoff.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection  # noqa: F401 (read by the skipif condition)
from django.urls import reverse
from django.utils import timezone

from inventory.models import Warehouse
from printing import bridge as agent
from printing.models import JobKind, JobStatus, Printer, PrintJob, Transport
from printing.services import bridge_create
from printing.virtual_printer import VirtualPrinter

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="SKIP LOCKED needs PostgreSQL"),
]

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def printer_device():
    device = VirtualPrinter(host="127.0.0.1", port=0)
    device.start()
    yield device
    device.stop()


@pytest.fixture
def bridge_printer(warehouse, printer_device) -> Printer:
    return Printer.objects.create(
        code="sh-pack-1",
        name="打包台 1",
        warehouse=warehouse,
        transport=Transport.BRIDGE,
        host="127.0.0.1",
        port=printer_device.port,
        paper_width=80,
    )


@pytest.fixture
def other_warehouse(db) -> Warehouse:
    return Warehouse.objects.create(code="BJ", name="北京仓", provinces=["北京市"], priority=20)


def new_bridge(warehouse: Warehouse, name: str = "SH PC") -> tuple:
    return bridge_create(name=name, warehouse_id=warehouse.pk)


def payload_for(tag: str) -> bytes:
    # ESC @ (initialise), a line of text, GS V A 0 (cut): what a real label starts and ends with.
    return b"\x1b@" + f"job {tag}\n".encode() + b"\x1dVA\x00"


def make_jobs(printer: Printer, count: int, tag: str = "t") -> list[tuple[PrintJob, bytes]]:
    now = timezone.now()
    jobs = []
    for n in range(count):
        payload = payload_for(f"{tag}-{n:03d}")
        job = PrintJob.objects.create(
            printer=printer,
            kind=JobKind.TEST,
            payload=payload,
            dedup_key=f"test:{tag}:{n}",
            next_attempt_at=now,
        )
        jobs.append((job, payload))
    return jobs


def bridge_url(live_server, name: str, **kwargs) -> str:
    return live_server.url + reverse(f"print_bridge:{name}", kwargs=kwargs)


def call(live_server, method: str, name: str, token: str | None, json=None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(
        method, bridge_url(live_server, name, **kwargs), headers=headers, json=json, timeout=10
    )


def received(device) -> list[bytes]:
    return [bytes(job.data) for job in device.jobs]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- The agent prints ------------------------------------------------------------------------------


def test_agent_prints_queued_jobs_byte_for_byte_and_leaves_other_jobs_alone(
    live_server, warehouse, bridge_printer, printer_device, caplog
):
    bridge, token = new_bridge(warehouse)
    jobs = make_jobs(bridge_printer, 3)
    # A network printer's job in the same warehouse is the server's to send, never the bridge's.
    network_printer = Printer.objects.create(
        code="sh-net", name="Network", warehouse=warehouse, transport=Transport.NETWORK, port=1
    )
    ((network_job, _payload),) = make_jobs(network_printer, 1, tag="net")
    caplog.set_level(logging.INFO, logger="print_bridge")

    outcome = agent.run(server=live_server.url, token=token, interval=0.05, max_jobs=3)

    assert outcome.exit_code == 0
    assert outcome.printed == [job.pk for job, _ in jobs]  # one worker: oldest first
    assert outcome.failed == []
    printer_device.wait_for_jobs(3, timeout=5)
    assert received(printer_device) == [payload for _, payload in jobs]
    for job, _ in jobs:
        job.refresh_from_db()
        assert (job.status, job.attempts, job.claimed_by_id, job.lease_until) == (
            JobStatus.PRINTED,
            1,
            bridge.pk,
            None,
        )
        assert job.printed_at is not None
    job_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job ")]
    assert len(job_lines) == 3 and all("printed" in line for line in job_lines)

    # Nothing else is due for the bridge: --once stops at the first empty poll.
    again = agent.run(server=live_server.url, token=token, interval=0.05, once=True)
    assert (again.exit_code, again.printed, again.failed) == (0, [], [])
    network_job.refresh_from_db()
    assert (network_job.status, network_job.attempts, network_job.claimed_by_id) == (
        JobStatus.QUEUED,
        0,
        None,
    )
    assert len(printer_device.jobs) == 3


def test_two_bridges_polling_at_once_print_every_job_exactly_once(
    live_server, warehouse, bridge_printer, printer_device
):
    bridge_a, token_a = new_bridge(warehouse, "SH PC A")
    bridge_b, token_b = new_bridge(warehouse, "SH PC B")
    jobs = make_jobs(bridge_printer, 48)
    ids = {job.pk for job, _ in jobs}
    outcomes = {}
    barrier = threading.Barrier(2)

    def poll(name: str, token: str) -> None:
        barrier.wait(timeout=10)
        outcomes[name] = agent.run(server=live_server.url, token=token, interval=0.02, workers=2, once=True)

    threads = [threading.Thread(target=poll, args=args) for args in (("a", token_a), ("b", token_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(outcomes) == {"a", "b"}

    printed_a, printed_b = outcomes["a"].printed, outcomes["b"].printed
    assert outcomes["a"].failed == outcomes["b"].failed == []
    # Every job handled by exactly one bridge, none twice, none left out; and both took part.
    assert len(printed_a) + len(printed_b) == 48
    assert set(printed_a) | set(printed_b) == ids
    assert not set(printed_a) & set(printed_b)
    assert printed_a and printed_b

    printer_device.wait_for_jobs(48, timeout=10)
    time.sleep(0.2)  # a duplicate would arrive now
    assert len(printer_device.jobs) == 48
    assert Counter(received(printer_device)) == Counter(payload for _, payload in jobs)

    rows = {job.pk: job for job in PrintJob.objects.filter(pk__in=ids)}
    assert {job.status for job in rows.values()} == {JobStatus.PRINTED}
    assert {job.attempts for job in rows.values()} == {1}  # claimed once each
    assert {pk for pk, job in rows.items() if job.claimed_by_id == bridge_a.pk} == set(printed_a)
    assert {pk for pk, job in rows.items() if job.claimed_by_id == bridge_b.pk} == set(printed_b)


# --- Tokens and warehouses -------------------------------------------------------------------------


def test_missing_wrong_or_disabled_token_gets_401_from_every_endpoint(live_server, warehouse, bridge_printer):
    ((job, _payload),) = make_jobs(bridge_printer, 1)
    disabled, disabled_token = new_bridge(warehouse, "old PC")
    disabled.active = False
    disabled.save(update_fields=["active"])
    endpoints = [
        ("post", "claim", {}, None),
        ("post", "ack", {"job_id": job.pk}, {"ok": True}),
        ("get", "printers", {}, None),
    ]
    tokens = {
        None: "not_authenticated",
        "pb_wrong": "bridge_unauthorized",
        "": "bridge_unauthorized",
        disabled_token: "bridge_unauthorized",
    }

    for method, name, kwargs, body in endpoints:
        for token, code in tokens.items():
            response = call(live_server, method, name, token, json=body, **kwargs)
            assert response.status_code == 401, (name, token, response.text)
            assert response.json()["code"] == code
            assert response.json()["message"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # Another scheme is not a bridge token either.
        response = requests.request(
            method,
            bridge_url(live_server, name, **kwargs),
            headers={"Authorization": "Token abc"},
            json=body,
            timeout=10,
        )
        assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")

    job.refresh_from_db()
    assert (job.status, job.attempts, job.claimed_by_id) == (JobStatus.QUEUED, 0, None)


def test_agent_with_a_rejected_token_exits_at_once(live_server, warehouse, bridge_printer, printer_device):
    make_jobs(bridge_printer, 2)
    started = time.monotonic()

    outcome = agent.run(server=live_server.url, token="pb_not-a-token", interval=0.05, workers=3)

    assert outcome.exit_code == agent.EXIT_TOKEN_REJECTED
    assert (outcome.printed, outcome.failed) == ([], [])
    assert time.monotonic() - started < 5  # no retry loop against the server
    assert printer_device.jobs == []
    assert set(PrintJob.objects.values_list("status", "attempts")) == {(JobStatus.QUEUED, 0)}


def test_a_bridge_sees_only_its_own_warehouse(live_server, warehouse, other_warehouse, bridge_printer):
    ((job, payload),) = make_jobs(bridge_printer, 1)
    bridge_sh, token_sh = new_bridge(warehouse, "SH PC")
    _other_sh, token_other_sh = new_bridge(warehouse, "SH PC 2")
    _bridge_bj, token_bj = new_bridge(other_warehouse, "BJ PC")
    Printer.objects.create(
        code="bj-1",
        name="北京 1",
        warehouse=other_warehouse,
        transport=Transport.BRIDGE,
        host="10.0.0.9",
        port=9100,
        paper_width=58,
    )
    Printer.objects.create(code="sh-net", name="SH network", warehouse=warehouse, transport=Transport.NETWORK)
    Printer.objects.create(
        code="sh-off", name="SH retired", warehouse=warehouse, transport=Transport.BRIDGE, active=False
    )

    # The other warehouse's bridge: nothing to claim here, only its own printers.
    response = call(live_server, "post", "claim", token_bj)
    assert (response.status_code, response.content) == (204, b"")
    response = call(live_server, "get", "printers", token_bj)
    assert response.status_code == 200
    assert response.json() == [
        {"code": "bj-1", "name": "北京 1", "host": "10.0.0.9", "port": 9100, "paper_width": 58}
    ]
    response = call(live_server, "get", "printers", token_sh)
    assert response.json() == [
        {
            "code": "sh-pack-1",
            "name": "打包台 1",
            "host": "127.0.0.1",
            "port": bridge_printer.port,
            "paper_width": 80,
        }
    ]

    # The warehouse's own bridge claims the job...
    response = call(live_server, "post", "claim", token_sh)
    assert response.status_code == 200
    assert response.json() == {
        "job": {
            "id": job.pk,
            "kind": "test",
            "attempts": 1,
            "printer": {
                "code": "sh-pack-1",
                "name": "打包台 1",
                "host": "127.0.0.1",
                "port": bridge_printer.port,
                "paper_width": 80,
            },
            "payload_b64": base64.b64encode(payload).decode(),
        }
    }
    # ...and no one else may acknowledge it: 403 from another warehouse, 409 from a sibling, 404 for no job.
    response = call(live_server, "post", "ack", token_bj, json={"ok": True}, job_id=job.pk)
    assert (response.status_code, response.json()["code"]) == (403, "bridge_forbidden")
    response = call(live_server, "post", "ack", token_other_sh, json={"ok": True}, job_id=job.pk)
    assert (response.status_code, response.json()["code"]) == (409, "job_not_claimed")
    response = call(live_server, "post", "ack", token_sh, json={"ok": True}, job_id=job.pk + 1000)
    assert (response.status_code, response.json()["code"]) == (404, "job_not_found")
    job.refresh_from_db()
    assert (job.status, job.claimed_by_id) == (JobStatus.SENDING, bridge_sh.pk)

    # A bad body is a 400 and changes nothing.
    for body in ({}, {"ok": "maybe"}, {"ok": None}, ["ok"]):
        response = call(live_server, "post", "ack", token_sh, json=body, job_id=job.pk)
        assert (response.status_code, response.json()["code"]) == (400, "invalid"), body
    response = requests.post(
        bridge_url(live_server, "ack", job_id=job.pk),
        data=b"{not json",
        headers={"Authorization": f"Bearer {token_sh}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    job.refresh_from_db()
    assert job.status == JobStatus.SENDING

    response = call(live_server, "post", "ack", token_sh, json={"ok": True}, job_id=job.pk)
    assert (response.status_code, response.json()) == (200, {"status": "printed"})
    response = call(live_server, "post", "ack", token_sh, json={"ok": True}, job_id=job.pk)
    assert (response.status_code, response.json()["code"]) == (409, "job_not_claimed")  # not printed twice


# --- A printer off-line ----------------------------------------------------------------------------


def test_printer_offline_for_a_while_loses_nothing_and_prints_each_job_once(
    live_server, warehouse, bridge_printer, printer_device
):
    _bridge, token = new_bridge(warehouse)
    jobs = make_jobs(bridge_printer, 5)
    ids = [job.pk for job, _ in jobs]
    printer_device.refuse(True)
    stop = threading.Event()
    outcomes = []
    worker = threading.Thread(
        target=lambda: outcomes.append(
            agent.run(server=live_server.url, token=token, interval=0.05, stop=stop)
        )
    )
    worker.start()
    try:

        def every_job_failed_at_least(attempts: int) -> bool:
            return (
                PrintJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED, attempts__gte=attempts).count()
                == 5
            )

        wait_until(lambda: every_job_failed_at_least(1), 15, "a failed attempt on every job")
        bridge_printer.refresh_from_db()
        assert bridge_printer.offline_since is not None
        assert f"127.0.0.1:{printer_device.port}" in bridge_printer.last_error
        for job in PrintJob.objects.filter(pk__in=ids):
            assert job.status == JobStatus.QUEUED and job.claimed_by_id is not None and job.last_error
            assert job.next_attempt_at > timezone.now() - timedelta(seconds=1)  # backing off

        # Still off-line: the agent keeps retrying; jobs stay queued and none is given up.
        PrintJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED).update(next_attempt_at=timezone.now())
        wait_until(lambda: every_job_failed_at_least(2), 15, "a second failed attempt on every job")
        assert printer_device.jobs == []
        assert not PrintJob.objects.filter(
            pk__in=ids, status__in=[JobStatus.FAILED, JobStatus.PRINTED]
        ).exists()

        printer_device.refuse(False)

        def all_printed() -> bool:
            # Skip the remaining backoff of jobs that failed just before the printer came back.
            PrintJob.objects.filter(pk__in=ids, status=JobStatus.QUEUED).update(
                next_attempt_at=timezone.now()
            )
            return PrintJob.objects.filter(pk__in=ids, status=JobStatus.PRINTED).count() == 5

        wait_until(all_printed, 20, "every job printed")
    finally:
        stop.set()
        worker.join(timeout=30)

    (outcome,) = outcomes
    assert outcome.exit_code == 0
    assert sorted(outcome.printed) == ids  # each printed once
    assert set(outcome.failed) == set(ids) and len(outcome.failed) >= 10
    printer_device.wait_for_jobs(5, timeout=5)
    time.sleep(0.2)
    assert Counter(received(printer_device)) == Counter(payload for _, payload in jobs)
    assert len(printer_device.jobs) == 5
    for job in PrintJob.objects.filter(pk__in=ids):
        assert job.status == JobStatus.PRINTED and job.attempts >= 3 and job.lease_until is None
    bridge_printer.refresh_from_db()
    assert (bridge_printer.offline_since, bridge_printer.last_error) == (None, "")


def test_agent_keeps_running_through_an_oms_outage_with_capped_backoff(caplog):
    with socket.socket() as sock:  # a port that nothing listens on: every call to the "OMS" is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stop = threading.Event()
    caplog.set_level(logging.WARNING, logger="print_bridge")
    timer = threading.Timer(2.5, stop.set)
    timer.start()
    started = time.monotonic()

    outcome = agent.run(server=f"http://127.0.0.1:{port}", token="pb_x", interval=0.01, stop=stop, timeout=1)

    assert time.monotonic() - started < 5
    assert (outcome.exit_code, outcome.printed, outcome.failed) == (0, [], [])
    outages = [r for r in caplog.records if "OMS not available" in r.getMessage()]
    # Waits of ~1 s then ~2 s: two or three tries in 2.5 s, not one per --interval.
    assert 2 <= len(outages) <= 3


# --- The agent as a program ------------------------------------------------------------------------


def agent_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    env.pop("PRINT_BRIDGE_TOKEN", None)
    return env


def test_agent_module_imports_no_django_and_nothing_of_the_project():
    project_packages = {p.parent.name for p in PROJECT_DIR.glob("*/__init__.py")}
    script = (
        "import json, sys; import printing.bridge; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(project_packages | {'django', 'rest_framework', 'celery'})!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_DIR,
        env=agent_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '["printing", "printing.bridge"]'
    assert (PROJECT_DIR / "printing" / "__init__.py").read_text().strip().startswith('"""')


def test_agent_runs_as_a_program_and_as_a_copied_single_file(
    live_server, warehouse, bridge_printer, printer_device, tmp_path
):
    _bridge, token = new_bridge(warehouse)
    jobs = make_jobs(bridge_printer, 2)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "printing.bridge",
            "--server",
            live_server.url,
            "--token",
            token,
            "--once",
            "--interval",
            "0.1",
        ],
        cwd=PROJECT_DIR,
        env=agent_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sum(" printed, attempt 1" in line for line in result.stderr.splitlines()) == 2
    printer_device.wait_for_jobs(2, timeout=5)
    assert received(printer_device) == [payload for _, payload in jobs]

    # Copied alone to a warehouse PC: the token from the environment, rejected → exit status 3.
    shutil.copy(PROJECT_DIR / "printing" / "bridge.py", tmp_path / "bridge.py")
    result = subprocess.run(
        [sys.executable, "bridge.py", "--server", live_server.url],
        cwd=tmp_path,
        env={**agent_env(), "PRINT_BRIDGE_TOKEN": "pb_revoked"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == agent.EXIT_TOKEN_REJECTED, result.stderr
    assert "refused this bridge's token" in result.stderr


def test_sigterm_stops_the_agent_cleanly(live_server, warehouse):
    _bridge, token = new_bridge(warehouse)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "printing.bridge",
            "--server",
            live_server.url,
            "--token",
            token,
            "--interval",
            "0.1",
        ],
        cwd=PROJECT_DIR,
        env=agent_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # started and polling
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopping after the current job" in err


# --- The OpenAPI schema ----------------------------------------------------------------------------


def test_bridge_api_is_in_the_schema_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", fail_on_warn=True, validate=True, file=str(schema))
    text = schema.read_text()
    for route in (
        "/api/v1/print-bridge/claim/",
        "/api/v1/print-bridge/jobs/{job_id}/ack/",
        "/api/v1/print-bridge/printers/",
    ):
        assert f"  {route}:" in text
    assert "printBridgeToken" in text
