"""After-sales SLA and policies: first-response due times in working hours, auto-approval rules, the escalation
sweep (also under two concurrent sweeps), the queue selectors and the managers' escalated-tickets notice."""

import threading
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone, translation

from aftersales import policies, selectors, services
from aftersales.context_processors import escalated_tickets
from aftersales.models import (
    AftersalesPolicy,
    AutoApprovalRule,
    Ticket,
    TicketEvent,
    TicketEventType,
    TicketStatus,
)
from aftersales.services import TicketLineInput
from aftersales.tasks import escalate_stale_tickets_task
from oms.celery import app
from pipeline import tickets as tickets_flow
from tests.aftersales.helpers import ship_order

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def policy(**overrides) -> AftersalesPolicy:
    values = {"first_response_minutes": 30, "work_starts": time(9), "work_ends": time(18), "escalate_after_hours": 48}
    return AftersalesPolicy(**{**values, **overrides})


# --- First response due, in working hours -------------------------------------------------------------------

@pytest.mark.parametrize(("opened", "due"), [
    (shanghai(2026, 12, 3, 10, 0), shanghai(2026, 12, 3, 10, 30)),     # inside the hours
    (shanghai(2026, 12, 3, 17, 50), shanghai(2026, 12, 4, 9, 20)),     # 10 minutes today, 20 tomorrow
    (shanghai(2026, 12, 3, 17, 30), shanghai(2026, 12, 3, 18, 0)),     # due exactly at closing time
    (shanghai(2026, 12, 3, 18, 0), shanghai(2026, 12, 4, 9, 30)),      # at closing time
    (shanghai(2026, 12, 3, 22, 0), shanghai(2026, 12, 4, 9, 30)),      # after hours
    (shanghai(2026, 12, 3, 23, 59), shanghai(2026, 12, 4, 9, 30)),     # across midnight
    (shanghai(2026, 12, 4, 1, 0), shanghai(2026, 12, 4, 9, 30)),       # before opening
    (shanghai(2026, 12, 5, 17, 50), shanghai(2026, 12, 6, 9, 20)),     # Saturday into Sunday: every day works
    (shanghai(2026, 12, 31, 20, 0), shanghai(2027, 1, 1, 9, 30)),      # into a new year
])
def test_the_first_response_is_due_thirty_working_minutes_later(opened, due):
    result = selectors.first_response_due(policy=policy(), opened_at=opened)
    assert result == due
    assert result.tzinfo == UTC


def test_an_opening_time_in_utc_counts_in_shanghai_hours():
    # 09:50 UTC is 17:50 in Shanghai.
    result = selectors.first_response_due(policy=policy(), opened_at=datetime(2026, 12, 3, 9, 50, tzinfo=UTC))
    assert result == datetime(2026, 12, 4, 1, 20, tzinfo=UTC)  # 09:20 Shanghai


@pytest.mark.parametrize(("overrides", "opened", "due"), [
    # 2 hours, 08:00–22:00: 30 minutes today, 90 tomorrow.
    ({"first_response_minutes": 120, "work_starts": time(8), "work_ends": time(22)},
     shanghai(2026, 12, 3, 21, 30), shanghai(2026, 12, 4, 9, 30)),
    # 10 working hours on a 9-hour day: all of tomorrow and an hour of the day after.
    ({"first_response_minutes": 600}, shanghai(2026, 12, 3, 19, 0), shanghai(2026, 12, 5, 10, 0)),
    # Exactly two working days: the end of the second day, not the start of the third.
    ({"first_response_minutes": 1080}, shanghai(2026, 12, 3, 9, 0), shanghai(2026, 12, 4, 18, 0)),
    # A night shift 20:00–02:00: opened inside it, and opened after it.
    ({"work_starts": time(20), "work_ends": time(2)}, shanghai(2026, 12, 4, 1, 45), shanghai(2026, 12, 4, 20, 15)),
    ({"work_starts": time(20), "work_ends": time(2)}, shanghai(2026, 12, 3, 23, 50), shanghai(2026, 12, 4, 0, 20)),
    # Round the clock (start = end).
    ({"work_starts": time(0), "work_ends": time(0)}, shanghai(2026, 12, 3, 3, 0), shanghai(2026, 12, 3, 3, 30)),
])
def test_a_store_policy_sets_its_own_hours_and_target(overrides, opened, due):
    assert selectors.first_response_due(policy=policy(**overrides), opened_at=opened) == due


