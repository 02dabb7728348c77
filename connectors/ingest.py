"""From a UnifiedOrder to the hub's order input: resolve SKUs and fit the texts (pipeline/channel.py applies it)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from connectors.base import PermanentError, UnifiedOrder
from inventory.models import SKU, PlatformSKUMapping
from orders.models import Order, OrderLine, Store
from orders.services import BuyerInput, LineInput, OrderInput, ReceiverInput


class UnmappedSKU(PermanentError):
    """A line names a SKU the hub does not know, and no platform SKU mapping points to one."""


def resolve_sku_codes(*, store: Store, unified: UnifiedOrder) -> list[str]:
    """Our SKU code for each line: the merchant code when we know it, else the store's platform mapping."""
    result = resolve_sku_codes_many(store=store, unifieds=[unified])[0]
    if isinstance(result, UnmappedSKU):
        raise result
    return result


def resolve_sku_codes_many(*, store: Store, unifieds: list[UnifiedOrder]) -> list[list[str] | UnmappedSKU]:
    """resolve_sku_codes for a batch in three queries; an order with an unknown SKU gets its UnmappedSKU."""
    lines = [line for unified in unifieds for line in unified.lines]
    codes = {line.sku for line in lines if line.sku}
    known = set(SKU.objects.filter(code__in=codes, active=True).values_list("code", flat=True)) if codes else set()
    platform_ids = {line.platform_sku_id for line in lines if line.platform_sku_id}
    mapped = dict(PlatformSKUMapping.objects.filter(store=store, platform_sku_id__in=platform_ids, sku__active=True)
                  .values_list("platform_sku_id", "sku__code")) if platform_ids else {}
    # A mapping by platform code (some platforms key mappings by their own SKU code) also counts.
    unknown = codes - known
    mapped_codes = dict(PlatformSKUMapping.objects.filter(store=store, platform_sku_id__in=unknown, sku__active=True)
                        .values_list("platform_sku_id", "sku__code")) if unknown else {}
    results: list[list[str] | UnmappedSKU] = []
    for unified in unifieds:
        resolved, missing = [], []
        for line in unified.lines:
            code = (line.sku if line.sku in known else mapped.get(line.platform_sku_id)
                    or mapped_codes.get(line.sku))
            if not code:
                missing.append(line.sku or f"platform:{line.platform_sku_id}")
            resolved.append(code)
        results.append(UnmappedSKU(_("Unknown SKU %(codes)s: add the SKU or a platform SKU mapping, then replay.") % {
            "codes": ", ".join(sorted(set(missing)))}, code="unmapped_sku") if missing else resolved)
    return results


def _fit(model, field_name: str, value: str | None) -> str:
    """Platforms send texts longer than our columns (Shopify titles are "product − variant"): an order
    keeps a shortened title or address rather than being refused for it."""
    limit = model._meta.get_field(field_name).max_length
    return (value or "")[:limit]


def order_input_from_unified(*, store: Store, unified: UnifiedOrder, raw_ref: str,
                             codes: list[str] | None = None) -> OrderInput:
    """The hub's order input for a platform order; ``codes`` are its lines' SKU codes when the caller
    resolved them for a whole batch (resolve_sku_codes_many)."""
    codes = codes if codes is not None else resolve_sku_codes(store=store, unified=unified)
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
        payment_id=_fit(Order, "payment_id", unified.payment_id),
        platform_fee=unified.platform_fee,
    )
