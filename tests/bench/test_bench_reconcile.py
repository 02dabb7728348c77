"""The reconciliation benchmark runs end to end at a small size: every planted difference found, nothing else
(no timing asserted)."""

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


def test_bench_reconcile_small_run_finds_every_planted_difference_and_nothing_else():
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "reconcile", "--json", "--orders", "3000",
         "--db-name", f"oms_bench_reconcile_test_{os.getpid()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["ok"] is True
    assert figures["orders"] == 3000
    kinds = {"missing_in_hub", "missing_in_settlement", "amount_differs", "fee_differs", "refund_not_settled",
             "settled_twice", "currency_differs"}
    assert set(figures["planted_by_kind"]) == kinds
    assert all(count > 0 for count in figures["planted_by_kind"].values())
    assert figures["found_by_kind"] == figures["planted_by_kind"]
    assert figures["found"] == figures["planted"] == sum(figures["planted_by_kind"].values())
    assert figures["false_differences"] == 0
    assert {"total_s", "import_rows_per_s", "match_s", "raw_s", "ratio"} <= set(figures)
