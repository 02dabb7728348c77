"""Garbage in the after-sales and desk forms (NUL bytes, huge numbers, unknown ids, wrong types) is answered
with a page or a 4xx, never a 500, and changes nothing."""

import pytest
from django.test import Client

from aftersales.models import ReturnUnit, Ticket, TicketEvent
from desk.models import CustomerNote
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GARBAGE = [{"code": "\x00"}, {"code": "9" * 5000}, {"grade": "sparkly", "unit": "x", "line": "-1", "warehouse": "abc",
           "scan": "\x00"}, {"unit": str(10**30), "line": str(10**30), "warehouse": str(10**30)},
           {"approved_amount": "1e999999", "reason": "\x00"}, {"tracking_number": "\x00" * 3}, {"text": "\x00"},
           {"type": "\x00", "reason": "x", "lines-0-quantity": "1e9", "shipping_amount": "NaN"}, {}]


def login(role_users, role: str) -> Client:
    client = Client(raise_request_exception=False)
    assert client.login(username=role_users[role].username, password=PASSWORD)
    return client


def test_garbage_posts_never_reach_a_500_and_change_nothing(role_users, make_order):
    order = make_order()
    paths = {
        "warehouse": ["/aftersales/receiving/scan/", "/aftersales/receiving/1/scan/", "/aftersales/receiving/1/grade/",
                      f"/aftersales/receiving/{10**12}/grade/"],
        "customer_service": ["/aftersales/1/transition/approve/", "/aftersales/1/tracking/", "/aftersales/1/note/",
                             f"/aftersales/new/{order.pk}/", f"/aftersales/new/{10**12}/",
                             f"/desk/customer/{order.pk}/note/",
                             f"/desk/customer/{order.pk}/orders/{10**12}/expedite/",
                             f"/desk/customer/{order.pk}/orders/{order.pk}/resend/"],
    }
    for role, urls in paths.items():
        client = login(role_users, role)
        for url in urls:
            for data in GARBAGE:
                response = client.post(url, data)
                assert response.status_code < 500, (url, data, response.status_code)
    for query in ["\x00", "9" * 5000, "王", "%", "_", "'; drop table orders_order; --"]:
        response = login(role_users, "customer_service").get("/desk/", {"q": query})
        assert response.status_code < 500, (query, response.status_code)
    assert (Ticket.objects.count(), ReturnUnit.objects.count(), TicketEvent.objects.count(),
            CustomerNote.objects.count()) == (0, 0, 0, 0)
