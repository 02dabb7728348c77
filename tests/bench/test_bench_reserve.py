"""The reservation benchmark runs end to end at a small size and prints its JSON figures (no timing asserted)."""

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


def test_bench_reserve_small_run_prints_consistent_figures():
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "reserve", "--json", "--attempts", "150", "--orders", "100",
         "--workers", "8", "--sample", "20", "--db-name", f"oms_bench_test_{os.getpid()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("hot_attempts_per_s", "hot_successes", "oversold", "hot_p99_ms", "spread_orders_per_s",
                "deadlocks", "raw_attempts_per_s", "ratio"):
        assert key in figures, key
    assert figures["hot_successes"] == 100 and figures["oversold"] == 0 and figures["deadlocks"] == 0
    assert figures["spread_mismatches"] == 0 and figures["ok"] is True
