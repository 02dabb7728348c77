"""WeChat login for the mini-program against the local WeChat sandbox over real HTTP: bind after a first proof,
return without typing, unbind, and every refusal WeChat can give answered as a clear 4xx/503."""

import pytest
import requests
from rest_framework.test import APIClient

from customer.models import WeChatBinding
from customer.wechat_sandbox import WeChatSandbox
from orders.services import BuyerInput, ReceiverInput

API = "/api/customer/v1"
APP_ID, SECRET = "wx0123456789abcdef", "test-secret"


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def wechat(settings):
    sandbox = WeChatSandbox(app_id=APP_ID, app_secret=SECRET)
    settings.OMS_WECHAT_API_BASE = sandbox.start()
    settings.OMS_WECHAT_APP_ID, settings.OMS_WECHAT_APP_SECRET = APP_ID, SECRET
    yield sandbox
    sandbox.stop()


def client(addr: str = "10.0.1.1") -> APIClient:
    return APIClient(REMOTE_ADDR=addr, HTTP_ACCEPT_LANGUAGE="en")


def wx_login(sandbox: WeChatSandbox, user: str, **extra) -> str:
    """What wx.login() on ``user``'s phone gives: a code, fetched from the sandbox over HTTP."""
    answer = requests.post(f"{sandbox.base_url}/_sandbox/login", json={"user": user, **extra}, timeout=5)
    assert answer.status_code == 200
    return answer.json()["code"]


def login(code: str, addr: str = "10.0.1.1"):
    return client(addr).post(f"{API}/wechat/login/", {"code": code}, format="json")


def as_buyer(token: str) -> APIClient:
    api = client()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_first_login_binds_after_a_proof_and_the_next_login_needs_no_typing(wechat, make_order):
    order = make_order()
    first = login(wx_login(wechat, "alice"))
    assert first.status_code == 200, first.content
    assert first.json()["bound"] is False and "token" not in first.json()
    ticket = first.json()["wechat_ticket"]
    proof = client().post(f"{API}/proof/", {"order": order.number, "phone": "13312343069", "wechat_ticket": ticket},
                          format="json")
    assert proof.status_code == 200, proof.content
    assert proof.json()["wechat_bound"] is True
    # The hub asked WeChat exactly as documented, and keeps no openid: only a keyed digest.
    exchange = wechat.exchanges[-1]
    assert exchange["appid"] == APP_ID and exchange["grant_type"] == "authorization_code" and exchange["secret_sent"]
    binding = WeChatBinding.objects.get()
    openid = wechat.openid_of("alice", APP_ID)
    assert binding.order_id == order.pk and openid not in binding.openid_digest

    again = login(wx_login(wechat, "alice"))
    assert again.status_code == 200 and again.json()["bound"] is True
    assert openid not in again.content.decode()
    orders = as_buyer(again.json()["token"]).get(f"{API}/orders/")
    assert orders.status_code == 200 and [row["number"] for row in orders.json()] == [order.number]
    # The phone typed in the first proof stays the buyer's own to see.
    detail = as_buyer(again.json()["token"]).get(f"{API}/orders/{order.number}/").json()
    assert detail["receiver"]["phone"] == "13312343069"


def test_another_wechat_user_is_not_bound_and_sees_nothing(wechat, make_order):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    client().post(f"{API}/proof/", {"order": order.number, "phone": "3069", "wechat_ticket": ticket}, format="json")
    bob = login(wx_login(wechat, "bob"))
    assert bob.json()["bound"] is False
    assert client().get(f"{API}/orders/").status_code == 401


def test_unbinding_ends_the_tokens_and_the_next_login_asks_for_a_proof(wechat, make_order):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    token = client().post(f"{API}/proof/", {"order": order.number, "phone": "3069", "wechat_ticket": ticket},
                          format="json").json()["token"]
    later_token = login(wx_login(wechat, "alice")).json()["token"]
    assert as_buyer(later_token).delete(f"{API}/wechat/binding/").status_code == 204
    for old in (token, later_token):
        refused = as_buyer(old).get(f"{API}/orders/")
        assert refused.status_code == 401 and refused.json()["code"] == "wechat_unbound"
    assert login(wx_login(wechat, "alice")).json()["bound"] is False
    assert WeChatBinding.objects.get().unbound_at is not None  # kept, to show it happened


