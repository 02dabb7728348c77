"""Load demo users, stores, warehouses, SKUs and orders (safe to run again); see demo.loader."""

import time

from django.core.management.base import BaseCommand, CommandError

from demo.loader import demo_load


class Command(BaseCommand):
    help = "Load demo data: one user per role, five stores, three warehouses, ~40 SKUs and a few hundred orders."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=300, help="How many demo orders to have (default 300).")
        parser.add_argument("--seed", type=int, default=2026,
                            help="Random seed; the same seed always gives the same orders (default 2026).")

    def handle(self, *args, **options):
        if options["orders"] < 0:
            raise CommandError("--orders may not be negative.")
        started = time.monotonic()
        logins = demo_load(orders=options["orders"], seed=options["seed"], log=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.1f} s."))

        self.stdout.write("")
        self.stdout.write("Demo logins:")
        self.stdout.write(f"  {'username':<10} {'role':<17} password")
        for username, role, password in logins:
            shown = password or "(unchanged: the account existed before with another password)"
            self.stdout.write(f"  {username:<10} {role:<17} {shown}")
