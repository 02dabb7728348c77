"""`manage.py connector_map` prints the unified order of one platform payload, and refuses bad input clearly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "connector_map", *args], cwd=ROOT, capture_output=True,
                          text=True, input=stdin, timeout=60)


def test_shopify_order_maps_to_unified_json():
    result = run("--platform", "shopify", str(FIXTURES / "shopify_order.json"))
    assert result.returncode == 0, result.stderr
    unified = json.loads(result.stdout)
    assert unified["platform_order_id"] == "450789469"
    assert unified["created_at"] == "2008-01-10T16:00:00Z"  # 11:00 at -05:00
    assert unified["currency"] == "USD" and unified["total"] == "598.94"
    assert {"sku", "platform_sku_id", "title", "quantity", "unit_price"} <= set(unified["lines"][0])
    for key in ("status", "updated_at", "buyer", "receiver"):
        assert key in unified


def test_taobao_trade_maps_to_unified_json_from_the_api_envelope():
    result = run("--platform", "taobao", str(FIXTURES / "taobao_trade.json"))
    assert result.returncode == 0, result.stderr
    unified = json.loads(result.stdout)
    assert unified["platform_order_id"] == "500001084"
    assert unified["status"] == "paid"
    assert unified["created_at"] == "2017-07-28T06:18:32Z"  # 14:18:32 in Beijing
    assert unified["total"] == "323.58"
    assert unified["lines"][0]["sku"] == "B-C352-F301-356M"


@pytest.mark.parametrize("args, stdin, message", [
    (["--platform", "shopify", "/no/such/file.json"], None, "cannot read"),
    (["--platform", "shopify", "-"], "{not json", "is not JSON"),
    (["--platform", "taobao", "-"], '{"tid": 1, "status": "NOT_A_STATUS"}', "cannot map"),
    (["--platform", "shopify", "-"], "[1, 2]", "cannot map"),
])
def test_unmappable_input_is_a_clear_non_zero_error(args, stdin, message):
    result = run(*args, stdin=stdin)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_platform_is_refused():
    result = run("--platform", "myspace", str(FIXTURES / "shopify_order.json"))
    assert result.returncode != 0 and "invalid choice" in result.stderr