def test_unbinding_a_token_from_a_plain_proof_is_404(wechat, make_order):
    order = make_order()
    token = client().post(f"{API}/proof/", {"order": order.number, "phone": "3069"}, format="json").json()["token"]
    response = as_buyer(token).delete(f"{API}/wechat/binding/")
    assert response.status_code == 404 and response.json()["code"] == "wechat_not_bound"


def test_proving_another_buyer_moves_the_binding(wechat, make_order):
    first = make_order()
    second = make_order(buyer=BuyerInput(id="buyer-2", name="李四"),
                        receiver=ReceiverInput(name="李四", phone="13900001111", province="北京市", city="北京市",
                                               district="朝阳区", address="建国路 1 号"))
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    for order, phone in ((first, "3069"), (second, "1111")):
        proof = client().post(f"{API}/proof/", {"order": order.number, "phone": phone, "wechat_ticket": ticket},
                              format="json")
        assert proof.status_code == 200 and proof.json()["wechat_bound"] is True
    assert list(WeChatBinding.objects.filter(unbound_at__isnull=True).values_list("order_id", flat=True)) == [
        second.pk]
    token = login(wx_login(wechat, "alice")).json()["token"]
    assert [row["number"] for row in as_buyer(token).get(f"{API}/orders/").json()] == [second.number]


def test_every_refusal_of_wechat_is_a_clear_answer(wechat, make_order):
    code = wx_login(wechat, "alice")
    assert login(code).status_code == 200
    used = login(code)
    assert used.status_code == 400 and used.json()["code"] == "wechat_code_invalid"
    unknown = login("not-a-code-wechat-gave")
    assert unknown.status_code == 400 and unknown.json()["code"] == "wechat_code_invalid"
    blocked = login(wx_login(wechat, "mallory", blocked=True))
    assert blocked.status_code == 403 and blocked.json()["code"] == "wechat_login_blocked"
    requests.post(f"{wechat.base_url}/_sandbox/faults", json={"rate_limit": 1}, timeout=5)
    limited = login(wx_login(wechat, "alice"))
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    requests.post(f"{wechat.base_url}/_sandbox/faults", json={"server_errors": 1}, timeout=5)
    busy = login(wx_login(wechat, "alice"))
    assert busy.status_code == 503 and busy.json()["code"] == "wechat_unavailable"
    requests.post(f"{wechat.base_url}/_sandbox/faults", json={"malformed": 1}, timeout=5)
    broken = login(wx_login(wechat, "alice"))
    assert broken.status_code == 503 and broken.json()["code"] == "wechat_unavailable"
    for bad in ({}, {"code": ""}, {"code": "x" * 500}, {"code": 12}, {"code": "a\x00b"}, []):
        response = client().post(f"{API}/wechat/login/", bad, format="json")
        assert response.status_code == 400, (bad, response.content)
    assert WeChatBinding.objects.count() == 0


def test_a_wrong_secret_or_an_unreachable_wechat_is_503_not_the_buyers_fault(wechat, settings):
    settings.OMS_WECHAT_APP_SECRET = "wrong"
    wrong = login(wx_login(wechat, "alice"))
    assert wrong.status_code == 503 and wrong.json()["code"] == "wechat_unavailable"
    settings.OMS_WECHAT_APP_SECRET = SECRET
    wechat.stop()
    down = login("any-code")
    assert down.status_code == 503 and down.json()["code"] == "wechat_unavailable"


def test_without_an_app_id_wechat_login_is_off(settings):
    settings.OMS_WECHAT_APP_ID = ""
    response = login("any-code")
    assert response.status_code == 503 and response.json()["code"] == "wechat_login_disabled"


def test_a_tampered_expired_or_foreign_ticket_is_refused_before_the_proof_counts(wechat, make_order, settings):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    for bad in (ticket[:-2] + "xx", "garbage"):
        response = client().post(f"{API}/proof/", {"order": order.number, "phone": "3069", "wechat_ticket": bad},
                                 format="json")
        assert response.status_code == 400 and "wechat_ticket" in response.json()["errors"]
    settings.OMS_WECHAT_APP_ID = "wx-another-app"
    foreign = client().post(f"{API}/proof/", {"order": order.number, "phone": "3069", "wechat_ticket": ticket},
                            format="json")
    assert foreign.status_code == 400
    assert WeChatBinding.objects.count() == 0


def test_logins_are_throttled_per_address(wechat):
    answers = [login("no-such-code", addr="10.9.9.9").status_code for _ in range(21)]
    assert answers[:20] == [400] * 20 and answers[20] == 429
