"""The bare webhook view `manage.py bench webhook` measures the real endpoint against (served only by bench.urls)."""

import hmac

from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.models import InboxKind, InboxMessage
from connectors.services import store_credentials
from connectors.shopify.connector import shopify_hmac
from orders.models import Store


@csrf_exempt
@require_POST
def bare_webhook(request: HttpRequest, store_code: str) -> HttpResponse:
    """The floor under the webhook endpoint: verify the HMAC, insert one inbox row.

    It leaves out what webhook_receive adds on top (parsing and re-serialising the body, the kept headers, the
    repeat count, the wake of the drain), so the benchmark can show what those cost. It looks the store and its
    secret up on every request (two queries), as it did when the benchmark's ratio was set; the real endpoint
    caches them for 30 s. Production never routes here: only bench.urls mounts it, and settings use bench.urls
    only with OMS_BENCH_BARE_WEBHOOK=1.
    """
    store = Store.objects.filter(code=store_code, active=True).only("pk").first()
    if store is None:
        raise Http404
    body = request.body
    secret = str(store_credentials(store).get("api_secret") or "")
    received = request.headers.get("X-Shopify-Hmac-Sha256", "")
    if not secret or not hmac.compare_digest(shopify_hmac(secret, body).encode(), received.encode()):
        return HttpResponse('{"code":"bad_signature"}', status=401, content_type="application/json")
    try:
        with transaction.atomic():
            InboxMessage.objects.create(store=store, kind=InboxKind.WEBHOOK,
                                        topic=request.headers.get("X-Shopify-Topic", "")[:64],
                                        delivery_key=f"wh:{request.headers.get('X-Shopify-Event-Id', '')}"[:200],
                                        body=body.decode("utf-8", "replace"))
    except IntegrityError:
        pass  # a repeated delivery: acknowledged, stored once
    return HttpResponse("{}", content_type="application/json")
