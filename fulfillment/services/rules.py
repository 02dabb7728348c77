"""Routing rules as configuration: save, switch on and off, reorder."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from fulfillment.exceptions import RoutingInvalid
from fulfillment.models import (
    CarrierRule,
    WarehouseRule,
)
from oms.locks import lock_many, lock_one

# --- Routing rules (configuration) ------------------------------------------------------------------

# Positions are renumbered in steps of 10 on every move, leaving room for hand edits in the admin.
RULE_POSITION_STEP = 10


def routing_rule_save(*, rule: WarehouseRule | CarrierRule) -> WarehouseRule | CarrierRule:
    """Save a rule from its form; a new one goes last (two saved at once may share a position: the older wins).

    A new rule starts switched off: it routes no order until someone has seen in the dry run what it would
    change and switches it on."""
    if rule.pk is None:
        last = type(rule).objects.order_by("-position").values_list("position", flat=True).first()
        rule.position = (last or 0) + RULE_POSITION_STEP
        rule.active = False
    rule.save()
    return rule


def routing_rule_delete(*, rule: WarehouseRule | CarrierRule) -> None:
    """Delete a rule; decisions it made keep its name (RoutingDecision.rule_name) and lose only the link."""
    rule.delete()


def routing_rule_toggle(*, model: type[WarehouseRule] | type[CarrierRule], rule_id: int):
    """Switch a rule on or off; decisions already taken keep the rule's name."""
    with transaction.atomic():
        try:
            rule = lock_one(model, rule_id)
        except model.DoesNotExist:
            raise RoutingInvalid(_("The rule does not exist."), code="rule_not_found", http_status=404) from None
        rule.active = not rule.active
        rule.save(update_fields=["active", "updated_at"])
        return rule


def routing_rule_move(*, model: type[WarehouseRule] | type[CarrierRule], rule_id: int, direction: str):
    """Swap a rule with its neighbour above or below, and renumber every rule of its kind."""
    if direction not in ("up", "down"):
        raise RoutingInvalid(_("A rule moves up or down."), code="direction_invalid")
    with transaction.atomic():
        # Locked in pk order (the project's lock order), then ordered as routing reads them.
        rules = sorted(lock_many(model, model.objects.values_list("pk", flat=True)), key=lambda r: (r.position, r.pk))
        index = next((i for i, r in enumerate(rules) if r.pk == rule_id), None)
        if index is None:
            raise RoutingInvalid(_("The rule does not exist."), code="rule_not_found", http_status=404)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(rules):
            rules[index], rules[other] = rules[other], rules[index]
        for number, rule in enumerate(rules, start=1):
            if rule.position != number * RULE_POSITION_STEP:
                rule.position = number * RULE_POSITION_STEP
                rule.save(update_fields=["position", "updated_at"])
        return rules
