"""REST API v1 for after-sales tickets: open, list, read and move tickets; every refusal is a 4xx with a code and
changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from aftersales import services
from aftersales.models import Ticket, TicketEvent, TicketStatus
from aftersales.services import TicketLineInput
from fulfillment.models import Shipment
from tests.aftersales.helpers import ship_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(make_order):
    """Shipped order: 2 × TEA-LJ-250G at 188.00 and 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00."""
    return ship_order(make_order())


def lines_of(order):
    tea, cup = order.lines.order_by("line_no")
    return tea, cup


def body_for(the_order, **overrides) -> dict:
    tea, cup = lines_of(the_order)
    body = {"order": the_order.pk, "type": "return_refund", "reason": "damaged",
            "lines": [{"order_line_id": tea.pk, "quantity": 1}, {"order_line_id": cup.pk, "quantity": 1,
                                                                  "amount": "30.00"}],
            "shipping_amount": "10.00", "return_tracking_number": "SF100200300"}
    body.update(overrides)
    return body


def nothing_written() -> bool:
    return not Ticket.objects.exists() and not TicketEvent.objects.exists()


def test_customer_service_opens_a_ticket_and_reads_it_back(api_client_for, order):
    tea, cup = lines_of(order)
    response = api_client_for("customer_service").post("/api/v1/tickets/", body_for(order), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    ticket = Ticket.objects.get()
    assert (body["id"], body["number"], body["order"], body["order_number"]) == (
        ticket.pk, ticket.number, order.pk, order.number)
    assert (body["type"], body["reason"], body["status"], body["source"]) == (
        "return_refund", "damaged", "requested", "desk")
    assert (body["requested_amount"], body["requested_shipping"], body["approved_amount"]) == ("218.00", "10.00",
                                                                                               None)
    assert body["store"] == "tb" and body["owner"] is None and body["overdue"] is False
    assert body["return_tracking_number"] == "SF100200300"
    assert [(line["order_line_id"], line["quantity"], line["requested_amount"]) for line in body["lines"]] == [
        (tea.pk, 1, "188.00"), (cup.pk, 1, "30.00")]
    # No auto-approval rule for returns on this store: the ticket waits for a person, and says so.
    assert [(check["check"], check["ok"]) for check in body["checks"]] == [("window", True), ("line", True),
                                                                          ("line", True), ("auto_approval", False)]
    assert [(event["type"], event["actor"]) for event in body["events"]] == [("created", "u_customer_service")]
    assert body["refunds"] == [] and body["units"] == []
    detail = api_client_for("finance").get(f"/api/v1/tickets/{ticket.pk}/")
    assert detail.status_code == 200 and detail.json() == body


def test_list_filters_like_the_queue(api_client_for, make_order, role_users):
    agent = role_users["customer_service"]
    tea = lines_of(first := ship_order(make_order()))[0]
    mine = services.ticket_create(order_id=first.pk, type="return_refund", reason="size",
                                  lines=[TicketLineInput(tea.pk, 1)])
    services.ticket_assign(ticket_id=mine.pk, owner=agent, actor=agent)
    other = make_order()
    refund = services.ticket_create(order_id=other.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(lines_of(other)[0].pk, 1, Decimal("20.00"))])
    client = api_client_for("customer_service")

    def numbers(query: str) -> list[str]:
        response = client.get(f"/api/v1/tickets/?{query}")
        assert response.status_code == 200, response.json()
        return [row["number"] for row in response.json()["results"]]

    assert numbers("") == [refund.number, mine.number]
    assert numbers("type=refund_only") == [refund.number]
    assert numbers("status=requested&owner=mine") == [mine.number]
    assert numbers("owner=unassigned") == [refund.number]
    assert numbers("store=tb") == [refund.number, mine.number]
    assert numbers("store=nope") == []
    assert numbers("overdue=true") == [] and numbers("escalated=false") == [refund.number, mine.number]
    refused = client.get("/api/v1/tickets/?stauts=requested")
    assert refused.status_code == 400 and refused.json()["code"] == "invalid"
    assert client.get("/api/v1/tickets/?overdue=maybe").status_code == 400


def test_transition_approves_and_sets_off_the_wait_for_the_return(api_client_for, order):
    ticket_id = api_client_for("customer_service").post("/api/v1/tickets/", body_for(order), format="json").json()["id"]
    response = api_client_for("customer_service").post(f"/api/v1/tickets/{ticket_id}/transition/", {
        "name": "approve", "approved_amount": "200.00", "reason": "同意部分退款"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["approved_amount"]) == ("awaiting_return", "200.00")
    assert [(e["type"], e["from_status"], e["to_status"], e["reason"]) for e in body["events"]] == [
        ("created", "", "requested", ""), ("status_changed", "requested", "approved", "同意部分退款"),
        ("status_changed", "approved", "awaiting_return", "")]
    assert body["first_response_at"] is not None


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"name": "confirm_refund"}, 400, "unknown_transition"),  # refunded by the money going out, not by name
    ({"name": "await_return"}, 409, "transition_not_allowed"),
    ({"name": "ship_replacement"}, 400, "unknown_transition"),  # a replacement ships by its parcel
    ({"name": "grade"}, 400, "unknown_transition"),  # the receiving station grades unit by unit
    ({"name": "start_refund"}, 409, "refund_not_allowed"),
    ({"name": "retry_refund"}, 409, "refund_retry_not_allowed"),
    ({"name": "create_replacement"}, 409, "replacement_not_allowed"),
    ({"name": "approve", "approved_amount": "228.01"}, 400, "amount_out_of_range"),
    ({"name": "delete_everything"}, 400, "unknown_transition"),
    ({"name": "approve", "approved_amount": "1e999"}, 400, "invalid"),
    ({"name": "approve", "approved_amount": 12.5}, 400, "invalid"),
    ({"name": "approve", "approved_amount": "9" * 40}, 400, "invalid"),
    ({"name": "reject", "reason": "x" * 501}, 400, "invalid"),
    ({"name": "approve", "extra": 1}, 400, "invalid"),
])
def test_refused_transitions_answer_with_a_code_and_change_nothing(api_client_for, order, payload, status, code):
    ticket = Ticket.objects.get(pk=api_client_for("customer_service").post(
        "/api/v1/tickets/", body_for(order), format="json").json()["id"])
    response = api_client_for("customer_service").post(f"/api/v1/tickets/{ticket.pk}/transition/", payload,
                                                       format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.approved_amount, ticket.first_response_at) == (TicketStatus.REQUESTED, None, None)
    assert TicketEvent.objects.filter(ticket=ticket).count() == 1


def test_a_transition_not_allowed_says_the_current_state(api_client_for, order):
    ticket_id = api_client_for("customer_service").post("/api/v1/tickets/", body_for(order), format="json").json()["id"]
    body = api_client_for("customer_service").post(f"/api/v1/tickets/{ticket_id}/transition/",
                                                   {"name": "await_return"}, format="json").json()
    assert body["code"] == "transition_not_allowed"
    assert body["errors"] == {"status": "requested", "transition": "await_return"}


@pytest.mark.parametrize("path", ["/api/v1/tickets/999999/", "/api/v1/tickets/abc/", f"/api/v1/tickets/{10**30}/",
                                  "/api/v1/tickets/0/"])
def test_a_ticket_that_does_not_exist_is_a_404_with_its_code(api_client_for, order, path):
    response = api_client_for("customer_service").get(path)
    assert (response.status_code, response.json()["code"]) == (404, "ticket_not_found")
    moved = api_client_for("customer_service").post(f"{path}transition/", {"name": "close"}, format="json")
    assert (moved.status_code, moved.json()["code"]) == (404, "ticket_not_found")


@pytest.mark.parametrize(("change", "field"), [
    (lambda body, tea, cup: body["lines"][0].update(quantity=3), "lines[0].quantity"),
    (lambda body, tea, cup: body["lines"][1].update(amount="34.91"), "lines[1].amount"),
    (lambda body, tea, cup: body.update(shipping_amount="10.01"), "shipping_amount"),
    (lambda body, tea, cup: body.update(reason="other"), "reason_text"),
    (lambda body, tea, cup: body["lines"].append({"order_line_id": tea.pk, "quantity": 1}), "lines"),
    (lambda body, tea, cup: body["lines"][0].update(quantity=0), "lines[0].quantity"),
    (lambda body, tea, cup: body["lines"][0].update(quantity=10**30), "lines[0].quantity"),
    (lambda body, tea, cup: body["lines"][1].update(amount="1e999"), "lines[1].amount"),
    (lambda body, tea, cup: body["lines"][1].update(amount="NaN"), "lines[1].amount"),
    (lambda body, tea, cup: body["lines"][0].update(order_line_id=10**30), "lines[0].order_line_id"),
    (lambda body, tea, cup: body.update(lines=[]), "lines"),
    (lambda body, tea, cup: body.update(type="steal"), "type"),
    (lambda body, tea, cup: body.update(reason_text="x" * 501), "reason_text"),
    (lambda body, tea, cup: body.update(colour="red"), "colour"),
    (lambda body, tea, cup: body.update(order=True), "order"),
    (lambda body, tea, cup: body.update(order=10**30), "order"),
])
def test_a_bad_ticket_is_400_ticket_invalid_with_per_field_errors(api_client_for, order, change, field):
    tea, cup = lines_of(order)
    body = body_for(order)
    change(body, tea, cup)
    response = api_client_for("customer_service").post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "ticket_invalid" and field in answer["errors"], answer
    assert all(isinstance(message, str) for message in answer["errors"][field])
    assert nothing_written()


def test_a_return_outside_the_window_is_refused(api_client_for, order):
    order.store.return_window_days = 3
    order.store.save(update_fields=["return_window_days"])
    Shipment.objects.filter(lines__order=order).update(delivered_at=timezone.now() - timedelta(days=4))
    response = api_client_for("customer_service").post("/api/v1/tickets/", body_for(order), format="json")
    assert (response.status_code, response.json()["code"]) == (400, "ticket_invalid")
    assert "order" in response.json()["errors"] and nothing_written()


def test_unknown_order_nul_bytes_and_bodies_that_are_not_json_are_refused(api_client_for, order):
    client = api_client_for("customer_service")
    missing = client.post("/api/v1/tickets/", body_for(order, order=999999), format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "order_not_found")
    nul = client.post("/api/v1/tickets/", body_for(order, reason_text="坏了\x00"), format="json")
    assert nul.status_code == 400 and nul.json()["code"] == "bad_input"
    # A form body never reaches the service: like the orders API, JSON only (here the fields come out missing).
    form = client.post("/api/v1/tickets/", {"order": order.pk}, format="multipart")
    assert form.status_code == 400 and set(form.json()["errors"]) >= {"type", "reason", "lines"}
    listed = client.post("/api/v1/tickets/", [1, 2], format="json")
    assert (listed.status_code, listed.json()["code"]) == (400, "ticket_invalid")
    assert nothing_written()


def test_roles_need_their_permission(api_client_for, order):
    assert APIClient().get("/api/v1/tickets/").status_code == 401
    created = api_client_for("warehouse").post("/api/v1/tickets/", body_for(order), format="json")
    assert (created.status_code, created.json()["code"]) == (403, "permission_denied")
    assert api_client_for("finance").post("/api/v1/tickets/", body_for(order), format="json").status_code == 403
    assert nothing_written()
    ticket_id = api_client_for("manager").post("/api/v1/tickets/", body_for(order), format="json").json()["id"]
    for role in ("warehouse", "finance"):
        assert api_client_for(role).get(f"/api/v1/tickets/{ticket_id}/").status_code == 200
        refused = api_client_for(role).post(f"/api/v1/tickets/{ticket_id}/transition/", {"name": "reject",
                                                                                         "reason": "no"},
                                            format="json")
        assert refused.status_code == 403
    assert Ticket.objects.get(pk=ticket_id).status == TicketStatus.REQUESTED
    assert api_client_for("manager").delete(f"/api/v1/tickets/{ticket_id}/").status_code == 405


def test_the_openapi_schema_states_the_ticket_endpoints_and_their_limits(api_client_for):
    schema = api_client_for("manager").get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert {"/api/v1/tickets/", "/api/v1/tickets/{id}/", "/api/v1/tickets/{id}/transition/"} <= set(paths)
    assert set(paths["/api/v1/tickets/"]["post"]["responses"]) >= {"201", "400", "404", "415"}
    assert set(paths["/api/v1/tickets/{id}/transition/"]["post"]["responses"]) >= {"200", "400", "404", "409"}
    create = schema["components"]["schemas"]["TicketCreateRequest"]
    assert create["properties"]["lines"]["maxItems"] == 200 and create["properties"]["reason_text"]["maxLength"] == 500
    assert create["additionalProperties"] is False
    line = schema["components"]["schemas"]["TicketLineInputRequest"]["properties"]
    assert line["quantity"]["maximum"] == 10_000 and line["amount"]["pattern"]
    transition = schema["components"]["schemas"]["TicketTransitionRequest"]["properties"]
    names = schema["components"]["schemas"][transition["name"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert names == ["approve", "reject", "await_return", "start_refund", "retry_refund", "create_replacement",
                     "close"]
    assert transition["reason"]["maxLength"] == 500
