"""Finance pages (only the finance, manager and admin roles may see them)."""

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from finance.selectors import payment_daily_totals, payment_latest


@login_required
@permission_required("finance.view_paymentsnapshot", raise_exception=True)
def finance_overview(request):
    return render(request, "finance/overview.html", {
        "daily": payment_daily_totals(), "snapshots": payment_latest(),
    })
