"""The search benchmark runs end to end at a small size and prints its figures (no timing asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
]


def test_bench_search_small_run_prints_figures_per_kind():
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "search", "--json", "--orders", "3000", "--searches", "20",
         "--db-name", f"oms_bench_search_test_{os.getpid()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["orders"] == 3000
    assert figures["ok"] is True
    assert set(figures["p95_ms_by_kind"]) == {"order_number", "platform_order_id", "phone", "last_four",
                                              "tracking_number", "partial_name"}
    assert figures["worst_p95_ms"] == max(figures["p95_ms_by_kind"].values())
    # The customer view of as many buyers as searches (20, under the cap of 200), none of them empty.
    assert figures["customer_views"] == 20
    assert {"customer_view_p50_ms", "customer_view_p95_ms", "load_s"} <= set(figures)
    assert figures["customer_view_p50_ms"] <= figures["customer_view_p95_ms"]
