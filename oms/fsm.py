"""Readers of django-fsm-2 transition metadata: the one place that knows where django-fsm keeps it."""

from django.db import models


def transition_meta(model_or_instance, name: str):
    """The django-fsm metadata of transition ``name`` (None when ``name`` is not a transition)."""
    model = model_or_instance if isinstance(model_or_instance, type) else type(model_or_instance)
    return getattr(getattr(model, name, None), "_django_fsm", None)


def transition_label(model_or_instance, name: str, state: str | None = None) -> str:
    """The translated button label of a transition (its ``custom={"label": …}``), else its name.

    With ``state`` the label declared for the transition from that state is read (a transition may
    declare several sources); without it, the first declared one.
    """
    meta = transition_meta(model_or_instance, name)
    if meta is None or not meta.transitions:
        return name
    transition = meta.get_transition(state) if state is not None else None
    if transition is None:
        transition = next(iter(meta.transitions.values()))
    return str(transition.custom.get("label", name))


def transitions_of(model: type[models.Model], field_name: str = "status") -> list:
    """Every declared transition of the model's FSM field."""
    return list(model._meta.get_field(field_name).get_all_transitions(model))
