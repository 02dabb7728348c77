"""Print the health report (web, database, broker, workers) and exit non-zero when a checked part is down."""

import json

from django.core.management.base import BaseCommand

from oms.selectors import health_report


class Command(BaseCommand):
    help = "Print the health report as JSON; exit 1 if any of the --require parts is not ok."

    def add_arguments(self, parser):
        parser.add_argument("--require", default="web,database,broker,workers",
                            help="comma-separated parts that must be ok (default: all)")

    def handle(self, *args, **options):
        report = health_report()
        self.stdout.write(json.dumps(report, ensure_ascii=False))
        required = [part.strip() for part in options["require"].split(",") if part.strip()]
        if any(report["checks"].get(part, {}).get("status") != "ok" for part in required):
            raise SystemExit(1)
