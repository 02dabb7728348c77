"""From a UnifiedOrder to the hub's order: resolve SKUs, create it once, then follow newer platform updates."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from connectors.base import PermanentError, UnifiedOrder
from connectors.models import ChannelSyncState
from finance.models import PaymentEvent
from finance.services import payment_snapshot_capture
from inventory.models import SKU, PlatformSKUMapping
from orders import services as order_services
from orders.exceptions import OrderInvalid
from orders.models import Order, OrderLine, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput


class UnmappedSKU(PermanentError):
    """A line names a SKU the hub does not know, and no platform SKU mapping points to one."""


def resolve_sku_codes(*, store: Store, unified: UnifiedOrder) -> list[str]:
    """Our SKU code for each line: the merchant code when we know it, else the store's platform mapping."""
    codes = {line.sku for line in unified.lines if line.sku}
    known = set(SKU.objects.filter(code__in=codes, active=True).values_list("code", flat=True))
    platform_ids = {line.platform_sku_id for line in unified.lines if line.platform_sku_id}
    mapped = dict(PlatformSKUMapping.objects.filter(store=store, platform_sku_id__in=platform_ids,
                                                    sku__active=True).values_list("platform_sku_id", "sku__code"))
    # A mapping by platform code (some platforms key mappings by their own SKU code) also counts.
    mapped_codes = dict(PlatformSKUMapping.objects.filter(store=store, platform_sku_id__in=codes, sku__active=True)
                        .values_list("platform_sku_id", "sku__code"))
    resolved, missing = [], []
    for line in unified.lines:
        code = (line.sku if line.sku in known else mapped.get(line.platform_sku_id)
                or mapped_codes.get(line.sku))
        if not code:
            missing.append(line.sku or f"platform:{line.platform_sku_id}")
        resolved.append(code)
    if missing:
        raise UnmappedSKU(_("Unknown SKU %(codes)s: add the SKU or a platform SKU mapping, then replay.") % {
            "codes": ", ".join(sorted(set(missing)))}, code="unmapped_sku")
    return resolved


def _fit(model, field_name: str, value: str | None) -> str:
    """Platforms send texts longer than our columns (Shopify titles are "product − variant"): an order
    keeps a shortened title or address rather than being refused for it."""
    limit = model._meta.get_field(field_name).max_length
    return (value or "")[:limit]


def order_input_from_unified(*, store: Store, unified: UnifiedOrder, raw_ref: str) -> OrderInput:
    codes = resolve_sku_codes(store=store, unified=unified)
    receiver = unified.receiver
    return OrderInput(
        platform_order_id=unified.platform_order_id,
        lines=[LineInput(sku_code=code, quantity=line.quantity, unit_price=line.unit_price,
                         title=_fit(OrderLine, "title", line.title),
                         discount_amount=line.discount, platform_sku_id=line.platform_sku_id,
                         platform_line_id=line.platform_line_id)
               for code, line in zip(codes, unified.lines, strict=True)],
        receiver=ReceiverInput(name=_fit(Order, "receiver_name", receiver.name),
                               phone=_fit(Order, "receiver_phone", receiver.phone),
                               address=_fit(Order, "receiver_address", receiver.address),
                               country=(receiver.country or "CN")[:2].upper(),
                               province=_fit(Order, "receiver_province", receiver.province),
                               city=_fit(Order, "receiver_city", receiver.city),
                               district=_fit(Order, "receiver_district", receiver.district),
                               zip=_fit(Order, "receiver_zip", receiver.zip)),
        buyer=BuyerInput(id=_fit(Order, "buyer_id", unified.buyer.id), name=_fit(Order, "buyer_name", unified.buyer.name),
                         email=unified.buyer.email, phone=_fit(Order, "buyer_phone", unified.buyer.phone)),
        currency=unified.currency,
        shipping_amount=unified.shipping,
        discount_amount=unified.discount,  # order-level only: the lines carry their own
        tax_amount=unified.tax,
        platform_total=unified.total,
        placed_at=unified.created_at,
        buyer_note=unified.buyer_note,
        seller_note=unified.seller_note,
        raw_payload_ref=raw_ref,
        receiver_ciphertext=dict(receiver.encrypted),
    )


def channel_order_apply(*, store: Store, unified: UnifiedOrder, raw_ref: str) -> tuple[Order, str]:
    """Create the order the first time, follow the platform after. Returns (order, outcome).

    outcome is "created", "updated" or "stale" (an update older than what the order already has).
    Called under the store's inbox lease, so two versions of one order are never applied at once;
    a concurrent creation elsewhere still ends as an update thanks to the unique platform id.
    """
    existing = Order.objects.filter(store=store, platform_order_id=unified.platform_order_id).first()
    outcome = "updated"
    if existing is None:
        data = order_input_from_unified(store=store, unified=unified, raw_ref=raw_ref)
        try:
            with transaction.atomic():
                existing = order_services.order_create(store=store, data=data, actor_label=f"channel:{store.platform}")
            outcome = "created"
        except OrderInvalid as exc:
            if exc.code != "duplicate_order":
                raise
            existing = Order.objects.get(store=store, platform_order_id=unified.platform_order_id)
    target, paid_at, payment_event = unified.status, unified.paid_at, PaymentEvent.PAYMENT
    if target == "pending_payment" and unified.authorized_at and _authorized_counts_as_paid(store):
        # A store that captures on fulfilment: the authorization lets the order reserve, route and ship;
        # the capture follows at shipping (connectors/capture.py) and gets its own snapshot.
        target, paid_at, payment_event = "paid", unified.authorized_at, PaymentEvent.AUTHORIZATION
    order, applied = order_services.order_follow_channel(
        order_id=existing.pk, target=target, platform_updated_at=unified.updated_at,
        raw_status=unified.raw_status or unified.status, paid_at=paid_at, payment_event=payment_event,
        actor_label=f"channel:{store.platform}")
    if applied and unified.paid_at:
        # Captured on the platform (by the hub, or by the seller in the platform's admin): recorded once,
        # beside the authorization; an order paid in one step has no authorization and gets nothing here.
        payment_snapshot_capture(order=order, amount=order.paid_amount, currency=order.currency,
                                 captured_at=unified.paid_at, source="platform update")
    if not applied and outcome == "updated":
        outcome = "stale"
    return order, outcome


def _authorized_counts_as_paid(store: Store) -> bool:
    return ChannelSyncState.objects.filter(store=store, authorized_counts_as_paid=True).exists()
