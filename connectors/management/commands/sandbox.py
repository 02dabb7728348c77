"""Run a platform sandbox (a local emulator of the platform's API) until interrupted."""

import logging
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.utils import DatabaseError
from django.utils.module_loading import import_string

from connectors.registry import SANDBOXES, sandbox_class
from inventory.models import SKU

# Carrier sandboxes are not sales channels, so they live outside the connector registry.
CARRIER_SANDBOXES = {"sf": "fulfillment.carriers.sf_sandbox.SFSandbox"}


class Command(BaseCommand):
    help = "Serve a local emulator of a platform's API on 127.0.0.1 (orders, signing, paging, errors, webhooks)."

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, choices=sorted({*SANDBOXES, *CARRIER_SANDBOXES}))
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--rate", type=float, default=0.0, help="new orders per minute (0 = only on request)")
        parser.add_argument("--webhook-url", default="", help="where to deliver webhooks (platforms with push)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--initial", type=int, default=0, help="orders to create at start")
        parser.add_argument("--credential", action="append", default=[], metavar="KEY=VALUE",
                            help="sandbox credential (e.g. access_token=…, api_secret=…, app_secret=…)")

    def handle(self, *args, **options):
        logging.basicConfig(level=logging.INFO)
        credentials = {}
        for item in options["credential"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--credential needs KEY=VALUE, got {item!r}")
            credentials[key] = value
        try:
            # Generated orders use the hub's own active SKUs, so they can be imported and reserved.
            skus = [(code, str(price)) for code, price in SKU.objects.filter(active=True, is_gift=False)
                    .exclude(components__isnull=False).values_list("code", "list_price")[:60]]
        except DatabaseError:
            skus = []
        kwargs = {"port": options["port"], "host": options["host"], "seed": options["seed"],
                  "rate_per_minute": options["rate"], "webhook_url": options["webhook_url"], **credentials}
        if skus:
            kwargs["skus"] = skus
        platform = options["platform"]
        cls = import_string(CARRIER_SANDBOXES[platform]) if platform in CARRIER_SANDBOXES else sandbox_class(platform)
        sandbox = cls(**kwargs)
        if options["initial"]:
            # Back-dated a little, so platforms polled with a lag (PDD: 3 minutes) show them at once.
            sandbox.set_clock(datetime.now(UTC) - timedelta(minutes=10))
            sandbox.generate(options["initial"], push=False)
            sandbox.set_clock(None)
        url = sandbox.start()
        self.stdout.write(f"{options['platform']} sandbox on {url} ({len(skus)} SKUs, {options['rate']}/min)")
        sandbox.serve_forever()