@pytest.mark.django_db
def test_a_store_without_a_policy_gets_the_defaults_and_one_with_a_policy_its_own(taobao_store):
    default = selectors.policy_for_store(taobao_store.pk)
    assert default.pk is None and not AftersalesPolicy.objects.exists()
    assert (default.first_response_minutes, default.work_starts, default.work_ends, default.escalate_after_hours) == (
        30, time(9), time(18), 48)
    AftersalesPolicy.objects.create(store=taobao_store, first_response_minutes=15, escalate_after_hours=24)
    own = selectors.policy_for_store(taobao_store.pk)
    assert (own.first_response_minutes, own.work_starts, own.work_ends, own.escalate_after_hours) == (
        15, time(9), time(18), 24)


@pytest.mark.django_db
def test_a_new_ticket_is_due_by_its_store_policy(make_order, taobao_store):
    # A one-hour working window starting two hours from now: the answer is due 30 minutes into it, whatever
    # the time the test runs.
    starts = (timezone.now().astimezone(SHANGHAI) + timedelta(hours=2)).replace(second=0, microsecond=0)
    AftersalesPolicy.objects.create(store=taobao_store, first_response_minutes=30, work_starts=starts.time(),
                                    work_ends=(starts + timedelta(hours=1)).time())
    order = make_order()
    tea = order.lines.get(line_no=1)
    ticket = services.ticket_create(order_id=order.pk, type="refund_only", reason="quality",
                                    lines=[TicketLineInput(tea.pk, 1, Decimal("20.00"))])
    assert Ticket.objects.get(pk=ticket.pk).due_at == starts + timedelta(minutes=30)


# --- Auto-approval ------------------------------------------------------------------------------------------

@pytest.fixture
def order(make_order):
    """Shipped: 2 × TEA-LJ-250G at 188.00, 1 × CUP-CER-350 at 39.90 less 5.00, shipping 10.00."""
    return ship_order(make_order())


@pytest.fixture
def refund_rule(taobao_store):
    return AutoApprovalRule.objects.create(store=taobao_store, type="refund_only", max_amount=Decimal("50.00"))


def refund_only(order, amount: str, shipping: str = "0", type: str = "refund_only", line_no: int = 1) -> Ticket:
    """A ticket on one unit of a line (the tea line has two units, the cup line one)."""
    line = order.lines.get(line_no=line_no)
    return services.ticket_create(order_id=order.pk, type=type, reason="quality",
                                  lines=[TicketLineInput(line.pk, 1, Decimal(amount))],
                                  shipping_amount=Decimal(shipping))


def events_of(ticket) -> list[tuple]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("id").values_list("type", "actor_label"))


def auto_check(ticket) -> dict:
    checks = [check for check in Ticket.objects.get(pk=ticket.pk).checks if check["check"] == "auto_approval"]
    assert len(checks) == 1
    return checks[0]


