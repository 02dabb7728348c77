"""The outbound gateway kit (gateway/): one set of errors, one HTTP client base and one sandbox base for
channel connectors and carriers alike, and one signed-form call for the TOP and PDD routers."""

import subprocess
import sys
from pathlib import Path

from connectors import base as connector_base
from connectors.pdd.client import PddClient
from connectors.router import RouterClient
from connectors.sandbox.taobao import TaobaoSandbox
from connectors.taobao.client import TopClient
from fulfillment.carriers.sf import SFClient
from fulfillment.carriers.sf_sandbox import SFSandbox
from gateway import errors
from gateway.http import GatewayClient
from gateway.sandbox import Sandbox


def test_connectors_re_export_the_kit_errors_not_copies_of_them():
    assert connector_base.ConnectorError is errors.GatewayError
    for name in ("TransientError", "PermanentError", "AuthError", "SignatureError"):
        assert getattr(connector_base, name) is getattr(errors, name)


def test_carriers_and_connectors_build_on_the_same_client_and_sandbox():
    assert issubclass(SFClient, GatewayClient) and issubclass(TopClient, GatewayClient)
    assert issubclass(SFSandbox, Sandbox) and issubclass(TaobaoSandbox, Sandbox)


def test_top_and_pdd_share_one_call_and_one_attempt():
    for client in (TopClient, PddClient):
        assert issubclass(client, RouterClient)
        assert "_call_once" not in vars(client) and "call" not in vars(client)
    assert TopClient.label == "TOP" and PddClient.label == "PDD"


def test_the_kit_imports_without_django_or_the_project():
    # Sandboxes run standalone (python -m …): the kit may need requests, nothing of Django or oms.
    code = ("import sys\nimport gateway.errors, gateway.http, gateway.sandbox\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'oms', 'celery')]\n"
            "assert not bad, bad\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
