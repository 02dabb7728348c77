"""Fulfilment pages: routing rules (warehouse and carrier, ordered and switchable), carrier accounts, and the
dry run of today's rules against past orders' decisions.

Rules and carriers are configuration that staff edit like the admin does (ModelForms); editing them
changes no order or parcel, so the writes stay here rather than in fulfillment.services.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from fulfillment import services
from fulfillment.forms import CarrierForm, CarrierRuleForm, DryRunForm, WarehouseRuleForm, config_keys_summary
from fulfillment.models import Carrier, CarrierRule, WarehouseRule
from fulfillment.routing import routing_dry_run

EDIT = "fulfillment.edit_routing_rules"
RULE_KINDS = {
    "warehouse": (WarehouseRule, WarehouseRuleForm, gettext_lazy("warehouse rule")),
    "carrier": (CarrierRule, CarrierRuleForm, gettext_lazy("carrier rule")),
}


def _kind(kind: str):
    try:
        return RULE_KINDS[kind]
    except KeyError:
        raise Http404 from None


@login_required
@permission_required(EDIT, raise_exception=True)
def routing_rules(request: HttpRequest) -> HttpResponse:
    warehouse_rules = list(
        WarehouseRule.objects.select_related("warehouse", "store").order_by("position", "id")
    )
    carrier_rules = list(CarrierRule.objects.select_related("carrier", "store").order_by("position", "id"))
    return render(
        request,
        "fulfillment/routing_rules.html",
        {
            "warehouse_rules": warehouse_rules,
            "carrier_rules": carrier_rules,
        },
    )


@login_required
@permission_required(EDIT, raise_exception=True)
def rule_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    model, form_class, label = _kind(kind)
    rule = get_object_or_404(model, pk=pk) if pk else None
    form = form_class(request.POST or None, instance=rule)
    if rule is None:
        form.fields.pop("active")  # a new rule starts switched off (routing_rule_save): no box that would lie
    if request.method == "POST" and form.is_valid():
        saved = services.routing_rule_save(rule=form.save(commit=False))
        if rule is None:
            messages.success(request, _("Rule “%(name)s” saved, switched off. Below: the recent orders it would "
                                        "route differently. Switch it on under Routing rules when that is right.")
                             % {"name": saved.name})
            return redirect(f"{reverse('fulfillment:routing-dry-run')}?{kind}_rule={saved.pk}")
        messages.success(request, _("Rule “%(name)s” saved.") % {"name": saved.name})
        return redirect("fulfillment:routing-rules")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "fulfillment/rule_form.html",
        {
            "form": form,
            "rule": rule,
            "kind": kind,
            "kind_label": label,
        },
        status=status,
    )


@login_required
@require_POST
@permission_required(EDIT, raise_exception=True)
def rule_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    model, _form, _label = _kind(kind)
    rule = get_object_or_404(model, pk=pk)
    services.routing_rule_delete(rule=rule)
    messages.success(request, _("Rule “%(name)s” deleted.") % {"name": rule.name})
    return redirect("fulfillment:routing-rules")


@login_required
@require_POST
@permission_required(EDIT, raise_exception=True)
def rule_toggle(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    model, _form, _label = _kind(kind)
    get_object_or_404(model, pk=pk)
    rule = services.routing_rule_toggle(model=model, rule_id=pk)
    if rule.active:
        messages.success(request, _("Rule “%(name)s” switched on.") % {"name": rule.name})
    else:
        messages.success(request, _("Rule “%(name)s” switched off.") % {"name": rule.name})
    return redirect("fulfillment:routing-rules")


@login_required
@require_POST
@permission_required(EDIT, raise_exception=True)
def rule_move(request: HttpRequest, kind: str, pk: int, direction: str) -> HttpResponse:
    """Swap the rule with its neighbour above or below and renumber every rule of its kind."""
    model, _form, _label = _kind(kind)
    if direction not in ("up", "down"):
        raise Http404
    get_object_or_404(model, pk=pk)
    services.routing_rule_move(model=model, rule_id=pk, direction=direction)
    return redirect(f"{reverse('fulfillment:routing-rules')}#{kind}-rule-{pk}")


# --- Carriers -------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT, raise_exception=True)
def carrier_list(request: HttpRequest) -> HttpResponse:
    rows = [{"carrier": c, "config": config_keys_summary(c.config)} for c in Carrier.objects.order_by("code")]
    return render(request, "fulfillment/carrier_list.html", {"rows": rows})


@login_required
@permission_required(EDIT, raise_exception=True)
def carrier_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    carrier = get_object_or_404(Carrier, pk=pk) if pk else None
    form = CarrierForm(request.POST or None, instance=carrier)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        messages.success(request, _("Carrier %(name)s saved.") % {"name": saved.name})
        return redirect("fulfillment:carriers")
    status = 400 if request.method == "POST" else 200
    return render(request, "fulfillment/carrier_form.html", {"form": form, "carrier": carrier}, status=status)


# --- Dry run --------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT, raise_exception=True)
def dry_run(request: HttpRequest) -> HttpResponse:
    """Today's active rules (and switched-off ones being tried) applied to the last N routed orders, beside what
    was decided for them. Only the orders that would be routed differently are listed unless all are asked for."""
    form = DryRunForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "fulfillment/routing_dry_run.html", {"form": form, "rows": None}, status=400)
    data = form.cleaned_data if form.is_bound else {}
    limit = data.get("limit") or 100
    show_all = bool(data.get("all"))
    rows = routing_dry_run(limit=limit, try_warehouse_rules=data.get("warehouse_rule") or (),
                           try_carrier_rules=data.get("carrier_rule") or ())
    toggle = request.GET.copy()
    if show_all:
        toggle.pop("all", None)
    else:
        toggle["all"] = "1"
    return render(
        request,
        "fulfillment/routing_dry_run.html",
        {
            "form": form if form.is_bound else DryRunForm(initial={"limit": limit}),
            "rows": rows,
            "shown_rows": rows if show_all else [row for row in rows if row.differs],
            "show_all": show_all,
            "toggle_query": toggle.urlencode(),
            "tried": [*(data.get("warehouse_rule") or ()), *(data.get("carrier_rule") or ())],
            "limit": limit,
            "differences": sum(1 for row in rows if row.differs),
            "warehouse_differences": sum(1 for row in rows if row.warehouse_differs),
            "carrier_differences": sum(1 for row in rows if row.carrier_differs),
        },
    )


urlpatterns: list = [
    path("routing/", routing_rules, name="routing-rules"),
    path("routing/dry-run/", dry_run, name="routing-dry-run"),
    path("routing/rules/<slug:kind>/new/", rule_edit, name="rule-create"),
    path("routing/rules/<slug:kind>/<int:pk>/", rule_edit, name="rule-edit"),
    path("routing/rules/<slug:kind>/<int:pk>/delete/", rule_delete, name="rule-delete"),
    path("routing/rules/<slug:kind>/<int:pk>/toggle/", rule_toggle, name="rule-toggle"),
    path("routing/rules/<slug:kind>/<int:pk>/move/<slug:direction>/", rule_move, name="rule-move"),
    path("carriers/", carrier_list, name="carriers"),
    path("carriers/new/", carrier_edit, name="carrier-create"),
    path("carriers/<int:pk>/", carrier_edit, name="carrier-edit"),
]
