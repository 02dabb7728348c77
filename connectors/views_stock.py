"""The channel stock page: what each platform was told last, next to what the hub computes now."""

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from connectors import selectors
from orders.models import Store


@login_required
@permission_required("connectors.view_channelsyncstate", raise_exception=True)
def channel_stock(request: HttpRequest) -> HttpResponse:
    store_code = request.GET.get("store", "")
    return render(request, "connectors/channel_stock.html", {
        "rows": selectors.channel_stock_rows(store_code=store_code), "store_code": store_code,
        "stores": Store.objects.exclude(platform="manual")})
