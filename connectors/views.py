"""Channel pages (sync status, sync now, dead letters, store setup) and the webhook endpoint."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors import pushback, selectors, services
from connectors.forms import CREDENTIAL_FIELDS, StoreSetupForm
from connectors.models import ChannelSyncState, ShipmentPush
from connectors.tasks import poll_store_task
from connectors.wake import inbox_wake
from oms.exceptions import DomainError
from oms.paging import paginate
from orders.models import Platform, Store
from pipeline import channel

# Webhook bodies are small JSON documents; anything larger is refused before it is read.
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, platform: str, store_code: str) -> HttpResponse:
    """Verify the signature on the raw body, store the delivery, answer at once."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponse('{"code":"bad_request","message":"Invalid Content-Length."}', status=400,
                            content_type="application/json")
    if declared > MAX_WEBHOOK_BYTES:
        return HttpResponse('{"code":"too_large","message":"Body too large."}', status=413,
                            content_type="application/json")
    # The input guard (oms.guard) has already refused raw control characters in the body.
    outcome = services.webhook_receive(platform=platform, store_code=store_code, headers=dict(request.headers),
                                       body=request.body, source_address=request.META.get("REMOTE_ADDR"))
    if outcome.stored_for_store_id is not None:
        inbox_wake(outcome.stored_for_store_id)  # a debounced signal: one drain serves many deliveries
    return HttpResponse(outcome.body, status=outcome.status, content_type=outcome.content_type,
                        headers=outcome.headers)


@login_required
@permission_required("connectors.view_channelsyncstate", raise_exception=True)
def sync_status(request: HttpRequest) -> HttpResponse:
    return render(request, "connectors/sync_status.html", {"rows": selectors.sync_status_rows()})


@login_required
@require_POST
@permission_required("connectors.change_channelsyncstate", raise_exception=True)
def sync_now(request: HttpRequest, store_id: int) -> HttpResponse:
    store = get_object_or_404(Store, pk=store_id)
    services.sync_state_for(store)
    services.store_poll_now(store_id=store.pk)
    poll_store_task.delay(store_id=store.pk)
    messages.success(request, _("Sync of %(store)s started.") % {"store": store.name})
    return redirect("connectors:status")


@login_required
@permission_required("connectors.view_inboxmessage", raise_exception=True)
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    store_code = request.GET.get("store", "")
    page = paginate(request, selectors.dead_letters(store_code=store_code), 50)
    return render(request, "connectors/dead_letters.html", {
        "page": page, "store_code": store_code, "stores": Store.objects.exclude(platform="manual")})


@login_required
@require_POST
@permission_required("connectors.change_inboxmessage", raise_exception=True)
def dead_letter_action(request: HttpRequest, message_id: int, action: str) -> HttpResponse:
    try:
        if action == "replay":
            channel.dead_letter_replay(message_id=message_id)
            messages.success(request, _("Queued again; it is processed in a moment."))
        elif action == "discard":
            services.dead_letter_discard(message_id=message_id)
            messages.success(request, _("Discarded."))
        else:
            messages.error(request, _("Unknown action."))
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    return redirect("connectors:dead_letters")


@login_required
@permission_required("orders.change_store", raise_exception=True)
def store_edit(request: HttpRequest, store_id: int | None = None) -> HttpResponse:
    store = get_object_or_404(Store, pk=store_id) if store_id else None
    state = ChannelSyncState.objects.filter(store=store).first() if store else None
    initial = {}
    if store:
        initial = {"platform": store.platform, "code": store.code, "name": store.name, "active": store.active,
                   "default_currency": store.default_currency, "reserve_on": store.reserve_on,
                   "allow_split": store.allow_split, "sync_enabled": state.enabled if state else True,
                   "poll_interval_seconds": state.poll_interval_seconds if state else 60,
                   "shopify_api_version": state.api_version if state else "",
                   "shopify_authorized_counts_as_paid": state.authorized_counts_as_paid if state else False}
    form = StoreSetupForm(request.POST or None, store=store, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.store_setup(store=store, platform=data["platform"], code=data["code"],
                                         name=data["name"], active=data["active"],
                                         default_currency=data["default_currency"], reserve_on=data["reserve_on"],
                                         allow_split=data["allow_split"], credentials=form.credentials(),
                                         sync_enabled=data["sync_enabled"],
                                         poll_interval_seconds=data["poll_interval_seconds"],
                                         **_platform_settings(data))
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Store %(store)s saved.") % {"store": saved.name})
            return redirect("connectors:status")
    return render(request, "connectors/store_form.html", {
        "form": form, "store": store, "credential_fields": CREDENTIAL_FIELDS},
        status=400 if request.method == "POST" else 200)


def _platform_settings(data: dict) -> dict:
    """The Shopify section counts only for a Shopify store (None: keep what is stored)."""
    if data["platform"] != Platform.SHOPIFY:
        return {}
    return {"api_version": data["shopify_api_version"],
            "authorized_counts_as_paid": data["shopify_authorized_counts_as_paid"]}


# --- Push-back from the order page ------------------------------------------------------------------------
# Sending a failed confirmation again or giving up on it is channel work, like replaying or discarding a dead
# letter: the same permission guards both.
RUN_PUSHES = "connectors.change_inboxmessage"


@login_required
@require_POST
@permission_required(RUN_PUSHES, raise_exception=True)
def shipment_push_action(request: HttpRequest, push_id: int, action: str) -> HttpResponse:
    """Retry or discard one shipment push-back, then back to its order with what happened."""
    if action not in ("retry", "discard"):
        raise Http404
    push = get_object_or_404(ShipmentPush.objects.only("pk", "order_id"), pk=push_id)
    try:
        if action == "retry":
            channel.shipment_push_retry(push_id=push.pk, actor=request.user)
            messages.success(request, _("Push-back queued again: it is sent to the platform in a moment."))
        else:
            pushback.shipment_push_discard(push_id=push.pk, actor=request.user)
            messages.success(request, _("Push-back discarded: the platform will not be told by the OMS."))
    except DomainError as exc:
        messages.error(request, _("Refused: %(why)s") % {"why": exc.message})
    return redirect(f"{reverse('orders:detail', args=[push.order_id])}#shipment-push-{push.pk}")
