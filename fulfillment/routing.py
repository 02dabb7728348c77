"""Routing decisions: which warehouse an order tries first and which carrier a shipment books, and why.

The functions here only read and decide; the services record the decisions. Warehouse rules choose
the first warehouse to try; stock has the last word (the inventory service reserves in the first
warehouse of the ranking that holds every line, else splits where the store allows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum
from django.utils.translation import gettext as _

from fulfillment.models import Carrier, CarrierRule, RoutingDecision, ServiceLevel, Shipment, WarehouseRule
from inventory.models import SKU, Warehouse
from orders.models import Order, OrderLine


@dataclass(frozen=True)
class OrderFacts:
    """What routing rules look at, read once per order."""

    store_id: int
    country: str
    province: str
    categories: frozenset[str]
    amount: Decimal
    priority: int
    service: str
    weight_grams: int


def order_facts(order: Order) -> OrderFacts:
    return order_facts_many([order])[order.pk]


def order_facts_many(orders) -> dict[int, OrderFacts]:
    """order_facts for a batch of orders: one read of their lines with the SKUs."""
    lines_of: dict[int, list[tuple]] = {order.pk: [] for order in orders}
    in_memory = [order for order in orders if "lines" in getattr(order, "_prefetched_objects_cache", {})]
    if in_memory:  # lines the batch just wrote: only their SKUs' facts are read
        lines = [line for order in in_memory for line in order.lines.all()]
        facts = {pk: (category, weight) for pk, category, weight in SKU.objects.filter(
            pk__in={line.sku_id for line in lines}).values_list("pk", "category", "weight_grams")}
        for line in lines:
            category, weight = facts.get(line.sku_id, ("", 0))
            lines_of[line.order_id].append((line.quantity, category, weight or 0))
    written = {order.pk for order in in_memory}
    rest = [order.pk for order in orders if order.pk not in written]
    for order_id, quantity, category, weight in (OrderLine.objects.filter(order_id__in=rest).values_list(
            "order_id", "quantity", "sku__category", "sku__weight_grams") if rest else ()):
        lines_of[order_id].append((quantity, category, weight or 0))
    return {order.pk: OrderFacts(
        store_id=order.store_id, country=order.receiver_country or "CN", province=order.receiver_province,
        categories=frozenset(category for _q, category, _w in lines_of[order.pk] if category),
        amount=order.total_amount, priority=order.priority, service=order.promised_service or ServiceLevel.STANDARD,
        weight_grams=sum(weight * quantity for quantity, _c, weight in lines_of[order.pk]),
    ) for order in orders}


def _common_match(rule, facts: OrderFacts) -> bool:
    return ((not rule.store_id or rule.store_id == facts.store_id)
            and (not rule.countries or facts.country in rule.countries)
            and (not rule.provinces or facts.province in rule.provinces)
            and (not rule.priorities or facts.priority in [int(p) for p in rule.priorities]))


def warehouse_rule_matches(rule: WarehouseRule, facts: OrderFacts) -> bool:
    return (_common_match(rule, facts)
            and (not rule.categories or bool(facts.categories & set(rule.categories)))
            and (rule.min_amount is None or facts.amount >= rule.min_amount)
            and (rule.max_amount is None or facts.amount <= rule.max_amount))


def carrier_rule_matches(rule: CarrierRule, facts: OrderFacts, *, warehouse_code: str, weight_grams: int) -> bool:
    return (_common_match(rule, facts)
            and (not rule.services or facts.service in rule.services)
            and (not rule.warehouses or warehouse_code in rule.warehouses)
            and (rule.min_weight_grams is None or weight_grams >= rule.min_weight_grams)
            and (rule.max_weight_grams is None or weight_grams <= rule.max_weight_grams))


@dataclass
class WarehouseRoute:
    ranking: list[int]  # warehouse ids, the first is tried first
    rule: WarehouseRule | None
    reason: str


def active_warehouse_rules() -> list[WarehouseRule]:
    return list(WarehouseRule.objects.filter(active=True).select_related("warehouse").order_by("position", "id"))


def routable_warehouses():
    """The warehouses orders may ship from: active ones, never a quarantine warehouse (returned goods that
    cannot be sold as new)."""
    return Warehouse.objects.filter(active=True, is_quarantine=False)


def active_warehouses() -> list[Warehouse]:
    return list(routable_warehouses())


def warehouse_route(facts: OrderFacts, *, rules: list[WarehouseRule] | None = None,
                    warehouses: list[Warehouse] | None = None) -> WarehouseRoute:
    """Rank the active warehouses: the first matching rule's warehouse, then by region and priority."""
    warehouses = warehouses if warehouses is not None else active_warehouses()
    by_region = sorted(warehouses, key=lambda w: (0 if facts.province and facts.province in (w.provinces or []) else 1,
                                                  w.priority, w.pk))
    ranking = [w.pk for w in by_region]
    for rule in rules if rules is not None else active_warehouse_rules():
        if rule.warehouse_id in ranking and warehouse_rule_matches(rule, facts):
            ranking.remove(rule.warehouse_id)
            return WarehouseRoute([rule.warehouse_id, *ranking], rule,
                                  _("Rule “%(rule)s” sends it to %(warehouse)s.") % {
                                      "rule": rule.name, "warehouse": rule.warehouse.name})
    first = by_region[0] if by_region else None
    reason = (_("No rule matched: %(warehouse)s serves %(province)s.") % {"warehouse": first.name,
                                                                         "province": facts.province}
              if first and facts.province in (first.provinces or [])
              else _("No rule matched: warehouses by priority."))
    return WarehouseRoute(ranking, None, reason)