@pytest.mark.django_db
def test_a_refund_only_up_to_the_limit_is_approved_at_once_without_counting_as_a_response(order, refund_rule):
    ticket = refund_only(order, "40.00", shipping="10.00")  # 50.00 in all: the limit itself

    with translation.override("en"):
        approved = policies.ticket_auto_approve(ticket_id=ticket.pk)

    assert approved is not None and approved.pk == ticket.pk
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.status == TicketStatus.APPROVED
    assert stored.approved_amount == Decimal("50.00")
    assert stored.first_response_at is None  # nobody answered yet
    assert events_of(ticket) == [(TicketEventType.CREATED, "system"),
                                 (TicketEventType.STATUS_CHANGED, "auto-approval rule"),
                                 (TicketEventType.AUTO_APPROVED, "auto-approval rule")]
    event = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.AUTO_APPROVED)
    assert event.actor is None
    assert event.data == {"rule": refund_rule.pk, "type": "refund_only", "max_amount": "50.00", "amount": "50.00"}
    assert event.reason == "“Refund only” up to 50.00"
    assert auto_check(ticket) == {"check": "auto_approval", "ok": True,
                                  "message": "Approved at once by the rule “Refund only” up to 50.00."}
    # A second call finds it approved and leaves it alone.
    assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None
    assert TicketEvent.objects.filter(ticket=ticket).count() == 3


@pytest.mark.django_db
def test_above_the_limit_waits_for_a_person_with_the_reason_stored(order, refund_rule):
    ticket = refund_only(order, "40.01", shipping="10.00")

    with translation.override("en"):
        assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None

    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.status, stored.approved_amount) == (TicketStatus.REQUESTED, None)
    assert auto_check(ticket) == {"check": "auto_approval", "ok": False,
                                  "message": "Asks for 50.01, above the rule's 50.00 limit: a person decides."}
    assert events_of(ticket) == [(TicketEventType.CREATED, "system")]


@pytest.mark.django_db
def test_the_reason_reads_in_chinese_for_a_chinese_desk(order, refund_rule):
    ticket = refund_only(order, "60.00")
    with translation.override("zh-hans"):
        policies.ticket_auto_approve(ticket_id=ticket.pk)
    assert auto_check(ticket)["message"] == "申请金额 60.00，超过规则上限 50.00，需人工处理。"


@pytest.mark.django_db
def test_a_type_without_a_rule_waits_and_says_so(order, refund_rule):
    ticket = refund_only(order, "10.00", type="exchange")
    with translation.override("en"):
        assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.REQUESTED
    assert auto_check(ticket)["message"] == "No auto-approval rule for “Exchange” on this store: a person decides."
    assert events_of(ticket) == [(TicketEventType.CREATED, "system")]


@pytest.mark.django_db
def test_a_failed_check_blocks_the_rule(order, refund_rule):
    ticket = refund_only(order, "10.00")
    checks = [*ticket.checks, {"check": "platform", "ok": False, "message": "The platform has not confirmed."}]
    Ticket.objects.filter(pk=ticket.pk).update(checks=checks)
    with translation.override("en"):
        assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.status == TicketStatus.REQUESTED
    assert stored.checks[:-1] == checks  # the earlier checks are kept as they were
    assert auto_check(ticket)["message"] == "An automatic check did not pass: a person decides."


@pytest.mark.django_db
def test_a_disabled_rule_approves_nothing(order, refund_rule):
    AutoApprovalRule.objects.filter(pk=refund_rule.pk).update(enabled=False)
    ticket = refund_only(order, "10.00")
    with translation.override("en"):
        assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.REQUESTED
    assert auto_check(ticket) == {"check": "auto_approval", "ok": False,
                                  "message": "The auto-approval rule for “Refund only” is switched off: "
                                             "a person decides."}
    assert not TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.AUTO_APPROVED).exists()


@pytest.mark.django_db
def test_opening_a_ticket_runs_the_rule_and_an_approved_return_waits_for_its_parcel(order, taobao_store):
    AutoApprovalRule.objects.create(store=taobao_store, type="return_refund", max_amount=Decimal("200.00"))
    tea = order.lines.get(line_no=1)
    ticket = tickets_flow.ticket_open(order_id=order.pk, type="return_refund", reason="size",
                                      lines=[TicketLineInput(tea.pk, 1)])
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.status, stored.approved_amount, stored.first_response_at) == (
        TicketStatus.AWAITING_RETURN, Decimal("188.00"), None)
    assert [event_type for event_type, _label in events_of(ticket)] == [
        TicketEventType.CREATED, TicketEventType.STATUS_CHANGED, TicketEventType.AUTO_APPROVED,
        TicketEventType.STATUS_CHANGED]


