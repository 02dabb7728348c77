"""The one writer of history rows: fills the actor fields of any ``oms.models.Event`` the same way."""

from __future__ import annotations

from typing import Any, TypeVar

from oms.bulk import rows_insert
from oms.models import Event

E = TypeVar("E", bound=Event)


def actor_fields(actor: Any, actor_label: str = "system") -> dict[str, Any]:
    """A signed-in user is the actor; anyone else (anonymous, a task, a platform) is named by ``actor_label``."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_label": ""}
    return {"actor": None, "actor_label": actor_label or "system"}


def event_record(model: type[E], *, actor: Any = None, actor_label: str = "system", **fields: Any) -> E:
    """Write one ``model`` row in the caller's transaction; ``reason`` is cut to what the column holds."""
    if "reason" in fields:
        fields["reason"] = str(fields["reason"])[: model._meta.get_field("reason").max_length]
    return model.objects.create(**fields, **actor_fields(actor, actor_label))


def event_build(model: type[E], *, actor: Any = None, actor_label: str = "system", **fields: Any) -> E:
    """An unsaved ``model`` row filled like event_record's, for events_record_many."""
    if "reason" in fields:
        fields["reason"] = str(fields["reason"])[: model._meta.get_field("reason").max_length]
    return model(**fields, **actor_fields(actor, actor_label))


def events_record_many(rows: list[E]) -> list[E]:
    """Write a batch's events of one model in one INSERT, in the order given (their ids keep the timeline's order)."""
    if not rows:
        return rows
    return rows_insert(rows)