def warehouse_outcome_reason(route: WarehouseRoute, reserved_in: list[int], names: dict[int, str]) -> str:
    """Say what stock decided after the rules ranked the warehouses."""
    chosen = ", ".join(names.get(w, str(w)) for w in reserved_in)
    if len(reserved_in) > 1:
        return _("%(route)s No single warehouse holds every line: split across %(chosen)s.") % {
            "route": route.reason, "chosen": chosen}
    if route.ranking and reserved_in and reserved_in[0] != route.ranking[0]:
        return _("%(route)s %(first)s lacks stock: %(chosen)s holds every line.") % {
            "route": route.reason, "first": names.get(route.ranking[0], ""), "chosen": chosen}
    return _("%(route)s %(chosen)s holds every line.") % {"route": route.reason, "chosen": chosen}


@dataclass
class CarrierRoute:
    carrier: Carrier | None
    service: str
    rule: CarrierRule | None
    cost: Decimal | None
    reason: str
    alternatives: list[tuple[str, Decimal]] = field(default_factory=list)


def active_carrier_rules() -> list[CarrierRule]:
    return list(CarrierRule.objects.filter(active=True, carrier__active=True).select_related("carrier")
                .order_by("position", "id"))


def active_carriers() -> list[Carrier]:
    return list(Carrier.objects.filter(active=True))


def carrier_route(facts: OrderFacts, *, warehouse_code: str, weight_grams: int,
                  rules: list[CarrierRule] | None = None, carriers: list[Carrier] | None = None) -> CarrierRoute:
    """The first matching carrier rule; without one, the cheapest active carrier offering the service."""
    for rule in rules if rules is not None else active_carrier_rules():
        if carrier_rule_matches(rule, facts, warehouse_code=warehouse_code, weight_grams=weight_grams):
            return CarrierRoute(rule.carrier, rule.service, rule, rule.carrier.cost_for(weight_grams),
                                _("Rule “%(rule)s”: %(carrier)s %(service)s.") % {
                                    "rule": rule.name, "carrier": rule.carrier.name,
                                    "service": ServiceLevel(rule.service).label})
    carriers = carriers if carriers is not None else list(Carrier.objects.filter(active=True))
    offering = [c for c in carriers if c.offers(facts.service)] or [c for c in carriers if c.offers("standard")]
    if not offering:
        return CarrierRoute(None, facts.service, None, None, _("No active carrier: choose one by hand."))
    priced = sorted(((c.cost_for(weight_grams), c.code, c) for c in offering), key=lambda item: item[:2])
    cost, _code, carrier = priced[0]
    service = facts.service if carrier.offers(facts.service) else ServiceLevel.STANDARD
    return CarrierRoute(carrier, service, None, cost,
                        _("No rule matched: %(carrier)s is the cheapest at %(cost)s for %(weight)s g.") % {
                            "carrier": carrier.name, "cost": cost, "weight": weight_grams},
                        alternatives=[(c.code, price) for price, _c, c in priced[1:4]])


# --- Dry run --------------------------------------------------------------------------------------

@dataclass
class DryRunRow:
    order_id: int
    order_number: str
    decided_first_choice: str
    decided_warehouse: str
    decided_warehouse_rule: str
    would_warehouse: str
    would_warehouse_rule: str
    decided_carrier: str
    decided_carrier_rule: str
    would_carrier: str
    would_carrier_rule: str

    @property
    def warehouse_differs(self) -> bool:
        return (self.decided_first_choice, self.decided_warehouse_rule) != (self.would_warehouse,
                                                                              self.would_warehouse_rule)

    @property
    def carrier_differs(self) -> bool:
        return (self.decided_carrier, self.decided_carrier_rule) != (self.would_carrier, self.would_carrier_rule)

    @property
    def differs(self) -> bool:
        return self.warehouse_differs or self.carrier_differs


