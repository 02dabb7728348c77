"""API rate limits: per user session and per token for staff, a separate and higher limit per print bridge."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory.models import StockLevel, StockMovement
from printing.models import JobKind, JobStatus, Printer, PrintJob, Transport
from printing.services import bridge_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


@pytest.fixture
def rates(settings):
    """Set the limits of this test; the counters start empty (they live in the default cache, Redis)."""
    cache.clear()

    def set_rates(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **scopes},
        }
    return set_rates


def session_client(user) -> APIClient:
    client = APIClient()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["code"] == "throttled"
    assert body["message"]


def test_a_session_user_past_the_limit_gets_429_with_retry_after_and_others_do_not(rates, role_users):
    rates(staff="3/min")
    busy = session_client(role_users["customer_service"])

    assert [busy.get(ORDERS).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(busy.get(ORDERS))

    assert session_client(role_users["manager"]).get(ORDERS).status_code == 200


def test_each_token_has_its_own_count_apart_from_its_users_session(rates, role_users):
    rates(staff="3/min")
    user = role_users["customer_service"]
    script = token_client(user)

    assert [script.get(ORDERS).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(script.get(ORDERS))

    # The same person's browser session is a different credential: a runaway script does not lock the desk.
    assert session_client(user).get(ORDERS).status_code == 200
    assert token_client(role_users["manager"]).get(ORDERS).status_code == 200


def test_a_throttled_write_stores_nothing(rates, role_users, skus, warehouse):
    rates(staff="2/min")
    client = token_client(role_users["admin"])
    receipt = {"warehouse": warehouse.code, "sku": "GIFT-BAG", "quantity": 5, "reference": "PO-1"}
    for _ in range(2):
        assert client.post("/api/v1/stock-receipts/", receipt, format="json").status_code == 201
    movements = StockMovement.objects.count()

    assert_throttled(client.post("/api/v1/stock-receipts/", receipt, format="json"))

    assert StockMovement.objects.count() == movements
    assert StockLevel.objects.get(warehouse=warehouse, sku=skus["GIFT-BAG"]).on_hand == 1010


@pytest.fixture
def bridge_printer(warehouse) -> Printer:
    return Printer.objects.create(code="sh-pack-1", name="打包台 1", warehouse=warehouse, transport=Transport.BRIDGE,
                                  host="127.0.0.1", port=9100, paper_width=80)


def make_jobs(printer: Printer, count: int) -> None:
    now = timezone.now()
    PrintJob.objects.bulk_create(
        PrintJob(printer=printer, kind=JobKind.TEST, payload=b"\x1b@job\n", dedup_key=f"throttle:{n}",
                 next_attempt_at=now)
        for n in range(count)
    )


def bridge_client(warehouse, name: str) -> APIClient:
    _bridge, token = bridge_create(name=name, warehouse_id=warehouse.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_bridge_clearing_350_jobs_in_a_minute_is_never_throttled_at_the_default_rates(
        rates, warehouse, bridge_printer):
    # 350 claims and 350 acks: 700 calls, more than the staff limit of 600 a minute.
    make_jobs(bridge_printer, 350)
    bridge = bridge_client(warehouse, "SH PC")
    statuses = []
    for _ in range(350):
        claim = bridge.post(reverse("print_bridge:claim"))
        statuses.append(claim.status_code)
        if claim.status_code != 200:
            break
        ack = bridge.post(reverse("print_bridge:ack", args=[claim.json()["job"]["id"]]), {"ok": True},
                          format="json")
        statuses.append(ack.status_code)

    assert statuses == [200] * 700
    assert PrintJob.objects.filter(status=JobStatus.PRINTED).count() == 350
    assert bridge.post(reverse("print_bridge:claim")).status_code == 204


def test_the_bridge_limit_is_its_own_and_counted_per_bridge(rates, warehouse, bridge_printer):
    rates(staff="1/min", print_bridge="3/min")
    first = bridge_client(warehouse, "SH PC 1")

    assert [first.get(reverse("print_bridge:printers")).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(first.get(reverse("print_bridge:printers")))

    assert bridge_client(warehouse, "SH PC 2").get(reverse("print_bridge:printers")).status_code == 200
