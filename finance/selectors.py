"""Read-side queries of finance: daily payment totals, the latest snapshots and the month's summaries per store and
source."""

from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from finance.matching import month_bounds
from finance.models import (
    Difference,
    DifferenceReason,
    DifferenceStatus,
    FinancePeriod,
    PaymentSnapshot,
    SettlementFile,
    SettlementFileStatus,
    SettlementRow,
)
from finance.readers.base import RowKind


def payment_daily_totals(*, days: int = 30) -> list[dict]:
    return list(
        PaymentSnapshot.objects.annotate(day=TruncDate("taken_at")).values("day", "currency")
        .annotate(orders=Count("id"), amount=Sum("paid_amount")).order_by("-day", "currency")[:days]
    )


def differences_listed():
    """Differences with what their lists show (store, order, settlement row, who resolved them), for pages and API."""
    return Difference.objects.select_related("store", "order", "settlement_row", "resolved_by")


def settlement_files_listed():
    """Settlement files for listings: the file's bytes stay in the database, a listing never loads them."""
    return SettlementFile.objects.defer("content").select_related("store", "bank_mapping", "uploaded_by")


def finance_period_of(*, month, store):
    """The month's period row of one store (or of all stores, store None); None while it was never closed."""
    return FinancePeriod.objects.filter(month=month, store=store).first()


def payment_latest(*, limit: int = 50):
    return PaymentSnapshot.objects.select_related("order", "order__store")[:limit]


def by_reason(counts: dict[str, int]) -> dict[str, int]:
    """Every reason with its count, 0 for the ones absent."""
    return {reason.value: counts.get(reason.value, 0) for reason in DifferenceReason}


def finance_summaries(*, month, store_code: str | None = None, source: str | None = None) -> list[dict]:
    """Per store and source of the month: sale rows, how many found their order (per currency amount), and the
    open differences by reason, read from what matching stored (nothing is matched again)."""
    start, end = month_bounds(month)
    rows = SettlementRow.objects.filter(file__status=SettlementFileStatus.IMPORTED, kind=RowKind.SALE,
                                        occurred_at__gte=start, occurred_at__lt=end)
    differences = Difference.objects.filter(month=month, status=DifferenceStatus.OPEN)
    if store_code is not None:
        rows = rows.filter(file__store__code=store_code)
        differences = differences.filter(store__code=store_code)
    if source is not None:
        rows = rows.filter(source=source)
        differences = differences.filter(source=source)
    # A sale row without its order is the one a missing_in_hub difference (open or resolved) names.
    unmatched = Q(differences__reason=DifferenceReason.MISSING_IN_HUB)
    matched_ids = rows.exclude(unmatched)
    entries: dict[tuple, dict] = {}

    def entry(store, row_source) -> dict:
        return entries.setdefault((store, row_source), {
            "store": store, "source": row_source, "month": month, "rows": 0, "matched": 0, "matched_amounts": [],
            "differences": 0, "reasons": {}})

    for item in rows.values("file__store__code", "source").annotate(n=Count("id")):
        entry(item["file__store__code"], item["source"])["rows"] = item["n"]
    for item in (matched_ids.values("file__store__code", "source", "currency")
                 .annotate(n=Count("id"), amount=Sum("gross")).order_by("currency")):
        found = entry(item["file__store__code"], item["source"])
        found["matched"] += item["n"]
        found["matched_amounts"].append({"currency": item["currency"],
                                         "amount": (item["amount"] or Decimal("0")).quantize(Decimal("0.01"))})
    for item in differences.values("store__code", "source", "reason").annotate(n=Count("id")):
        found = entry(item["store__code"], item["source"])
        found["reasons"][item["reason"]] = item["n"]
        found["differences"] += item["n"]
    return [{**value, "differences_by_reason": by_reason(value.pop("reasons"))}
            for _key, value in sorted(entries.items(), key=lambda pair: (pair[0][0] or "", pair[0][1]))]