def _with_tried(active: list, tried) -> list:
    """Today's active rules plus switched-off ones being tried, each at its place in the order."""
    return sorted([*active, *(rule for rule in tried if not rule.active)], key=lambda rule: (rule.position, rule.pk))


def routing_dry_run(*, limit: int = 100, try_warehouse_rules=(), try_carrier_rules=()) -> list[DryRunRow]:
    """Route the last ``limit`` routed orders with today's rules and set that beside what was decided.

    The warehouse compared is the first choice of the ranking (stock is not re-checked: past orders'
    stock has moved on since), against the warehouse the order was actually routed to. Switched-off
    rules passed in ``try_*_rules`` count as if they were on: a new rule is tried here before it is
    switched on.
    """
    decided = {}
    # What the rules decided; a hand override is a person's choice, not a rule's, so it is not compared.
    for decision in (RoutingDecision.objects.filter(kind="warehouse", overridden=False).order_by("-created_at", "-id")
                     .select_related("order")[: limit * 3]):
        decided.setdefault(decision.order_id, decision)
        if len(decided) >= limit:
            break
    carrier_decisions = {}
    for decision in (RoutingDecision.objects.filter(kind="carrier", overridden=False, order_id__in=list(decided))
                     .select_related("carrier").order_by("created_at", "id")):
        carrier_decisions[decision.order_id] = decision  # the latest wins
    warehouses = active_warehouses()
    names = {w.pk: w.code for w in Warehouse.objects.all()}
    rules = _with_tried(active_warehouse_rules(), try_warehouse_rules)
    carrier_rules = _with_tried(active_carrier_rules(), try_carrier_rules)
    carriers = list(Carrier.objects.filter(active=True))
    weights = dict(Shipment.objects.filter(routing_decisions__order_id__in=list(decided))
                   .values_list("routing_decisions__order_id").annotate(w=Sum("expected_weight_grams")))
    rows = []
    orders = Order.objects.in_bulk(list(decided))
    skus = {s.pk: s for s in SKU.objects.filter(pk__in=orders_sku_ids(orders.values()))}
    for order_id, decision in decided.items():
        order = orders[order_id]
        facts = _facts_with(order, skus)
        route = warehouse_route(facts, rules=rules, warehouses=warehouses)
        first = names.get(route.ranking[0], "") if route.ranking else ""
        chosen = "+".join(names.get(w, "?") for w in decision.warehouse_ids)
        carrier_decision = carrier_decisions.get(order_id)
        would_carrier = carrier_route(facts, warehouse_code=first, weight_grams=weights.get(order_id, facts.weight_grams),
                                      rules=carrier_rules, carriers=carriers)
        rows.append(DryRunRow(
            order_id=order_id, order_number=order.number,
            decided_first_choice=names.get(decision.preferred_warehouse_id, ""),
            decided_warehouse=chosen, decided_warehouse_rule=decision.rule_name,
            would_warehouse=first,
            would_warehouse_rule=route.rule.name if route.rule else "",
            decided_carrier=carrier_decision.carrier.code if carrier_decision and carrier_decision.carrier else "",
            decided_carrier_rule=carrier_decision.rule_name if carrier_decision else "",
            would_carrier=would_carrier.carrier.code if would_carrier.carrier else "",
            would_carrier_rule=would_carrier.rule.name if would_carrier.rule else "",
        ))
    return rows


def orders_sku_ids(orders) -> set[int]:
    return set(OrderLine.objects.filter(order__in=list(orders), sku__isnull=False).values_list("sku_id", flat=True))


def _facts_with(order: Order, skus: dict[int, SKU]) -> OrderFacts:
    lines = list(order.lines.all())
    return OrderFacts(
        store_id=order.store_id, country=order.receiver_country or "CN", province=order.receiver_province,
        categories=frozenset(skus[line.sku_id].category for line in lines
                             if line.sku_id in skus and skus[line.sku_id].category),
        amount=order.total_amount, priority=order.priority, service=order.promised_service or ServiceLevel.STANDARD,
        weight_grams=sum((skus[line.sku_id].weight_grams if line.sku_id in skus else 0) * line.quantity
                         for line in lines),
    )