@pytest.mark.django_db
def test_a_rule_of_another_store_does_not_apply(order, manual_store):
    AutoApprovalRule.objects.create(store=manual_store, type="refund_only", max_amount=Decimal("1000.00"))
    ticket = refund_only(order, "10.00")
    assert policies.ticket_auto_approve(ticket_id=ticket.pk) is None
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.REQUESTED


# --- Escalation ---------------------------------------------------------------------------------------------

def quiet_for(ticket, delta: timedelta) -> None:
    """Pretend the ticket's last event was ``delta`` ago (test setup: the clock cannot be waited out). An earlier
    escalation moves back with it, as it would have happened that much earlier too."""
    stored = Ticket.objects.get(pk=ticket.pk)
    shift = stored.last_activity_at - (timezone.now() - delta)
    Ticket.objects.filter(pk=ticket.pk).update(
        last_activity_at=stored.last_activity_at - shift,
        escalated_at=stored.escalated_at - shift if stored.escalated_at else None)


def escalations(ticket) -> int:
    return TicketEvent.objects.filter(ticket=ticket, type=TicketEventType.ESCALATED).count()


@pytest.mark.django_db
def test_48_hours_without_an_update_escalates_once(order):
    ticket = refund_only(order, "10.00")
    waiting = refund_only(order, "10.00")
    quiet_for(ticket, timedelta(hours=48, minutes=1))
    quiet_for(waiting, timedelta(hours=47, minutes=59))

    assert policies.tickets_escalate_stale() == 1

    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.escalated_at is not None and stored.escalated_at == stored.last_activity_at
    event = TicketEvent.objects.get(ticket=ticket, type=TicketEventType.ESCALATED)
    assert (event.actor, event.actor_label, event.data, event.from_status, event.to_status) == (
        None, "SLA", {"hours": 48}, "", "")
    assert Ticket.objects.get(pk=waiting.pk).escalated_at is None and escalations(waiting) == 0
    assert selectors.tickets_escalated_count() == 1
    assert list(selectors.tickets_for_queue(escalated=True)) == [stored]
    assert list(selectors.tickets_for_queue(escalated=False)) == [Ticket.objects.get(pk=waiting.pk)]
    # Later sweeps, even days later, do not escalate it again while nothing happens (the other one's turn comes).
    assert policies.tickets_escalate_stale() == 0
    assert policies.tickets_escalate_stale(now=timezone.now() + timedelta(days=5)) == 1
    assert policies.tickets_escalate_stale(now=timezone.now() + timedelta(days=10)) == 0
    assert (escalations(ticket), escalations(waiting)) == (1, 1)


@pytest.mark.django_db
def test_an_event_after_the_escalation_ends_it_and_restarts_the_clock(order, role_users):
    ticket = refund_only(order, "10.00")
    quiet_for(ticket, timedelta(hours=49))
    assert policies.tickets_escalate_stale() == 1

    services.ticket_note_add(ticket_id=ticket.pk, text="已联系买家", actor=role_users["customer_service"])
    assert selectors.tickets_escalated_count() == 0
    assert policies.tickets_escalate_stale() == 0  # the note is fresh
    assert policies.tickets_escalate_stale(now=timezone.now() + timedelta(hours=47)) == 0

    quiet_for(ticket, timedelta(hours=48, seconds=1))
    assert policies.tickets_escalate_stale() == 1
    assert escalations(ticket) == 2
    assert selectors.tickets_escalated_count() == 1


