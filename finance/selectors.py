"""Read-side queries of finance: daily payment totals and the latest snapshots."""

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from finance.models import PaymentSnapshot


def payment_daily_totals(*, days: int = 30) -> list[dict]:
    return list(
        PaymentSnapshot.objects.annotate(day=TruncDate("taken_at")).values("day", "currency")
        .annotate(orders=Count("id"), amount=Sum("paid_amount")).order_by("-day", "currency")[:days]
    )


def payment_latest(*, limit: int = 50):
    return PaymentSnapshot.objects.select_related("order", "order__store")[:limit]
