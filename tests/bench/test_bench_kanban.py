"""The kanban benchmark runs end to end at a small size and prints its JSON figures (no timing asserted)."""

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


def test_bench_kanban_small_run_prints_constant_query_counts():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "kanban",
            "--json",
            "--shipments",
            "300",
            "--requests",
            "5",
            "--db-name",
            f"oms_bench_kanban_test_{os.getpid()}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "shipments",
        "page_p50_ms",
        "page_p95_ms",
        "partial_p50_ms",
        "partial_p95_ms",
        "move_p50_ms",
        "move_p95_ms",
        "page_queries",
        "partial_queries",
        "move_queries",
        "page_queries_small",
        "page_p95_ms_small",
        "page_ratio",
        "page_kib",
        "page_kib_small",
    ):
        assert key in figures, key
    assert figures["shipments"] == 300 and figures["ok"] is True and figures["failures"] == []
    assert figures["page_queries"] == figures["page_queries_small"]
    assert figures["shipments_small"] < figures["shipments"]
    assert figures["partial_queries"] < figures["page_queries"]
    assert figures["page_p95_ms_small"] > 0 and figures["page_ratio"] > 0