@pytest.mark.django_db
def test_closed_and_finished_tickets_never_escalate(order, role_users):
    closed = refund_only(order, "10.00")
    services.ticket_transition(ticket_id=closed.pk, name="close", actor=role_users["customer_service"])
    rejected = refund_only(order, "10.00")
    services.ticket_transition(ticket_id=rejected.pk, name="reject", actor=role_users["customer_service"])
    for ticket in (closed, rejected):
        quiet_for(ticket, timedelta(days=30))

    assert policies.tickets_escalate_stale() == 0
    assert escalations(closed) == escalations(rejected) == 0
    assert not Ticket.objects.filter(escalated_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_store_policy_sets_its_escalation_time_and_others_keep_48_hours(order, make_order, manual_store,
                                                                           taobao_store):
    AftersalesPolicy.objects.create(store=taobao_store, escalate_after_hours=2)
    fast = refund_only(order, "10.00")
    default = refund_only(make_order(store=manual_store), "10.00")
    for ticket in (fast, default):
        quiet_for(ticket, timedelta(hours=3))

    assert policies.tickets_escalate_stale() == 1
    assert (escalations(fast), escalations(default)) == (1, 0)
    assert TicketEvent.objects.get(ticket=fast, type=TicketEventType.ESCALATED).data == {"hours": 2}


@pytest.mark.django_db
def test_the_sweep_works_in_batches(make_order):
    tickets = [refund_only(make_order(), "1.00", line_no=line_no) for _ in range(2) for line_no in (1, 2)]
    tickets.append(refund_only(make_order(), "1.00"))
    for ticket in tickets:
        quiet_for(ticket, timedelta(hours=50))
    assert policies.tickets_escalate_stale(batch_size=2) == 5
    assert [escalations(ticket) for ticket in tickets] == [1] * 5


@pytest.mark.django_db
def test_the_beat_runs_the_sweep_task_every_five_minutes(order):
    entry = settings.CELERY_BEAT_SCHEDULE["escalate-stale-tickets"]
    assert entry == {"task": "aftersales.tasks.escalate_stale_tickets_task", "schedule": 300.0}
    assert entry["task"] in app.tasks
    ticket = refund_only(order, "10.00")
    quiet_for(ticket, timedelta(hours=49))
    assert escalate_stale_tickets_task() == 1
    assert escalate_stale_tickets_task() == 0


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_escalate_each_ticket_once(make_order):
    tickets = [refund_only(make_order(), "1.00", line_no=line_no) for _ in range(3) for line_no in (1, 2)]
    for ticket in tickets:
        quiet_for(ticket, timedelta(hours=49))
    barrier = threading.Barrier(2)
    counts, errors = [], []

    def sweep():
        try:
            barrier.wait()
            counts.append(policies.tickets_escalate_stale(batch_size=3))
        except Exception as error:  # noqa: BLE001 - the thread's failure is reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(counts) == 6
    assert [escalations(ticket) for ticket in tickets] == [1] * 6


# --- Queue selectors ----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_overdue_means_open_unanswered_and_past_its_due_time(order, role_users, refund_rule):
    late = refund_only(order, "10.00", type="exchange")
    on_time = refund_only(order, "10.00", type="exchange")
    auto = refund_only(order, "10.00", line_no=2)
    policies.ticket_auto_approve(ticket_id=auto.pk)
    past = timezone.now() - timedelta(minutes=1)
    Ticket.objects.filter(pk__in=[late.pk, auto.pk]).update(due_at=past)
    now = timezone.now()

    assert {ticket.pk for ticket in selectors.tickets_for_queue(overdue=True)} == {late.pk, auto.pk}
    assert [ticket.pk for ticket in selectors.tickets_for_queue(overdue=False)] == [on_time.pk]
    assert selectors.ticket_is_overdue(Ticket.objects.get(pk=late.pk), now)
    assert not selectors.ticket_is_overdue(Ticket.objects.get(pk=on_time.pk), now)

    services.ticket_note_add(ticket_id=late.pk, text="在处理", actor=role_users["customer_service"])
    answered = Ticket.objects.get(pk=late.pk)
    assert not selectors.ticket_is_overdue(answered, now)
    services.ticket_transition(ticket_id=auto.pk, name="close", actor=None, actor_label="platform")
    assert [ticket.pk for ticket in selectors.tickets_for_queue(overdue=True)] == []  # closed is not overdue


@pytest.mark.django_db
def test_the_queue_filters_combine(order, make_order, manual_store, role_users):
    agent = role_users["customer_service"]
    mine = refund_only(order, "10.00")
    services.ticket_assign(ticket_id=mine.pk, owner=agent, actor=agent)
    exchange = refund_only(order, "10.00", type="exchange")
    elsewhere = refund_only(make_order(store=manual_store), "10.00")

    def pks(**filters):
        return sorted(ticket.pk for ticket in selectors.tickets_for_queue(**filters))

    assert pks(type="exchange") == [exchange.pk]
    assert pks(store_id=manual_store.pk) == [elsewhere.pk]
    assert pks(owner_id=agent.pk) == [mine.pk]
    assert pks(status="requested", type="refund_only") == sorted([mine.pk, elsewhere.pk])
    assert pks(status=["approved", "rejected"]) == []


@pytest.mark.django_db
def test_first_response_and_cycle_times(order):
    ticket = refund_only(order, "10.00")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert selectors.ticket_first_response_seconds(stored) is None
    assert selectors.ticket_cycle_seconds(stored) is None
    Ticket.objects.filter(pk=ticket.pk).update(first_response_at=stored.created_at + timedelta(minutes=12),
                                               closed_at=stored.created_at + timedelta(days=2, seconds=5))
    stored = Ticket.objects.get(pk=ticket.pk)
    assert selectors.ticket_first_response_seconds(stored) == 720
    assert selectors.ticket_cycle_seconds(stored) == 2 * 86400 + 5


# --- The managers' notice -----------------------------------------------------------------------------------

@pytest.fixture
def one_escalated(order):
    ticket = refund_only(order, "10.00")
    quiet_for(ticket, timedelta(hours=49))
    policies.tickets_escalate_stale()
    return ticket


def request_for(user):
    request = RequestFactory().get("/")
    request.user = user
    if user.is_authenticated:
        user.has_perm("aftersales.work_ticket")  # the page's own permission checks load the cache
    return request


@pytest.mark.django_db
def test_a_manager_gets_the_escalated_count(role_users, one_escalated, django_assert_num_queries):
    request = request_for(role_users["manager"])
    with django_assert_num_queries(2):  # the manager group, then one COUNT
        assert escalated_tickets(request) == {"escalated_tickets_count": 1}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["customer_service", "warehouse", "finance"])
def test_other_roles_get_nothing_and_run_no_query(role_users, one_escalated, django_assert_num_queries, role):
    request = request_for(role_users[role])
    with django_assert_num_queries(0):
        assert escalated_tickets(request) == {}


@pytest.mark.django_db
def test_an_admin_outside_the_manager_group_gets_nothing(role_users, one_escalated, django_assert_num_queries):
    request = request_for(role_users["admin"])
    with django_assert_num_queries(1):  # holds every permission, so only the group lookup tells
        assert escalated_tickets(request) == {}


@pytest.mark.django_db
def test_anonymous_visitors_get_nothing_and_run_no_query(django_assert_num_queries):
    request = request_for(AnonymousUser())
    with django_assert_num_queries(0):
        assert escalated_tickets(request) == {}


@pytest.mark.django_db
def test_every_page_of_a_manager_carries_the_count(client, role_users, one_escalated):
    client.force_login(role_users["manager"])
    response = client.get("/orders/")
    assert response.status_code == 200
    assert response.context["escalated_tickets_count"] == 1
    client.force_login(role_users["customer_service"])
    response = client.get("/orders/")
    assert response.status_code == 200
    assert "escalated_tickets_count" not in response.context
