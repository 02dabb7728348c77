"""Schemathesis against the live app: every documented answer, no 500s, schema-true responses, 405s."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authtoken.models import Token

from aftersales.services import TicketLineInput, ticket_create
from printing.models import JobKind, Printer, PrintJob, Transport
from printing.services import bridge_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ST = Path(sys.executable).with_name("st")
REPO = Path(__file__).resolve().parents[2]
# Every check of this version runs (not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance, negative_data_rejection, positive_data_acceptance, unsupported_method, ...).
# Stores, SKUs and warehouses are named by code: a schema-valid code that names nothing is rightly a 400,
# so "valid data is accepted" cannot hold for the two creating operations. Every other check still runs there.
CONFIG = """
# Half of the requests address things that exist (order 1, the store, SKUs and warehouse of the fixtures),
# so they get past "no such code" and reach the services, where the overflow 500s were.
[dictionaries.orders]
values = [1]
[dictionaries.stores]
values = ["wechat"]
[dictionaries.skus]
values = ["TEA-LJ-250G", "GIFT-BAG"]
[dictionaries.warehouses]
values = ["SH"]
[dictionaries.jobs]
values = [1, 2, 3, 4, 5]
[dictionaries.tickets]
values = [1]
[dictionaries.order_lines]
values = [1, 2]

[[operations]]
include-path-regex = '^/api/v1/orders/\\{id\\}/'
parameters = { "path.id" = { dictionary = "orders", probability = 0.5 } }

[[operations]]
include-path-regex = '^/api/v1/print-bridge/jobs/'
parameters = { "path.job_id" = { dictionary = "jobs", probability = 0.5 } }

[[operations]]
include-path = "/api/v1/orders/"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
parameters = { "body.store" = { dictionary = "stores", probability = 0.5 }, "body.lines[*].sku_code" = { dictionary = "skus", probability = 0.5 } }

[[operations]]
include-path-regex = '^/api/v1/tickets/\\{id\\}/'
parameters = { "path.id" = { dictionary = "tickets", probability = 0.5 } }

# Opening a ticket: a schema-valid order and line that exist may still be refused by the order's facts (more
# than bought, above what was paid): a 400 ticket_invalid, so "valid data is accepted" cannot hold here either.
[[operations]]
include-path = "/api/v1/tickets/"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
parameters = { "body.order" = { dictionary = "orders", probability = 0.5 }, "body.lines[*].order_line_id" = { dictionary = "order_lines", probability = 0.5 } }

[[operations]]
include-path = "/api/v1/stock-receipts/"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
parameters = { "body.warehouse" = { dictionary = "warehouses", probability = 0.5 }, "body.sku" = { dictionary = "skus", probability = 0.5 } }
"""


def run_schemathesis(*, url: str, header: str, workdir: Path, include: str | None = None,
                     exclude: str | None = None) -> subprocess.CompletedProcess:
    (workdir / "schemathesis.toml").write_text(CONFIG)
    # 20 examples per operation and phase keeps both runs well under a minute on a laptop.
    args = [str(ST), "run", f"{url}/api/schema/?format=json", "--url", url, "-H", header,
            "--max-examples", "20", "--seed", "11", "--workers", "1",
            "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
            "--request-timeout", "20", "--no-color"]
    args += ["--include-path-regex", include] if include else []
    args += ["--exclude-path-regex", exclude] if exclude else []
    # cwd and HOME are the test's temporary folder: the run's cache (.schemathesis/) never lands in the repo.
    result = subprocess.run(args, cwd=workdir, env={**os.environ, "HOME": str(workdir)}, capture_output=True,
                            text=True, timeout=300)
    if os.environ.get("SCHEMATHESIS_OUTPUT"):  # keep the full report when looking into a failure
        Path(os.environ["SCHEMATHESIS_OUTPUT"]).write_text(result.stdout + result.stderr)
    return result


@pytest.fixture
def unthrottled(settings):
    # The run sends hundreds of requests a minute on purpose; the limits are tested in test_throttles.py.
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "staff": None, "print_bridge": None}}


def repo_caches() -> dict[str, float]:
    """The files of the caches schemathesis and Hypothesis would write in the working directory."""
    return {str(path): path.stat().st_mtime for folder in (".schemathesis", ".hypothesis")
            for path in (REPO / folder).rglob("*") if path.is_file()}


def report(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-15000:] + result.stderr[-3000:]


def test_order_and_stock_api_conform_to_the_schema(live_server, role_users, manual_store, skus, make_order,
                                                   unthrottled, tmp_path):
    caches_before = repo_caches()
    order = make_order()  # one order of id 1, so the order endpoints answer with real bodies too
    # and one ticket of id 1 on it, so the ticket endpoints do too.
    ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                  lines=[TicketLineInput(order.lines.order_by("line_no")[0].pk, 1)])
    token = Token.objects.create(user=role_users["manager"])
    result = run_schemathesis(url=live_server.url, header=f"Authorization: Token {token.key}", workdir=tmp_path,
                              exclude="print-bridge")
    assert result.returncode == 0, report(result)
    assert "passed" in result.stdout and "Failures:" not in result.stdout, report(result)
    assert repo_caches() == caches_before


def test_print_bridge_api_conforms_to_the_schema(live_server, warehouse, unthrottled, tmp_path):
    caches_before = repo_caches()
    _bridge, token = bridge_create(name="bench", warehouse_id=warehouse.pk)
    # Due jobs of a bridge printer, so claims answer with a job and acknowledgements find one.
    printer = Printer.objects.create(code="sh-pack-1", name="打包台 1", warehouse=warehouse,
                                     transport=Transport.BRIDGE, host="127.0.0.1", port=9100, paper_width=80)
    for n in range(5):
        PrintJob.objects.create(pk=n + 1, printer=printer, kind=JobKind.TEST, payload=b"\x1b@job\n\x1dVA\x00",
                                dedup_key=f"schemathesis:{n}", next_attempt_at=timezone.now())
    result = run_schemathesis(url=live_server.url, header=f"Authorization: Bearer {token}", workdir=tmp_path,
                              include="print-bridge")
    assert result.returncode == 0, report(result)
    assert repo_caches() == caches_before
