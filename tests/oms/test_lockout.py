"""Login lockout: wrong passwords for one username from one address lock that pair for 15 minutes, nothing else."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

OFFICE = "10.0.0.1"
HOME = "10.0.0.2"
LOCKED_TEXT = "登录失败次数过多，该账号已在此地址锁定 15 分钟。"


@pytest.fixture
def staff(db):
    make = get_user_model().objects.create_user
    return {name: make(username=name, password=PASSWORD, is_staff=True) for name in ("xiaowang", "xiaoli")}


def attempt(client: Client, url: str, username: str, password: str, address: str):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_ten_times(client: Client, url: str, username: str, address: str) -> list[int]:
    return [attempt(client, url, username, "wrong-password", address).status_code for _ in range(10)]


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_ten_wrong_passwords_lock_the_username_at_that_address_even_for_the_right_password(url_name, staff):
    url = reverse(url_name)
    client = Client()

    # Nine wrong passwords are answered with the login form again; the tenth locks.
    assert fail_ten_times(client, url, "xiaowang", OFFICE) == [200] * 9 + [429]

    response = attempt(client, url, "xiaowang", PASSWORD, OFFICE)
    assert response.status_code == 429
    assert LOCKED_TEXT in response.content.decode()
    assert not logged_in(client)
    assert AccessAttempt.objects.get(username="xiaowang", ip_address=OFFICE).failures_since_start >= 10


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_the_lock_holds_only_that_username_at_that_address(url_name, staff):
    url = reverse(url_name)
    fail_ten_times(Client(), url, "xiaowang", OFFICE)

    from_home = Client()
    assert attempt(from_home, url, "xiaowang", PASSWORD, HOME).status_code == 302
    assert logged_in(from_home)

    colleague_in_office = Client()
    assert attempt(colleague_in_office, url, "xiaoli", PASSWORD, OFFICE).status_code == 302
    assert logged_in(colleague_in_office)


def test_a_success_before_the_limit_starts_the_count_again(staff):
    url = reverse("login")
    for _ in range(9):
        attempt(Client(), url, "xiaowang", "wrong-password", OFFICE)
    assert attempt(Client(), url, "xiaowang", PASSWORD, OFFICE).status_code == 302
    assert not AccessAttempt.objects.filter(username="xiaowang").exists()

    # Nine more typos do not lock: the earlier nine were forgotten on success.
    assert [attempt(Client(), url, "xiaowang", "wrong-password", OFFICE).status_code for _ in range(9)] == [200] * 9


def test_an_administrator_unlocks_by_deleting_the_attempt_in_the_admin(staff):
    url = reverse("login")
    fail_ten_times(Client(), url, "xiaowang", OFFICE)
    locked = AccessAttempt.objects.get(username="xiaowang", ip_address=OFFICE)

    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser(username="boss", password=PASSWORD))
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "xiaowang" in listing.content.decode()
    response = admin.post(reverse("admin:axes_accessattempt_delete", args=[locked.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(pk=locked.pk).exists()

    client = Client()
    assert attempt(client, url, "xiaowang", PASSWORD, OFFICE).status_code == 302
    assert logged_in(client)


def test_the_lock_ends_after_15_minutes(staff):
    url = reverse("login")
    fail_ten_times(Client(), url, "xiaowang", OFFICE)

    # Move the attempt into the past rather than the clock: axes compares attempt_time with now - 15 minutes.
    attempts = AccessAttempt.objects.filter(username="xiaowang")
    first_time = attempts.get().attempt_time
    attempts.update(attempt_time=first_time - timedelta(minutes=14))
    assert attempt(Client(), url, "xiaowang", PASSWORD, OFFICE).status_code == 429

    attempts.update(attempt_time=first_time - timedelta(minutes=16))
    client = Client()
    assert attempt(client, url, "xiaowang", PASSWORD, OFFICE).status_code == 302
    assert logged_in(client)


def test_a_locked_password_login_leaves_the_api_token_working(staff, manual_store):
    fail_ten_times(Client(), reverse("login"), "xiaowang", OFFICE)
    token = Token.objects.create(user=staff["xiaowang"])

    response = Client().get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token.key}", REMOTE_ADDR=OFFICE)

    # 403 (no order permission for this bare user), not 401 and not the lockout: the token still authenticates.
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_lower_failure_limit_locks_sooner(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("login")
    assert [attempt(Client(), url, "xiaowang", "wrong-password", OFFICE).status_code for _ in range(3)] == [
        200, 200, 429]
