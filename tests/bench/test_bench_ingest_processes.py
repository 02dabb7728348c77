"""`bench ingest` with two worker processes and tight stock: nothing oversold, lost or duplicated (no timing asserted)."""

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


def test_two_processes_with_tight_stock_hold_exactly_what_is_there():
    # Run as `manage.py bench` in a process of its own, like the other bench smoke tests: the bench forks its
    # worker processes, which is cleaner from a plain command than from inside the test runner.
    # 20 SKUs, 3 of them with 10 units: each SKU is asked for by ~45 of the 300 orders, so the tight ones run
    # out and their orders must wait in awaiting stock.
    orders = 300
    command = [sys.executable, "manage.py", "bench", "ingest", "--orders", str(orders), "--skus", "20",
               "--processes", "2", "--tight-skus", "3", "--tight-units", "10", "--profile", "0", "--json",
               "--db-name", f"oms_bench_ingest_processes_test_{os.getpid()}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures["processes"] == 2 and len(figures["process_handled"]) == 2
    assert sum(figures["process_handled"]) == orders
    assert figures["orders"] == orders and figures["inbox_done"] == orders
    assert figures["oversold"] == 0 and figures["lost"] == 0 and figures["duplicated"] == 0
    assert figures["awaiting_stock"] > 0 and figures["ready"] > 0
    assert figures["ready"] + figures["awaiting_stock"] == orders
    assert figures["ready_held_wrongly"] == 0 and figures["awaiting_holding"] == 0
    assert figures["stock_mismatches"] == 0
    assert figures["queries_per_order"] <= 5
    assert figures["ok"] is True and figures["failures"] == []
