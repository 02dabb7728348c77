"""The print benchmark runs end to end at a small size: every label printed once through the bridge (no timing
asserted)."""

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


def test_bench_print_small_run_prints_every_label_once():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench",
            "print",
            "--json",
            "--labels",
            "10",
            "--workers",
            "3",
            "--gunicorn-workers",
            "2",
            "--db-name",
            f"oms_bench_print_test_{os.getpid()}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "labels",
        "render_p50_ms",
        "render_p95_ms",
        "batch_s",
        "printed",
        "printed_twice",
        "jobs_per_s",
        "queue_s",
        "received",
        "not_printed",
    ):
        assert key in figures, key
    assert figures["labels"] == 10 and figures["workers"] == 3
    assert figures["printed"] == 10 and figures["received"] == 10
    assert figures["printed_twice"] == 0 and figures["not_printed"] == 0
    assert figures["second_click_queued"] == 0
    assert figures["ok"] is True and figures["failures"] == []
    assert 0 < figures["render_p50_ms"] <= figures["render_p95_ms"]
    assert figures["batch_s"] > 0 and figures["jobs_per_s"] > 0
