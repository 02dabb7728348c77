"""The ingestion and webhook benchmarks run end to end at a small size and print their JSON figures (no timing asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"),
]


def run_bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, "manage.py", "bench", *args, "--json"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bench_ingest_small_run_polls_and_processes_every_order():
    figures = run_bench("ingest", "--orders", "50", "--profile", "10", "--db-name",
                        f"oms_bench_ingest_test_{os.getpid()}")
    for key in ("orders", "orders_per_s", "poll_s", "process_s", "queries_per_order", "raw_orders_per_s", "ratio"):
        assert key in figures, key
    assert figures["orders"] == 50 and figures["ready"] == 50 and figures["inbox_done"] == 50
    assert figures["duplicates"] == 0 and figures["stock_mismatches"] == 0 and figures["ok"] is True


@pytest.mark.skipif(not os.environ.get("REDIS_URL", "").startswith("redis"), reason="needs Redis")
def test_bench_webhook_small_run_processes_every_delivery_once():
    # A Redis database of its own (the bench purges it), apart from the suite's (15), the full-size
    # `bench webhook` default (13) and `bench stock_push` (12).
    figures = run_bench("webhook", "--requests", "50", "--concurrency", "4", "--warmup", "4", "--redis-db", "14",
                        "--db-name", f"oms_bench_webhook_test_{os.getpid()}")
    for key in ("requests_per_s", "p99_ms", "bare_requests_per_s", "ratio", "delivered", "processed", "duplicates"):
        assert key in figures, key
    assert figures["delivered"] == 50 and figures["processed"] == figures["delivered"]
    assert figures["duplicates"] == 0 and figures["inbox_duplicates"] == 0 and figures["ok"] is True
