"""Write operations of finance: taking the payment snapshot of an order."""

from finance.models import PaymentSnapshot
from orders.models import Order


def payment_snapshot_take(*, order: Order) -> PaymentSnapshot:
    lines = [
        {"line_no": line.line_no, "sku_code": line.sku_code, "quantity": line.quantity,
         "unit_price": str(line.unit_price), "discount_amount": str(line.discount_amount)}
        for line in order.lines.all()
    ]
    data = {
        "order_number": order.number, "store": order.store.code, "platform_order_id": order.platform_order_id,
        "currency": order.currency, "goods_amount": str(order.goods_amount),
        "discount_amount": str(order.discount_amount), "shipping_amount": str(order.shipping_amount),
        "tax_amount": str(order.tax_amount), "total_amount": str(order.total_amount),
        "paid_amount": str(order.paid_amount), "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "lines": lines,
    }
    return PaymentSnapshot.objects.create(order=order, currency=order.currency, paid_amount=order.paid_amount, data=data)
