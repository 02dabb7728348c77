"""The shared history-event base (oms.models.Event) and its one actor helper (oms.events)."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from fulfillment.models import ShipmentEvent
from oms.events import actor_fields, event_record
from oms.models import Event
from orders.events import event_order_note_added
from orders.models import OrderEvent, OrderEventType


def test_a_signed_in_user_is_the_actor_and_anyone_else_is_named_by_the_label():
    user = get_user_model()(username="ops")
    assert actor_fields(user, "api") == {"actor": user, "actor_label": ""}
    assert actor_fields(AnonymousUser(), "api") == {"actor": None, "actor_label": "api"}
    assert actor_fields(None, "channel") == {"actor": None, "actor_label": "channel"}
    assert actor_fields(None, "") == {"actor": None, "actor_label": "system"}


def test_order_and_shipment_events_share_the_base_fields_with_their_own_columns():
    shared = ["type", "actor", "actor_label", "from_status", "to_status", "reason", "data", "created_at"]
    for model in (OrderEvent, ShipmentEvent):
        assert issubclass(model, Event)
        assert set(shared) <= {field.name for field in model._meta.fields}
        assert model._meta.ordering == ["created_at", "id"]
        assert model._meta.get_field("actor").remote_field.related_name == "+"
    # The columns stay as they were made: shipment statuses 16 wide, order statuses 32, each with its choices.
    assert OrderEvent._meta.get_field("from_status").max_length == 32
    assert ShipmentEvent._meta.get_field("to_status").max_length == 16
    assert OrderEvent._meta.get_field("type").choices == OrderEventType.choices


@pytest.mark.django_db
def test_event_record_fills_the_actor_and_cuts_the_reason_to_its_column(make_order):
    order = make_order(paid=False)
    user = get_user_model().objects.create_user(username="desk")
    by_person = event_order_note_added(order=order, note="x" * 600, actor=user, actor_label="api")
    by_api = event_record(OrderEvent, order=order, type=OrderEventType.NOTE_ADDED, reason="short",
                          actor=AnonymousUser(), actor_label="api")
    by_person.refresh_from_db()
    by_api.refresh_from_db()
    assert (by_person.actor_id, by_person.actor_label, len(by_person.reason)) == (user.pk, "", 500)
    assert by_person.actor_display == "desk"
    assert (by_api.actor_id, by_api.actor_label, by_api.reason, by_api.data) == (None, "api", "short", {})
    assert by_api.actor_display == "api"
