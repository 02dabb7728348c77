"""Mermaid state diagrams drawn from a model's django-fsm transitions (orders, parcels, print jobs)."""

from django.db import models
from django.utils.translation import override


def fsm_edges(model: type[models.Model], field_name: str = "status") -> list[tuple[str, str, str]]:
    """(source, target, transition name) for every declared transition, in a stable order."""
    field = model._meta.get_field(field_name)
    return sorted({(str(t.source), str(t.target), t.name) for t in field.get_all_transitions(model)})


def fsm_mermaid(*, title: str, intro: list[str], model: type[models.Model], choices: type[models.TextChoices],
                initial: str, terminals: list[str], outro: list[str] = (), field_name: str = "status") -> str:
    with override("en"):
        labels = {value: str(label) for value, label in choices.choices}
    lines = [f"# {title}", "", *intro, "", "```mermaid", "stateDiagram-v2", f"    [*] --> {initial}"]
    lines += [f"    {value} : {value} ({label})" for value, label in labels.items()]
    lines += [f"    {source} --> {target} : {name}" for source, target, name in fsm_edges(model, field_name)]
    lines += [f"    {terminal} --> [*]" for terminal in terminals]
    lines += ["```", "", *outro]
    return "\n".join(lines) + ("\n" if outro else "")
