"""Recompute stock counters from the ledger, report drift, and repair it with --repair."""

from django.core.management.base import BaseCommand

from inventory.services import stock_reconcile


class Command(BaseCommand):
    help = "Compare every stock counter with the ledger; --repair sets counters to the ledger and records it."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="fix the counters (writes a reconcile ledger row)")

    def handle(self, *args, **options):
        drifts = stock_reconcile(repair=options["repair"])
        for d in drifts:
            self.stdout.write(
                f"warehouse={d.warehouse_id} sku={d.sku_id} on_hand={d.on_hand} ledger={d.ledger_on_hand} "
                f"reserved={d.reserved} ledger={d.ledger_reserved} active_reservations={d.active_reservations}"
                + (" REPAIRED" if options["repair"] else ""))
        self.stdout.write(f"{len(drifts)} drifting stock rows" + (" repaired" if options["repair"] and drifts else ""))
        if drifts and not options["repair"]:
            raise SystemExit(1)
