"""The desk's search page: one box for any order key."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from desk.selectors import DeskSearchResult, desk_search
from oms.exceptions import DomainError
from oms.paging import page_number

# The desk is customer-service work: customer service and managers (and admins) work after-sales tickets, the
# warehouse and finance do not. orders.view_pii would not do: it decides masking on the page, not entry.
DESK_PERMISSIONS = ("orders.view_order", "aftersales.work_ticket")


@login_required
@permission_required(DESK_PERMISSIONS, raise_exception=True)
def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    error = ""
    status = 200
    try:
        result = desk_search(query=query, user=request.user, page=page_number(request.GET.get("page")))
    except DomainError as exc:
        result, error, status = DeskSearchResult(query=query.strip()[:64]), exc.message, 400
    return render(request, "desk/search.html", {"result": result, "error": error}, status=status)


urlpatterns = [
    path("", search, name="search"),
]
