"""Map one platform payload file to the unified order and print it as JSON (for checking a mapping)."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connectors.base import ConnectorError
from connectors.registry import CONNECTORS, connector_class


class Command(BaseCommand):
    help = ("Read one platform order payload (a Shopify order object, a Taobao trade as in trade.fullinfo.get, "
            "…) and print the unified order as JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, choices=sorted(CONNECTORS))
        parser.add_argument("file", help="path to a JSON file, or - for standard input")

    def handle(self, *args, **options):
        source = options["file"]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {source}: {exc.strerror}") from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{source} is not JSON: {exc}") from None
        payload = _unwrap(payload)
        try:
            unified = connector_class(options["platform"]).map_order(payload)
        except ConnectorError as exc:
            raise CommandError(f"cannot map this {options['platform']} payload: {exc.message}") from None
        self.stdout.write(json.dumps(unified.to_json(), ensure_ascii=False, indent=2))


def _unwrap(payload):
    """Accept the API envelope too: {"order": {...}}, {"orders": [x]}, {"trade_fullinfo_get_response": {"trade": …}}."""
    if isinstance(payload, dict) and len(payload) == 1:
        (key, inner), = payload.items()
        if key.endswith("_response") and isinstance(inner, dict):
            inner = inner.get("trade") or inner.get("order_info") or inner.get("data") or inner
            return inner
        if key in ("order", "trade") and isinstance(inner, dict):
            return inner
        if key == "orders" and isinstance(inner, list) and len(inner) == 1:
            return inner[0]
    return payload
