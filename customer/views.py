"""The public tracking page /t/<signed per-parcel token>: no login, the masked receiver and the city only."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from customer import selectors
from customer.services import parcel_from_tracking_token
from oms.exceptions import NotFoundError
from orders.models import Order


@require_GET
def track(request, token: str):
    try:
        parcel = parcel_from_tracking_token(token=token)
    except NotFoundError as exc:
        return render(request, "customer/track_missing.html", {"message": exc.message}, status=404)
    order = Order.objects.filter(shipment_lines__shipment=parcel).order_by("pk").first()
    events = list(parcel.tracking_events.order_by("-occurred_at", "-pk"))
    receiver = selectors.masked_receiver(order, None) if order else {"name": "", "city": parcel.receiver_city}
    return render(request, "customer/track.html", {
        "parcel": parcel, "stage": selectors.parcel_stage(parcel), "events": events,
        "estimated_delivery": selectors.parcel_estimated_delivery(parcel),
        "receiver_name": receiver["name"], "city": parcel.receiver_city or receiver["city"]})
