"""WeChat login for the mini-program against the local WeChat sandbox over real HTTP: bind after a first proof,
return without typing, unbind, and every refusal WeChat can give answered as a clear 4xx/503."""

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.core import signing
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from customer import services
from customer.models import WeChatBinding
from customer.wechat_sandbox import WeChatSandbox
from orders.services import BuyerInput, ReceiverInput

API = "/api/customer/v1"
APP_ID, SECRET = "wx0123456789abcdef", "test-secret"
PHONE = "13312343069"  # conftest's order_input receiver phone


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
    client().post(f"{API}/proof/", {"order": order.number, "phone": PHONE, "wechat_ticket": ticket}, format="json")
    bob = login(wx_login(wechat, "bob"))
    assert bob.json()["bound"] is False
    assert client().get(f"{API}/orders/").status_code == 401


def test_unbinding_ends_the_tokens_and_the_next_login_asks_for_a_proof(wechat, make_order):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    token = client().post(f"{API}/proof/", {"order": order.number, "phone": PHONE, "wechat_ticket": ticket},
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


def prove(order, phone: str, ticket: str):
    return client().post(f"{API}/proof/", {"order": order.number, "phone": phone, "wechat_ticket": ticket},
                         format="json")


def test_a_ticket_binds_once_and_a_copy_of_it_cannot_end_or_move_the_binding(wechat, make_order):
    first = make_order()
    second = make_order(buyer=BuyerInput(id="buyer-2", name="李四"),
                        receiver=ReceiverInput(name="李四", phone="13900001111", province="北京市", city="北京市",
                                               district="朝阳区", address="建国路 1 号"))
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    token = prove(first, PHONE, ticket).json()["token"]
    for order, phone in ((first, PHONE), (second, "13900001111")):
        replay = prove(order, phone, ticket)
        assert replay.status_code == 400 and "wechat_ticket" in replay.json()["errors"]
    assert as_buyer(token).get(f"{API}/orders/").status_code == 200
    assert list(WeChatBinding.objects.values_list("order_id", flat=True)) == [first.pk]


def test_moving_to_another_buyer_is_unbind_then_log_in_and_prove_again(wechat, make_order):
    first = make_order()
    second = make_order(buyer=BuyerInput(id="buyer-2", name="李四"),
                        receiver=ReceiverInput(name="李四", phone="13900001111", province="北京市", city="北京市",
                                               district="朝阳区", address="建国路 1 号"))
    token = prove(first, PHONE, login(wx_login(wechat, "alice")).json()["wechat_ticket"]).json()["token"]
    assert as_buyer(token).delete(f"{API}/wechat/binding/").status_code == 204
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    assert prove(second, "13900001111", ticket).json()["wechat_bound"] is True
    token = login(wx_login(wechat, "alice")).json()["token"]
    assert [row["number"] for row in as_buyer(token).get(f"{API}/orders/").json()] == [second.number]


def test_the_last_four_digits_alone_bind_nobody_and_keep_the_ticket(wechat, make_order):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    weak = prove(order, "3069", ticket)
    assert weak.status_code == 200 and weak.json()["wechat_bound"] is False  # a token for now, no lasting login
    assert WeChatBinding.objects.count() == 0
    assert prove(order, PHONE, ticket).json()["wechat_bound"] is True


def test_a_binding_expires_after_the_set_days(wechat, make_order, settings):
    order = make_order()
    prove(order, PHONE, login(wx_login(wechat, "alice")).json()["wechat_ticket"])
    WeChatBinding.objects.update(created_at=timezone.now() - timedelta(days=settings.OMS_WECHAT_BINDING_MAX_DAYS,
                                                                      minutes=1))
    again = login(wx_login(wechat, "alice")).json()
    assert again["bound"] is False
    assert prove(order, PHONE, again["wechat_ticket"]).json()["wechat_bound"] is True
    assert WeChatBinding.objects.filter(unbound_at__isnull=True).count() == 1


def test_a_buyer_unbinds_every_wechat_user_bound_to_their_orders(wechat, make_order):
    order = make_order()
    for user in ("alice", "eve"):
        prove(order, PHONE, login(wx_login(wechat, user)).json()["wechat_ticket"])
    plain = client().post(f"{API}/proof/", {"order": order.number, "phone": PHONE}, format="json").json()["token"]
    answer = as_buyer(plain).delete(f"{API}/wechat/bindings/")
    assert answer.status_code == 200 and answer.json() == {"unbound": 2}
    assert login(wx_login(wechat, "eve")).json()["bound"] is False


def test_an_expired_ticket_is_refused(wechat, make_order, monkeypatch):
    order = make_order()
    ticket = login(wx_login(wechat, "alice")).json()["wechat_ticket"]
    later = time.time() + 601
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = prove(order, PHONE, ticket)
    assert response.status_code == 400 and "wechat_ticket" in response.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_two_binds_of_one_user_at_once_leave_one_live_binding_and_no_error(make_order, settings, monkeypatch):
    settings.OMS_WECHAT_APP_ID = APP_ID
    order = make_order()
    barrier, waited = threading.Barrier(2, timeout=10), threading.local()
    create = WeChatBinding.objects.create

    def create_together(**fields):
        if not getattr(waited, "done", False):  # both threads insert at the same moment, once
            waited.done = True
            barrier.wait()
        return create(**fields)

    monkeypatch.setattr(WeChatBinding.objects, "create", create_together)
    errors = []

    def bind():
        try:
            services.wechat_bind(openid_digest="a" * 64, order=order, phone_digest="")
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=bind) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert WeChatBinding.objects.filter(unbound_at__isnull=True).count() == 1


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
    nul = client().post(f"{API}/wechat/login/", {"code": "a\x00b"}, format="json")
    assert nul.status_code == 400 and nul.json()["code"] == "bad_input"  # refused before any view
    for bad in ({}, {"code": ""}, {"code": "x" * 500}, {"code": 12}):
        response = client().post(f"{API}/wechat/login/", bad, format="json")
        assert response.status_code == 400 and response.json()["code"] == "wechat_code_invalid", (bad, response.content)
    for bad in ([], {"code": "abc", "encryptedData": "x"}):
        response = client().post(f"{API}/wechat/login/", bad, format="json")
        assert response.status_code == 400 and response.json()["code"] == "invalid", (bad, response.content)
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
