"""Reads of printing: jobs, printers and bridges in a user's scope, the print queue's page and counts, the
printers off-line (the kanban's and the queue's alert)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from fulfillment.models import Shipment, ShipmentStatus, Wave
from inventory.models import Warehouse
from inventory.selectors import scope_filter, store_ids_for_user
from printing.models import PrintBridge, Printer, PrintJob, Transport


def offline_printers(*, warehouse: Warehouse) -> list[Printer]:
    """The warehouse's active printers that did not answer at their last send (one query), for the board's
    alert: labels queue up unseen while a printer is off, so the people at the board must know."""
    return list(
        Printer.objects.filter(warehouse=warehouse, active=True, offline_since__isnull=False)
        .only("code", "name", "host", "port", "transport", "offline_since", "last_error", "warehouse_id")
        .order_by("offline_since", "pk")
    )


# --- Scope: a user works with the printers, jobs, parcels and waves of their own warehouses ----------

def jobs_for_user(*, user) -> QuerySet[PrintJob]:
    """Print jobs of the user's warehouses' printers; a label of another store's parcel is not theirs either."""
    jobs = scope_filter(PrintJob.objects.all(), user=user, warehouse="printer__warehouse")
    store_ids = store_ids_for_user(user)
    if store_ids is not None:
        jobs = jobs.filter(Q(shipment__isnull=True) | Q(shipment__store__in=store_ids))
    return jobs


def printers_for_user(*, user) -> QuerySet[Printer]:
    return scope_filter(Printer.objects.all(), user=user)


def bridges_for_user(*, user) -> QuerySet[PrintBridge]:
    return scope_filter(PrintBridge.objects.all(), user=user)


def shipments_for_user(*, user) -> QuerySet[Shipment]:
    """The parcels whose labels the user may print or preview."""
    return scope_filter(Shipment.objects.all(), user=user, store="store")


def waves_for_user(*, user) -> QuerySet[Wave]:
    return scope_filter(Wave.objects.all(), user=user)


def wave_shipment_ids_for_user(*, wave: Wave, user) -> list[int]:
    """The wave's parcels (not cancelled) whose labels the user may print."""
    return list(scope_filter(wave.shipments.all(), user=user, store="store")
                .exclude(status=ShipmentStatus.CANCELLED).order_by("pk").values_list("pk", flat=True))


# --- The print queue ------------------------------------------------------------------------------

def queue_jobs(*, user, warehouse: Warehouse, status: str, page: int, per_page: int) -> tuple[list[PrintJob], bool]:
    """One page of the warehouse's jobs, newest first, and whether older ones exist (one row past the page
    says so, without counting the whole history)."""
    jobs = (
        jobs_for_user(user=user)
        .filter(printer__warehouse=warehouse)
        .select_related("printer", "shipment", "wave", "requested_by")
        .defer("payload", "shipment__label_data")
        .order_by("-created_at", "-id")
    )
    if status:
        jobs = jobs.filter(status=status)
    start = (page - 1) * per_page
    rows = list(jobs[start : start + per_page + 1])
    return rows[:per_page], len(rows) > per_page


def queue_counts(*, user, warehouse: Warehouse, statuses: tuple[str, ...]) -> dict[str, int]:
    """Jobs per state among ``statuses`` (the filter tabs)."""
    return dict(
        jobs_for_user(user=user)
        .filter(printer__warehouse=warehouse, status__in=statuses)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )


def job_reprints(*, job: PrintJob) -> list[PrintJob]:
    return list(job.reprints.select_related("requested_by").defer("payload").order_by("pk"))


def printer_first_active(*, warehouse_id: int) -> Printer | None:
    """The printer a label is previewed for: the warehouse's first active one."""
    return Printer.objects.filter(warehouse_id=warehouse_id, active=True).order_by("name", "pk").first()


def shipment_numbers(*, shipment_ids: list[int]) -> dict[int, str]:
    return dict(Shipment.objects.filter(pk__in=shipment_ids).values_list("pk", "number"))


def bridge_printers(*, bridge: PrintBridge) -> QuerySet[Printer]:
    """The active printers a bridge serves: bridge-transport printers of its warehouse."""
    return Printer.objects.filter(
        warehouse_id=bridge.warehouse_id, transport=Transport.BRIDGE, active=True
    ).order_by("name", "pk")

