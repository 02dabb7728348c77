"""The stock push benchmark runs end to end at a small size (real worker, four sandboxes) and prints its JSON figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
# Not the bench's default database (12), so this test and a full `bench stock_push` can run side by side.
REDIS_DB = 10  # its own db: the bench empties it (make test uses 15)


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"),
]


def test_bench_stock_push_small_run_settles_with_no_mismatch():
    if not _redis_up():
        pytest.skip("needs Redis on 127.0.0.1:6379 (the worker's broker)")
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "stock_push", "--json", "--skus", "10", "--hot-orders", "30",
         "--settle-timeout", "120", "--redis-db", str(REDIS_DB), "--db-name", f"oms_bench_push_test_{os.getpid()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("p50_s", "p95_s", "platform_calls", "mismatches", "changes", "p95_s_by_platform", "hot_sku_calls",
                "platform_calls_by_platform", "api_requests_by_platform", "quantities_to_push"):
        assert key in figures, key
    assert figures["mismatches"] == 0 and figures["ok"] is True
    assert figures["changes"] == 10 and figures["quantities_to_push"] == 40
    assert set(figures["p95_s_by_platform"]) == set(figures["hot_sku_calls"]) == {"shopify", "taobao", "pdd",
                                                                                  "douyin"}
    assert figures["platform_calls"] >= 40  # every changed quantity reached its platform at least once
    assert all(calls >= 1 for calls in figures["hot_sku_calls"].values())
