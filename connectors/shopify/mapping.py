"""Shopify REST order JSON → UnifiedOrder (API_FACTS.md §1.4 and the status table in §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from connectors.base import (
    PermanentError,
    UnifiedAddress,
    UnifiedAfterSale,
    UnifiedAfterSaleLine,
    UnifiedLine,
    UnifiedOrder,
    UnifiedParty,
)

# "authorized" is pending payment by default: the money is reserved, not taken. A store that captures
# manually (capture on fulfilment) counts it as paid through its setting; see connectors/ingest.py.
AUTHORIZED = "authorized"
PENDING_PAYMENT = frozenset({"pending", AUTHORIZED, "partially_paid"})
PAID = frozenset({"paid", "partially_refunded"})
REFUNDED_OR_VOIDED = frozenset({"refunded", "voided"})
# Statuses under which money was actually captured, so processed_at is the payment time.
CAPTURED = frozenset({"paid", "partially_refunded", "refunded"})
ZERO = Decimal("0")
# The note the hub's own refundCreate carries (ShopifyConnector.refund: "OMS refund oms-refund-<id>"): such a
# refund comes back in the order's refunds[] but is the hub's decision, already on its ticket, not a new request.
HUB_REFUND_NOTE_PREFIX = "OMS refund oms-refund-"
REFUND_GID_PREFIX = "gid://shopify/Refund/"
TRANSACTION_GID_PREFIX = "gid://shopify/OrderTransaction/"
# The transactions that take the buyer's money (an authorization only reserves it).
MONEY_TAKING_KINDS = frozenset({"sale", "capture"})


def parse_shopify_time(value, *, field: str = "time") -> datetime:
    """An ISO-8601 timestamp with offset (``2008-01-10T11:00:00-05:00``) → aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise PermanentError(f"Shopify order: {field} is missing or not a string ({value!r})", code="bad_payload")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PermanentError(f"Shopify order: {field} {value!r} is not an ISO-8601 time",
                             code="bad_payload") from None
    if parsed.tzinfo is None:
        # Shopify always sends the shop's offset; guessing a zone would silently shift the order in time.
        raise PermanentError(f"Shopify order: {field} {value!r} has no UTC offset", code="bad_payload")
    return parsed.astimezone(UTC)


def _money(value, *, field: str, required: bool = False) -> Decimal:
    if value is None or value == "":
        if required:
            raise PermanentError(f"Shopify order: {field} is missing", code="bad_payload")
        return ZERO
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PermanentError(f"Shopify order: {field} {value!r} is not an amount", code="bad_payload")
    try:
        # str() first so a stray JSON number never brings binary float noise into a Decimal.
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentError(f"Shopify order: {field} {value!r} is not an amount", code="bad_payload") from None
    if not amount.is_finite() or amount < 0:
        raise PermanentError(f"Shopify order: {field} {value!r} is not a valid amount", code="bad_payload")
    return amount


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _join(*parts) -> str:
    return " ".join(text for text in (_text(part) for part in parts) if text)


def shopify_status(payload: dict) -> str:
    """The unified status of one order, following the table in API_FACTS.md §6 top to bottom."""
    financial = _text(payload.get("financial_status"))
    fulfillment = _text(payload.get("fulfillment_status"))
    if payload.get("cancelled_at"):
        return "cancelled"
    if financial in PENDING_PAYMENT:
        return "pending_payment"
    if fulfillment == "fulfilled":
        return "completed" if payload.get("closed_at") else "shipped"
    if fulfillment == "partial":
        return "partially_shipped"
    if financial in PAID:
        return "paid"
    if financial in REFUNDED_OR_VOIDED:
        return "closed"
    # An unknown value (a new enum member, GraphQL-only EXPIRED…) must reach an operator, not be guessed.
    raise PermanentError(f"Shopify order {payload.get('id')}: financial_status {financial!r} cannot be mapped",
                         code="bad_payload")


def _line(item, index: int) -> UnifiedLine:
    where = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise PermanentError(f"Shopify order: {where} is not an object", code="bad_payload")
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise PermanentError(f"Shopify order: {where}.quantity {quantity!r} is not a positive integer",
                             code="bad_payload")
    variant_id = item.get("variant_id")
    return UnifiedLine(
        sku=_text(item.get("sku")),
        platform_sku_id="" if variant_id is None else str(variant_id),
        title=_text(item.get("name")) or _text(item.get("title")),
        quantity=quantity,
        unit_price=_money(item.get("price"), field=f"{where}.price", required=True),
        discount=_money(item.get("total_discount"), field=f"{where}.total_discount"),
        platform_line_id=_text(item.get("id")),
    )


def _shipping(payload: dict) -> Decimal:
    lines = payload.get("shipping_lines")
    if isinstance(lines, list) and lines:
        total = ZERO
        for index, line in enumerate(lines):
            if not isinstance(line, dict):
                raise PermanentError(f"Shopify order: shipping_lines[{index}] is not an object",
                                     code="bad_payload")
            total += _money(line.get("price"), field=f"shipping_lines[{index}].price")
        return total
    price_set = payload.get("total_shipping_price_set")
    shop_money = price_set.get("shop_money") if isinstance(price_set, dict) else None
    if not isinstance(shop_money, dict):
        return ZERO
    return _money(shop_money.get("amount"), field="total_shipping_price_set.shop_money.amount")


def _buyer(payload: dict) -> UnifiedParty:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        customer = {}
    return UnifiedParty(
        name=_join(customer.get("first_name"), customer.get("last_name")),
        phone=_text(customer.get("phone")) or _text(payload.get("phone")),
        email=_text(customer.get("email")) or _text(payload.get("email")),
        id=_text(customer.get("id")),
    )


def _receiver(payload: dict) -> UnifiedAddress:
    address = payload.get("shipping_address")
    if not isinstance(address, dict):
        return UnifiedAddress()  # digital goods and pick-up orders carry no shipping address
    return UnifiedAddress(
        name=_text(address.get("name")) or _join(address.get("first_name"), address.get("last_name")),
        phone=_text(address.get("phone")),
        country=_text(address.get("country_code")),
        province=_text(address.get("province")),
        city=_text(address.get("city")),
        address=_join(address.get("address1"), address.get("address2")),
        zip=_text(address.get("zip")),
    )


def map_shopify_order(payload: dict) -> UnifiedOrder:
    """Map one REST order object (as listed, fetched or pushed) into the hub's ``UnifiedOrder``."""
    if not isinstance(payload, dict):
        raise PermanentError(f"Shopify order payload is a {type(payload).__name__}, not an object",
                             code="bad_payload")
    order_id = payload.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).strip():
        raise PermanentError(f"Shopify order payload has no id ({order_id!r})", code="bad_payload")
    items = payload.get("line_items")
    if not isinstance(items, list) or not items:
        raise PermanentError(f"Shopify order {order_id} has no line_items", code="bad_payload")
    currency = _text(payload.get("currency"))
    if not currency:
        raise PermanentError(f"Shopify order {order_id} has no currency", code="bad_payload")

    financial = _text(payload.get("financial_status"))
    fulfillment = _text(payload.get("fulfillment_status"))
    lines = [_line(item, index) for index, item in enumerate(items)]
    # total_discounts already contains the per-line total_discount amounts; the order keeps only the rest
    # so that order discount + line discounts never counts the same discount twice.
    line_discounts = sum((line.discount for line in lines), ZERO)
    order_discount = max(_money(payload.get("total_discounts"), field="total_discounts") - line_discounts, ZERO)
    processed_at = payload.get("processed_at")
    refunds = payload.get("refunds")
    raw_status = f"{financial or 'unknown'} / {fulfillment or 'unfulfilled'}"
    if payload.get("cancelled_at"):
        raw_status += f" / cancelled ({_text(payload.get('cancel_reason')) or 'no reason'})"
    elif payload.get("closed_at"):
        raw_status += " / closed"

    return UnifiedOrder(
        platform_order_id=str(order_id).strip(),
        status=shopify_status(payload),
        currency=currency,
        total=_money(payload.get("total_price"), field="total_price", required=True),
        created_at=parse_shopify_time(payload.get("created_at"), field="created_at"),
        updated_at=parse_shopify_time(payload.get("updated_at"), field="updated_at"),
        lines=lines,
        buyer=_buyer(payload),
        receiver=_receiver(payload),
        paid_at=(parse_shopify_time(processed_at, field="processed_at")
                 if financial in CAPTURED and processed_at else None),
        # processed_at is when the payment was authorized (REST orders carry no separate authorization time).
        authorized_at=(parse_shopify_time(processed_at or payload.get("created_at"), field="processed_at")
                       if financial == AUTHORIZED and not payload.get("cancelled_at") else None),
        shipping=_shipping(payload),
        discount=order_discount,
        tax=_money(payload.get("total_tax"), field="total_tax"),
        buyer_note=_text(payload.get("note")),
        display_number=_text(payload.get("name")),
        payment_id=shopify_payment_id(payload),
        refund_requested=financial == "partially_refunded" or bool(refunds),
        raw_status=raw_status,
        after_sale_requests=_refunds(refunds, str(order_id).strip(),
                                     parse_shopify_time(payload.get("updated_at"), field="updated_at")),
    )


def shopify_payment_id(payload: dict) -> str:
    """The id of the transaction that took the money (the first successful sale or capture), as a number.

    The REST order carries no transactions (they are GET orders/{id}/transactions.json, one more call per order,
    which the sync does not make): the mapper reads them when the payload has them (a payload enriched by the
    caller, the GraphQL order's transactions), else the parent of a refund transaction in refunds[], which is
    the sale or capture it refunded. Otherwise it stays empty and settlements match on the order id. The
    order payload reports no fees (Shopify Payments reports them per balance transaction), so none is mapped.
    """
    transactions = payload.get("transactions")
    for transaction in transactions if isinstance(transactions, list) else []:
        # Lower-cased: the GraphQL enums (SALE, SUCCESS) are the REST values in capitals.
        if isinstance(transaction, dict) and _text(transaction.get("kind")).lower() in MONEY_TAKING_KINDS \
                and _text(transaction.get("status")).lower() == "success" and _text(transaction.get("id")):
            return _transaction_id(transaction.get("id"))
    refunds = payload.get("refunds")
    for refund in refunds if isinstance(refunds, list) else []:
        refund_transactions = refund.get("transactions") if isinstance(refund, dict) else None
        for transaction in refund_transactions if isinstance(refund_transactions, list) else []:
            if isinstance(transaction, dict) and transaction.get("kind") == "refund" \
                    and _text(transaction.get("parent_id")):
                return _transaction_id(transaction.get("parent_id"))
    return ""


def _transaction_id(value) -> str:
    text = _text(value)
    return (text[len(TRANSACTION_GID_PREFIX):] if text.startswith(TRANSACTION_GID_PREFIX) else text)[:64]


def shopify_refund_id(value) -> str:
    """A refund's id as the hub keeps it: the number, whether Shopify gave it as a number or as a GraphQL gid."""
    text = _text(value)
    return text[len(REFUND_GID_PREFIX):] if text.startswith(REFUND_GID_PREFIX) else text


def _refunds(refunds, order_id: str, order_updated_at: datetime) -> list[UnifiedAfterSale]:
    """Each refund of the order (order.refunds): money Shopify already paid back, so each is "refunded". Its
    refund_line_items name the lines; a restock_type "return" means the goods come back (a return). Open
    returns (the Returns API) are not in the REST order and are not followed here. The hub's own refunds (its
    note) are left out: they are already the refund of a ticket. The id is the numeric one, as the hub keeps
    its own refunds' ids (a GraphQL gid is cut to its number)."""
    if refunds in (None, ""):
        return []
    if not isinstance(refunds, list) or not all(isinstance(refund, dict) for refund in refunds):
        raise PermanentError(f"Shopify order {order_id}: refunds must be a list of objects", code="bad_payload")
    after_sales = []
    for refund in refunds:
        refund_id = shopify_refund_id(refund.get("id"))
        if not refund_id:
            raise PermanentError(f"Shopify order {order_id}: a refund without an id", code="bad_payload")
        if _text(refund.get("note")).startswith(HUB_REFUND_NOTE_PREFIX):
            continue
        field = f"refund {refund_id}"
        lines, returned = [], False
        for item in refund.get("refund_line_items") or []:
            if not isinstance(item, dict) or isinstance(item.get("quantity"), bool) \
                    or not isinstance(item.get("quantity"), int) or item["quantity"] < 1:
                raise PermanentError(f"Shopify order {order_id}: {field} has a line without a quantity",
                                     code="bad_payload")
            lines.append(UnifiedAfterSaleLine(quantity=item["quantity"], platform_line_id=_text(item.get("line_item_id"))))
            returned = returned or item.get("restock_type") == "return"
        paid = sum((_money(transaction.get("amount"), field=f"{field} amount")
                    for transaction in refund.get("transactions") or []
                    if isinstance(transaction, dict) and transaction.get("kind") == "refund"
                    and transaction.get("status") == "success"), ZERO)
        after_sales.append(UnifiedAfterSale(
            platform_after_sale_id=refund_id[:64], platform_order_id=order_id,
            type="return_refund" if returned else "refund_only", status="refunded", raw_status="refund processed",
            # A refund is not changed once processed; one without its times takes the order version's.
            updated_at=parse_shopify_time(refund.get("processed_at") or refund.get("created_at"), field=f"{field} time")
            if refund.get("processed_at") or refund.get("created_at") else order_updated_at,
            lines=lines, reason_text=_text(refund.get("note"))[:500], refund_amount=paid))
    return after_sales
